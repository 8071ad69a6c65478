"""Injected failures: dropped connections, 5xx answers, latency and rate-limit bursts.

A :class:`FaultConfig` says what to inject; a :class:`FaultInjector` decides, request by
request, from one seeded :class:`random.Random`, so a run with the same requests in the same
order sees the same faults. A ``schedule`` pins faults to request numbers for deterministic
tests (request numbers count the fault-eligible requests, from 1).

Fault kinds:

* ``drop_before_apply``: the connection closes with no complete response; nothing was done.
* ``drop_after_apply``: the request was fully handled (an upload job exists and will apply),
  then the connection closes with no complete response. This is the case that makes a naive
  retry store rows twice.
* ``error_500`` / ``error_503``: the error envelope with that status; nothing was done.
* ``rate_limit``: the rate-limit answer, as if the key were over its limit. A burst started by
  ``rate_limit_burst_prob`` answers ``rate_limit_burst_length`` consecutive requests so.
* ``latency``: the answer is delayed by ``latency`` seconds plus a uniform jitter in
  ``[0, latency_jitter)``, on every eligible request (it adds to any other fault). A scheduled
  ``latency`` with no latency configured waits 0.05 s.
"""

from __future__ import annotations

import math
import random
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

__all__ = ["FAULT_KINDS", "FaultConfig", "FaultDecision", "FaultInjector"]

#: Every fault kind, in the order the probabilities are laid on the unit interval.
FAULT_KINDS = (
    "drop_before_apply",
    "drop_after_apply",
    "error_500",
    "error_503",
    "rate_limit",
    "latency",
)


@dataclass(frozen=True)
class FaultConfig:
    """What to inject. All probabilities are per eligible request and default to 0.

    ``endpoints`` limits injection to those endpoint names (``None`` = every API endpoint;
    the inspection endpoint is never eligible). ``schedule`` maps a request number to a fault
    kind and overrides the probabilities for that request.
    """

    seed: int = 0
    drop_before_apply: float = 0.0
    drop_after_apply: float = 0.0
    error_500: float = 0.0
    error_503: float = 0.0
    latency: float = 0.0
    latency_jitter: float = 0.0
    rate_limit_burst_prob: float = 0.0
    rate_limit_burst_length: int = 5
    endpoints: frozenset[str] | None = None
    schedule: Mapping[int, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        probs = {
            "drop_before_apply": self.drop_before_apply,
            "drop_after_apply": self.drop_after_apply,
            "error_500": self.error_500,
            "error_503": self.error_503,
            "rate_limit_burst_prob": self.rate_limit_burst_prob,
        }
        for name, p in probs.items():
            if isinstance(p, bool) or not isinstance(p, (int, float)) or not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p!r}")
        if sum(probs.values()) > 1.0 + 1e-12:
            raise ValueError("the fault probabilities must sum to at most 1")
        for name, s in (("latency", self.latency), ("latency_jitter", self.latency_jitter)):
            if isinstance(s, bool) or not isinstance(s, (int, float)):
                raise TypeError(f"{name} must be a number of seconds")
            if not math.isfinite(s) or s < 0:
                raise ValueError(f"{name} must be finite and >= 0")
        length = self.rate_limit_burst_length
        if isinstance(length, bool) or not isinstance(length, int) or length < 1:
            raise ValueError("rate_limit_burst_length must be an int >= 1")
        if self.endpoints is not None:
            if isinstance(self.endpoints, str):
                raise TypeError("endpoints must be a collection of endpoint names")
            object.__setattr__(self, "endpoints", frozenset(self.endpoints))
        schedule = dict(self.schedule)
        for number, kind in schedule.items():
            if isinstance(number, bool) or not isinstance(number, int) or number < 1:
                raise ValueError(f"schedule keys are request numbers >= 1, got {number!r}")
            if kind not in FAULT_KINDS:
                raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(FAULT_KINDS)}")
        # Read-only so the frozen config cannot be changed through the mapping either.
        object.__setattr__(self, "schedule", MappingProxyType(schedule))

    @property
    def active(self) -> bool:
        """True when this config can inject anything at all."""
        return bool(
            self.schedule
            or self.latency
            or self.latency_jitter
            or self.drop_before_apply
            or self.drop_after_apply
            or self.error_500
            or self.error_503
            or self.rate_limit_burst_prob
        )


@dataclass(frozen=True)
class FaultDecision:
    """What to do to one request: an optional fault kind and a delay in seconds."""

    kind: str | None = None
    delay: float = 0.0


_NO_FAULT = FaultDecision()


class FaultInjector:
    """Draws the fault of each eligible request; counts nothing itself (the caller does).

    Each eligible request consumes the same number of random draws whatever the outcome, so
    one unexpected request shifts later decisions by a whole request, never by half of one.
    """

    def __init__(self, config: FaultConfig) -> None:
        self.config = config
        self._rng = random.Random(config.seed)
        self._requests = 0
        self._burst_left = 0

    def reset(self) -> None:
        """Start over: same seed, request numbers from 1 again."""
        self._rng = random.Random(self.config.seed)
        self._requests = 0
        self._burst_left = 0

    def eligible(self, endpoint: str) -> bool:
        """True when requests to ``endpoint`` may receive faults."""
        endpoints = self.config.endpoints
        return endpoints is None or endpoint in endpoints

    def decide(self, endpoint: str) -> FaultDecision:
        """Return the fault for the next request to ``endpoint`` (an API endpoint)."""
        cfg = self.config
        if not cfg.active or not self.eligible(endpoint):
            return _NO_FAULT
        self._requests += 1
        draw = self._rng.random()
        jitter = self._rng.random() * cfg.latency_jitter
        delay = cfg.latency + jitter
        scheduled = cfg.schedule.get(self._requests)
        if scheduled is not None:
            if scheduled == "latency":
                return FaultDecision("latency", delay or 0.05)
            return FaultDecision(scheduled, delay)
        if self._burst_left > 0:
            self._burst_left -= 1
            return FaultDecision("rate_limit", delay)
        kind: str | None = None
        edge = 0.0
        for name, p in (
            ("drop_before_apply", cfg.drop_before_apply),
            ("drop_after_apply", cfg.drop_after_apply),
            ("error_500", cfg.error_500),
            ("error_503", cfg.error_503),
            ("rate_limit", cfg.rate_limit_burst_prob),
        ):
            edge += p
            if draw < edge:
                kind = name
                break
        if kind == "rate_limit":
            self._burst_left = cfg.rate_limit_burst_length - 1
        if kind is None and delay > 0:
            kind = "latency"
        return FaultDecision(kind, delay)
