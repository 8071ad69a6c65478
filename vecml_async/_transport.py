"""Sending one request. The transport is the only part of the package that touches httpx:
this module (the call: budget, retries, hooks), :mod:`~vecml_async._exchange` (one attempt),
:mod:`~vecml_async._wire` (headers, timeouts, bounded reads), :mod:`~vecml_async._http_errors`
(classification) and :mod:`~vecml_async._retry` (the pure retry decision, no httpx).

``Transport.send`` POSTs a pre-encoded JSON body. Each attempt

1. waits for a connection slot, then for a token of the client's budget (the time counts in
   ``SendStats.limiter_wait``);
2. runs under one deadline for the whole attempt (connect, send, headers, body): the
   ``timeout``, never past the call's overall deadline;
3. reads at most :data:`~vecml_async.errors.BODY_LIMIT` bytes of a refusal and
   ``max_response_bytes`` of a success (a clear error past it);
4. is classified, the answer redacted once on the way in (key masked, echoed
   ``user_api_key`` fields dropped).

Then :mod:`vecml_async._retry` says retry, raise or done. Every exception out of the HTTP
client maps to the error tree; cancellation propagates. Bodies hold the key: never logged,
never bound to frame locals beyond ``body`` (whose repr hides them).
"""

from __future__ import annotations

import copy
import logging
import random
import time
import weakref
from collections.abc import Mapping
from types import EllipsisType
from typing import Any

import anyio
import httpx
import orjson

from vecml_async._body import EncodedBody, encode_request
from vecml_async._config import RetryPolicy, is_testing
from vecml_async._exchange import Call, Exchange, Result
from vecml_async._hooks import (
    Hooks,
    RequestEvent,
    ResponseEvent,
    ResponseOutcome,
    RetryEvent,
    Span,
    call_span,
)
from vecml_async._http_errors import (
    MAY_HAVE_APPLIED,
    amended,
    final_error,
)
from vecml_async._limiter import Budget
from vecml_async._redact import KeyLogFilter, Secret, guard_http_logs, unguard_http_logs
from vecml_async._retry import CallState, Decision, Failure, decide
from vecml_async._server_rules import DEFAULT_RULES, AnswerRules
from vecml_async._wire import (
    DEFAULT_MAX_RESPONSE_BYTES,
    STREAM_CHUNK,
    AttemptTimeout,
    SendStats,
    check_base_url,
    request_headers,
    unencodable_field,
)
from vecml_async.errors import (
    APIError,
    InvalidInputError,
    TransportError,
    VecMLError,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "MAY_HAVE_APPLIED",
    "STREAM_CHUNK",
    "AttemptTimeout",
    "SendStats",
    "Transport",
]

logger = logging.getLogger("vecml_async")


class Transport:
    """POSTs JSON bodies to ``<base_url>/<endpoint>`` with budget, deadlines, retries, error
    mapping and redaction."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: Secret,
        timeout: float | httpx.Timeout | None,
        retry: RetryPolicy,
        limiter: Budget,
        http_client: httpx.AsyncClient | None = None,
        max_connections: int = 64,
        seed: int | None = None,
        hooks: Hooks | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        answer_rules: AnswerRules = DEFAULT_RULES,
    ) -> None:
        check_base_url(base_url)
        if isinstance(max_response_bytes, bool) or not (
            isinstance(max_response_bytes, int) and max_response_bytes > 0
        ):
            raise InvalidInputError("must be an int > 0", field="max_response_bytes")
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self._timeout = AttemptTimeout.of(timeout)
        self.retry = retry
        self.limiter = limiter
        self._hooks = hooks if hooks is not None else Hooks()
        self._rng = random.Random(seed)
        self._owns_client = http_client is None
        if http_client is None:
            http_client = httpx.AsyncClient(
                timeout=self._timeout.phases,
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
            )
        self._exchange = Exchange(
            http_client, api_key, self.base_url, max_response_bytes, answer_rules
        )
        self._slots = anyio.Semaphore(max_connections)
        self._log_guard: KeyLogFilter | None = guard_http_logs(api_key)
        # A transport dropped without aclose() takes its log guard with it.
        weakref.finalize(self, unguard_http_logs, self._log_guard)

    def __repr__(self) -> str:
        return f"Transport(base_url={self.base_url!r})"

    def derive(
        self,
        *,
        timeout: float | httpx.Timeout | EllipsisType | None = ...,
        retry: RetryPolicy | EllipsisType = ...,
        limiter: Budget | EllipsisType = ...,
        hooks: Hooks | EllipsisType = ...,
    ) -> Transport:
        """A transport sharing this one's connection pool, connection slots and hooks, with
        the options given replaced (for ``with_options``, and the probe's own hooks). Closing
        it closes nothing."""
        clone = copy.copy(self)
        clone._owns_client = False
        clone._log_guard = None  # the original's guard covers the shared key
        if not isinstance(timeout, EllipsisType):
            clone._timeout = AttemptTimeout.of(timeout)
        if not isinstance(retry, EllipsisType):
            clone.retry = retry
        if not isinstance(limiter, EllipsisType):
            clone.limiter = limiter
        if not isinstance(hooks, EllipsisType):
            clone._hooks = hooks
        return clone

    @property
    def hooks(self) -> Hooks:
        """The hooks every attempt of this transport runs."""
        return self._hooks

    async def aclose(self) -> None:
        """Close the connection pool, unless it was passed in by the caller (or shared)."""
        if self._log_guard is not None:
            unguard_http_logs(self._log_guard)
            self._log_guard = None
        if self._owns_client:
            await self._exchange.http.aclose()

    def encode(self, fields: Mapping[str, Any]) -> EncodedBody:
        """The JSON body of a request with ``fields`` and the key.

        Raises :class:`InvalidInputError` (nothing is sent) for a ``user_api_key`` field (the
        key is the client's, and only the client's key is redacted) or a value JSON cannot
        carry.
        """
        if "user_api_key" in fields:
            raise InvalidInputError(
                "the client adds its own key; do not pass user_api_key", field="user_api_key"
            )
        try:
            return encode_request(self._key.get(), fields)
        except orjson.JSONEncodeError as err:
            raise InvalidInputError(
                f"cannot be sent as JSON: {err}", field=unencodable_field(fields)
            ) from None

    async def send(
        self,
        endpoint: str,
        body: EncodedBody,
        stats: SendStats | None = None,
        *,
        idempotent: bool = True,
        done_if: type[APIError] | None = None,
        timeout: float | httpx.Timeout | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST ``body`` to ``endpoint`` and return the JSON answer of a success, redacted.

        Every attempt re-sends the same bytes. Raises the matching :class:`APIError` subclass
        for a refusal and :class:`TransportError` when no usable answer came back, once the
        retry policy says so (see :class:`~vecml_async.RetryPolicy` for the bounds).
        ``timeout`` replaces the client's attempt timeout for this call; ``extra_headers`` are
        added to the request (not the framing headers).

        An attempt that fails after the request may have reached the server (a connection
        dropped while waiting for the answer, a timeout, a 5xx other than 503) is
        *ambiguous*: the server may have applied it. Such attempts are retried only when
        repeating the request is harmless:

        * ``idempotent=True`` (reads; ``add_data_batch`` with ids, which the server upserts):
          retried like any transient failure;
        * ``idempotent=False`` (e.g. ``upload``, whose rows get server-made ids): not
          retried; the error says the request may have been applied;
        * ``done_if=ConflictError`` (creations) / ``NotFoundError`` (deletions): retried, and
          if a retry after an ambiguous attempt gets that refusal, the earlier attempt did
          the work, so the call succeeds.
        """
        stats = stats if stats is not None else SendStats()
        call = Call(
            endpoint=endpoint,
            url=f"{self.base_url}/{endpoint}",
            headers=request_headers(body, extra_headers),
            timeout=self._timeout if timeout is None else AttemptTimeout.of(timeout),
            deadline=self.retry.deadline,
        )
        with call_span(endpoint, call.url) as span:
            attempts = stats.attempts
            try:
                return await self._send(call, body, stats, idempotent, done_if, span)
            finally:
                span.set_attribute("vecml.attempts", stats.attempts - attempts)

    async def _send(
        self,
        call: Call,
        body: EncodedBody,
        stats: SendStats,
        idempotent: bool,
        done_if: type[APIError] | None,
        span: Span,
    ) -> dict[str, Any]:
        retries = rate_limited = attempt = 0
        ambiguous = False
        last: VecMLError | None = None
        while True:
            attempt += 1
            result = await self._attempt(call, body, attempt, stats, rate_limited > 0)
            if result.status is not None:
                span.set_attribute("http.response.status_code", result.status)
            if result.data is not None:
                self.limiter.on_success()
                return result.data
            if result.no_token:
                raise self._out_of_time(call, last, ambiguous)
            assert result.failure is not None
            assert result.error is not None
            failure, last = result.failure, result.error
            if failure.kind == "rate_limited":
                rate_limited += 1
                stats.rate_limited += 1
                span.set_attribute("vecml.rate_limited", rate_limited)
                self.limiter.on_rate_limited()
            state = CallState(retries, rate_limited, ambiguous, call.elapsed())
            decision = decide(
                failure,
                state,
                self.retry,
                idempotent=idempotent,
                done_if=done_if,
                jitter=self._rng.random(),
            )
            ambiguous = ambiguous or failure.ambiguous
            stats.ambiguous = stats.ambiguous or ambiguous
            if decision.action == "done":
                logger.info("POST /%s: an earlier attempt took effect", call.endpoint)
                return {"success": True}
            if decision.action == "raise":
                logger.debug(
                    "POST /%s failed after %d attempt(s): %s",
                    call.endpoint,
                    attempt,
                    decision.reason,
                )
                raise final_error(last, decision, idempotent) from result.cause
            if decision.spends_retry:
                retries += 1
                stats.retries += 1
                span.set_attribute("vecml.retries", retries)
            await self._before_retry(call, attempt, decision, failure, last, span)

    async def _before_retry(
        self,
        call: Call,
        attempt: int,
        decision: Decision,
        failure: Failure,
        error: VecMLError,
        span: Span,
    ) -> None:
        limited = failure.kind == "rate_limited"
        log = logger.debug if limited else logger.info
        log(
            "POST /%s attempt %d failed (%s); retrying in %.2f s",
            call.endpoint,
            attempt,
            decision.reason,
            decision.delay,
        )
        span.add_event("retry", {"attempt": attempt, "delay": decision.delay})
        if self._hooks.on_retry:
            await self._hooks.retry(
                RetryEvent(call.endpoint, attempt, decision.delay, limited, error)
            )
        if is_testing():
            call.skipped += decision.delay
        elif decision.delay > 0:
            await anyio.sleep(decision.delay)

    def _token_budget(self, call: Call, rate_limited: bool) -> float | None:
        """Seconds the next token may be waited for, or ``None`` (no bound)."""
        elapsed = call.elapsed()
        budgets = []
        if call.deadline is not None:
            budgets.append(call.deadline - elapsed)
        limit = self.retry.rate_limit_deadline
        if rate_limited and limit is not None:
            budgets.append(limit - elapsed)
        return min(budgets) if budgets else None

    async def _token(self, budget: float | None, stats: SendStats) -> bool:
        """Wait for a budget token; ``False`` when none came within ``budget`` seconds."""
        started = time.monotonic()
        try:
            if budget is None:
                await self.limiter.acquire()
                return True
            with anyio.move_on_after(budget) as scope:
                await self.limiter.acquire()
            return not scope.cancelled_caught
        finally:
            stats.limiter_wait += time.monotonic() - started

    async def _attempt(
        self, call: Call, body: EncodedBody, attempt: int, stats: SendStats, limited: bool
    ) -> Result:
        # A connection slot first, then the token: a token is never held while the request
        # waits for the pool, so requests leave as evenly as tokens are given.
        async with self._slots:
            if not await self._token(self._token_budget(call, limited), stats):
                return Result(no_token=True)
            stats.attempts += 1
            if self._hooks.on_request:
                await self._hooks.request(
                    RequestEvent(call.endpoint, call.url, attempt, body.length)
                )
            started = time.monotonic()
            result = await self._exchange(call, body)
        elapsed = time.monotonic() - started
        if result.data is not None:
            logger.debug(
                "POST /%s %d bytes -> %s in %.3f s (attempt %d)",
                call.endpoint,
                body.length,
                result.status,
                elapsed,
                attempt,
            )
        if self._hooks.on_response:
            event = ResponseEvent(
                call.endpoint,
                call.url,
                attempt,
                result.status,
                elapsed,
                _outcome_name(result),
                result.error,
            )
            await self._hooks.response(event)
        return result

    def _out_of_time(self, call: Call, last: VecMLError | None, ambiguous: bool) -> VecMLError:
        waited = call.elapsed()
        note = f"no attempt could start within the call's deadlines ({waited:.1f} s)"
        if last is not None:
            return amended(last, note, ambiguous)
        return TransportError(
            f"{note}, waiting for the rate limiter", endpoint=call.endpoint, url=call.url
        )


def _outcome_name(result: Result) -> ResponseOutcome:
    if result.data is not None:
        return "ok"
    if result.status is None or result.failure is None:
        return "transport_error"
    if result.failure.kind == "rate_limited":
        return "rate_limited"
    return "server_error" if result.status >= 500 else "refused"
