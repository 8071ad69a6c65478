"""The client-side rate limiter: a strict ceiling, and an adaptive rate below it."""

from __future__ import annotations

import asyncio
import itertools
import selectors
import ssl
import types
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import httpx
import pytest
import respx

from vecml_async import AsyncVecML, RateLimitPolicy
from vecml_async import _limiter as limiter_module
from vecml_async._limiter import RateLimiter

T = TypeVar("T")
SSL_CONTEXT = ssl.create_default_context()
# Floating-point slack on virtual-clock differences (the loop adds 1 us per iteration).
STAMP_SLACK = 1e-4


class _AdvancingSelector(selectors.DefaultSelector):
    """Never sleeps: each wait moves the virtual clock on by the timeout (at least 1 us)."""

    def __init__(self, clock: list[float]) -> None:
        super().__init__()
        self._clock = clock

    def select(self, timeout: float | None = None) -> list[Any]:
        ready = super().select(0)
        self._clock[0] += max(timeout or 0.0, 1e-6)
        return ready


class VirtualTimeLoop(asyncio.SelectorEventLoop):
    """An event loop on a virtual clock: timed waits take no real time, and timing
    measurements are exact whatever the machine's load."""

    def __init__(self) -> None:
        self._now = [0.0]
        super().__init__(_AdvancingSelector(self._now))

    def time(self) -> float:
        return self._now[0]


def run_virtual(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    loop = VirtualTimeLoop()
    try:
        return loop.run_until_complete(main())
    finally:
        loop.close()


class FakeClock:
    """Stands in for time.monotonic() inside the limiter's adaptive logic."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(limiter_module, "time", types.SimpleNamespace(monotonic=fake))
    return fake


def max_in_window(stamps: list[float], window: float = 1.0) -> int:
    """The largest number of stamps inside any half-open window of ``window`` seconds."""
    stamps = sorted(stamps)
    best = 0
    first = 0
    for last, stamp in enumerate(stamps):
        while stamp - stamps[first] >= window - STAMP_SLACK:
            first += 1
        best = max(best, last - first + 1)
    return best


async def acquire_many(limiter: RateLimiter, n: int) -> list[float]:
    """Acquire ``n`` times from ``n`` concurrent tasks; the loop time right after each."""
    loop = asyncio.get_running_loop()
    stamps: list[float] = []

    async def one() -> None:
        await limiter.acquire()
        stamps.append(loop.time())

    await asyncio.gather(*(one() for _ in range(n)))
    return stamps


# ----------------------------------------------------------------------------- the ceiling


def test_max_in_window_helper():
    """The window counter used below counts what it should (so the tests can fail)."""
    assert max_in_window([0.0, 0.1, 0.2, 0.99, 1.5]) == 4
    assert max_in_window([0.0, 1.0, 2.0]) == 1
    assert max_in_window([0.0] * 5) == 5


@pytest.mark.parametrize("rate", [1.0, 7.0, 50.0, 333.0])
def test_ceiling_never_exceeded_in_any_one_second_window(rate):
    """With calls_per_second R, no one-second window sees more than R calls start."""
    n = int(3 * rate) + 5
    limiter = RateLimiter(RateLimitPolicy(calls_per_second=rate, adaptive=False))
    stamps = run_virtual(lambda: acquire_many(limiter, n))
    assert len(stamps) == n
    assert max_in_window(stamps) <= int(rate)
    # No initial burst either: consecutive starts are spaced by at least 1/R.
    ordered = sorted(stamps)
    assert min(b - a for a, b in itertools.pairwise(ordered)) >= 1 / rate - STAMP_SLACK
    # ... and the limiter does not starve the caller: about R calls a second.
    assert ordered[-1] - ordered[0] == pytest.approx((n - 1) / rate, rel=0.01)


def test_client_calls_respect_the_ceiling(api_key, base_url):
    """Concurrent client calls go through the limiter: at most R start per second."""
    rate = 40

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        stamps: list[float] = []

        def answer(request: httpx.Request) -> httpx.Response:
            stamps.append(loop.time())
            return httpx.Response(200, json={"success": True})

        with respx.mock(base_url=base_url) as mock:
            mock.post("/delete_project").mock(side_effect=answer)
            async with (
                httpx.AsyncClient(verify=SSL_CONTEXT) as http,
                AsyncVecML(
                    api_key, base_url=base_url, rate_limit=float(rate), http_client=http
                ) as c,
            ):
                await asyncio.gather(*(c.delete_project("p") for _ in range(3 * rate)))
        return stamps

    stamps = run_virtual(main)
    assert len(stamps) == 3 * rate
    assert max_in_window(stamps) <= rate


async def test_no_ceiling_does_not_wait():
    """calls_per_second None: nothing limits the client until the server refuses a call."""
    limiter = RateLimiter(RateLimitPolicy(calls_per_second=None))
    assert limiter.current_rate is None
    stamps = await acquire_many(limiter, 500)
    # 500 calls under any ceiling of the default size would take tens of seconds.
    assert max(stamps) - min(stamps) < 1.0
    assert limiter.current_rate is None


@pytest.mark.parametrize(
    ("option", "expected"),
    [
        ({}, 10.0),
        ({"rate_limit": 3.5}, 3.5),
        ({"rate_limit": None}, None),
        ({"rate_limit": RateLimitPolicy(calls_per_second=7.0, adaptive=False)}, 7.0),
    ],
    ids=["default", "float", "none", "policy"],
)
async def test_rate_limit_option_forms(api_key, base_url, option, expected):
    """rate_limit= takes a float, a policy, or None; the default ceiling is 10 calls/s."""
    async with (
        httpx.AsyncClient(verify=SSL_CONTEXT) as http,
        AsyncVecML(api_key, base_url=base_url, http_client=http, **option) as client,
    ):
        assert client._limiter.current_rate == expected


# ----------------------------------------------------------------------------- adaptive rate


async def test_rate_limited_halves_once_per_burst(clock):
    """A burst of refusals halves the rate once; a refusal after decrease_interval halves again."""
    limiter = RateLimiter(RateLimitPolicy(calls_per_second=None, decrease_interval=1.0))
    await acquire_many(limiter, 40)  # 40 calls in the last (fake) second
    limiter.on_rate_limited()
    assert limiter.current_rate == 20.0
    for _ in range(4):
        clock.advance(0.1)
        limiter.on_rate_limited()
    assert limiter.current_rate == 20.0
    assert limiter.rate_limited_count == 5
    clock.advance(0.7)  # 1.1 s after the first refusal
    limiter.on_rate_limited()
    assert limiter.current_rate == 10.0
    assert limiter.rate_limited_count == 6


async def test_rate_limited_halves_the_achieved_rate(clock):
    """With a ceiling far above the calls made, a refusal halves the rate actually achieved."""
    limiter = RateLimiter(RateLimitPolicy(calls_per_second=200.0))
    await acquire_many(limiter, 20)  # fake clock stands still: 20 calls "in the last second"
    limiter.on_rate_limited()
    assert limiter.current_rate == 10.0


async def test_rate_never_below_the_floor(clock):
    """Repeated refusals stop at min_calls_per_second."""
    limiter = RateLimiter(RateLimitPolicy(calls_per_second=None, min_calls_per_second=2.0))
    await acquire_many(limiter, 16)
    for _ in range(10):
        limiter.on_rate_limited()
        clock.advance(1.5)
    assert limiter.current_rate == 2.0


async def test_refusal_during_recovery_still_halves(clock):
    """Recovery steps do not hide later refusals: a new burst halves the recovering rate."""
    limiter = RateLimiter(
        RateLimitPolicy(calls_per_second=None, decrease_interval=1.0, recovery_per_second=0.05)
    )
    await acquire_many(limiter, 40)
    limiter.on_rate_limited()
    assert limiter.current_rate == 20.0
    clock.advance(0.6)
    limiter.on_success()  # recovers 40 * 0.05 * 0.6 = 1.2 calls/s
    assert limiter.current_rate == pytest.approx(21.2)
    clock.advance(0.7)  # 1.3 s after the first refusal: a new burst
    limiter.on_rate_limited()
    assert limiter.current_rate == pytest.approx(10.6)


async def test_recovery_back_to_the_ceiling(clock):
    """Without refusals the rate climbs back, additively, to the configured ceiling."""
    limiter = RateLimiter(RateLimitPolicy(calls_per_second=200.0, recovery_per_second=0.05))
    await acquire_many(limiter, 20)
    limiter.on_rate_limited()
    assert limiter.current_rate == 10.0
    clock.advance(1.0)  # + 200 * 0.05 * 1 = 10
    limiter.on_success()
    assert limiter.current_rate == pytest.approx(20.0)
    clock.advance(100.0)
    limiter.on_success()
    assert limiter.current_rate == 200.0


async def test_recovery_without_ceiling_returns_to_unlimited(clock):
    """With no ceiling the rate recovers to the rate seen at the refusal, then is unlimited."""
    limiter = RateLimiter(RateLimitPolicy(calls_per_second=None, recovery_per_second=0.1))
    await acquire_many(limiter, 30)
    limiter.on_rate_limited()
    assert limiter.current_rate == 15.0
    clock.advance(100.0)
    limiter.on_success()
    assert limiter.current_rate is None


async def test_not_adaptive_keeps_rate_but_counts(clock):
    """adaptive=False: refusals are counted, the rate stays."""
    limiter = RateLimiter(RateLimitPolicy(calls_per_second=25.0, adaptive=False))
    limiter.on_rate_limited()
    limiter.on_rate_limited()
    assert limiter.current_rate == 25.0
    assert limiter.rate_limited_count == 2


def test_lowered_rate_really_spaces_calls(clock):
    """After a refusal the calls that follow are spaced by the lowered rate."""

    async def main() -> list[float]:
        limiter = RateLimiter(RateLimitPolicy(calls_per_second=None))
        await acquire_many(limiter, 40)
        limiter.on_rate_limited()
        assert limiter.current_rate == 20.0
        return await acquire_many(limiter, 30)

    stamps = run_virtual(main)
    assert max_in_window(stamps) <= 20
    ordered = sorted(stamps)
    assert min(b - a for a, b in itertools.pairwise(ordered)) >= 1 / 20 - STAMP_SLACK


def test_acquire_needs_asyncio():
    """Outside a running asyncio loop acquire() says vecml_async needs asyncio."""
    limiter = RateLimiter(RateLimitPolicy())
    coro = limiter.acquire()
    with pytest.raises(RuntimeError, match="asyncio"):
        coro.send(None)
    coro.close()


@pytest.mark.parametrize(
    "options",
    [
        {"calls_per_second": 0},
        {"calls_per_second": -1.0},
        {"min_calls_per_second": 0},
        {"decrease_factor": 1.0},
        {"decrease_factor": 0.0},
        {"recovery_per_second": -0.1},
        {"decrease_interval": -1},
    ],
)
def test_rate_limit_policy_refuses_nonsense(options):
    """RateLimitPolicy refuses rates and factors that cannot work."""
    with pytest.raises(ValueError):
        RateLimitPolicy(**options)


# ----------------------------------------------------------------------------- a busy loop


async def _stall(seconds: float, after: float) -> None:
    """Block the (virtual) loop for ``seconds``, as CPU-bound work would, after ``after``."""
    await asyncio.sleep(after)
    loop = asyncio.get_running_loop()
    assert isinstance(loop, VirtualTimeLoop)
    loop._now[0] += seconds  # time passes while nothing else runs


def test_a_stalled_loop_releases_no_burst():
    """Calls whose slots passed while the loop was blocked do not all start at once: each
    start is one interval after the previous one, so the window still holds at most R."""
    rate = 20.0

    async def main() -> list[float]:
        limiter = RateLimiter(RateLimitPolicy(calls_per_second=rate, adaptive=False))
        stall = asyncio.ensure_future(_stall(0.5, after=0.32))
        stamps = await acquire_many(limiter, 60)
        await stall
        return stamps

    stamps = run_virtual(main)
    ordered = sorted(stamps)
    assert max_in_window(stamps) <= int(rate)
    assert min(b - a for a, b in itertools.pairwise(ordered)) >= 1 / rate - STAMP_SLACK


def test_a_shared_slot_missed_by_a_busy_loop_is_taken_again():
    """sleep_until_slot: waking later than the margin after the slot gives it up and takes
    a new one (at most MAX_RESLOTS times); on time, one slot is enough."""
    from vecml_async._limiter import MAX_RESLOTS, sleep_until_slot

    async def main(stall: float) -> int:
        taken = 0

        async def take_slot() -> float:
            nonlocal taken
            taken += 1
            return 0.1

        blocker = asyncio.ensure_future(_stall(stall, after=0.05))
        await sleep_until_slot(take_slot, margin=0.05)
        await blocker
        return taken

    assert run_virtual(lambda: main(0.0)) == 1
    assert run_virtual(lambda: main(0.5)) == 2
    assert MAX_RESLOTS >= 1
