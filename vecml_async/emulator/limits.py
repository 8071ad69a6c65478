"""The two limits the cloud documents: calls per second per key, and bytes per request.

:class:`TokenBuckets` is the per-key rate limit: a bucket of ``capacity`` tokens refilled at
``rate`` tokens per second; a call takes one token or is refused (a refused call takes none).

:func:`read_body` enforces the size cap twice: on the declared ``Content-Length`` before
reading anything, and on the bytes actually received while streaming (a chunked body has no
length). It never holds more than the cap: an over-cap body is abandoned, and uvicorn discards
the rest of it once the refusal is sent, so the connection stays usable.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request

__all__ = ["BodyTooLarge", "TokenBuckets", "read_body"]


class BodyTooLarge(Exception):
    """The request body is larger than the cap."""


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


async def read_body(request: Request, cap: int) -> bytes | bytearray:
    """Read the whole body, or raise :class:`BodyTooLarge` as soon as it exceeds ``cap``.

    With a ``Content-Length`` the body is read into one preallocated buffer (no join copy).
    """
    declared = _declared_length(request)
    if declared is not None and declared > cap:
        raise BodyTooLarge
    if declared is not None:
        buf = bytearray(declared)
        view = memoryview(buf)
        filled = 0
        async for chunk in request.stream():
            end = filled + len(chunk)
            if end > declared:
                # More bytes than declared cannot pass h11; treat it as over the cap.
                raise BodyTooLarge
            view[filled:end] = chunk
            filled = end
        view.release()
        return buf if filled == declared else buf[:filled]
    chunks: list[bytes] = []
    total = 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > cap:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)
