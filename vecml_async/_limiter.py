"""Client-side rate limiting: a strict ceiling plus an adaptive rate below it.

This is the only module that imports aiolimiter, which is asyncio-only: vecml_async runs on
asyncio (it fails under trio with a clear error at the first call).

Two leaky buckets, each of capacity one call, gate every request:

* the *ceiling* bucket drains at the configured ``calls_per_second``. A bucket of capacity
  one refilled every ``1/R`` seconds never lets more than R calls start in any one-second
  window (``AsyncLimiter(R, 1)`` would let about 2R through in the first second: a full bucket,
  then the refill);
* the *adaptive* bucket exists only after the server answered ``Request limit reached``: it
  runs at the reduced rate (multiplicative decrease) and is replaced by a faster one as the
  rate recovers (additive increase), until the rate is back at the ceiling and it is dropped.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time

from aiolimiter import AsyncLimiter

from vecml_async._config import RateLimitPolicy

logger = logging.getLogger("vecml_async")

#: How much the adaptive rate must change before a new bucket replaces the current one.
_REBUILD_FRACTION = 0.05
#: Calls remembered to estimate the achieved rate when there is no configured ceiling.
_HISTORY = 256


def _bucket(rate: float) -> AsyncLimiter:
    return AsyncLimiter(1, 1.0 / rate)


def _require_asyncio() -> None:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "vecml_async runs on asyncio (its limiter, aiolimiter, is asyncio-only) and found "
            "no running asyncio event loop"
        ) from None


class RateLimiter:
    """The limiter one client shares between all its tasks.

    ``await acquire()`` before every request; report outcomes with :meth:`on_rate_limited`
    and :meth:`on_success` so the adaptive rate can follow the server.
    """

    def __init__(self, policy: RateLimitPolicy) -> None:
        self._policy = policy
        self._ceiling = policy.calls_per_second
        self._ceiling_bucket = _bucket(self._ceiling) if self._ceiling is not None else None
        # The rate to recover to: the ceiling, or (with no ceiling) the rate achieved when the
        # server first refused a call.
        self._target: float | None = self._ceiling
        self._rate: float | None = None  # adaptive rate; None while not throttled
        self._adaptive_bucket: AsyncLimiter | None = None
        self._bucket_rate = 0.0
        self._last_change = 0.0  # last change of the adaptive rate (decrease or recovery)
        self._last_decrease = 0.0  # last decrease: refusals closer to it than this count once
        self._recent: collections.deque[float] = collections.deque(maxlen=_HISTORY)
        self.rate_limited_count = 0

    @property
    def current_rate(self) -> float | None:
        """Calls per second allowed now, or ``None`` when nothing limits the client."""
        return self._rate if self._rate is not None else self._ceiling

    async def acquire(self) -> None:
        """Wait until one more call may start."""
        _require_asyncio()
        self._recover()
        bucket = self._adaptive_bucket
        if bucket is not None:
            await bucket.acquire()
        if self._ceiling_bucket is not None:
            await self._ceiling_bucket.acquire()
        self._recent.append(time.monotonic())

    def on_rate_limited(self) -> None:
        """The server refused a call as over its limit: lower the rate."""
        self.rate_limited_count += 1
        if not self._policy.adaptive:
            return
        now = time.monotonic()
        if self._rate is not None and now - self._last_decrease < self._policy.decrease_interval:
            return  # concurrent refusals of one burst count once (recovery steps do not count)
        current = self._rate if self._rate is not None else self._achieved_rate(now)
        if self._target is None:
            self._target = current
        new_rate = max(self._policy.min_calls_per_second, current * self._policy.decrease_factor)
        self._set_rate(new_rate, now)
        self._last_decrease = now
        logger.info("rate limit answer: client rate lowered to %.2f calls/s", new_rate)

    def on_success(self) -> None:
        """A call went through; the rate recovers with time (see :meth:`_recover`)."""
        self._recover()

    def _achieved_rate(self, now: float) -> float:
        """Calls started in the last second (at least the floor)."""
        recent = sum(1 for t in self._recent if now - t <= 1.0)
        if self._ceiling is not None:
            recent = min(recent, int(self._ceiling))
        return max(float(recent), self._policy.min_calls_per_second)

    def _recover(self) -> None:
        if self._rate is None or self._target is None:
            return
        now = time.monotonic()
        elapsed = now - self._last_change
        gained = self._target * self._policy.recovery_per_second * elapsed
        if gained < self._rate * _REBUILD_FRACTION:
            return
        new_rate = self._rate + gained
        if new_rate >= self._target:
            self._rate = None
            self._adaptive_bucket = None
            self._last_change = now
            if self._ceiling is None:
                self._target = None
            logger.info("client rate recovered")
            return
        self._set_rate(new_rate, now)

    def _set_rate(self, rate: float, now: float) -> None:
        self._rate = rate
        self._last_change = now
        if self._adaptive_bucket is None or abs(rate - self._bucket_rate) > (
            self._bucket_rate * _REBUILD_FRACTION
        ):
            self._adaptive_bucket = _bucket(rate)
            self._bucket_rate = rate
