"""One attempt on the wire: the request, its bounded answer, under one deadline (no retries).

:class:`Exchange` posts one body and reads the answer within the attempt's deadline (connect,
send, headers and body together), at most :data:`~vecml_async.errors.BODY_LIMIT` bytes of a
refusal and ``max_response_bytes`` of a success, then classifies it, redacted: the one place
where what the server sent becomes data, messages and errors. Any exception of the HTTP
client becomes a :class:`Result` with a :class:`~vecml_async.errors.TransportError`;
cancellation of the calling task propagates untouched.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import httpx

from vecml_async._body import EncodedBody
from vecml_async._http_errors import (
    answer_failure,
    classify,
    detached,
    exception_failure,
    parse_retry_after,
    too_large,
)
from vecml_async._redact import Secret
from vecml_async._retry import Failure
from vecml_async._server_rules import DEFAULT_RULES, AnswerRules
from vecml_async._wire import STREAM_CHUNK, AttemptTimeout, body_pieces, read_bounded
from vecml_async.errors import BODY_LIMIT, TransportError, VecMLError


@dataclass
class Call:
    """One call of ``Transport.send``: where it goes, and its clock.

    ``skipped`` counts the waits testing mode skipped: they count as elapsed, so deadlines
    fall after the same attempts as in production.
    """

    endpoint: str
    url: str
    headers: dict[str, str] = field(repr=False)
    timeout: AttemptTimeout
    deadline: float | None  # seconds the whole call may take, or None
    started: float = field(default_factory=time.monotonic)
    skipped: float = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.started + self.skipped

    def attempt_limit(self) -> tuple[float, bool]:
        """Seconds the next attempt may take, and whether the call's deadline sets it."""
        total = self.timeout.total if self.timeout.total is not None else math.inf
        if self.deadline is not None and self.deadline - self.elapsed() < total:
            return max(self.deadline - self.elapsed(), 0.0), True
        return total, False


@dataclass(frozen=True)
class Result:
    """One attempt: the answer of a success, or the failure and its error."""

    data: dict[str, Any] | None = None
    failure: Failure | None = None
    error: VecMLError | None = None
    cause: BaseException | None = None
    status: int | None = None  # the HTTP status, when an answer came
    no_token: bool = False  # the budget gave no token before the deadline


class Exchange:
    """Posts with one shared ``httpx.AsyncClient``; see the module docstring."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        key: Secret,
        base_url: str,
        max_response_bytes: int,
        rules: AnswerRules = DEFAULT_RULES,
    ) -> None:
        self.http = http
        self._key = key
        self._base_url = base_url
        self.max_response_bytes = max_response_bytes
        self.rules = rules

    def __repr__(self) -> str:
        return f"Exchange(base_url={self._base_url!r})"

    async def __call__(self, call: Call, body: EncodedBody) -> Result:
        """One request and its bounded answer, under the attempt's deadline."""
        limit, by_deadline = call.attempt_limit()
        with anyio.move_on_after(limit) as scope:
            try:
                status, headers, content, complete = await self._post(call, body)
            except Exception as err:  # anything the HTTP client raises; cancellation is not
                failure, message = exception_failure(err, call.url)
                text = self._key.redact(message)
                error = TransportError(text, endpoint=call.endpoint, url=call.url)
                return Result(failure=failure, error=error, cause=detached(err, self._key))
        if scope.cancelled_caught:
            message = f"no complete answer from {call.url} within {limit:g} s"
            if by_deadline:
                message += " (the call's deadline)"
            error = TransportError(message, endpoint=call.endpoint, url=call.url)
            return Result(failure=Failure("transient", ambiguous=True), error=error)
        return self._answer(call, status, headers, content, complete)

    async def _post(
        self, call: Call, body: EncodedBody
    ) -> tuple[int, httpx.Headers, bytearray, bool]:
        request = self.http.build_request(
            "POST",
            call.url,
            # The body (it holds the key) is not bound to a local name: frame locals show up
            # in tracebacks rendered with locals (rich, Sentry, ...).
            content=body.to_bytes() if body.length <= STREAM_CHUNK else body_pieces(body),
            headers=call.headers,
            timeout=call.timeout.phases,
        )
        response = await self.http.send(request, stream=True)
        try:
            success = 200 <= response.status_code < 300
            limit = self.max_response_bytes if success else BODY_LIMIT
            content, complete = await read_bounded(response, limit, strict=success)
        finally:
            await response.aclose()
        return response.status_code, response.headers, content, complete

    def _answer(
        self, call: Call, status: int, headers: httpx.Headers, content: bytearray, complete: bool
    ) -> Result:
        """Classify (and redact) one answer."""
        kept = self._key.redact_headers(headers)
        if 200 <= status < 300 and not complete:
            failure, error = too_large(call.endpoint, status, kept, self.max_response_bytes)
            return Result(failure=failure, error=error, status=status)
        outcome = classify(status, content, self._key, self.rules)
        if outcome.kind == "ok":
            return Result(data=outcome.data, status=status)
        retry_after = parse_retry_after(headers.get("retry-after"))
        failure, error = answer_failure(
            call.endpoint, status, outcome, kept, retry_after, self._base_url, self.rules
        )
        return Result(failure=failure, error=error, status=status)
