"""Frozen option objects, their defaults, and the switch that turns delays off in tests.

Defaults are production defaults. Tests call :func:`set_testing` (or use
:func:`testing_mode`) instead of patching private functions: retry backoff and poll intervals
become zero, every other behaviour (attempt counts, deadlines, classification) stays the same.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import random
from collections.abc import Iterator
from dataclasses import dataclass

from vecml_async.errors import InvalidInputError

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


def _check(
    owner: str,
    name: str,
    value: object,
    *,
    minimum: float = 0.0,
    exclusive: bool = False,
    maximum: float | None = None,
    integer: bool = False,
    optional: bool = False,
) -> None:
    """Refuse a policy value with an :class:`InvalidInputError` naming the field."""
    if value is None and optional:
        return
    kind = "an integer" if integer else "a number"
    valid_type = isinstance(value, int) if integer else isinstance(value, (int, float))
    if isinstance(value, bool) or not valid_type:
        raise InvalidInputError(
            f"{owner}.{name} must be {kind}{' or None' if optional else ''}, got {value!r}",
            field=name,
        )
    number = float(value)  # type: ignore[arg-type]  # checked just above
    too_low = number <= minimum if exclusive else number < minimum
    if not math.isfinite(number) or too_low or (maximum is not None and number > maximum):
        bound = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
        if maximum is not None:
            bound += f" and <= {maximum:g}"
        raise InvalidInputError(f"{owner}.{name} must be {bound}, got {value!r}", field=name)


def _jittered(delay: float, jitter: float, u: float) -> float:
    """``delay`` scaled by ``1 - jitter * u`` (``u`` uniform in 0..1, jitter in 0..1)."""
    if jitter <= 0:
        return delay
    return delay * (1.0 - jitter * u)


def _grown(initial: float, multiplier: float, cap: float, n: int) -> float:
    """``min(cap, initial * multiplier ** (n - 1))`` without overflowing for large ``n``."""
    try:
        return min(cap, initial * multiplier ** max(n - 1, 0))
    except OverflowError:
        return cap


@dataclass(frozen=True)
class RetryPolicy:
    """How a call is retried, and how long it may take.

    **Real failures** (connection errors, timeouts, HTTP 5xx) are retried at most
    ``max_retries`` times. The wait before retry ``n`` (1-based) is
    ``min(max_delay, initial_delay * multiplier ** (n - 1))`` scaled down by a random jitter
    factor in ``[1 - jitter, 1]``; a ``Retry-After`` header, when present, is honoured instead,
    capped at ``max_retry_after``. Other 4xx answers are never retried. A refused connection
    to a loopback address (nothing listens there) is retried at most once.

    **Rate-limit answers** (``Request limit reached``, HTTP 429) are backpressure, not
    failures: they lower the client's rate, the call waits for its turn again (same backoff
    and ``Retry-After`` rules, counted per rate-limit answer) and they do not spend
    ``max_retries``. They are bounded by time: once ``rate_limit_deadline`` seconds have passed
    since the call started, the next rate-limit answer raises :class:`RateLimitError` (and a
    retry that could not start before then is not made).

    **Bounds.** Waiting between attempts on real failures totals at most
    ``max_retries * max(max_delay, max_retry_after)`` (defaults: 5 x 30 s = 150 s), plus the
    attempts themselves (each at most the client's ``timeout``); rate-limit waiting lasts at
    most ``rate_limit_deadline`` (default 300 s, long enough for a run against an unknown,
    lower server limit to converge). ``deadline`` bounds a whole call (attempts, waits and
    rate-limit waits) when set. In testing mode the waits are skipped but still counted
    towards both deadlines, so a test sees the same attempts as production, at once.

    Attributes:
        max_retries: retries after the first attempt on real failures (0 disables them).
        initial_delay: seconds before the first retry.
        max_delay: cap on the computed backoff, in seconds.
        multiplier: growth factor between consecutive retries.
        jitter: fraction of the delay that is randomised (0 disables jitter).
        respect_retry_after: honour the server's ``Retry-After`` header.
        max_retry_after: cap on one ``Retry-After`` wait, in seconds.
        rate_limit_deadline: seconds after the start of a call past which a rate-limit
            answer is final; ``None`` waits for as long as the server refuses.
        deadline: seconds a call may take in total, across all its attempts and waits;
            ``None`` (the default) sets no overall deadline.
    """

    max_retries: int = 5
    initial_delay: float = 0.5
    max_delay: float = 20.0
    multiplier: float = 2.0
    jitter: float = 0.5
    respect_retry_after: bool = True
    max_retry_after: float = 30.0
    rate_limit_deadline: float | None = 300.0
    deadline: float | None = None

    def __post_init__(self) -> None:
        owner = type(self).__name__
        _check(owner, "max_retries", self.max_retries, integer=True)
        for name in ("initial_delay", "max_delay", "max_retry_after"):
            _check(owner, name, getattr(self, name))
        _check(owner, "multiplier", self.multiplier, minimum=1.0)
        _check(owner, "jitter", self.jitter, maximum=1.0)
        for name in ("rate_limit_deadline", "deadline"):
            _check(owner, name, getattr(self, name), exclusive=True, optional=True)
        if not isinstance(self.respect_retry_after, bool):
            raise InvalidInputError(
                f"{owner}.respect_retry_after must be a boolean", field="respect_retry_after"
            )

    def backoff(self, n: int, u: float) -> float:
        """Seconds before retry ``n`` (1-based) given a uniform draw ``u`` in 0..1 (pure: the
        production value, testing mode or not)."""
        base = _grown(self.initial_delay, self.multiplier, self.max_delay, n)
        return _jittered(base, self.jitter, u)

    def retry_after_wait(self, retry_after: float | None) -> float | None:
        """The wait a ``Retry-After`` value asks for, capped; ``None`` when it does not apply
        (no header, or headers ignored). Pure, like :meth:`backoff`."""
        if retry_after is None or not self.respect_retry_after:
            return None
        return min(max(retry_after, 0.0), self.max_retry_after)

    def delay(self, retry: int, rng: random.Random, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1-based); 0 in testing mode."""
        if _testing:
            return 0.0
        honoured = self.retry_after_wait(retry_after)
        return honoured if honoured is not None else self.backoff(retry, rng.random())


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
        owner = type(self).__name__
        _check(owner, "initial_interval", self.initial_interval)
        _check(owner, "max_interval", self.max_interval)
        _check(owner, "multiplier", self.multiplier, minimum=1.0)
        _check(owner, "jitter", self.jitter, maximum=1.0)
        _check(owner, "upload_timeout", self.upload_timeout, exclusive=True)
        _check(owner, "training_timeout", self.training_timeout, exclusive=True)

    def interval(self, poll: int, rng: random.Random) -> float:
        """Seconds to wait after poll number ``poll`` (1-based); 0 in testing mode."""
        if _testing:
            return 0.0
        base = _grown(self.initial_interval, self.multiplier, self.max_interval, poll)
        return _jittered(base, self.jitter, rng.random())


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
        owner = type(self).__name__
        _check(owner, "calls_per_second", self.calls_per_second, exclusive=True, optional=True)
        _check(owner, "min_calls_per_second", self.min_calls_per_second, exclusive=True)
        _check(owner, "decrease_factor", self.decrease_factor, exclusive=True, maximum=1.0)
        if self.decrease_factor == 1.0:
            raise InvalidInputError(
                f"{owner}.decrease_factor must be < 1, got 1.0", field="decrease_factor"
            )
        _check(owner, "recovery_per_second", self.recovery_per_second)
        _check(owner, "decrease_interval", self.decrease_interval)


def key_and_url(api_key: str | None, base_url: str | None) -> tuple[str, str]:
    """The key and base URL given, else from the environment (checked)."""
    key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
    if not key:
        raise InvalidInputError(
            f"no API key: pass api_key= or set the {API_KEY_ENV} environment variable",
            field="api_key",
        )
    url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    if not url.startswith(("http://", "https://")):
        raise InvalidInputError(f"{url!r} is not an http(s) URL", field="base_url")
    return key, url


def retry_policy(
    retry: RetryPolicy | None, max_retries: int | None, deadline: float | None
) -> RetryPolicy:
    """``retry`` (default ``RetryPolicy()``) with the shorthands applied."""
    retry = retry or RetryPolicy()
    if max_retries is not None:
        retry = dataclasses.replace(retry, max_retries=max_retries)
    if deadline is not None:
        retry = dataclasses.replace(retry, deadline=deadline)
    return retry


def check_positive_int(value: object, field: str) -> None:
    """Refuse anything but a positive ``int`` (``bool`` included) for ``field``."""
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise InvalidInputError(f"must be a positive integer, got {value!r}", field=field)
