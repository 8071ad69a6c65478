"""Classifying what came back from one attempt: an HTTP answer or an exception (pure).

:func:`classify` reads a (bounded) answer body once: it decodes it, redacts it with the key
(the one redaction step at the boundary: the key masked in every string, echoed
``user_api_key`` fields dropped) and says whether it is a success, the rate-limit answer, a
retryable failure or a refusal. :func:`error_class` picks the :class:`APIError` subclass of a
refusal; :func:`exception_failure` does the same job for an exception raised by the HTTP
client. None of this does I/O.

What counts as success: a 2xx answer whose body is a JSON object with no ``success`` field or
with ``"success": true`` (JSON ``true`` only). ``false``, ``"false"``, ``"true"``, ``0``,
``1`` or ``null`` are refusals: VecML documents ``success`` as a boolean, so anything else is
not a yes.
"""

from __future__ import annotations

import datetime
import email.utils
import errno
import ipaddress
import socket
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal

import httpx
import orjson

from vecml_async._redact import Secret
from vecml_async._retry import Decision, Failure
from vecml_async._server_rules import DEFAULT_RULES, RATE_LIMIT_TEXT, AnswerRules
from vecml_async.errors import (
    BODY_LIMIT,
    MESSAGE_LIMIT,
    APIError,
    AuthenticationError,
    ConflictError,
    NotFoundError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    TransportError,
    VecMLError,
    excerpt,
)

_RATE_LIMIT_LOWER: Final = RATE_LIMIT_TEXT.lower()
_ERROR_FIELDS: Final = ("error_message", "message", "error", "detail")
#: Answers that say the server did not act on the request (retrying them is always safe).
_NOT_APPLIED_STATUSES: Final = frozenset({503})
_NO_SECRET: Final = Secret("")
MAY_HAVE_APPLIED: Final = "the request may have been applied; check before repeating it"

OutcomeKind = Literal["ok", "rate_limited", "retryable", "fatal"]


@dataclass(frozen=True)
class Outcome:
    """How an HTTP answer is classified (see :func:`classify`).

    Attributes:
        kind: ``ok``, ``rate_limited``, ``retryable`` (5xx) or ``fatal`` (a refusal).
        data: the JSON object of the answer, redacted (``None`` when the body is not one).
        message: the error text, at most :data:`~vecml_async.errors.MESSAGE_LIMIT`
            characters (empty for a success).
        body: the body as text, redacted (empty for a success: it is not decoded twice).
    """

    kind: OutcomeKind
    data: dict[str, Any] | None
    message: str
    body: str = ""


def _error_text(data: Mapping[str, Any]) -> str | None:
    for name in _ERROR_FIELDS:
        value = data.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _decode(content: bytes | bytearray, secret: Secret) -> dict[str, Any] | None:
    try:
        parsed = orjson.loads(content) if content else None
    except orjson.JSONDecodeError:
        return None
    if not isinstance(parsed, dict):
        return None
    return secret.scrub(parsed) if secret.mentioned_in(content) else parsed


def classify(
    status: int,
    content: bytes | bytearray,
    secret: Secret = _NO_SECRET,
    rules: AnswerRules = DEFAULT_RULES,
) -> Outcome:
    """Classify one HTTP answer (``content`` already bounded by the reader), redacted.

    The rate-limit answer is HTTP 400 whose body contains ``Request limit reached`` (any
    letter case), as plain text or in a JSON string field, any HTTP 429 (whatever a proxy in
    front of the API put in its body), or a refusal envelope with that text; a JSON body whose
    ``success`` is not ``true`` is a refusal whatever the status; 5xx is retryable; any other
    non-2xx is a refusal. ``rules`` (from a server profile) add the statuses and texts of that
    server's rate-limit answer.
    """
    data = _decode(content, secret)
    ok_status = 200 <= status < 300
    if ok_status and data is not None and data.get("success", True) is True:
        return Outcome("ok", data, "")
    body = secret.redact(bytes(content[:BODY_LIMIT]).decode("utf-8", "replace"))
    text = (_error_text(data) if data is not None else None) or body.strip()
    message = excerpt(text)
    if rules.is_rate_limit(status, text):
        return Outcome("rate_limited", data, message or f"HTTP {status}", body)
    if status >= 500:
        return Outcome("retryable", data, message or f"HTTP {status}", body)
    if not ok_status:
        return Outcome("fatal", data, message or f"HTTP {status}", body)
    if data is None:
        return Outcome("fatal", None, "the answer is not a JSON object", body)
    refusal = _error_text(data)
    if refusal is None:
        shown = excerpt(repr(data.get("success")), 40)
        refusal = f"the server answered success={shown} without an error message"
    elif rules.is_rate_limit_text(refusal):
        return Outcome("rate_limited", data, excerpt(refusal), body)
    return Outcome("fatal", data, excerpt(refusal), body)


def error_class(status: int, message: str, rules: AnswerRules = DEFAULT_RULES) -> type[APIError]:
    """The :class:`APIError` subclass for a refusal.

    A server profile's own messages and statuses (``rules``) decide first. Then the HTTP
    status decides where it is specific; otherwise (a 200 whose ``success`` is not ``true``,
    or a generic 400) the message does. The message rules are an inference: VecML documents
    only the envelope, not the statuses or texts of its errors.
    """
    known = rules.refusal_class(status, message)
    if known is not None:
        return known
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
    if _RATE_LIMIT_LOWER in lowered:
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


def answer_failure(
    endpoint: str,
    status: int,
    outcome: Outcome,
    headers: Mapping[str, str],
    retry_after: float | None,
    base_url: str,
    rules: AnswerRules = DEFAULT_RULES,
) -> tuple[Failure, APIError]:
    """The :class:`Failure` of an answer that is not a success, and its error."""
    if outcome.kind == "rate_limited":
        failure = Failure("rate_limited", retry_after=retry_after)
        cls: type[APIError] = RateLimitError
    elif outcome.kind == "retryable":
        ambiguous = status not in _NOT_APPLIED_STATUSES
        failure = Failure("transient", ambiguous=ambiguous, retry_after=retry_after)
        cls = ServerError
    else:
        cls = error_class(status, outcome.message, rules)
        failure = Failure("refused", refusal=cls)
    hint = not_found_hint(base_url, outcome) if status == 404 else None
    error = cls(
        f"{outcome.message} ({hint})" if hint else outcome.message,
        endpoint=endpoint,
        status_code=status,
        headers=headers,
        body=outcome.body or None,
    )
    return failure, error


def too_large(
    endpoint: str, status: int, headers: Mapping[str, str], limit: int
) -> tuple[Failure, APIError]:
    """A success answer over ``max_response_bytes``: not read, not retried (the same call
    would get the same answer), and the server did act on the request."""
    message = (
        f"the answer is larger than max_response_bytes ({limit:,} bytes); raise the limit if "
        "this answer is expected"
    )
    error = APIError(message, endpoint=endpoint, status_code=status, headers=headers)
    return Failure("fatal", ambiguous=True), error


def not_found_hint(base_url: str, outcome: Outcome) -> str | None:
    """A hint for a 404 that is not the API's own refusal, when the base URL lacks ``/api``.

    VecML's endpoints live under ``/api``; a base URL without it gets the web server's
    generic 404 (not the ``{"success": false, ...}`` envelope) on every endpoint.
    """
    if outcome.data is not None and "success" in outcome.data:
        return None
    path = httpx.URL(base_url).path.rstrip("/")
    if path.endswith("/api"):
        return None
    return f"is the base URL missing '/api'? it is {base_url!r} (VecML's ends in /api)"


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or HTTP date), or ``None``."""
    if not value:
        return None
    value = value.strip()[:64]
    try:
        seconds = float(value)
    except ValueError:
        seconds = None
    if seconds is not None:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is no answer
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # '-0000' gives a naive datetime; HTTP dates are always UTC
        when = when.replace(tzinfo=datetime.timezone.utc)
    return max(0.0, when.timestamp() - time.time())


# ----------------------------------------------------------------------------- exceptions

#: Raised before any byte of the request can have reached the server.
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, socket.gaierror)
#: Retrying cannot help: the request itself, or the way to the server, is wrong.
_FATAL = (httpx.UnsupportedProtocol, httpx.InvalidURL, httpx.ProxyError, httpx.LocalProtocolError)


def _refused(err: BaseException) -> bool:
    """Whether a connection error was a refusal (walks the exception chain)."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ConnectionRefusedError) or (
            isinstance(current, OSError) and current.errno == errno.ECONNREFUSED
        ):
            return True
        current = current.__cause__ or current.__context__
    return False


def is_loopback(url: str) -> bool:
    """Whether ``url`` names a loopback host (``localhost``, 127.0.0.0/8, ``::1``)."""
    try:
        host = httpx.URL(url).host
    except (httpx.InvalidURL, ValueError):
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def exception_failure(err: Exception, url: str) -> tuple[Failure, str]:
    """The :class:`Failure` and the (unredacted) message of an exception from the HTTP
    client: httpx's own, any ``OSError``, or anything an injected transport raised."""
    detail = excerpt(str(err) or type(err).__name__, MESSAGE_LIMIT)
    name = type(err).__name__
    if isinstance(err, _FATAL):
        return Failure("fatal"), f"cannot send to {url}: {name}: {detail}"
    if _refused(err):
        message = f"connection refused by {url}: is the server running?"
        return Failure("transient", refused_loopback=is_loopback(url)), message
    if isinstance(err, _NOT_SENT):
        return Failure("transient"), f"cannot connect to {url}: {name}: {detail}"
    if isinstance(err, httpx.TimeoutException):
        return Failure("transient", ambiguous=True), f"timed out: {name}: {detail}"
    if isinstance(err, (httpx.HTTPError, OSError)):
        return Failure("transient", ambiguous=True), f"connection failed: {name}: {detail}"
    message = f"unexpected error from the HTTP client: {name}: {detail}"
    return Failure("fatal", ambiguous=True), message


# ----------------------------------------------------------------------------- final errors

_NOTES: Final = {
    "may have been applied": MAY_HAVE_APPLIED,
    "rate-limit deadline passed": (
        "still over the rate limit at the call's rate-limit deadline "
        "(RetryPolicy.rate_limit_deadline)"
    ),
    "deadline passed": "the call's deadline (RetryPolicy.deadline) would pass first",
}


def amended(error: VecMLError, note: str, may_have_applied: bool) -> VecMLError:
    """``error`` again, with ``note`` added to its message and ``may_have_applied`` set."""
    message = f"{error.message}; {note}" if note else error.message
    if isinstance(error, APIError):
        return type(error)(
            message,
            endpoint=error.endpoint,
            status_code=error.status_code,
            headers=error.headers,
            body=error.body,
            may_have_applied=may_have_applied,
        )
    if isinstance(error, TransportError):
        return TransportError(
            message, endpoint=error.endpoint, url=error.url, may_have_applied=may_have_applied
        )
    return error


def final_error(error: VecMLError, decision: Decision, idempotent: bool) -> VecMLError:
    """The error a call raises: the last attempt's, saying why it stopped where that helps."""
    note = _NOTES.get(decision.reason, "")
    if not note and decision.may_have_applied and not idempotent:
        note = MAY_HAVE_APPLIED
    return amended(error, note, decision.may_have_applied)


def detached(err: Exception, key: Secret) -> BaseException:
    """The exception to chain as ``__cause__``: same type, text with the key masked, and
    neither its request (whose body holds the key) nor its traceback (whose httpx frames hold
    the body in their locals)."""
    text = key.redact(str(err))
    try:
        return type(err)(text)
    except Exception:  # an exception type with another constructor
        return RuntimeError(f"{type(err).__name__}: {text}")
