"""Budget tokens for one ingest: batches first, job polls on the spare budget.

:class:`Turns` stands in front of the client's budget (any :class:`~vecml_async.Budget`: the
local limiter, a Redis or Ray budget). A batch takes its token *before* it is cut
(:meth:`Turns.send`), so the size chosen while it waited applies to it; its call then goes
through a :class:`CallBudget` whose first ``acquire`` is already paid, and whose retries take
turns like any batch. Job polls (:meth:`Turns.poll`) take a token only when no batch is
waiting for one, unless the poll is *urgent* (too many jobs wait to be seen final: then it
queues with the batches), so waiting for jobs overlaps sending without slowing it when
tokens are scarce, and only the last few jobs remain once the last batch is sent.

Refusals and successes are reported to the client's budget unchanged, so its adaptive rate
follows the server for every call of the client.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio

from vecml_async._limiter import Budget


class Turns:
    """Who takes the next token of ``budget``: waiting batches before job polls."""

    def __init__(self, budget: Budget) -> None:
        self.budget = budget
        self.sends_waiting = 0
        self.sends = 0  # tokens taken for batches (first attempts and retries)
        self.polls = 0  # tokens taken for job polls
        self._no_sends: anyio.Event | None = None

    async def send(self) -> None:
        """Wait for a token for a batch (a first attempt or a retry)."""
        self.sends_waiting += 1
        try:
            await self.budget.acquire()
        finally:
            self.sends_waiting -= 1
            if self.sends_waiting == 0 and self._no_sends is not None:
                self._no_sends.set()
                self._no_sends = None
        self.sends += 1

    async def poll(self, *, urgent: bool = False) -> None:
        """Wait for a token for a job poll: once no batch waits for one (``urgent``: now)."""
        while self.sends_waiting and not urgent:
            if self._no_sends is None:
                self._no_sends = anyio.Event()
            await self._no_sends.wait()
        await self.budget.acquire()
        self.polls += 1

    def for_call(self, *, prepaid: bool) -> CallBudget:
        """The budget of one batch's call (``prepaid``: its first token is already taken)."""
        return CallBudget(self, prepaid=prepaid)

    def for_polls(self, urgent: Callable[[], bool] = lambda: False) -> PollBudget:
        """The budget of job polls; ``urgent()`` says, at each poll, whether it may go
        ahead of waiting batches."""
        return PollBudget(self, urgent=urgent)


class _View:
    """A :class:`Budget` that reports to the client's budget and takes tokens from turns."""

    def __init__(self, turns: Turns) -> None:
        self.turns = turns

    def on_rate_limited(self) -> None:
        self.turns.budget.on_rate_limited()

    def on_success(self) -> None:
        self.turns.budget.on_success()

    @property
    def current_rate(self) -> float | None:
        return self.turns.budget.current_rate


class CallBudget(_View):
    """The budget one batch's call goes through.

    ``granted_at`` is when its last token was given (``time.monotonic()``): the attempt that
    answered started then, so the executor can tell sending time from waiting time.
    """

    def __init__(self, turns: Turns, *, prepaid: bool) -> None:
        super().__init__(turns)
        self._prepaid = prepaid
        self.granted_at = time.monotonic()
        self.tokens = 1 if prepaid else 0

    async def acquire(self) -> None:
        if self._prepaid:
            self._prepaid = False
        else:
            await self.turns.send()
            self.tokens += 1
        self.granted_at = time.monotonic()


class PollBudget(_View):
    """The budget job polls go through (see :meth:`Turns.poll`)."""

    def __init__(self, turns: Turns, *, urgent: Callable[[], bool]) -> None:
        super().__init__(turns)
        self.urgent = urgent

    async def acquire(self) -> None:
        await self.turns.poll(urgent=self.urgent())
