"""The rate ramp and the size search, as plans and arithmetic (pure, no I/O).

**Rate.** The ramp holds each rate for about a second, from 2 calls/s up by half each step
to ``max_rate``, and stops at the first refusal. A refusal at rate ``r`` says the server's
limit is below ``r``; that alone says little (a token bucket lets a burst through before it
refuses). The estimate reads the send times of the accepted calls as a token bucket whose
burst equals its rate (a limit "per second"): a server that allows ``R`` calls per second
accepts at most ``R * (1 + w)`` calls in any ``w`` seconds, so the accepted calls prove
``R >= n / (1 + w)`` for every run of ``n`` of them spanning ``w`` seconds, and the largest
such value is a rate the server sustained. Against a fixed or sliding one-second window it
is on the low side (safe for a ceiling).

**Size.** Bodies of exactly the two readings of "200MB" (200,000,000 and 209,715,200 bytes)
and one byte more settle the common cases in two to four requests; otherwise a bisection
between 190,000,000 and 210,000,000 bytes, to ``precision``, in a bounded number of steps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

__all__ = [
    "MEGA",
    "MEBI",
    "RAMP_FACTOR",
    "RAMP_START",
    "SIZE_HIGH",
    "SIZE_LOW",
    "SizeSearch",
    "ramp_steps",
    "refusal_bound",
    "sustained_rate",
]

RAMP_START: Final = 2.0
RAMP_FACTOR: Final = 1.5
#: Seconds each rate of the ramp is held.
STEP_SECONDS: Final = 1.0
MEGA: Final = 200_000_000  # 200 x 10^6
MEBI: Final = 209_715_200  # 200 x 2^20
SIZE_LOW: Final = 190_000_000
SIZE_HIGH: Final = 210_000_000


def ramp_steps(max_rate: float) -> list[tuple[float, int]]:
    """``(calls per second, calls)`` of each step, up to ``max_rate``."""
    steps: list[tuple[float, int]] = []
    rate = RAMP_START
    while rate <= max_rate * (1 + 1e-9):
        steps.append((rate, max(2, round(rate * STEP_SECONDS))))
        rate *= RAMP_FACTOR
    return steps


def sustained_rate(times: Sequence[float]) -> float | None:
    """The largest ``n / (1 + w)`` over runs of accepted calls (sorted send times, seconds);
    ``None`` for no calls."""
    if not times:
        return None
    ordered = sorted(times)
    best = 0.0
    for j, end in enumerate(ordered):
        for i in range(j + 1):
            best = max(best, (j - i + 1) / (1.0 + end - ordered[i]))
    return best


def refusal_bound(times: Sequence[float], refused_at: float) -> float:
    """The rate a refusal at ``refused_at`` proves the server below, read the same way."""
    ordered = sorted(t for t in times if t <= refused_at)
    n = len(ordered)
    bound = 1.0
    for i, start in enumerate(ordered):
        bound = max(bound, (n - i + 1) / (1.0 + refused_at - start))
    return bound


@dataclass
class SizeSearch:
    """The next body size to try, from the answers so far (see the module docstring).

    ``accepted`` is the largest size the server took, ``refused`` the smallest it refused;
    :meth:`next_size` is ``None`` once the search is over.
    """

    precision: int = 4096
    max_steps: int = 16
    accepted: int | None = None
    refused: int | None = None
    steps: int = 0

    def record(self, size: int, ok: bool) -> None:
        self.steps += 1
        if ok:
            self.accepted = size if self.accepted is None else max(self.accepted, size)
        else:
            self.refused = size if self.refused is None else min(self.refused, size)

    def next_size(self) -> int | None:
        if self.steps >= self.max_steps:
            return None
        lo, hi = self.accepted, self.refused
        if lo is None:
            if hi is None:
                return MEGA
            return SIZE_LOW if hi > SIZE_LOW else None
        for candidate in (MEGA, MEGA + 1, MEBI, MEBI + 1, SIZE_HIGH):
            if candidate > lo and (hi is None or candidate < hi):
                if candidate in (MEGA + 1, MEBI + 1) and lo != candidate - 1:
                    continue  # one byte more only right after the reading itself passed
                return candidate
        if hi is None or hi - lo <= self.precision:
            return None
        return lo + (hi - lo) // 2

    @property
    def unit(self) -> str | None:
        """``"10^6"`` or ``"2^20"`` when the cap is exactly one of the readings of 200MB."""
        if self.refused is None or self.accepted is None or self.refused != self.accepted + 1:
            return None
        return {MEGA: "10^6", MEBI: "2^20"}.get(self.accepted)


def rounded(rate: float) -> float:
    """A rate as it goes in a profile: two significant decimals, rounded down."""
    return math.floor(rate * 100) / 100
