"""Sending batches: the narrow interface the pipeline needs, and what each send means.

The pipeline never sees the client: it sends through a :class:`Sender` (post a pre-encoded
body with its stats, build the envelope, make an upload-job handle). :class:`BatchSender`
runs the sender tasks: each takes batches from the bounded stream and posts them; a batch is
then *landed* (counted sent, journaled in the checkpoint) or *failed* (its rows' ids and
copies of their encoded bytes go into the report; nothing else of it is kept).

Stop rules: a transient failure (connection, 5xx, rate limit after retries) fails its batch
and the ingest goes on, until ``max_consecutive_failures`` in a row; any other refusal
(authentication, a missing collection, a refused body) stops it, and the batches not sent
yet are reported as ``not_sent``.

A retry of a batch that may have been applied (``SendStats.ambiguous``) can be refused by a
server that rejects duplicate ids, because of the batch's own first attempt. When the
refusal names exactly the batch's ids, the batch landed; when it names others, or only
some, the client cannot tell, and the rows are reported failed (never counted landed when
they may not be), without stopping the ingest.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import anyio
import orjson
from anyio.abc import ObjectReceiveStream

from vecml_async._body import EncodedBody
from vecml_async._ingest.batching import Batch, Envelope
from vecml_async._ingest.checkpoint import Checkpoint
from vecml_async._ingest.progress import IngestProgress, ProgressCallback
from vecml_async._ingest.report import BatchFailure, IngestReport, RowBytes
from vecml_async._transport import SendStats
from vecml_async.errors import (
    APIError,
    ConflictError,
    RateLimitError,
    ServerError,
    TransportError,
    VecMLError,
)

TRANSIENT = (TransportError, ServerError, RateLimitError)
ENDPOINT = "add_data_batch"


class JobHandle(Protocol):
    """An upload job that can be awaited."""

    async def wait(self, timeout: float | None = None) -> object:
        """Wait until the job is final; raise when it failed or the deadline passed."""


class Sender(Protocol):
    """What the pipeline needs from a client."""

    async def send(self, endpoint: str, body: EncodedBody, stats: SendStats) -> dict[str, Any]:
        """POST a pre-encoded body (retried with the same bytes); the server's answer."""

    def envelope(self, project_name: str, collection_name: str) -> Envelope:
        """The constant head of every ``add_data_batch`` body (it holds the key)."""

    def upload_job(self, job_id: str) -> JobHandle:
        """A handle on an upload job, from its id."""


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


def detached(error: BaseException) -> BaseException:
    """``error`` without tracebacks (its chain's too): a traceback keeps every local of the
    frames it went through alive, the request body among them."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
    return error


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


@dataclass(frozen=True)
class _SentBatch:
    """What is kept of an accepted batch until its upload job is seen final."""

    job_id: str
    index: int
    first_row: int
    ranges: tuple[tuple[int, int], ...]
    ids: bytes


class BatchSender:
    """The sender tasks of one ingest (see the module docstring)."""

    def __init__(
        self,
        sender: Sender,
        envelope: Envelope,
        report: IngestReport,
        control: Control,
        *,
        checkpoint: Checkpoint | None,
        wait: bool,
        progress: ProgressCallback | None,
        max_consecutive_failures: int,
        rows_expected: int | None,
    ) -> None:
        self.sender = sender
        self.envelope = envelope
        self.report = report
        self.control = control
        self.checkpoint = checkpoint
        self.wait = wait
        self.progress = progress
        self.max_consecutive_failures = max_consecutive_failures
        self.rows_expected = rows_expected
        self.started = time.monotonic()
        self.consecutive_failures = 0
        self.jobs: list[tuple[int, str]] = []  # (batch index, job id)
        self.pending_jobs: list[_SentBatch] = []

    async def send_all(self, batches: ObjectReceiveStream[Batch]) -> None:
        """One sender task: send batches until the stream ends."""
        async with batches:
            async for batch in batches:
                if self.control.aborted:
                    reason = VecMLError(f"not sent: {self.control.stopping}")
                    self.fail("not_sent", batch, reason)
                    continue
                await self._send(batch)
                await self._report_progress()

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

    async def _send(self, batch: Batch) -> None:
        report = self.report
        body = batch.body(self.envelope)
        stats = SendStats()
        try:
            answer = await self.sender.send(ENDPOINT, body, stats)
            job_id = answer.get("job_id")
            if not isinstance(job_id, str) or not job_id:
                raise VecMLError("the server accepted the batch but returned no job_id")
        except VecMLError as err:
            report.retries += stats.retries
            report.rate_limited += stats.rate_limited
            if stats.ambiguous and isinstance(err, APIError) and self._own_conflict(err, batch):
                await self._landed(batch, body.length, None)
                return
            self._failed(batch, err, maybe_applied=stats.ambiguous)
            return
        report.retries += stats.retries
        report.rate_limited += stats.rate_limited
        await self._landed(batch, body.length, job_id)

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
        if self.wait and job_id is not None:
            ids, _, _ = batch.column_bytes(vectors=False)
            self.pending_jobs.append(_SentBatch(job_id, batch.index, batch.first_row, ranges, ids))

    async def _report_progress(self) -> None:
        if self.progress is None:
            return
        report = self.report
        state = IngestProgress(
            rows_read=self.control.rows_read,
            rows_sent=report.rows_sent,
            rows_failed=report.failed_row_count,
            batches_sent=report.batches_sent,
            bytes_sent=report.bytes_sent,
            elapsed=time.monotonic() - self.started,
            rows_expected=self.rows_expected,
        )
        result = self.progress(state)
        if inspect.isawaitable(result):
            result = await result
        if result is False:
            self.control.abort(STOPPED_BY_CALLBACK)

    # ------------------------------------------------------------------ jobs

    async def wait_for_jobs(self, timeout: float | None, concurrency: int) -> None:
        """Await every accepted batch's upload job; a failed job's rows become failures."""
        pending, self.pending_jobs = self.pending_jobs, []
        limiter = anyio.Semaphore(max(1, concurrency))

        async def wait_one(sent: _SentBatch) -> None:
            async with limiter:
                job = self.sender.upload_job(sent.job_id)
                try:
                    await (job.wait() if timeout is None else job.wait(timeout=timeout))
                except VecMLError as err:
                    await self._job_failed(sent, err)
                else:
                    self.report.jobs_finished += 1

        async with anyio.create_task_group() as group:
            for sent in pending:
                group.start_soon(wait_one, sent)

    async def _job_failed(self, sent: _SentBatch, error: VecMLError) -> None:
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


STOPPED_BY_CALLBACK = "stopped by the progress callback"
