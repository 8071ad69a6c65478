"""The budget interface every call goes through, and the local budget of one client.

:class:`Budget` is what the transport calls: ``await acquire()`` before each attempt (first
sends, retries, job polls, ingest batches alike), then ``on_success()`` or
``on_rate_limited()`` with the server's answer. Any object with these members can be passed
as ``AsyncVecML(rate_limit=...)``; :mod:`vecml_async.budget` (Redis) and
:mod:`vecml_async.ray` (a Ray actor) share one budget between many processes.

:class:`RateLimiter` is the budget of one process. It runs the arithmetic of
:mod:`vecml_async._budget_state`: GCRA slots one interval apart (so no one-second window
holds more than R call starts, and there is no initial burst) and the adaptive rate (one
decrease per burst of refusals, gradual recovery).

The limiter waits with ``asyncio.sleep``: vecml_async runs on asyncio (it fails under trio
with a clear error at the first call).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

from vecml_async._budget_state import BudgetState, pushed, reserve
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
            "vecml_async runs on asyncio (its rate limiter sleeps with asyncio) and found "
            "no running asyncio event loop"
        ) from None


class RateLimiter:
    """The budget one client shares between all its tasks, in this process only.

    Slots are spaced on the event loop's clock (``loop.time()``); the adaptive state follows
    ``time.monotonic()``. One waiter at a time holds the next slot (the others queue in
    order), and a call that wakes late because the loop was busy pushes the next slot one
    interval past its real start: a stalled loop never releases a burst of calls.
    """

    def __init__(self, policy: RateLimitPolicy) -> None:
        self._policy = policy
        self._state = BudgetState.for_policy(policy)
        self._tat = 0.0  # GCRA state, on the loop's clock
        self._turn = asyncio.Lock()
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
        loop = require_asyncio()
        self._recover()
        rate = self._state.allowed
        if rate is not None:
            async with self._turn:
                self._tat, wait = reserve(self._tat, loop.time(), rate)
                if wait > 0:
                    await asyncio.sleep(wait)
                self._tat = pushed(self._tat, loop.time(), rate)
        self._state.count_call(time.monotonic())

    def on_rate_limited(self) -> None:
        """The server refused a call as over its limit: lower the rate."""
        self.rate_limited_count += 1
        if self._state.refused(self._policy, time.monotonic()):
            logger.info("rate limit answer: client rate lowered to %.2f calls/s", self._state.rate)

    def on_success(self) -> None:
        """A call went through; the rate recovers with time."""
        self._recover()

    def _recover(self) -> None:
        if self._state.recover(self._policy, time.monotonic()) and self._state.rate is None:
            logger.info("client rate recovered")


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
