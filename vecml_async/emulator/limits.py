"""The two limits the cloud documents: calls per second per key, and bytes per request.

:class:`TokenBuckets` is the per-key rate limit: a bucket of ``capacity`` tokens refilled at
``rate`` tokens per second; a call takes one token or is refused (a refused call takes none).

:func:`read_body` enforces the size cap twice: on the declared ``Content-Length`` before
reading anything, and on the bytes actually received while streaming (a chunked body has no
length). It never holds more than the cap: an over-cap body is abandoned, and uvicorn discards
the rest of it once the refusal is sent, so the connection stays usable. Its buffer grows with
the bytes received (a declared length reserves nothing), a :class:`BodyBudget` bounds what
all bodies being read hold together, and a body must arrive within a deadline.
"""

from __future__ import annotations

from collections.abc import Callable

import anyio
from starlette.requests import Request

__all__ = ["BodyBudget", "BodyTimeout", "BodyTooLarge", "ServerBusy", "TokenBuckets", "read_body"]


class BodyTooLarge(Exception):
    """The request body is larger than the cap."""


class ServerBusy(Exception):
    """Too many bytes of request bodies are being read at once."""


class BodyTimeout(Exception):
    """The request body did not arrive in time."""


class TokenBuckets:
    """One token bucket per tenant fingerprint. ``rate=None`` allows everything."""

    def __init__(
        self, rate: float | None, capacity: int | None, clock: Callable[[], float]
    ) -> None:
        self._rate = rate
        self._capacity = float(capacity or 1)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # fp -> (tokens, at)

    def allow(self, fp: str) -> bool:
        """Take a token from ``fp``'s bucket; False when it is empty."""
        if self._rate is None:
            return True
        now = self._clock()
        tokens, at = self._buckets.get(fp, (self._capacity, now))
        tokens = min(self._capacity, tokens + (now - at) * self._rate)
        if tokens < 1.0:
            self._buckets[fp] = (tokens, now)
            return False
        self._buckets[fp] = (tokens - 1.0, now)
        return True

    def reset(self) -> None:
        self._buckets.clear()


def _declared_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    try:
        return int(raw)
    except ValueError:
        return None  # h11 has already refused a malformed Content-Length; be safe anyway


class BodyBudget:
    """Bytes held by the request bodies being read, across all connections of a server.

    A body takes its bytes as they arrive and gives them back once it is read. A chunk that
    would take the total past ``limit`` is refused (:class:`ServerBusy`), unless its body is
    the only one holding bytes, so a single body up to the size cap always gets through.
    Mutated on the server's event loop only.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.held = 0

    def take(self, n: int, mine: int) -> bool:
        """Take ``n`` more bytes for a body already holding ``mine``; False when refused."""
        if self.held + n > self.limit and self.held > mine:
            return False
        self.held += n
        return True

    def give(self, n: int) -> None:
        self.held -= n


async def read_body(
    request: Request,
    cap: int,
    budget: BodyBudget | None = None,
    timeout: float | None = None,
) -> bytearray:
    """Read the whole body, or raise as soon as it goes wrong.

    :class:`BodyTooLarge` once it exceeds ``cap`` (or its declared length), checked on the
    declared ``Content-Length`` before reading anything; :class:`ServerBusy` when ``budget``
    refuses its next chunk; :class:`BodyTimeout` when it is not all in within ``timeout``
    seconds. The buffer grows with the bytes that arrive, never with the bytes a client
    merely declares.
    """
    declared = _declared_length(request)
    if declared is not None and declared > cap:
        raise BodyTooLarge
    limit = declared if declared is not None else cap
    buf = bytearray()
    try:
        with anyio.fail_after(timeout):
            async for chunk in request.stream():
                if len(buf) + len(chunk) > limit:
                    # More bytes than declared cannot pass h11; treat it as over the cap.
                    raise BodyTooLarge
                if budget is not None and not budget.take(len(chunk), len(buf)):
                    raise ServerBusy
                buf += chunk
    except TimeoutError:
        raise BodyTimeout from None
    finally:
        if budget is not None:
            budget.give(len(buf))
    return buf
