"""The retry decision as a table: one failed attempt and the call's state in, one decision out.

The policy has no jitter and round numbers, so every delay is exact: backoff 1 s doubling to
8 s, Retry-After capped at 10 s, 3 retries, a rate-limit deadline of 60 s and no overall
deadline unless a row sets one.
"""

from __future__ import annotations

import dataclasses

import pytest

from vecml_async import ConflictError, NotFoundError, RetryPolicy
from vecml_async._retry import CallState, Decision, Failure, decide
from vecml_async.errors import APIError, AuthenticationError

POLICY = RetryPolicy(
    max_retries=3,
    initial_delay=1.0,
    multiplier=2.0,
    max_delay=8.0,
    jitter=0.0,
    max_retry_after=10.0,
    rate_limit_deadline=60.0,
)
WITH_DEADLINE = dataclasses.replace(POLICY, deadline=30.0)

RATE = Failure("rate_limited")
RATE_AFTER = Failure("rate_limited", retry_after=4.0)
RATE_AFTER_LONG = Failure("rate_limited", retry_after=500.0)
DROP = Failure("transient", ambiguous=True)  # a dropped answer, a timeout, a 500
NOT_SENT = Failure("transient")  # a connect error, a 503
UNAVAILABLE_AFTER = Failure("transient", retry_after=3.0)
REFUSED_LOCAL = Failure("transient", refused_loopback=True)
CONFLICT = Failure("refused", refusal=ConflictError)
MISSING = Failure("refused", refusal=NotFoundError)
AUTH = Failure("refused", refusal=AuthenticationError)
FATAL = Failure("fatal", ambiguous=True)

FRESH = CallState()
AFTER_DROP = CallState(retries=1, ambiguous_before=True, elapsed=1.0)


def retry(delay: float, *, spends: bool, applied: bool = False, reason: str) -> Decision:
    return Decision("retry", delay, spends, applied, reason)


def stop(reason: str, *, applied: bool = False) -> Decision:
    return Decision("raise", 0.0, False, applied, reason)


TABLE = [
    # (failure, state, policy, idempotent, done_if, expected)
    # -- real failures spend retries, with exponential backoff
    (DROP, FRESH, POLICY, True, None, retry(1.0, spends=True, applied=True, reason="transient")),
    (
        DROP,
        CallState(retries=2),
        POLICY,
        True,
        None,
        retry(4.0, spends=True, applied=True, reason="transient"),
    ),
    (
        NOT_SENT,
        CallState(retries=2),
        POLICY,
        True,
        None,
        retry(4.0, spends=True, reason="transient"),
    ),
    (DROP, CallState(retries=3), POLICY, True, None, stop("retries exhausted", applied=True)),
    (NOT_SENT, CallState(retries=3), POLICY, True, None, stop("retries exhausted")),
    (UNAVAILABLE_AFTER, FRESH, POLICY, True, None, retry(3.0, spends=True, reason="transient")),
    # -- not idempotent: an ambiguous failure is final, a failure before sending is not
    (DROP, FRESH, POLICY, False, None, stop("may have been applied", applied=True)),
    (NOT_SENT, FRESH, POLICY, False, None, retry(1.0, spends=True, reason="transient")),
    # -- done_if: creations and deletions may repeat, and a conflict after a drop is success
    (
        DROP,
        FRESH,
        POLICY,
        False,
        ConflictError,
        retry(1.0, spends=True, applied=True, reason="transient"),
    ),
    (
        CONFLICT,
        AFTER_DROP,
        POLICY,
        True,
        ConflictError,
        Decision("done", 0.0, False, True, "an earlier attempt applied"),
    ),
    (
        MISSING,
        AFTER_DROP,
        POLICY,
        True,
        NotFoundError,
        Decision("done", 0.0, False, True, "an earlier attempt applied"),
    ),
    (CONFLICT, FRESH, POLICY, True, ConflictError, stop("refused")),
    (MISSING, AFTER_DROP, POLICY, True, ConflictError, stop("refused", applied=True)),
    (AUTH, AFTER_DROP, POLICY, True, ConflictError, stop("refused", applied=True)),
    # -- refusals and fatal failures are never retried
    (AUTH, FRESH, POLICY, True, None, stop("refused")),
    (FATAL, FRESH, POLICY, True, None, stop("not retryable", applied=True)),
    # -- a refused loopback connection: one retry only
    (REFUSED_LOCAL, FRESH, POLICY, True, None, retry(1.0, spends=True, reason="transient")),
    (REFUSED_LOCAL, CallState(retries=1), POLICY, True, None, stop("nothing listens there")),
    # -- rate limits: backpressure, no retry spent, bounded by the rate-limit deadline
    (
        RATE,
        CallState(retries=3, rate_limited=1),
        POLICY,
        True,
        None,
        retry(1.0, spends=False, reason="rate limited"),
    ),
    (
        RATE,
        CallState(rate_limited=4, elapsed=10.0),
        POLICY,
        False,
        None,
        retry(8.0, spends=False, reason="rate limited"),
    ),
    (
        RATE_AFTER,
        CallState(rate_limited=1),
        POLICY,
        True,
        None,
        retry(4.0, spends=False, reason="rate limited"),
    ),
    (
        RATE_AFTER_LONG,
        CallState(rate_limited=1),
        POLICY,
        True,
        None,
        retry(10.0, spends=False, reason="rate limited"),
    ),
    (
        RATE,
        CallState(rate_limited=50, elapsed=52.0),
        POLICY,
        True,
        None,
        stop("rate-limit deadline passed"),
    ),
    (
        RATE,
        CallState(rate_limited=50, elapsed=51.0),
        POLICY,
        True,
        None,
        retry(8.0, spends=False, reason="rate limited"),
    ),
    (
        RATE,
        CallState(rate_limited=1, ambiguous_before=True),
        POLICY,
        True,
        None,
        retry(1.0, spends=False, applied=True, reason="rate limited"),
    ),
    # -- the overall deadline: nothing is retried that could not start before it
    (
        DROP,
        CallState(elapsed=28.5),
        WITH_DEADLINE,
        True,
        None,
        retry(1.0, spends=True, applied=True, reason="transient"),
    ),
    (
        DROP,
        CallState(elapsed=29.0),
        WITH_DEADLINE,
        True,
        None,
        stop("deadline passed", applied=True),
    ),
    (
        RATE,
        CallState(rate_limited=4, elapsed=25.0),
        WITH_DEADLINE,
        True,
        None,
        stop("deadline passed"),
    ),
]


@pytest.mark.parametrize(
    ("failure", "state", "policy", "idempotent", "done_if", "expected"),
    TABLE,
    ids=[f"{i:02d}-{row[0].kind}-{row[-1].action}" for i, row in enumerate(TABLE)],
)
def test_decision_table(
    failure: Failure,
    state: CallState,
    policy: RetryPolicy,
    idempotent: bool,
    done_if: type[APIError] | None,
    expected: Decision,
) -> None:
    """Each row: what the transport must do after this failure at this point of the call."""
    assert decide(failure, state, policy, idempotent=idempotent, done_if=done_if, jitter=0.3) == (
        expected
    )


def test_jitter_scales_the_backoff_down_only() -> None:
    """With jitter j and draw u the backoff is base * (1 - j * u): never more than base."""
    policy = dataclasses.replace(POLICY, jitter=0.5)
    low = decide(DROP, FRESH, policy, idempotent=True, done_if=None, jitter=1.0)
    high = decide(DROP, FRESH, policy, idempotent=True, done_if=None, jitter=0.0)
    assert (low.delay, high.delay) == (0.5, 1.0)


def test_retry_after_ignored_when_told() -> None:
    """respect_retry_after=False: the backoff applies even with a Retry-After."""
    policy = dataclasses.replace(POLICY, respect_retry_after=False)
    decision = decide(UNAVAILABLE_AFTER, FRESH, policy, idempotent=True, done_if=None, jitter=0)
    assert decision.delay == 1.0


def test_no_rate_limit_deadline_waits_for_ever() -> None:
    """rate_limit_deadline=None: a rate-limited call keeps waiting, however long it took."""
    policy = dataclasses.replace(POLICY, rate_limit_deadline=None)
    state = CallState(rate_limited=10_000, elapsed=1e6)
    decision = decide(RATE, state, policy, idempotent=True, done_if=None, jitter=0)
    assert (decision.action, decision.delay) == ("retry", 8.0)


def test_the_decision_ignores_testing_mode() -> None:
    """The decision is pure: testing mode (which skips waits in the transport) changes nothing."""
    import vecml_async

    assert vecml_async._config.is_testing()  # the unit suite runs in testing mode
    decision = decide(DROP, FRESH, POLICY, idempotent=True, done_if=None, jitter=0)
    assert decision.delay == 1.0
