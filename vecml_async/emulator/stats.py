"""Request accounting for inspection: arrivals, rejections and injected faults.

Counts are kept globally and per tenant (by key fingerprint), so the inspection endpoint can
answer for one key without revealing anything about another. Arrival times come from the
emulator's monotonic clock and feed :meth:`Stats.max_in_window`, which tells a test whether a
client stayed under a calls-per-second budget in every window, not just on average.

The server mutates these counters on its event loop while a test may read them from another
thread (``run_in_thread``); a lock keeps each snapshot consistent.
"""

from __future__ import annotations

import bisect
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["REJECTION_REASONS", "Stats"]

#: Why a request was refused, as counted by :class:`Stats`: the API's refusals, then the
#: protections against abusive clients (``busy``: the bound on bodies being read;
#: ``slow_body``: the body deadline).
REJECTION_REASONS = (
    "rate_limited",
    "too_large",
    "auth",
    "invalid",
    "not_found",
    "conflict",
    "busy",
    "slow_body",
)


@dataclass
class _Counts:
    requests: Counter[str] = field(default_factory=Counter)
    rejections: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        return {
            "requests": dict(self.requests),
            "rejections": {r: self.rejections[r] for r in REJECTION_REASONS}
            | {r: n for r, n in self.rejections.items() if r not in REJECTION_REASONS},
            "faults": dict(self.faults),
        }


class Stats:
    """Counters and arrival times of every API request (the inspection endpoint excluded)."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self._lock:
            self._all = _Counts()
            self._tenants: dict[str, _Counts] = {}
            self._times: list[float] = []
            self._fps: list[str | None] = []
            self.sink_requests = 0
            self.sink_bytes = 0

    def _tenant(self, fp: str) -> _Counts:
        counts = self._tenants.get(fp)
        if counts is None:
            counts = self._tenants[fp] = _Counts()
        return counts

    def arrival(self, endpoint: str) -> int:
        """Record a request to ``endpoint`` now; return its number for :meth:`identify`."""
        with self._lock:
            self._all.requests[endpoint] += 1
            self._times.append(self._clock())
            self._fps.append(None)
            return len(self._times) - 1

    def identify(self, number: int, endpoint: str, fp: str) -> None:
        """Attribute request ``number`` to the tenant ``fp`` once its body is decoded."""
        with self._lock:
            self._fps[number] = fp
            self._tenant(fp).requests[endpoint] += 1

    def reject(self, reason: str, fp: str | None) -> None:
        with self._lock:
            self._all.rejections[reason] += 1
            if fp is not None:
                self._tenant(fp).rejections[reason] += 1

    def fault(self, kind: str, fp: str | None) -> None:
        with self._lock:
            self._all.faults[kind] += 1
            if fp is not None:
                self._tenant(fp).faults[kind] += 1

    def sink(self, nbytes: int) -> None:
        with self._lock:
            self.sink_requests += 1
            self.sink_bytes += nbytes

    def max_in_window(self, window: float = 1.0, fp: str | None = None) -> int:
        """Most requests that arrived within any half-open interval of ``window`` seconds.

        With ``fp``, only that tenant's requests count (requests whose body could not be
        decoded belong to no tenant).
        """
        if window <= 0:
            raise ValueError("window must be > 0")
        with self._lock:
            if fp is None:
                times = list(self._times)
            else:
                times = [t for t, f in zip(self._times, self._fps) if f == fp]
        best = 0
        for i, start in enumerate(times):
            best = max(best, bisect.bisect_left(times, start + window, lo=i) - i)
        return best

    def snapshot(self, fp: str | None = None) -> dict[str, Any]:
        """Counts for everyone (``fp=None``) or for one tenant."""
        with self._lock:
            if fp is None:
                out = self._all.as_dict()
                out["sink"] = {"requests": self.sink_requests, "bytes": self.sink_bytes}
                return out
            return self._tenants.get(fp, _Counts()).as_dict()
