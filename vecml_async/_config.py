"""Frozen option objects, their defaults, and the switch that turns delays off in tests.

Defaults are production defaults. Tests call :func:`set_testing` (or use
:func:`testing_mode`) instead of patching private functions: retry backoff and poll intervals
become zero, every other behaviour (attempt counts, deadlines, classification) stays the same.
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator
from dataclasses import dataclass

DEFAULT_BASE_URL = "https://aidb.vecml.com/api"
API_KEY_ENV = "VECML_API_KEY"
BASE_URL_ENV = "VECML_BASE_URL"

#: The documented request cap (the docs say 200MB; 10**6 is the stricter reading of "MB").
SERVER_MAX_REQUEST_BYTES = 200_000_000
#: What the library allows itself under that cap, leaving room for proxies and headers.
HARD_MAX_REQUEST_BYTES = SERVER_MAX_REQUEST_BYTES - 2_000_000

_testing = False


def set_testing(testing: bool = True) -> None:
    """Turn retry backoff and poll intervals off (``True``) or back on (``False``).

    Meant for test suites: retries and polls still happen, as many times as in production,
    they just do not wait between attempts.
    """
    global _testing
    _testing = testing


def is_testing() -> bool:
    """Whether :func:`set_testing` turned delays off."""
    return _testing


@contextlib.contextmanager
def testing_mode() -> Iterator[None]:
    """Context manager form of :func:`set_testing`; restores the previous value on exit."""
    previous = _testing
    set_testing(True)
    try:
        yield
    finally:
        set_testing(previous)


def _jittered(delay: float, jitter: float, rng: random.Random) -> float:
    """``delay`` scaled by a random factor in ``[1 - jitter, 1]`` (jitter in 0..1)."""
    if jitter <= 0:
        return delay
    return delay * (1.0 - jitter * rng.random())


@dataclass(frozen=True)
class RetryPolicy:
    """How failed requests are retried.

    A request is retried on connection errors, timeouts, HTTP 5xx and the server's rate-limit
    answer; never on other 4xx answers. The delay before retry ``n`` (1-based) is
    ``min(max_delay, initial_delay * multiplier ** (n - 1))`` scaled down by a random jitter
    factor in ``[1 - jitter, 1]``; a ``Retry-After`` header, when present, is honoured instead
    (capped at ``max_retry_after``).

    Attributes:
        max_retries: retries after the first attempt (0 disables retrying).
        initial_delay: seconds before the first retry.
        max_delay: cap on the computed backoff, in seconds.
        multiplier: growth factor between consecutive retries.
        jitter: fraction of the delay that is randomised (0 disables jitter).
        respect_retry_after: honour the server's ``Retry-After`` header.
        max_retry_after: cap on a ``Retry-After`` value, in seconds.
    """

    max_retries: int = 5
    initial_delay: float = 0.5
    max_delay: float = 20.0
    multiplier: float = 2.0
    jitter: float = 0.5
    respect_retry_after: bool = True
    max_retry_after: float = 60.0

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be >= 0")
        if self.initial_delay < 0 or self.max_delay < 0 or self.max_retry_after < 0:
            raise ValueError("delays must be >= 0")
        if self.multiplier < 1:
            raise ValueError("multiplier must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based); 0 in testing mode."""
        if _testing:
            return 0.0
        if retry_after is not None and self.respect_retry_after:
            return min(max(retry_after, 0.0), self.max_retry_after)
        base = min(self.max_delay, self.initial_delay * self.multiplier ** (retry - 1))
        return _jittered(base, self.jitter, rng)


@dataclass(frozen=True)
class PollPolicy:
    """How job futures poll their status endpoint.

    The interval starts at ``initial_interval`` and grows by ``multiplier`` up to
    ``max_interval``, each scaled down by a random jitter factor in ``[1 - jitter, 1]`` so
    that many jobs started together do not poll in lockstep. Every wait has a deadline: the
    ``timeout=`` given to ``wait()``, or the default for the job kind.

    Attributes:
        initial_interval: seconds before the second poll.
        max_interval: cap on the interval, in seconds.
        multiplier: growth factor of the interval.
        jitter: fraction of the interval that is randomised.
        upload_timeout: default deadline of an upload job wait, in seconds.
        training_timeout: default deadline of a training job wait, in seconds.
    """

    initial_interval: float = 0.25
    max_interval: float = 5.0
    multiplier: float = 1.5
    jitter: float = 0.2
    upload_timeout: float = 900.0
    training_timeout: float = 3600.0

    def __post_init__(self) -> None:
        if self.initial_interval < 0 or self.max_interval < 0:
            raise ValueError("poll intervals must be >= 0")
        if self.multiplier < 1:
            raise ValueError("multiplier must be >= 1")
        if not 0 <= self.jitter <= 1:
            raise ValueError("jitter must be between 0 and 1")
        if self.upload_timeout <= 0 or self.training_timeout <= 0:
            raise ValueError("job timeouts must be > 0")

    def interval(self, poll: int, rng: random.Random) -> float:
        """Seconds to wait after poll number ``poll`` (1-based); 0 in testing mode."""
        if _testing:
            return 0.0
        base = min(self.max_interval, self.initial_interval * self.multiplier ** (poll - 1))
        return _jittered(base, self.jitter, rng)


@dataclass(frozen=True)
class RateLimitPolicy:
    """The client-side rate limit every call goes through.

    The server's real limit is not documented. ``calls_per_second`` is the most the client
    sends; in any one-second window it sends at most that many calls. With ``adaptive``, each
    ``Request limit reached`` answer halves the current rate (at most once per
    ``decrease_interval`` seconds, so a burst of refusals counts once), and the rate then
    recovers by ``recovery_per_second`` x ``calls_per_second`` each second back up to the
    configured value, so a run against a lower unknown limit converges instead of hammering.

    Attributes:
        calls_per_second: the ceiling, or ``None`` for no client-side limit (the adaptive
            decrease still applies once the server refuses a call, starting from the rate
            observed so far).
        adaptive: lower the rate when the server refuses calls.
        min_calls_per_second: the floor of the adaptive rate.
        decrease_factor: multiplier applied on a refusal.
        recovery_per_second: fraction of the ceiling regained per second without refusals.
        decrease_interval: refusals closer together than this count once.
    """

    calls_per_second: float | None = 10.0
    adaptive: bool = True
    min_calls_per_second: float = 0.5
    decrease_factor: float = 0.5
    recovery_per_second: float = 0.05
    decrease_interval: float = 1.0

    def __post_init__(self) -> None:
        if self.calls_per_second is not None and self.calls_per_second <= 0:
            raise ValueError("calls_per_second must be > 0 or None")
        if self.min_calls_per_second <= 0:
            raise ValueError("min_calls_per_second must be > 0")
        if not 0 < self.decrease_factor < 1:
            raise ValueError("decrease_factor must be between 0 and 1")
        if self.recovery_per_second < 0 or self.decrease_interval < 0:
            raise ValueError("recovery_per_second and decrease_interval must be >= 0")
