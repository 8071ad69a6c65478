"""The requests of one probe: through the client's transport and limiter, counted, kept as
evidence.

:class:`ProbeSession` sends every request of a probe with the client's transport (its
connection pool, its rate limiter, its hooks and redaction), derived with a retry policy of
its own (one retry of a real failure, rate-limit answers waited out for at most 20 s) and two
hooks more: one before each attempt, which counts it against the probe's bound and refuses to
send past it (:class:`ProbeStopped`), and one after, which notes the status. Each call
returns a :class:`Reply`: the answer or the error, and its :class:`Evidence` (status, the
headers that matter, a bounded excerpt of the body; the key masked, as everything the
transport reads). Rate-limit answers met on the way are kept too.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import orjson

from vecml_async._body import EncodedBody
from vecml_async._config import RetryPolicy
from vecml_async._hooks import Hooks, RequestEvent, ResponseEvent
from vecml_async._limiter import Budget
from vecml_async._redact import Secret
from vecml_async._transport import Transport
from vecml_async.errors import APIError, TransportError, VecMLError
from vecml_async.probe.profile import EXCERPT_LIMIT, Evidence, Outcome

__all__ = ["PROBE_RETRY", "ProbeClient", "ProbeSession", "ProbeStopped", "Reply"]

#: One retry of a real failure; rate-limit answers are waited out for at most 20 s.
PROBE_RETRY: Final = RetryPolicy(max_retries=1, rate_limit_deadline=20.0)
#: Headers kept as evidence (plus any whose name mentions a rate limit).
_KEPT_HEADERS: Final = ("content-type", "retry-after")


class ProbeClient(Protocol):
    """What the probe uses of a client (an :class:`~vecml_async.AsyncVecML`)."""

    base_url: str
    _key: Secret

    def _open_transport(self) -> Transport: ...


class ProbeStopped(VecMLError):
    """The probe's bound on calls is reached: this request was not sent."""


@dataclass
class _Record:
    """What the hooks learn about one call (the call's context holds it)."""

    allowance: int
    sent_at: float | None = None
    status: int | None = None
    outcome: Outcome = "not_sent"


_current: contextvars.ContextVar[_Record | None] = contextvars.ContextVar(
    "vecml_probe_call", default=None
)


@dataclass(frozen=True)
class Reply:
    """One call of the probe: the answer (``data``) or the ``error``, and the evidence."""

    data: dict[str, Any] | None
    error: VecMLError | None
    evidence: Evidence
    sent_at: float | None = None

    @property
    def ok(self) -> bool:
        return self.data is not None

    @property
    def status(self) -> int | None:
        return self.evidence.status

    @property
    def refused(self) -> bool:
        """The server answered with a refusal (not a rate-limit answer, not a lost answer)."""
        return isinstance(self.error, APIError) and self.evidence.outcome == "refused"

    @property
    def stopped(self) -> bool:
        """Not sent: the probe's bound on calls was reached."""
        return isinstance(self.error, ProbeStopped)


def _excerpt(text: str) -> str:
    return text if len(text) <= EXCERPT_LIMIT else text[:EXCERPT_LIMIT] + "..."


def _kept_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        name: _excerpt(value)
        for name, value in headers.items()
        if name in _KEPT_HEADERS or "ratelimit" in name.replace("-", "")
    }


@dataclass
class ProbeSession:
    """Sends the probe's requests (see the module docstring)."""

    client: ProbeClient
    max_calls: int
    reserve: int
    spent: int = 0
    rate_limit_answers: list[Evidence] = field(default_factory=list)
    transport: Transport = field(init=False)

    def __post_init__(self) -> None:
        base = self.client._open_transport()
        hooks = base.hooks
        self._hooks = Hooks(
            on_request=(*hooks.on_request, self._before),
            on_response=(*hooks.on_response, self._after),
            on_retry=hooks.on_retry,
        )
        self.transport = base.derive(retry=PROBE_RETRY, hooks=self._hooks)

    def derive(self, *, retry: RetryPolicy, limiter: Budget | None = None) -> Transport:
        """A transport of the probe (counted, recorded) with another retry policy and, for
        the rate ramp, another limiter."""
        if limiter is None:
            return self.transport.derive(retry=retry)
        return self.transport.derive(retry=retry, limiter=limiter)

    @property
    def left(self) -> int:
        """Calls the questions may still make (the cleanup's reserve excluded)."""
        return max(0, self.max_calls - self.reserve - self.spent)

    # -- hooks --------------------------------------------------------------------------

    def _before(self, event: RequestEvent) -> None:
        record = _current.get()
        if record is None:
            return  # not a probe call (a hook of the client's own may share this transport)
        if self.spent >= record.allowance:
            raise ProbeStopped(f"not sent: the probe's bound of {self.max_calls} calls is reached")
        self.spent += 1
        record.sent_at = time.monotonic()

    def _after(self, event: ResponseEvent) -> None:
        record = _current.get()
        if record is None:
            return
        record.status, record.outcome = event.status_code, event.outcome
        if event.outcome == "rate_limited" and event.error is not None:
            # Kept whether or not the call goes through in the end: it is the answer's shape.
            answer = _error_evidence(
                event.endpoint, "", event.error, event.status_code, "rate_limited"
            )
            self.rate_limit_answers.append(answer)

    # -- calls --------------------------------------------------------------------------

    async def call(
        self,
        endpoint: str,
        fields: Mapping[str, Any],
        *,
        sent: str,
        transport: Transport | None = None,
        cleanup: bool = False,
    ) -> Reply:
        """POST ``fields`` (the key is added) and keep what came back; never raises a
        :class:`VecMLError` (cancellation propagates)."""
        via = transport or self.transport
        return await self.send(
            endpoint, via.encode(fields), sent=sent, transport=via, cleanup=cleanup
        )

    async def send(
        self,
        endpoint: str,
        body: EncodedBody,
        *,
        sent: str,
        transport: Transport | None = None,
        cleanup: bool = False,
    ) -> Reply:
        """POST an encoded body; see :meth:`call`."""
        allowance = self.max_calls if cleanup else self.max_calls - self.reserve
        record = _Record(allowance)
        token = _current.set(record)
        try:
            data = await (transport or self.transport).send(endpoint, body)
        except VecMLError as err:
            reply = self._failed(endpoint, sent, record, err)
        else:
            evidence = Evidence(
                endpoint=endpoint,
                sent=sent,
                status=record.status,
                outcome="ok",
                excerpt=_excerpt(orjson.dumps(data).decode()),
            )
            reply = Reply(data, None, evidence, record.sent_at)
        finally:
            _current.reset(token)
        return reply

    def _failed(self, endpoint: str, sent: str, record: _Record, err: VecMLError) -> Reply:
        if isinstance(err, ProbeStopped):
            evidence = Evidence(endpoint=endpoint, sent=sent, outcome="not_sent")
            return Reply(None, err, evidence, None)
        outcome = record.outcome if record.outcome != "not_sent" else "transport_error"
        if isinstance(err, TransportError) and record.status is None:
            outcome = "transport_error"
        evidence = _error_evidence(endpoint, sent, err, record.status, outcome)
        return Reply(None, err, evidence, record.sent_at)


def _error_evidence(
    endpoint: str, sent: str, err: VecMLError, status: int | None, outcome: Outcome
) -> Evidence:
    """The evidence of a refusal or a failed attempt (already redacted by the transport)."""
    headers: dict[str, str] = {}
    text = err.message
    if isinstance(err, APIError):
        headers = _kept_headers(err.headers)
        status = err.status_code
        text = err.body if err.body is not None else err.message
    return Evidence(
        endpoint=endpoint,
        sent=sent,
        status=status,
        outcome=outcome,
        excerpt=_excerpt(text),
        headers=headers,
    )
