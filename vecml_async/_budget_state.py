"""The arithmetic of a call budget, without any I/O or clock of its own.

Every budget (the local :class:`~vecml_async._limiter.RateLimiter`, the Redis budget and the
Ray actor) runs these functions, the Redis one as a Lua transcription of them
(``vecml_async/budget.lua``). Each takes the time ``now`` from its caller, in seconds of one
clock: the event loop's, Redis's ``TIME`` or the actor's, so tests drive them with numbers.

Two parts:

* **Slots (GCRA).** A *theoretical arrival time* ``tat`` is the earliest moment the next call
  may start. A call arriving at ``now`` gets the slot ``max(now, tat)`` and pushes ``tat`` one
  interval (``1 / rate``) past it. Successive slots are at least one interval apart, so no
  half-open one-second window holds more than ``rate`` of them, and a reservation is a single
  read-modify-write: the caller sleeps locally for ``slot - now``.
* **Adaptive rate.** A refusal by the server (``Request limit reached``) multiplies the rate
  by ``decrease_factor`` (once per ``decrease_interval``: a burst of refusals from any number
  of workers counts once); without refusals the rate regains ``recovery_per_second`` of its
  target each second until it is back at the ceiling. The first decrease starts from the
  rate achieved: the calls started in the last second (of the last :data:`HISTORY`), at
  most the ceiling.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from vecml_async._config import RateLimitPolicy

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["HISTORY", "REBUILD_FRACTION", "BudgetState", "achieved_rate", "pushed", "reserve"]

#: Recovery moves the rate in steps of at least this fraction of it (no churn per call).
REBUILD_FRACTION = 0.05
#: Call starts remembered to measure the achieved rate.
HISTORY = 256


def reserve(tat: float, now: float, rate: float | None, margin: float = 0.0) -> tuple[float, float]:
    """One GCRA reservation: ``(new_tat, wait)`` for a call arriving at ``now``.

    Slots are ``(1 + margin) / rate`` apart: ``margin`` (seconds) is how late a call may
    start, or reach the server, after its slot and still leave no one-second window with
    more than ``rate`` calls. ``rate=None`` (unlimited) grants at once and leaves ``tat``.
    """
    if rate is None:
        return tat, 0.0
    slot = max(now, tat)
    return slot + (1.0 + margin) / rate, slot - now


def pushed(tat: float, started: float, rate: float | None, margin: float = 0.0) -> float:
    """``tat`` after a call that started at ``started``, possibly after its slot (its event
    loop was busy): the next slot is at least one interval after the real start, so calls
    that wake late together still start one interval apart."""
    if rate is None:
        return tat
    return max(tat, started + (1.0 + margin) / rate)


def achieved_rate(
    starts: Iterable[float], now: float, ceiling: float | None, floor: float
) -> float:
    """Calls started in ``(now - 1, now]``, at most ``int(ceiling)``, at least ``floor``."""
    count = sum(1 for t in starts if now - 1.0 < t <= now)
    if ceiling is not None:
        count = min(count, int(ceiling))
    return max(float(count), floor)


@dataclass
class BudgetState:
    """Everything a budget remembers between calls; mutate it only through its methods.

    Attributes:
        ceiling: the configured calls per second, or ``None`` for no client ceiling.
        target: the rate recovery returns to (the ceiling, or with no ceiling the rate
            achieved at the first refusal; ``None`` while nothing was refused).
        rate: the lowered rate while throttled, ``None`` when not throttled.
        last_change: when ``rate`` last changed (decrease or recovery step).
        last_decrease: when ``rate`` was last decreased.
        starts: when the last :data:`HISTORY` calls started (their slots).
        tat: the GCRA theoretical arrival time of the next call.
        margin: seconds of lateness the slots leave room for (see :func:`reserve`).
    """

    ceiling: float | None
    target: float | None = None
    rate: float | None = None
    last_change: float = 0.0
    last_decrease: float = -math.inf
    tat: float = 0.0
    margin: float = 0.0
    starts: deque[float] = field(default_factory=lambda: deque(maxlen=HISTORY))

    @classmethod
    def for_policy(cls, policy: RateLimitPolicy, margin: float = 0.0) -> BudgetState:
        return cls(ceiling=policy.calls_per_second, target=policy.calls_per_second, margin=margin)

    @property
    def allowed(self) -> float | None:
        """Calls per second allowed now (``None``: unlimited)."""
        return self.rate if self.rate is not None else self.ceiling

    def acquire(self, policy: RateLimitPolicy, now: float) -> float:
        """Recover, reserve the next slot and count the call; seconds to wait for it."""
        self.recover(policy, now)
        self.tat, wait = reserve(self.tat, now, self.allowed, self.margin)
        self.count_call(now + wait)
        return wait

    def count_call(self, at: float) -> None:
        """Remember a call starting at ``at``."""
        self.starts.append(at)

    def refused(self, policy: RateLimitPolicy, now: float) -> bool:
        """The server refused a call at ``now``; True when this lowered the rate."""
        if not policy.adaptive:
            return False
        if self.rate is not None and now - self.last_decrease < policy.decrease_interval:
            return False  # the same burst (recovery steps since do not open a new one)
        current = (
            self.rate
            if self.rate is not None
            else achieved_rate(self.starts, now, self.ceiling, policy.min_calls_per_second)
        )
        if self.target is None:
            self.target = current
        self.rate = max(policy.min_calls_per_second, current * policy.decrease_factor)
        self.last_change = now
        self.last_decrease = now
        return True

    def recover(self, policy: RateLimitPolicy, now: float) -> bool:
        """Regain rate for the time since the last change; True when the rate changed."""
        if self.rate is None or self.target is None:
            return False
        gained = self.target * policy.recovery_per_second * (now - self.last_change)
        if gained < self.rate * REBUILD_FRACTION:
            return False
        self.last_change = now
        if self.rate + gained >= self.target:
            self.rate = None
            if self.ceiling is None:
                self.target = None
        else:
            self.rate += gained
        return True
