"""The budget arithmetic shared by every budget (local, Redis, Ray), on explicit clock values."""

from __future__ import annotations

import itertools
import math

import httpx
import pytest

from vecml_async import AsyncVecML, Budget, InvalidInputError, RateLimitPolicy
from vecml_async._budget_state import BudgetState, achieved_rate, pushed, reserve
from vecml_async._limiter import RateLimiter, budget_from_option

POLICY = RateLimitPolicy(calls_per_second=20.0)


def max_in_window(stamps: list[float], window: float = 1.0) -> int:
    """Most stamps in any half-open window (exact: the stamps here are computed, not timed)."""
    stamps = sorted(stamps)
    best, first = 0, 0
    for last, stamp in enumerate(stamps):
        while stamp - stamps[first] >= window - 1e-9:
            first += 1
        best = max(best, last - first + 1)
    return best


def grant_times(state: BudgetState, policy: RateLimitPolicy, arrivals: list[float]) -> list[float]:
    """The slot each arrival is given (arrival + wait)."""
    return [now + state.acquire(policy, now) for now in arrivals]


def test_reserve_spaces_slots_one_interval_apart():
    """A GCRA reservation starts at max(now, tat) and moves tat one interval past it."""
    assert reserve(0.0, 10.0, 4.0) == (10.25, 0.0)
    assert reserve(10.25, 10.0, 4.0) == (10.5, 0.25)
    assert reserve(3.0, 10.0, None) == (3.0, 0.0)


def test_a_late_start_pushes_the_next_slot():
    """A call that really started after its slot moves the next slot one interval past the
    real start; an on-time start leaves the reservation as it was."""
    assert pushed(10.25, 10.0, 4.0) == 10.25
    assert pushed(10.25, 11.0, 4.0) == 11.25
    assert pushed(10.25, 11.0, 4.0, margin=0.2) == pytest.approx(11.3)
    assert pushed(10.25, 11.0, None) == 10.25


def test_margin_leaves_room_for_late_starts():
    """With a margin m, R slots span (1 + m) seconds: a call that starts up to m late still
    leaves at most R in every one-second window; without the margin it makes R + 1."""
    policy = RateLimitPolicy(calls_per_second=10.0)

    def first_call_late(margin: float) -> list[float]:
        slots = grant_times(BudgetState.for_policy(policy, margin=margin), policy, [0.0] * 30)
        return [slots[0] + 0.19, *slots[1:]]

    with_margin = first_call_late(0.2)
    assert with_margin[2] - with_margin[1] == pytest.approx(0.12)
    assert max_in_window(with_margin) == 10
    assert max_in_window(first_call_late(0.0)) == 11


@pytest.mark.parametrize("rate", [1.0, 7.0, 20.0, 333.0])
def test_simultaneous_arrivals_get_at_most_rate_slots_per_window(rate):
    """However many calls arrive together, no one-second window holds more than R slots,
    and the slots keep the full rate (no starvation)."""
    policy = RateLimitPolicy(calls_per_second=rate)
    state = BudgetState.for_policy(policy)
    n = int(3 * rate) + 5
    slots = grant_times(state, policy, [100.0] * n)
    assert max_in_window(slots) == int(rate)
    assert slots[-1] - slots[0] == pytest.approx((n - 1) / rate)


def test_slow_arrivals_wait_nothing():
    """Calls arriving slower than the rate start when they arrive."""
    state = BudgetState.for_policy(POLICY)
    assert [state.acquire(POLICY, 100.0 + k) for k in range(5)] == [0.0] * 5


def test_achieved_rate_counts_the_last_second_of_starts():
    """The achieved rate is the starts in (now - 1, now], capped by the ceiling, floored."""
    starts = [0.1, 0.5, 1.0, 1.2, 1.9, 2.5]
    assert achieved_rate(starts, 1.9, None, 0.5) == 3.0  # 1.0, 1.2, 1.9
    assert achieved_rate(starts, 1.9, 2.0, 0.5) == 2.0
    assert achieved_rate(starts, 9.0, None, 0.5) == 0.5
    assert achieved_rate(starts, 0.3, None, 0.5) == 1.0  # later slots have not started yet


def test_one_decrease_per_burst_then_again_after_the_interval():
    """Refusals within decrease_interval of the last decrease count once."""
    policy = RateLimitPolicy(calls_per_second=20.0, decrease_interval=1.0)
    state = BudgetState.for_policy(policy)
    state.starts.extend([-0.5] * 40)  # 40 starts in the last second: capped at the ceiling
    assert state.refused(policy, 0.0)
    assert state.allowed == 10.0
    assert not any(state.refused(policy, t) for t in (0.1, 0.5, 0.99))
    assert state.allowed == 10.0
    assert state.refused(policy, 1.0)
    assert state.allowed == 5.0


def test_decrease_starts_from_the_achieved_rate_under_a_high_ceiling():
    """With a ceiling far above the traffic, a refusal halves what was achieved."""
    policy = RateLimitPolicy(calls_per_second=200.0)
    state = BudgetState.for_policy(policy)
    for _ in range(30):
        state.count_call(50.0)
    state.refused(policy, 50.0)
    assert state.allowed == 15.0


def test_recovery_is_gradual_and_returns_to_the_ceiling():
    """Each second without refusals regains recovery_per_second of the ceiling."""
    policy = RateLimitPolicy(calls_per_second=20.0, recovery_per_second=0.05)
    state = BudgetState.for_policy(policy)
    state.starts.extend([-0.5] * 20)
    state.refused(policy, 0.0)
    assert state.allowed == 10.0
    assert not state.recover(policy, 0.1)  # +0.1 calls/s: under one step
    assert state.recover(policy, 2.0)
    assert state.allowed == pytest.approx(12.0)
    assert state.recover(policy, 100.0)
    assert state.allowed == 20.0
    assert state.rate is None


def test_no_ceiling_recovers_to_unlimited():
    """With no ceiling the rate recovers to the rate seen at the refusal, then is unlimited."""
    policy = RateLimitPolicy(calls_per_second=None, recovery_per_second=0.1)
    state = BudgetState.for_policy(policy)
    state.starts.extend([-0.5] * 30)
    state.refused(policy, 0.0)
    assert state.allowed == 15.0
    state.recover(policy, 100.0)
    assert state.allowed is None
    assert state.target is None


def test_floor_and_not_adaptive():
    """The rate never goes under the floor; adaptive=False never changes it."""
    policy = RateLimitPolicy(calls_per_second=4.0, min_calls_per_second=1.5)
    state = BudgetState.for_policy(policy)
    for t in range(10):
        state.refused(policy, float(t) * 2)
    assert state.allowed == 1.5
    fixed = RateLimitPolicy(calls_per_second=4.0, adaptive=False)
    state = BudgetState.for_policy(fixed)
    assert not state.refused(fixed, 0.0)
    assert state.allowed == 4.0


def test_lowered_rate_spaces_the_following_slots():
    """After a decrease the slots that follow are one lowered interval apart."""
    state = BudgetState.for_policy(POLICY)
    grant_times(state, POLICY, [0.0] * 20)  # slots 0.0 .. 0.95
    state.refused(POLICY, 0.96)
    assert state.allowed == 10.0
    later = grant_times(state, POLICY, [0.96] * 12)  # no time to recover
    gaps = [b - a for a, b in itertools.pairwise(later)]
    assert all(math.isclose(g, 1 / 10.0) for g in gaps)


# ----------------------------------------------------------------------------- the option


class _CountingBudget:
    """A budget of the test's own: counts what the client asks of it."""

    def __init__(self) -> None:
        self.acquired = 0
        self.successes = 0
        self.refusals = 0

    async def acquire(self) -> None:
        self.acquired += 1

    def on_rate_limited(self) -> None:
        self.refusals += 1

    def on_success(self) -> None:
        self.successes += 1

    @property
    def current_rate(self) -> float | None:
        return 3.0


def test_budget_option_forms():
    """rate_limit= takes a number, None, a policy, or any Budget (used as it is)."""
    assert budget_from_option(4).current_rate == 4.0
    assert budget_from_option(None).current_rate is None
    assert isinstance(budget_from_option(POLICY), RateLimiter)
    custom = _CountingBudget()
    assert isinstance(custom, Budget)
    assert budget_from_option(custom) is custom


@pytest.mark.parametrize("value", [0, -2.0, math.inf, math.nan, True, "10", object()])
def test_budget_option_refuses_nonsense(value):
    """Anything else is an InvalidInputError naming rate_limit."""
    with pytest.raises(InvalidInputError) as info:
        budget_from_option(value)
    assert info.value.field == "rate_limit"


async def test_client_spends_a_custom_budget_on_every_attempt(api_key, base_url):
    """A Budget passed as rate_limit= is acquired before every attempt, retries included,
    and told about refusals and successes."""
    budget = _CountingBudget()
    answers = iter(
        [
            httpx.Response(400, text="Request limit reached, please try again later"),
            httpx.Response(200, json={"success": True}),
        ]
    )

    def answer(request: httpx.Request) -> httpx.Response:
        return next(answers)

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http,
        AsyncVecML(api_key, base_url=base_url, rate_limit=budget, http_client=http) as client,
    ):
        assert client._limiter is budget
        await client.delete_project("p")
    assert (budget.acquired, budget.refusals, budget.successes) == (2, 1, 1)
