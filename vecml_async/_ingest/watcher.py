"""Waiting for upload jobs while later batches still go out (``ingest(wait=True)``).

Every accepted batch hands its job to the :class:`JobWatcher` at once. A few poller tasks
poll the jobs, oldest due first, each job at the client's ``PollPolicy`` intervals (the
first poll one ``initial_interval`` after the batch landed). Polls go through the ingest's
:class:`~.turns.Turns`: they take a token only when no batch waits for one, so they use the
spare budget. When every token goes to a batch (the calls are the bottleneck), polling
during the sending could only delay batches, and a poll that finds a job unfinished is a
token lost, so the jobs wait for the end; with spare budget (the adaptive body size makes
calls keep up with the budget) they are seen while later batches go out, and only the last
few remain after the last send. One bound holds either way: once the ids of the jobs not
seen final take more than ``backlog_bytes`` (what the watcher keeps of each batch to report
it failed), a poll queues with the batches.

A job seen ``finished`` counts in ``report.jobs_finished``; ``failed`` (or a poll that fails
after its retries) makes its rows failures (kind ``"job"``) and takes them out of the
checkpoint. A job times out (:class:`JobTimeoutError`, a failure too) only once sending is
over: ``timeout`` seconds after the later of its first poll and the last send, so time spent
sending (when polls give way to batches) never counts against a job.
"""

from __future__ import annotations

import heapq
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from vecml_async._config import PollPolicy, is_testing
from vecml_async._ingest.checkpoint import Checkpoint
from vecml_async._ingest.report import BatchFailure, IngestReport, RowBytes, detached
from vecml_async.errors import JobFailedError, JobTimeoutError, VecMLError


class JobStatus(Protocol):
    """What the watcher reads of a job's status."""

    @property
    def status(self) -> str: ...

    @property
    def is_finished(self) -> bool: ...

    @property
    def is_failed(self) -> bool: ...

    @property
    def is_known(self) -> bool: ...

    @property
    def error(self) -> str | None: ...

    @property
    def error_message(self) -> str | None: ...


class JobHandle(Protocol):
    """An upload job that can be polled."""

    async def refresh(self) -> JobStatus:
        """Poll the job's status once."""


@dataclass(frozen=True)
class SentBatch:
    """What is kept of an accepted batch until its upload job is seen final."""

    job_id: str
    index: int
    first_row: int
    ranges: tuple[tuple[int, int], ...]
    ids: bytes


@dataclass(order=True)
class _Watched:
    due: float
    seq: int
    sent: SentBatch = field(compare=False)
    job: JobHandle = field(compare=False)
    polls: int = field(default=0, compare=False)
    first_poll: float | None = field(default=None, compare=False)


class JobWatcher:
    """The upload jobs of one ingest, polled as they come (see the module docstring)."""

    def __init__(
        self,
        report: IngestReport,
        checkpoint: Checkpoint | None,
        *,
        poll: PollPolicy,
        timeout: float | None,
        pollers: int,
        backlog_bytes: int,
        on_change: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.report = report
        self.checkpoint = checkpoint
        self.poll = poll
        self.timeout = timeout if timeout is not None else poll.upload_timeout
        self.pollers = max(1, pollers)
        self.backlog_bytes = max(1, backlog_bytes)
        self.on_change = on_change
        self.jobs_total = 0
        self.seen = 0  # jobs seen final (finished, failed or timed out)
        self.sending_done_at: float | None = None
        self._queue: list[_Watched] = []
        self._held = 0  # bytes of ids kept for the jobs not seen final
        self._polling = 0
        self._seq = itertools.count()
        self._rng = random.Random()
        self._changed = anyio.Event()

    @property
    def outstanding(self) -> int:
        """Jobs not seen final yet."""
        return len(self._queue) + self._polling

    def urgent(self) -> bool:
        """Whether the next poll may go ahead of waiting batches (the backlog is full)."""
        return self._held > self.backlog_bytes

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    def add(self, sent: SentBatch, job: JobHandle) -> None:
        """Watch the job of a batch that just landed."""
        first = 0.0 if is_testing() else self.poll.initial_interval
        due = time.monotonic() + first
        heapq.heappush(self._queue, _Watched(due, next(self._seq), sent, job))
        self._held += len(sent.ids)
        self.jobs_total += 1
        self._notify()

    def sending_done(self) -> None:
        """The last batch was sent: from now on jobs can time out."""
        self.sending_done_at = time.monotonic()
        self._notify()

    async def run(self) -> None:
        """Poll until sending is done and every job was seen final."""
        async with anyio.create_task_group() as group:
            for _ in range(self.pollers):
                group.start_soon(self._worker)

    async def _worker(self) -> None:
        while True:
            item = await self._next_due()
            if item is None:
                return
            self._polling += 1
            try:
                await self._poll(item)
            finally:
                self._polling -= 1
                self._notify()

    async def _next_due(self) -> _Watched | None:
        while True:
            if not self._queue:
                if self.sending_done_at is not None and not self._polling:
                    return None
                await self._changed.wait()
                continue
            wait = self._queue[0].due - time.monotonic()
            if wait <= 0:
                return heapq.heappop(self._queue)
            with anyio.move_on_after(wait):
                await self._changed.wait()

    async def _poll(self, item: _Watched) -> None:
        now = time.monotonic()
        if item.first_poll is None:
            item.first_poll = now
        item.polls += 1
        try:
            status = await item.job.refresh()
        except VecMLError as err:
            await self._failed(item.sent, err)
            self._held -= len(item.sent.ids)
            return
        if status.is_finished:
            self.seen += 1
            self.report.jobs_finished += 1
        elif status.is_failed:
            text = status.error or status.error_message or "no error text given"
            await self._failed(item.sent, JobFailedError(job_id=item.sent.job_id, error=text))
        elif self._timed_out(item):
            error = JobTimeoutError(
                job_id=item.sent.job_id,
                status=status.status,
                timeout=self.timeout,
                known_status=status.is_known,
            )
            await self._failed(item.sent, error)
        else:
            item.due = time.monotonic() + self.poll.interval(item.polls, self._rng)
            heapq.heappush(self._queue, item)
            return
        self._held -= len(item.sent.ids)
        if self.on_change is not None:
            await self.on_change()

    def _timed_out(self, item: _Watched) -> bool:
        if self.sending_done_at is None or item.first_poll is None:
            return False
        start = max(item.first_poll, self.sending_done_at)
        return time.monotonic() - start >= self.timeout

    async def _failed(self, sent: SentBatch, error: VecMLError) -> None:
        self.seen += 1
        rows = RowBytes(sent.ranges, sent.ids)
        self.report.rows_sent -= rows.count
        self.report.failures.append(
            BatchFailure(
                "job",
                sent.index,
                first_row=sent.first_row,
                error=str(error),
                exception=detached(error),
                job_id=sent.job_id,
                encoded=rows,
            )
        )
        if self.checkpoint is not None:
            await self.checkpoint.undo(sent.ranges, sent.job_id)
