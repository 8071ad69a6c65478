"""Sending batches: the narrow interface the pipeline needs, and what each send means.

The pipeline never sees the client: it sends through a :class:`Sender` (post a pre-encoded
body under a given budget, build the envelope, make an upload-job handle). :class:`BatchSender`
runs the sender tasks. One at a time, a sender task waits until the feed holds a full batch
at the sizer's target, takes a token (:class:`~.turns.Turns`), then cuts the batch at the
target in force then, so a size chosen while it waited applies at once; it then posts the
batch while the next task takes its turn. A batch is then *landed* (counted sent, journaled
in the checkpoint, its job handed to the watcher) or *failed* (its rows' ids and copies of
their encoded bytes go into the report; nothing else of it is kept). Every call is measured
for the sizer (body size, latency, time spent waiting for the token, refusals of the size).

Stop rules: a transient failure (connection, 5xx, rate limit past its deadline) fails its
batch and the ingest goes on, until ``max_consecutive_failures`` in a row; any other refusal
(authentication, a missing collection, a refused body) stops it, and the batches not sent
yet are reported as ``not_sent``. With an adaptive size, a body the server refuses as too
large (413) is not a failure: its rows are queued again and cut smaller.

A retry of a batch that may have been applied (``SendStats.ambiguous``) can be refused by a
server that rejects duplicate ids, because of the batch's own first attempt. When the
refusal names exactly the batch's ids, the batch landed; when it names others, or only
some, the client cannot tell, and the rows are reported failed (never counted landed when
they may not be), without stopping the ingest.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import orjson

from vecml_async._body import EncodedBody
from vecml_async._config import PollPolicy
from vecml_async._ingest.batching import Batch, Envelope
from vecml_async._ingest.checkpoint import Checkpoint
from vecml_async._ingest.feed import Feed
from vecml_async._ingest.progress import ProgressReporter
from vecml_async._ingest.report import BatchFailure, IngestReport, RowBytes, detached
from vecml_async._ingest.sizing import Cut, Measurement, Outcome, Sizer
from vecml_async._ingest.turns import CallBudget, Turns
from vecml_async._ingest.watcher import JobHandle, JobWatcher, SentBatch
from vecml_async._limiter import Budget
from vecml_async._transport import SendStats
from vecml_async.errors import (
    APIError,
    ConflictError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    TransportError,
    VecMLError,
)

__all__ = ["BatchSender", "Control", "Sender", "conflicting_ids", "detached", "outcome_of"]

TRANSIENT = (TransportError, ServerError, RateLimitError)
ENDPOINT = "add_data_batch"


class Sender(Protocol):
    """What the pipeline needs from a client."""

    @property
    def budget(self) -> Budget:
        """The client's call budget (the ingest's turns stand in front of it)."""

    @property
    def poll(self) -> PollPolicy:
        """How upload jobs are polled, and their default deadline."""

    async def send(
        self, endpoint: str, body: EncodedBody, stats: SendStats, budget: Budget
    ) -> dict[str, Any]:
        """POST a pre-encoded body (retried with the same bytes), every attempt under
        ``budget``; the server's answer."""

    def envelope(self, project_name: str, collection_name: str) -> Envelope:
        """The constant head of every ``add_data_batch`` body (it holds the key)."""

    def upload_job(self, job_id: str, budget: Budget) -> JobHandle:
        """A handle on an upload job, from its id, polled under ``budget``."""


class Control(Protocol):
    """The state of the run the senders share with the reader."""

    @property
    def aborted(self) -> bool:
        """No more batches may be sent."""

    @property
    def stopping(self) -> str | None:
        """Why reading stopped, if it did."""

    @property
    def rows_read(self) -> int:
        """Rows of the input accounted for so far."""

    def abort(self, reason: str) -> None:
        """Stop reading and sending."""


def conflicting_ids(error: APIError) -> frozenset[str] | None:
    """The ids a duplicate-id refusal names, or ``None`` when no list of them can be read.

    Read from a ``duplicate_ids`` list in the answer's envelope when the error carries the
    answer, else from a JSON array of ids in the message (how the emulator words it).
    """
    body = getattr(error, "body", None)
    if isinstance(body, (bytes, str)):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            body = None
    if isinstance(body, Mapping):
        named = _id_list(body.get("duplicate_ids"))
        if named is not None:
            return named
    message = error.message
    position = message.find('["')
    while position >= 0:
        try:
            named = _id_list(orjson.loads(message[position:]))
        except orjson.JSONDecodeError:
            named = None
        if named is not None:
            return named
        position = message.find('["', position + 1)
    return None


def _id_list(value: object) -> frozenset[str] | None:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        return frozenset(value)
    return None


def outcome_of(error: VecMLError) -> Outcome:
    """What a failed call says about its size: refused as too large, timed out, or neither.

    A timeout is a :class:`TransportError` whose attempt ran out of time: its cause is one
    of the HTTP client's timeouts, or no complete answer came within the attempt's deadline.
    """
    if isinstance(error, RequestTooLargeError):
        return "too_large"
    if isinstance(error, TransportError):
        cause = error.__cause__
        if cause is not None and (
            isinstance(cause, TimeoutError)
            or any(k.__name__.endswith("Timeout") for k in type(cause).__mro__)
        ):
            return "timeout"
        if error.message.startswith("no complete answer"):
            return "timeout"
    return "failed"


@dataclass(frozen=True)
class _Turn:
    """A batch cut for a sender task, and how it got its token."""

    batch: Batch
    budget: CallBudget | None  # None: not to be sent (the ingest was aborted)
    waited: float = 0.0


class BatchSender:
    """The sender tasks of one ingest (see the module docstring)."""

    def __init__(
        self,
        sender: Sender,
        envelope: Envelope,
        report: IngestReport,
        control: Control,
        *,
        feed: Feed,
        sizer: Sizer,
        turns: Turns,
        checkpoint: Checkpoint | None,
        watcher: JobWatcher | None,
        progress: ProgressReporter | None,
        max_consecutive_failures: int,
        resplit: bool,
    ) -> None:
        self.sender = sender
        self.envelope = envelope
        self.report = report
        self.control = control
        self.feed = feed
        self.sizer = sizer
        self.turns = turns
        self.checkpoint = checkpoint
        self.watcher = watcher
        self.progress = progress
        self.max_consecutive_failures = max_consecutive_failures
        self.resplit = resplit
        self.consecutive_failures = 0
        self.jobs: list[tuple[int, str]] = []  # (batch index, job id)
        self.last_send_end: float | None = None
        self._turn_lock = anyio.Lock()
        self._poll_budget = turns.for_polls(watcher.urgent) if watcher is not None else None

    async def send_all(self) -> None:
        """One sender task: cut and send batches until the feed is exhausted."""
        while True:
            turn = await self._next()
            if turn is None:
                return
            # One call per batch, so that nothing of it stays referenced by this frame while
            # the task waits for its next turn (its chunks are freed once they are done).
            await self._handle(turn)
            del turn
            if self.progress is not None and not await self.progress():
                self.control.abort(STOPPED_BY_CALLBACK)

    async def _handle(self, turn: _Turn) -> None:
        batch = turn.batch
        if turn.budget is None:
            self.fail("not_sent", batch, VecMLError(f"not sent: {self.control.stopping}"))
            self.feed.done(batch)
            return
        if await self._send(batch, turn.budget, turn.waited):
            self.feed.done(batch)
        else:
            self.feed.requeue(batch)
        self.last_send_end = time.monotonic()

    async def _next(self) -> _Turn | None:
        """The next batch and its token, or ``None`` once nothing is left to send."""
        self.turns.enter()
        try:
            return await self._take_turn()
        finally:
            self.turns.leave()

    async def _take_turn(self) -> _Turn | None:
        async with self._turn_lock:
            while True:
                target = await self.feed.wait_ready()
                if target is None:
                    return None
                if self.control.aborted:
                    batch = self.feed.cut(target)
                    if batch is not None:
                        return _Turn(batch, None)
                    continue
                ready = time.monotonic()
                await self.turns.send()
                waited = time.monotonic() - ready
                newer = self.sizer.target  # a call that ended meanwhile may have moved it
                if newer != target and (self.feed.closed or self.feed.batcher.ready(newer)):
                    target = newer
                batch = self.feed.cut(target)
                if batch is not None:  # None: the input was refused meanwhile
                    return _Turn(batch, self.turns.for_call(prepaid=True), waited)

    def fail(
        self, kind: str, batch: Batch, error: BaseException, job_id: str | None = None
    ) -> None:
        """Report ``batch`` failed: its ids and a copy of its encoded rows, nothing more."""
        ids, vectors, attributes = batch.column_bytes()
        rows = RowBytes(tuple(batch.row_ranges()), ids, vectors, attributes)
        self.report.failures.append(
            BatchFailure(
                kind,
                batch.index,
                first_row=batch.first_row,
                error=str(error),
                exception=detached(error),
                job_id=job_id,
                encoded=rows,
            )
        )

    async def _send(self, batch: Batch, budget: CallBudget, waited: float) -> bool:
        """Post ``batch``; ``False`` when its rows were queued again to be cut smaller."""
        report = self.report
        body = batch.body(self.envelope)
        stats = SendStats()
        try:
            answer = await self.sender.send(ENDPOINT, body, stats, budget)
            job_id = answer.get("job_id")
            if not isinstance(job_id, str) or not job_id:
                raise VecMLError("the server accepted the batch but returned no job_id")
        except VecMLError as err:
            report.retries += stats.retries
            report.rate_limited += stats.rate_limited
            self._measure(batch, budget, waited, stats, outcome_of(err))
            if stats.ambiguous and isinstance(err, APIError) and self._own_conflict(err, batch):
                await self._landed(batch, body.length, None)
                return True
            if self._can_resplit(batch, err):
                return False
            self._failed(batch, err, maybe_applied=stats.ambiguous)
            return True
        report.retries += stats.retries
        report.rate_limited += stats.rate_limited
        self._measure(batch, budget, waited, stats, "ok")
        await self._landed(batch, body.length, job_id)
        return True

    def _measure(
        self, batch: Batch, budget: CallBudget, waited: float, stats: SendStats, outcome: Outcome
    ) -> None:
        end = time.monotonic()
        if stats.rate_limited and outcome in ("ok", "failed"):
            outcome = "rate_limited"
        elif outcome == "ok" and stats.retries:
            outcome = "failed"  # retries blur what the size did: not evidence
        cut: Cut = "bytes" if batch.full else "end"
        if batch.full and batch.rows == self.feed.batcher.max_rows:
            cut = "rows"
        self.sizer.observe(
            Measurement(
                at=end,
                target=batch.target,
                body_bytes=batch.length,
                rows=batch.rows,
                latency=end - budget.granted_at,
                wait=waited,
                cut=cut,
                outcome=outcome,
            )
        )

    def _can_resplit(self, batch: Batch, error: VecMLError) -> bool:
        """A body refused as too large goes again smaller, when the size is adaptive and a
        smaller target would cut it."""
        return (
            self.resplit
            and isinstance(error, RequestTooLargeError)
            and batch.rows > 1
            and self.sizer.target < batch.length
        )

    @staticmethod
    def _own_conflict(error: APIError, batch: Batch) -> bool:
        """The refusal names exactly this batch's ids: its first attempt landed."""
        if not isinstance(error, ConflictError):
            return False
        ids = batch.ids()
        named = conflicting_ids(error)
        return named is not None and len(named) == len(ids) and named == frozenset(ids)

    def _failed(self, batch: Batch, error: VecMLError, *, maybe_applied: bool) -> None:
        self.fail("send", batch, error)
        self.consecutive_failures += 1
        # A conflict after an attempt that may have landed can be that attempt's doing.
        expected = isinstance(error, TRANSIENT) or (
            maybe_applied and isinstance(error, ConflictError)
        )
        if not expected:
            self.control.abort(f"{type(error).__name__}: {error}")
        elif self.consecutive_failures >= self.max_consecutive_failures:
            self.control.abort(f"{self.consecutive_failures} batches in a row failed")

    async def _landed(self, batch: Batch, length: int, job_id: str | None) -> None:
        report = self.report
        self.consecutive_failures = 0
        report.rows_sent += batch.rows
        report.batches_sent += 1
        report.bytes_sent += length
        ranges = tuple(batch.row_ranges())
        if job_id is not None:
            self.jobs.append((batch.index, job_id))
        if self.checkpoint is not None:
            await self.checkpoint.record(ranges, job_id, batch.end_ids(), batch.digests())
        if self.watcher is not None and self._poll_budget is not None and job_id is not None:
            ids, _, _ = batch.column_bytes(vectors=False)
            sent = SentBatch(job_id, batch.index, batch.first_row, ranges, ids)
            self.watcher.add(sent, self.sender.upload_job(job_id, self._poll_budget))


STOPPED_BY_CALLBACK = "stopped by the progress callback"
