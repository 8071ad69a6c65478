"""Budget tokens for one ingest: batches first, job polls on the spare budget.

:class:`Turns` stands in front of the client's budget (any :class:`~vecml_async.Budget`: the
local limiter, a Redis or Ray budget). A batch takes its token *before* it is cut
(:meth:`Turns.send`), so the size chosen while it waited applies to it; its call then goes
through a :class:`CallBudget` whose first ``acquire`` is already paid, and whose retries take
turns like any batch. Job polls (:meth:`Turns.poll`) take a token only when no batch is
waiting for one, unless the poll is *urgent* (the jobs waiting to be seen final hold too
much: then it queues with the batches), so waiting for jobs uses the spare budget and never
slows sending when tokens are scarce.

Refusals and successes are reported to the client's budget unchanged, so its adaptive rate
follows the server for every call of the client.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import anyio

from vecml_async._limiter import Budget


class Turns:
    """Who takes the next token of ``budget``: batches before job polls.

    A batch comes first while it waits for its token, and also while a sender is between
    two batches with rows ready to cut (``ready()``): it is about to ask for a token, and a
    poll slipping into that moment would take it.
    """

    def __init__(self, budget: Budget, ready: Callable[[], bool] = lambda: False) -> None:
        self.budget = budget
        self.ready = ready
        self.sends_waiting = 0
        self.between = 0  # senders asking for their next batch
        self.sends = 0  # tokens taken for batches (first attempts and retries)
        self.polls = 0  # tokens taken for job polls
        self._changed: anyio.Event | None = None

    def _wake(self) -> None:
        if self._changed is not None:
            self._changed.set()
            self._changed = None

    def _batches_first(self) -> bool:
        return self.sends_waiting > 0 or (self.between > 0 and self.ready())

    def enter(self) -> None:
        """A sender asks for its next batch (until :meth:`leave`)."""
        self.between += 1

    def leave(self) -> None:
        """The sender has its batch and token, or nothing is left to send."""
        self.between -= 1
        self._wake()

    async def send(self) -> None:
        """Wait for a token for a batch (a first attempt or a retry)."""
        self.sends_waiting += 1
        try:
            await self.budget.acquire()
        finally:
            self.sends_waiting -= 1
            self._wake()
        self.sends += 1

    async def poll(self, *, urgent: bool = False) -> None:
        """Wait for a token for a job poll: once batches do not come first (``urgent``:
        now)."""
        while not urgent and self._batches_first():
            if self._changed is None:
                self._changed = anyio.Event()
            await self._changed.wait()
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
