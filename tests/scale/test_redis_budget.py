"""RedisBudget and its Lua script, on a real redis-server over loopback."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest

from vecml_async import RateLimitPolicy
from vecml_async._budget_lua import BUDGET_SCRIPT
from vecml_async._budget_state import BudgetState

pytest.importorskip("redis")

import redis.asyncio

from vecml_async.budget import BudgetUnavailableError, RedisBudget

R = 20.0


def max_in_window(stamps: list[float], window: float = 1.0) -> int:
    stamps = sorted(stamps)
    best, first = 0, 0
    for last, stamp in enumerate(stamps):
        while stamp - stamps[first] >= window - 1e-6:
            first += 1
        best = max(best, last - first + 1)
    return best


@pytest.fixture
def name() -> str:
    return f"test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
async def raw(redis_url: str) -> AsyncIterator[Any]:
    client = redis.asyncio.from_url(redis_url, decode_responses=True)
    yield client
    await client.aclose()


async def _run(script: Any, budget: RedisBudget, op: str, now: float | None = None) -> list[str]:
    args = budget._args(op) + ([repr(now)] if now is not None else [])
    return list(await script(keys=budget._keys, args=args))


async def test_script_mirrors_the_python_arithmetic(redis_url, raw, name):
    """Fed the same operations at the same times, the Lua script and BudgetState answer
    the same waits and rates (a random walk through decreases, bursts and recoveries)."""
    policy = RateLimitPolicy(calls_per_second=R, decrease_interval=0.5, recovery_per_second=0.1)
    budget = RedisBudget(redis_url, R, name=name, policy=policy, margin=0.05)
    state = BudgetState.for_policy(budget.policy, margin=0.05)
    script = raw.register_script(BUDGET_SCRIPT)
    rng = random.Random(7)
    now = 1_000.0
    decreases = waits = 0
    for step in range(400):
        now += rng.choice([0.0, 0.0, 0.01, 0.05, 0.3, 1.5])
        op = "refused" if rng.random() < 0.08 else "acquire"
        wait_lua, rate_lua, _, now_lua = await _run(script, budget, op, now)
        wait_py = state.acquire(budget.policy, now) if op == "acquire" else 0.0
        if op == "refused":
            decreases += state.refused(budget.policy, now)
        waits += wait_py > 0
        assert float(now_lua) == now
        assert float(wait_lua) == pytest.approx(wait_py, abs=1e-9), step
        assert float(rate_lua) == pytest.approx(state.allowed, abs=1e-9), step
    assert decreases >= 3 and waits >= 50  # the walk went through throttling and queues


async def test_slots_from_many_clients_never_exceed_r_in_a_window(redis_url, name):
    """Reservations racing from 4 connections on Redis's own clock: their slots (TIME +
    wait) never put more than R starts in a one-second window, and they keep the rate."""
    clients = [redis.asyncio.from_url(redis_url, decode_responses=True) for _ in range(4)]
    budget = RedisBudget(redis_url, R, name=name, margin=0.0)
    try:
        scripts = [c.register_script(BUDGET_SCRIPT) for c in clients]
        answers = await asyncio.gather(
            *(_run(scripts[k % 4], budget, "acquire") for k in range(int(3 * R)))
        )
    finally:
        for client in clients:
            await client.aclose()
    slots = [float(now) + float(wait) for wait, _, _, now in answers]
    assert max_in_window(slots) == int(R)
    assert max(slots) - min(slots) == pytest.approx((3 * R - 1) / R, abs=0.01)


async def test_acquire_sleeps_for_the_shared_slot(redis_url, name):
    """acquire() through two budgets (two connections) spaces the starts by 1/R."""
    loop = asyncio.get_running_loop()
    async with (
        RedisBudget(redis_url, R, name=name) as a,
        RedisBudget(redis_url, R, name=name) as b,
    ):
        stamps: list[float] = []

        async def one(budget: RedisBudget) -> None:
            await budget.acquire()
            stamps.append(loop.time())

        await asyncio.gather(*(one(a if k % 2 else b) for k in range(10)))
    # Ten slots one interval apart take at least 9 x 1.05 / R seconds, whatever the jitter.
    assert max(stamps) - min(stamps) >= 9 * 1.05 / R - 0.01


async def test_one_decrease_per_burst_across_clients(redis_url, name):
    """Refusals seen by 4 workers at once lower the shared rate once, not four times."""
    workers = [RedisBudget(redis_url, R, name=name) for _ in range(4)]
    for worker in workers:
        await worker.acquire()
    for _ in range(5):
        for worker in workers:
            worker.on_rate_limited()
    for worker in workers:
        await worker.aclose()  # waits for the refusal reports in flight
    async with RedisBudget(redis_url, R, name=name) as observer:
        rate = await observer.refresh()
    # 4 calls started in the last second: the first refusal halves the achieved rate.
    assert rate == pytest.approx(2.0)
    assert [w.rate_limited_count for w in workers] == [5] * 4


async def test_the_shared_rate_recovers_for_everyone(redis_url, raw, name):
    """After a decrease, the rate every worker sees climbs back on Redis's clock."""
    policy = RateLimitPolicy(recovery_per_second=0.05, decrease_interval=1.0)
    budget = RedisBudget(redis_url, R, name=name, policy=policy, margin=0.0)
    script = raw.register_script(BUDGET_SCRIPT)
    for k in range(20):
        await _run(script, budget, "acquire", 100.0 + k / R)
    await _run(script, budget, "refused", 100.99)
    _, rate, _, _ = await _run(script, budget, "peek", 100.99)
    assert float(rate) == 10.0
    _, rate, changed, _ = await _run(script, budget, "peek", 105.99)
    assert (float(rate), changed) == (15.0, "1")
    _, rate, _, _ = await _run(script, budget, "peek", 200.0)
    assert float(rate) == R


async def test_keys_expire_when_unused(redis_url, raw, name):
    """The budget's keys carry a TTL, so a budget nobody uses leaves nothing behind."""
    async with RedisBudget(redis_url, R, name=name, key_ttl=30) as budget:
        await budget.acquire()
        ttls = [await raw.pttl(key) for key in budget._keys]
        await budget.reset()
        assert await raw.exists(*budget._keys) == 0
    assert all(0 < ttl <= 30_000 for ttl in ttls)


async def test_unreachable_redis_is_a_typed_error_without_the_url(unreachable_redis_url):
    """No Redis: acquire() raises BudgetUnavailableError; the URL's password stays out."""
    budget = RedisBudget(unreachable_redis_url, R, name="down", timeout=1.0)
    with pytest.raises(BudgetUnavailableError) as info:
        await budget.acquire()
    await budget.aclose()
    text = f"{info.value} {info.value!r} {budget!r}"
    assert "budget-s3cret" not in text
    assert info.value.budget == "down"


async def test_fallback_runs_a_local_share_of_the_budget(unreachable_redis_url):
    """fallback=N: with Redis down each process runs a private limiter at R / N."""
    budget = RedisBudget(
        unreachable_redis_url, R, name="down", fallback=4, timeout=1.0, retry_interval=60
    )
    await budget.acquire()
    assert budget.current_rate == R / 4
    budget.on_rate_limited()  # counted by the local limiter, which lowers its own rate
    assert budget.current_rate == pytest.approx(0.5)  # 1 call in the last second, halved
    await budget.aclose()


@pytest.mark.parametrize(
    ("rate", "options", "field"),
    [(0, {}, "calls_per_second"), (5, {"fallback": 0}, "fallback"), (5, {"margin": 1}, "margin")],
    ids=["rate", "fallback", "margin"],
)
def test_nonsense_options_are_refused(rate, options, field):
    """No calls, a fallback over zero processes or a margin of a second are refused."""
    from vecml_async import InvalidInputError

    with pytest.raises(InvalidInputError) as info:
        RedisBudget("redis://127.0.0.1:1/0", rate, **options)
    assert info.value.field == field
