"""What goes on the wire for one attempt: headers, body pieces, timeouts and bounded reads.

Pure helpers of the transport (no retry logic, no classification): the counters a call adds
to, the attempt timeout, the base URL check, the request headers, the streamed body and the
bounded reading of an answer.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

import httpx
import orjson

from vecml_async._body import EncodedBody
from vecml_async.errors import InvalidInputError

#: Bodies up to this size are sent as one buffer; larger ones stream in memoryview pieces of
#: this size, which keeps httpx/asyncio from copying a large body (and bounds the extra memory).
STREAM_CHUNK: Final = 1 << 20
#: The largest success answer read by default (a prediction over millions of rows fits).
DEFAULT_MAX_RESPONSE_BYTES: Final = 256 * 1024 * 1024
_INFLATED: Final = frozenset({"gzip", "x-gzip", "deflate"})
_RESERVED_HEADERS: Final = frozenset(
    {"content-length", "content-type", "host", "transfer-encoding"}
)


@dataclass
class SendStats:
    """Counters one ``send`` call adds to (the ingest pipeline reads them).

    Attributes:
        attempts: attempts made.
        retries: retries spent on real failures (5xx, dropped connections, timeouts).
        rate_limited: rate-limit answers received (they do not spend ``retries``).
        ambiguous: an attempt that failed may have been applied by the server.
        limiter_wait: seconds spent waiting for budget tokens.
    """

    attempts: int = 0
    retries: int = 0
    rate_limited: int = 0
    ambiguous: bool = False
    limiter_wait: float = 0.0


@dataclass(frozen=True)
class AttemptTimeout:
    """The deadline of one attempt (``total``) and httpx's per-phase timeouts.

    A number ``t`` bounds the whole attempt by ``t`` seconds (connect at most 10 s of it). An
    ``httpx.Timeout`` keeps its phases, and the whole attempt is bounded by the largest of
    them. ``None`` sets no timeout at all (not recommended).
    """

    total: float | None
    phases: httpx.Timeout

    @classmethod
    def of(cls, value: float | httpx.Timeout | None) -> AttemptTimeout:
        if isinstance(value, httpx.Timeout):
            limits = [v for v in (value.connect, value.read, value.write, value.pool) if v]
            return cls(max(limits) if limits else None, value)
        if value is None:
            return cls(None, httpx.Timeout(None))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise InvalidInputError(
                f"must be a number of seconds > 0, an httpx.Timeout or None, got {value!r}",
                field="timeout",
            )
        if math.isinf(value):
            return cls(None, httpx.Timeout(None))
        return cls(float(value), httpx.Timeout(value, connect=min(value, 10.0)))


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


def request_headers(body: EncodedBody, extra: Mapping[str, str] | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Content-Length": str(body.length)}
    for name, value in (extra or {}).items():
        if not isinstance(name, str) or not isinstance(value, str):
            raise InvalidInputError("header names and values must be strings", field=str(name))
        if name.lower() in _RESERVED_HEADERS or any(c in name + value for c in "\r\n\0"):
            raise InvalidInputError(
                f"header {name!r} cannot be set (framing headers are the client's, and no "
                "header may contain CR, LF or NUL)",
                field="extra_headers",
            )
        headers[name] = value
    return headers


async def body_pieces(body: EncodedBody) -> AsyncIterator[bytes]:
    for piece in body.pieces:
        view = memoryview(piece)
        for start in range(0, len(view), STREAM_CHUNK):
            # httpcore hands each chunk to the socket as is; a bytes-like view avoids a copy.
            yield view[start : start + STREAM_CHUNK]  # type: ignore[misc]


class _Inflater:
    """gzip / deflate decoding with a bound on the output of every step.

    httpx inflates each network chunk whole: a 64 KiB chunk of a gzip bomb becomes ~64 MB at
    once. Here each step yields at most what the caller still has room for (plus one byte,
    to tell "exactly full" from "over").
    """

    def __init__(self, encoding: str) -> None:
        self._gzip = encoding in ("gzip", "x-gzip")
        self._d = zlib.decompressobj(31 if self._gzip else 15)
        self._first = True

    def feed(self, chunk: bytes, buf: bytearray, limit: int) -> bool:
        """Inflate ``chunk`` into ``buf``; False once ``buf`` would pass ``limit``."""
        data = chunk
        while data:
            room = limit - len(buf)
            try:
                out = self._d.decompress(data, room + 1)
            except zlib.error as err:
                if self._gzip or not self._first:
                    raise httpx.DecodingError(f"cannot inflate the answer: {err}") from None
                self._d = zlib.decompressobj(-15)  # raw deflate, as some servers send it
                self._first = False
                continue
            self._first = False
            if len(out) > room:
                buf += out[:room]
                return False
            buf += out
            data = self._d.unconsumed_tail
        return True


async def read_bounded(
    response: httpx.Response, limit: int, strict: bool
) -> tuple[bytearray, bool]:
    """At most ``limit`` bytes of the (decoded) body, and whether that was all of it.

    ``strict``: a declared length over the limit is not read at all. gzip and deflate are
    inflated here, a bounded step at a time; other encodings are left to httpx.
    """
    declared = response.headers.get("content-length", "")
    if strict and declared.isdigit() and int(declared) > limit:
        return bytearray(), False
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    buf = bytearray()
    if encoding in _INFLATED and not response.is_stream_consumed:
        inflater = _Inflater(encoding)
        async for chunk in response.aiter_raw():
            if not inflater.feed(chunk, buf, limit):
                return buf, False
        return buf, True
    # Identity (httpx passes it through), other encodings, or an answer an injected
    # transport already read: httpx's own iteration.
    async for chunk in response.aiter_bytes():
        room = limit - len(buf)
        if len(chunk) > room:
            buf += chunk[:room]
            return buf, False
        buf += chunk
    return buf, True


def _encodes(value: Any) -> bool:
    try:
        orjson.dumps(value, option=orjson.OPT_SERIALIZE_NUMPY)
    except orjson.JSONEncodeError:
        return False
    return True


def unencodable_field(fields: Mapping[str, Any]) -> str:
    """The first field orjson refuses (error path only)."""
    return next((name for name, value in fields.items() if not _encodes(value)), "fields")
