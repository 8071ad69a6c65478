"""Sending one request: the only module that touches httpx.

``Transport.send`` POSTs a pre-encoded JSON body, takes a token from the client's limiter
before every attempt, retries what is worth retrying (connection errors, timeouts, HTTP 5xx,
the rate-limit answer) with capped exponential backoff and jitter, and maps every failure to
the error tree. No httpx exception escapes. Bodies are never logged: they hold the key.
"""

from __future__ import annotations

import datetime
import email.utils
import logging
import random
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import anyio
import httpx
import orjson

from vecml_async._config import RetryPolicy
from vecml_async._ingest.encoding import EncodedBody, encode_request
from vecml_async._limiter import RateLimiter
from vecml_async._redact import Secret
from vecml_async.errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    TransportError,
)

logger = logging.getLogger("vecml_async")

RATE_LIMIT_TEXT: Final = "Request limit reached"
#: Bodies up to this size are sent as one buffer; larger ones stream in chunks of this size,
#: which keeps httpx/asyncio from copying a large body (and bounds the extra memory).
STREAM_CHUNK: Final = 1 << 20
_ERROR_FIELDS: Final = ("error_message", "message", "error", "detail")
# httpx.InvalidURL is not an httpx.HTTPError: it is caught next to it, and never retried.
_NOT_RETRYABLE_TRANSPORT = (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.ProxyError)
#: Failures that happen before any byte of the request can have reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)
#: Answers that say the server did not act on the request (retrying them is always safe).
_NOT_APPLIED_STATUSES = frozenset({503})
MAY_HAVE_APPLIED = "the request may have been applied; check before repeating it"


@dataclass
class SendStats:
    """Counters one ``send`` call adds to (the ingest report reads them)."""

    attempts: int = 0
    retries: int = 0
    rate_limited: int = 0
    ambiguous: bool = False  # an earlier attempt may have been applied by the server


@dataclass(frozen=True)
class Outcome:
    """How an HTTP answer is classified (pure; see :func:`classify`)."""

    kind: str  # "ok" | "rate_limited" | "retryable" | "fatal"
    data: dict[str, Any] | None
    message: str


def _error_text(data: Mapping[str, Any]) -> str | None:
    for name in _ERROR_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def classify(status: int, content: bytes) -> Outcome:
    """Classify one HTTP answer.

    The rate-limit answer is HTTP 400 whose body contains ``Request limit reached``, as plain
    text or in a JSON string field, or any HTTP 429 (whatever a proxy in front of the API put
    in its body); a JSON body with ``"success": false`` is a refusal whatever the status; 5xx
    is retryable; any other non-2xx is a refusal.
    """
    data: dict[str, Any] | None = None
    try:
        parsed = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, dict):
        data = parsed
    text = (_error_text(data) if data is not None else None) or content.decode(
        "utf-8", "replace"
    ).strip()
    if status == 429 or (status == 400 and RATE_LIMIT_TEXT in text):
        return Outcome("rate_limited", data, text or "HTTP 429")
    if status >= 500:
        return Outcome("retryable", data, text or f"HTTP {status}")
    if not 200 <= status < 300:
        return Outcome("fatal", data, text or f"HTTP {status}")
    if data is None:
        return Outcome("fatal", None, "the answer is not a JSON object")
    if data.get("success") is False:
        message = _error_text(data) or "the server reported failure without a message"
        if RATE_LIMIT_TEXT in message:
            return Outcome("rate_limited", data, message)
        return Outcome("fatal", data, message)
    return Outcome("ok", data, "")


def error_class(status: int, message: str) -> type[APIError]:
    """The :class:`APIError` subclass for a refusal.

    The HTTP status decides where it is specific; otherwise (a 200 with ``"success": false``,
    or a generic 400) the message does. The message rules are an inference: VecML documents
    only the envelope, not the statuses or texts of its errors.
    """
    by_status: dict[int, type[APIError]] = {
        401: AuthenticationError,
        403: AuthenticationError,
        404: NotFoundError,
        409: ConflictError,
        413: RequestTooLargeError,
        429: RateLimitError,
    }
    if status in by_status:
        return by_status[status]
    if status >= 500:
        return ServerError
    lowered = message.lower()
    if RATE_LIMIT_TEXT.lower() in lowered:
        return RateLimitError
    if "api key" in lowered or "api_key" in lowered or "unauthori" in lowered:
        return AuthenticationError
    if "already exist" in lowered:
        return ConflictError
    if "not found" in lowered or "does not exist" in lowered or "doesn't exist" in lowered:
        return NotFoundError
    if "too large" in lowered or "exceeds" in lowered:
        return RequestTooLargeError
    return APIError


def check_base_url(base_url: str) -> None:
    """Refuse a base URL httpx could not send to (bad scheme, no host, bad port, spaces)."""
    try:
        url = httpx.URL(base_url)
        port = url.port
    except (httpx.InvalidURL, ValueError) as err:
        raise InvalidInputError(
            f"{base_url!r} is not a valid URL: {err}", field="base_url"
        ) from None
    if url.scheme not in ("http", "https"):
        raise InvalidInputError(f"{base_url!r} is not an http(s) URL", field="base_url")
    if not url.host or any(c.isspace() for c in base_url):
        raise InvalidInputError(f"{base_url!r} has no valid host", field="base_url")
    if port is not None and not 0 < port < 65536:
        raise InvalidInputError(f"{base_url!r} has an invalid port", field="base_url")


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # '-0000' gives a naive datetime; HTTP dates are always UTC
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - time.time())


async def _chunks(body: EncodedBody) -> AsyncIterator[bytes]:
    for piece in body.pieces:
        view = memoryview(piece)
        for start in range(0, len(view), STREAM_CHUNK):
            # httpcore hands each chunk to the socket as is; a bytes-like view avoids a copy.
            yield view[start : start + STREAM_CHUNK]  # type: ignore[misc]


class Transport:
    """POSTs JSON bodies to ``<base_url>/<endpoint>`` with limiting, retries and error mapping."""

    def __init__(
        self,
        *,
        base_url: str,
        api_key: Secret,
        timeout: float | httpx.Timeout,
        retry: RetryPolicy,
        limiter: RateLimiter,
        http_client: httpx.AsyncClient | None = None,
        max_connections: int = 64,
        seed: int | None = None,
    ) -> None:
        check_base_url(base_url)
        self.base_url = base_url.rstrip("/")
        self._key = api_key
        self.retry = retry
        self.limiter = limiter
        self._rng = random.Random(seed)
        self._owns_client = http_client is None
        if http_client is None:
            http_client = httpx.AsyncClient(
                timeout=timeout if isinstance(timeout, httpx.Timeout) else _timeout(timeout),
                limits=httpx.Limits(
                    max_connections=max_connections, max_keepalive_connections=max_connections
                ),
            )
        self._http = http_client
        self._slots = anyio.Semaphore(max_connections)

    async def aclose(self) -> None:
        """Close the connection pool, unless it was passed in by the caller."""
        if self._owns_client:
            await self._http.aclose()

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
                f"cannot be sent as JSON: {err}", field=_unencodable_field(fields)
            ) from None

    async def request(self, endpoint: str, fields: Mapping[str, Any]) -> dict[str, Any]:
        """Encode ``fields`` (plus the key) and :meth:`send` them."""
        return await self.send(endpoint, self.encode(fields))

    async def send(
        self,
        endpoint: str,
        body: EncodedBody,
        stats: SendStats | None = None,
        *,
        idempotent: bool = True,
        done_if: type[APIError] | None = None,
    ) -> dict[str, Any]:
        """POST ``body`` to ``endpoint`` and return the JSON answer of a success.

        Every attempt re-sends the same bytes. Raises the matching :class:`APIError` subclass
        for a refusal (after retries for 5xx and rate limiting) and :class:`TransportError`
        when no answer came back after the retries.

        An attempt that fails after the request may have reached the server (a connection
        dropped while waiting for the answer, a 500) is *ambiguous*: the server may have
        applied it. Such attempts are retried only when repeating the request is harmless:

        * ``idempotent=True`` (reads; ``add_data_batch`` with ids, which the server upserts):
          retried like any transient failure;
        * ``idempotent=False`` (e.g. ``upload``, whose rows get server-made ids): not
          retried; the error says the request may have been applied;
        * ``done_if=ConflictError`` (creations) / ``NotFoundError`` (deletions): retried, and
          if a retry after an ambiguous attempt gets that refusal, the earlier attempt did
          the work, so the call succeeds.
        """
        stats = stats if stats is not None else SendStats()
        url = f"{self.base_url}/{endpoint}"
        headers = {"Content-Type": "application/json", "Content-Length": str(body.length)}
        attempt = 0
        ambiguous_before = False  # an earlier attempt may have been applied
        while True:
            attempt += 1
            stats.attempts += 1
            started = time.monotonic()
            retry_after: float | None = None
            try:
                # A connection slot first, then the token: a token is never held while the
                # request waits for the pool, so requests leave as evenly as tokens are given.
                async with self._slots:
                    await self.limiter.acquire()
                    started = time.monotonic()
                    # The body (it holds the key) is not bound to a local name: frame locals
                    # show up in tracebacks rendered with locals (rich, Sentry, ...).
                    response = await self._http.post(
                        url,
                        content=body.to_bytes() if body.length <= STREAM_CHUNK else _chunks(body),
                        headers=headers,
                    )
            except (httpx.HTTPError, httpx.InvalidURL) as err:
                detail = self._key.redact(_describe(err))
                failure: Exception = TransportError(detail, endpoint=endpoint)
                retryable = not isinstance(err, _NOT_RETRYABLE_TRANSPORT)
                ambiguous = not isinstance(err, _NOT_SENT)
                cause: BaseException | None = _detached(err, self._key)
                status_text = type(err).__name__
            else:
                outcome = classify(response.status_code, response.content)
                message = self._key.redact(outcome.message)
                status_text = str(response.status_code)
                cause = None
                if outcome.kind == "ok":
                    self.limiter.on_success()
                    logger.debug(
                        "POST /%s %d bytes -> %d in %.3f s (attempt %d)",
                        endpoint,
                        body.length,
                        response.status_code,
                        time.monotonic() - started,
                        attempt,
                    )
                    assert outcome.data is not None
                    return outcome.data
                if outcome.kind == "rate_limited":
                    stats.rate_limited += 1
                    self.limiter.on_rate_limited()
                    failure = RateLimitError(
                        message, endpoint=endpoint, status_code=response.status_code
                    )
                    retryable = True
                    ambiguous = False
                    retry_after = parse_retry_after(response.headers.get("Retry-After"))
                else:
                    cls = error_class(response.status_code, message)
                    if done_if is not None and ambiguous_before and issubclass(cls, done_if):
                        logger.info(
                            "POST /%s: an earlier attempt took effect (%s on the retry)",
                            endpoint,
                            cls.__name__,
                        )
                        return {"success": True}
                    failure = cls(message, endpoint=endpoint, status_code=response.status_code)
                    retryable = outcome.kind == "retryable"
                    ambiguous = retryable and response.status_code not in _NOT_APPLIED_STATUSES
                    if retryable:
                        retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if ambiguous and retryable and not idempotent and done_if is None:
                logger.debug(
                    "POST /%s not retried (%s): %s", endpoint, status_text, MAY_HAVE_APPLIED
                )
                if isinstance(failure, TransportError):
                    failure = TransportError(f"{detail}; {MAY_HAVE_APPLIED}", endpoint=endpoint)
                raise failure from cause
            ambiguous_before = ambiguous_before or ambiguous
            stats.ambiguous = ambiguous_before
            if not retryable or attempt > self.retry.max_retries:
                logger.debug(
                    "POST /%s failed after %d attempt(s): %s", endpoint, attempt, status_text
                )
                raise failure from cause
            delay = self.retry.delay(attempt, self._rng, retry_after)
            stats.retries += 1
            logger.info(
                "POST /%s attempt %d failed (%s); retrying in %.2f s",
                endpoint,
                attempt,
                status_text,
                delay,
            )
            if delay > 0:
                await anyio.sleep(delay)


def _detached(err: httpx.HTTPError | httpx.InvalidURL, key: Secret) -> BaseException:
    """The httpx error to chain as ``__cause__``: same type, text with the key masked, and
    neither its request (whose body holds the key) nor its traceback (whose httpx frames hold
    the body in their locals)."""
    text = key.redact(str(err))
    try:
        return type(err)(text)
    except Exception:  # an httpx error type with another constructor
        return httpx.TransportError(text)


def _encodes(value: Any) -> bool:
    try:
        orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        return False
    return True


def _unencodable_field(fields: Mapping[str, Any]) -> str:
    """The first field orjson refuses (error path only)."""
    return next((name for name, value in fields.items() if not _encodes(value)), "fields")


def _timeout(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(seconds, 10.0))


def _describe(err: httpx.HTTPError | httpx.InvalidURL) -> str:
    kind = "timed out" if isinstance(err, httpx.TimeoutException) else "connection failed"
    detail = str(err) or type(err).__name__
    return f"{kind}: {type(err).__name__}: {detail}"
