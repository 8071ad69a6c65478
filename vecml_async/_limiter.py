"""The budget interface every call goes through, and the local budget of one client.

:class:`Budget` is what the transport calls: ``await acquire()`` before each attempt (first
sends, retries, job polls, ingest batches alike), then ``on_success()`` or
``on_rate_limited()`` with the server's answer. Any object with these members can be passed
as ``AsyncVecML(rate_limit=...)``; :mod:`vecml_async.budget` (Redis) and
:mod:`vecml_async.ray` (a Ray actor) share one budget between many processes.

:class:`RateLimiter` is the budget of one process, and this module is the only user of
aiolimiter. Calls wait on aiolimiter leaky buckets of capacity one call, refilled every
``1/R`` seconds: such a bucket never lets more than R calls start in any one-second window and
has no initial burst (``AsyncLimiter(R, 1)`` would let about 2R through in the first second: a
full bucket, then the refill), and after a stalled event loop it lets one call through, not a
burst. The *ceiling* bucket runs at the configured rate; an *adaptive* bucket exists only
while the server's ``Request limit reached`` answers hold the rate lower, with the arithmetic
of :mod:`vecml_async._budget_state` (one decrease per burst of refusals, gradual recovery),
and is replaced by a faster one as the rate recovers.

aiolimiter is asyncio-only: vecml_async runs on asyncio (it fails under trio with a clear
error at the first call).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from aiolimiter import AsyncLimiter

from vecml_async._budget_state import REBUILD_FRACTION, BudgetState
from vecml_async._config import RateLimitPolicy
from vecml_async.errors import InvalidInputError

__all__ = [
    "Budget",
    "RateLimiter",
    "budget_from_option",
    "require_asyncio",
    "sleep_until_slot",
]

logger = logging.getLogger("vecml_async")


@runtime_checkable
class Budget(Protocol):
    """A call budget: how many calls per second may start, possibly shared by many clients.

    ``acquire`` waits until one more call may start; ``on_rate_limited`` and ``on_success``
    report what the server answered, so an adaptive budget can follow the server's real
    limit. ``current_rate`` is the rate allowed now (``None``: unlimited); budgets shared
    with other processes report the last value they learnt.
    """

    async def acquire(self) -> None: ...

    def on_rate_limited(self) -> None: ...

    def on_success(self) -> None: ...

    @property
    def current_rate(self) -> float | None: ...


#: A shared slot is given up when its call wakes this much later than the slot (or later
#: than the budget's margin, if larger): the event loop was busy, and starting now could put
#: more than R calls in a second. Re-slotting happens at most :data:`MAX_RESLOTS` times.
MIN_LATENESS = 0.005
MAX_RESLOTS = 3


async def sleep_until_slot(take_slot: Callable[[], Awaitable[float]], margin: float) -> None:
    """Take a slot of a shared budget (``take_slot`` answers the seconds to wait) and sleep
    until it; take a new one when the sleep ended too late (see :data:`MIN_LATENESS`)."""
    loop = require_asyncio()
    tolerance = max(margin, MIN_LATENESS)
    for attempt in range(MAX_RESLOTS + 1):
        wait = await take_slot()
        due = loop.time() + wait
        if wait > 0:
            await asyncio.sleep(wait)
        if loop.time() - due <= tolerance or attempt == MAX_RESLOTS:
            return
        logger.debug("woke %.3f s after a shared slot: taking a new one", loop.time() - due)


def require_asyncio() -> asyncio.AbstractEventLoop:
    """The running asyncio loop, or a RuntimeError that says vecml_async needs one."""
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "vecml_async runs on asyncio (its limiter, aiolimiter, is asyncio-only) and found "
            "no running asyncio event loop"
        ) from None


def _bucket(rate: float) -> AsyncLimiter:
    """A leaky bucket of one call, refilled every ``1 / rate`` seconds."""
    return AsyncLimiter(1, 1.0 / rate)


class RateLimiter:
    """The budget one client shares between all its tasks, in this process only.

    Every call waits on the ceiling bucket (when there is a ceiling) and, while the server's
    refusals hold the rate lower, on the adaptive bucket too; the adaptive state follows
    ``time.monotonic()``.
    """

    def __init__(self, policy: RateLimitPolicy) -> None:
        self._policy = policy
        self._state = BudgetState.for_policy(policy)
        ceiling = policy.calls_per_second
        self._ceiling_bucket = _bucket(ceiling) if ceiling is not None else None
        self._adaptive_bucket: AsyncLimiter | None = None
        self._bucket_rate = 0.0
        self.rate_limited_count = 0

    def __repr__(self) -> str:
        return f"RateLimiter(current_rate={self.current_rate!r})"

    @property
    def policy(self) -> RateLimitPolicy:
        return self._policy

    @property
    def current_rate(self) -> float | None:
        """Calls per second allowed now, or ``None`` when nothing limits the client."""
        return self._state.allowed

    async def acquire(self) -> None:
        """Wait until one more call may start."""
        require_asyncio()
        self._recover()
        adaptive = self._adaptive_bucket
        if adaptive is not None:
            await adaptive.acquire()
        if self._ceiling_bucket is not None:
            await self._ceiling_bucket.acquire()
        self._state.count_call(time.monotonic())

    def on_rate_limited(self) -> None:
        """The server refused a call as over its limit: lower the rate."""
        self.rate_limited_count += 1
        if self._state.refused(self._policy, time.monotonic()):
            self._follow_rate()
            logger.info("rate limit answer: client rate lowered to %.2f calls/s", self._state.rate)

    def on_success(self) -> None:
        """A call went through; the rate recovers with time."""
        self._recover()

    def _recover(self) -> None:
        if self._state.recover(self._policy, time.monotonic()):
            self._follow_rate()
            if self._state.rate is None:
                logger.info("client rate recovered")

    def _follow_rate(self) -> None:
        """Make the adaptive bucket match the adaptive rate: dropped once recovered, replaced
        when the rate moved by more than :data:`REBUILD_FRACTION`."""
        rate = self._state.rate
        if rate is None:
            self._adaptive_bucket = None
            return
        bucket = self._adaptive_bucket
        if bucket is None or abs(rate - self._bucket_rate) > self._bucket_rate * REBUILD_FRACTION:
            self._adaptive_bucket = _bucket(rate)
            self._bucket_rate = rate


def budget_from_option(value: float | RateLimitPolicy | Budget | None) -> Budget:
    """The budget ``AsyncVecML(rate_limit=value)`` runs under.

    A number is a ceiling in calls per second, ``None`` no ceiling (the adaptive decrease
    still applies), a :class:`RateLimitPolicy` a private :class:`RateLimiter`; any
    :class:`Budget` is used as it is (shared budgets are not closed by the client).
    """
    if isinstance(value, RateLimitPolicy):
        return RateLimiter(value)
    if value is None:
        return RateLimiter(RateLimitPolicy(calls_per_second=None))
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or value <= 0:
            raise InvalidInputError(
                f"must be a positive number of calls per second, got {value!r}",
                field="rate_limit",
            )
        return RateLimiter(RateLimitPolicy(calls_per_second=float(value)))
    if isinstance(value, Budget):
        return value
    raise InvalidInputError(
        "must be calls per second, a RateLimitPolicy, None or a Budget (an object with "
        f"acquire(), on_rate_limited(), on_success() and current_rate), got {type(value).__name__}",
        field="rate_limit",
    )
