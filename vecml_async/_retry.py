"""The retry decision of one call: a pure function of what happened and where the call is.

:func:`decide` takes one failed attempt (:class:`Failure`: its kind, whether the server may
have applied it, the refusal class, ``Retry-After``), the call's state so far
(:class:`CallState`: retries spent, rate-limit answers, whether an earlier attempt may have
been applied, seconds elapsed), the :class:`RetryPolicy` and the call's options
(``idempotent``, ``done_if``), plus one uniform random draw for the jitter, and returns a
:class:`Decision`: retry after how long, raise, or treat the call as done. No I/O, no clock:
the transport measures, this decides, a table of cases tests it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from vecml_async._config import RetryPolicy
from vecml_async.errors import APIError

FailureKind = Literal["rate_limited", "transient", "refused", "fatal"]
Action = Literal["retry", "raise", "done"]

#: Retries allowed after a refused connection to a loopback address: nothing listens on that
#: port, and a local server that is restarting is back within one backoff.
LOOPBACK_REFUSED_RETRIES: Final = 1


@dataclass(frozen=True)
class Failure:
    """One failed attempt.

    Attributes:
        kind: ``rate_limited`` (the server's limit answer: backpressure), ``transient`` (a 5xx,
            a dropped connection, a timeout: worth retrying), ``refused`` (any other refusal)
            or ``fatal`` (an error retrying cannot fix: a bad URL, an unreadable answer).
        ambiguous: the server may have applied this attempt (the request was sent and the
            answer was lost, or it was a 5xx other than 503).
        refusal: the :class:`APIError` subclass of a ``refused`` answer.
        retry_after: seconds from the answer's ``Retry-After`` header, if any.
        refused_loopback: the connection to a loopback address was refused.
    """

    kind: FailureKind
    ambiguous: bool = False
    refusal: type[APIError] | None = None
    retry_after: float | None = None
    refused_loopback: bool = False


@dataclass(frozen=True)
class CallState:
    """Where the call is when an attempt fails.

    Attributes:
        retries: retries already spent on real failures (before this attempt's failure).
        rate_limited: rate-limit answers received, this one included.
        ambiguous_before: an earlier attempt may have been applied.
        elapsed: seconds since the call started.
    """

    retries: int = 0
    rate_limited: int = 0
    ambiguous_before: bool = False
    elapsed: float = 0.0


@dataclass(frozen=True)
class Decision:
    """What to do after a failed attempt.

    Attributes:
        action: ``retry`` (after ``delay`` seconds), ``raise`` the attempt's error, or
            ``done``: the call succeeded after all (an earlier, ambiguous attempt did the work).
        delay: seconds to wait before the retry.
        spends_retry: the retry counts against ``max_retries`` (real failures only).
        may_have_applied: an attempt of this call may have been applied by the server.
        reason: why, in a few words (for logs, hooks and error messages).
    """

    action: Action
    delay: float = 0.0
    spends_retry: bool = False
    may_have_applied: bool = False
    reason: str = ""


def decide(
    failure: Failure,
    state: CallState,
    policy: RetryPolicy,
    *,
    idempotent: bool,
    done_if: type[APIError] | None,
    jitter: float,
) -> Decision:
    """The decision after ``failure`` (see the module docstring); ``jitter`` is uniform 0..1.

    * a refusal is raised, unless it is ``done_if`` after an ambiguous attempt: then the
      earlier attempt did the work (a creation answered "already exists") and the call is done;
    * a fatal failure is raised;
    * a rate-limit answer is retried without spending ``max_retries`` until the next attempt
      could not start before ``rate_limit_deadline``;
    * a transient failure that may have been applied is raised when repeating the call is
      not harmless (``idempotent=False`` and no ``done_if``); otherwise it is retried while
      retries remain (one for a refused loopback connection);
    * nothing is retried when the retry could not start before ``deadline``.
    """
    applied = failure.ambiguous or state.ambiguous_before
    if failure.kind == "refused":
        if (
            done_if is not None
            and state.ambiguous_before
            and failure.refusal is not None
            and issubclass(failure.refusal, done_if)
        ):
            return Decision("done", may_have_applied=True, reason="an earlier attempt applied")
        return Decision("raise", may_have_applied=applied, reason="refused")
    if failure.kind == "fatal":
        return Decision("raise", may_have_applied=applied, reason="not retryable")
    if failure.kind == "rate_limited":
        return _after_rate_limit(failure, state, policy, jitter, applied)
    return _after_transient(failure, state, policy, idempotent, done_if, jitter, applied)


def _wait(failure: Failure, policy: RetryPolicy, n: int, jitter: float) -> float:
    honoured = policy.retry_after_wait(failure.retry_after)
    return honoured if honoured is not None else policy.backoff(n, jitter)


def _past_deadline(policy: RetryPolicy, state: CallState, delay: float) -> bool:
    return policy.deadline is not None and state.elapsed + delay >= policy.deadline


def _after_rate_limit(
    failure: Failure, state: CallState, policy: RetryPolicy, jitter: float, applied: bool
) -> Decision:
    delay = _wait(failure, policy, max(state.rate_limited, 1), jitter)
    limit = policy.rate_limit_deadline
    if limit is not None and state.elapsed + delay >= limit:
        return Decision("raise", may_have_applied=applied, reason="rate-limit deadline passed")
    if _past_deadline(policy, state, delay):
        return Decision("raise", may_have_applied=applied, reason="deadline passed")
    return Decision("retry", delay=delay, may_have_applied=applied, reason="rate limited")


def _after_transient(
    failure: Failure,
    state: CallState,
    policy: RetryPolicy,
    idempotent: bool,
    done_if: type[APIError] | None,
    jitter: float,
    applied: bool,
) -> Decision:
    if failure.ambiguous and not idempotent and done_if is None:
        return Decision("raise", may_have_applied=True, reason="may have been applied")
    if state.retries >= policy.max_retries:
        return Decision("raise", may_have_applied=applied, reason="retries exhausted")
    if failure.refused_loopback and state.retries >= LOOPBACK_REFUSED_RETRIES:
        return Decision("raise", may_have_applied=applied, reason="nothing listens there")
    delay = _wait(failure, policy, state.retries + 1, jitter)
    if _past_deadline(policy, state, delay):
        return Decision("raise", may_have_applied=applied, reason="deadline passed")
    return Decision(
        "retry", delay=delay, spends_retry=True, may_have_applied=applied, reason="transient"
    )
