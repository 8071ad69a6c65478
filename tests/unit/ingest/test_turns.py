"""Turns in front of the client's budget: batches before job polls, prepaid first attempts,
and views that report to the client's budget unchanged. A fake budget hands out tokens
only when the test says so (no timing)."""

from __future__ import annotations

import anyio
import pytest

from vecml_async import Budget
from vecml_async._ingest.turns import Turns


class GatedBudget:
    """A budget whose tokens the test releases one at a time, recording who got each."""

    def __init__(self) -> None:
        self.waiting = 0
        self.given = 0
        self.refused = 0
        self.successes = 0
        self._tokens = anyio.Semaphore(0)

    async def acquire(self) -> None:
        self.waiting += 1
        try:
            await self._tokens.acquire()
        finally:
            self.waiting -= 1
        self.given += 1

    def release(self) -> None:
        self._tokens.release()

    def on_rate_limited(self) -> None:
        self.refused += 1

    def on_success(self) -> None:
        self.successes += 1

    @property
    def current_rate(self) -> float | None:
        return 3.0


async def test_a_poll_waits_while_a_batch_waits_for_a_token() -> None:
    """With a batch waiting, a poll does not even queue at the budget; once the batch got
    its token, the poll takes the next one."""
    budget = GatedBudget()
    turns = Turns(budget)
    order: list[str] = []

    async def send() -> None:
        await turns.send()
        order.append("send")

    async def poll() -> None:
        await turns.poll()
        order.append("poll")

    async with anyio.create_task_group() as group:
        group.start_soon(send)
        await anyio.wait_all_tasks_blocked()
        group.start_soon(poll)
        await anyio.wait_all_tasks_blocked()
        assert budget.waiting == 1  # only the batch waits at the budget
        budget.release()
        await anyio.wait_all_tasks_blocked()
        assert order == ["send"] and budget.waiting == 1  # now the poll does
        budget.release()
    assert order == ["send", "poll"]
    assert (turns.sends, turns.polls) == (1, 1)


@pytest.mark.parametrize("rows_ready", [True, False])
async def test_a_poll_gives_way_to_a_sender_between_two_batches(rows_ready: bool) -> None:
    """A sender just got its token; another sender, between two batches, has rows ready
    and is about to ask for one: the poll waits for it. Without rows ready, nobody is
    about to ask, and the poll goes."""
    budget = GatedBudget()
    turns = Turns(budget, ready=lambda: rows_ready)
    order: list[str] = []

    async def poll() -> None:
        await turns.poll()
        order.append("poll")

    turns.enter()  # the second sender, waiting for the first to take its batch
    async with anyio.create_task_group() as group:
        group.start_soon(poll)
        await anyio.wait_all_tasks_blocked()
        assert budget.waiting == (0 if rows_ready else 1)
        if rows_ready:
            group.start_soon(turns.send)
            await anyio.wait_all_tasks_blocked()
            turns.leave()  # ... it asked for its token
            budget.release()
            await anyio.wait_all_tasks_blocked()
            assert turns.sends == 1 and not order and budget.waiting == 1
        budget.release()
    assert order == ["poll"]
    if not rows_ready:
        turns.leave()


async def test_an_urgent_poll_queues_with_the_batches() -> None:
    """When too many jobs wait to be seen final, a poll goes to the budget at once."""
    budget = GatedBudget()
    turns = Turns(budget)
    async with anyio.create_task_group() as group:
        group.start_soon(turns.send)
        await anyio.wait_all_tasks_blocked()
        group.start_soon(lambda: turns.poll(urgent=True))
        await anyio.wait_all_tasks_blocked()
        assert budget.waiting == 2
        budget.release()
        budget.release()


async def test_a_prepaid_call_takes_no_token_for_its_first_attempt_only() -> None:
    """The batch took its token before it was cut: the transport's first acquire returns at
    once; a retry takes a token like any batch."""
    budget = GatedBudget()
    turns = Turns(budget)
    view = turns.for_call(prepaid=True)
    await view.acquire()
    assert budget.given == 0 and view.tokens == 1
    async with anyio.create_task_group() as group:
        group.start_soon(view.acquire)
        await anyio.wait_all_tasks_blocked()
        assert budget.waiting == 1
        budget.release()
    assert budget.given == 1 and view.tokens == 2


@pytest.mark.parametrize("kind", ["call", "poll"])
def test_views_report_to_the_clients_budget_and_are_budgets(kind: str) -> None:
    """Refusals and successes reach the client's budget (its adaptive rate follows them);
    the views pass as a Budget wherever a client takes one."""
    budget = GatedBudget()
    turns = Turns(budget)
    view = turns.for_call(prepaid=False) if kind == "call" else turns.for_polls()
    assert isinstance(view, Budget)
    view.on_rate_limited()
    view.on_success()
    assert (budget.refused, budget.successes) == (1, 1)
    assert view.current_rate == 3.0
