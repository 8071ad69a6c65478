"""The ingestion pipeline: source -> encoded chunks -> batches -> N senders -> report.

One producer task reads the input chunk by chunk, encodes each chunk once (in a worker
thread), and packs the rows into batches (``_batching.Batcher``: max rows, exact max bytes).
Batches go through a bounded memory object stream to ``concurrency`` sender tasks, so the
input is never read further ahead than the stream's few batches (backpressure, bounded
memory). Each sender takes a token from the client's limiter and POSTs the pre-encoded body;
a retry re-sends the same bytes with the same ids, so it cannot duplicate rows.

Every row read ends up sent, skipped (resume) or in ``report.failures`` with its id. A
transient failure (connection, 5xx, rate limit after retries) fails its batch and the ingest
goes on, until ``max_consecutive_failures`` in a row; any other refusal (authentication, a
missing collection, a refused body) stops it. Either way, the senders finish what they are
sending, the batches not yet sent are reported as ``not_sent``, and then the ingest returns
(or raises :class:`IngestError` carrying the report).
"""

from __future__ import annotations

import inspect
import os
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import orjson
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from vecml_async._ingest.batching import Batch, Batcher, Envelope, OversizeRow
from vecml_async._ingest.checkpoint import Checkpoint
from vecml_async._config import HARD_MAX_REQUEST_BYTES
from vecml_async._ingest.encoding import EncodedRows
from vecml_async._ingest.defaults import DEFAULT_CONCURRENCY as DEFAULT_CONCURRENCY
from vecml_async._ingest.defaults import DEFAULT_MAX_BYTES as DEFAULT_MAX_BYTES
from vecml_async._ingest.defaults import DEFAULT_MAX_ROWS as DEFAULT_MAX_ROWS
from vecml_async._ingest.report import BatchFailure, IngestReport
from vecml_async._ingest.sources import ChunkEncoder, RawChunk, SourceOptions, iter_chunks
from vecml_async._transport import SendStats
from vecml_async.errors import (
    IngestError,
    InvalidInputError,
    RateLimitError,
    ServerError,
    TransportError,
    VecMLError,
)

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from vecml_async._client import AsyncVecML

#: Encoded chunks bigger than this are encoded in a worker thread.
_THREAD_MIN_BYTES = 64 * 1024
TRANSIENT = (TransportError, ServerError, RateLimitError)
STOPPED_BY_CALLBACK = "stopped by the progress callback"


@dataclass(frozen=True)
class IngestProgress:
    """What a ``progress=`` callback receives after each batch."""

    rows_read: int
    rows_sent: int
    rows_failed: int
    batches_sent: int
    bytes_sent: int
    elapsed: float
    rows_expected: int | None


#: Called after each batch; returning ``False`` (or an awaitable giving ``False``) stops.
ProgressCallback = Callable[[IngestProgress], Any]


def _slice(raw: RawChunk, first: int, stop: int) -> RawChunk:
    return RawChunk(
        raw.start + first,
        raw.vectors[first:stop],
        raw.ids[first:stop] if raw.ids is not None else None,
        raw.attributes[first:stop] if raw.attributes is not None else None,
        raw.sparse,
    )


class _Run:
    """The state one ingest shares between its producer and senders."""

    def __init__(
        self,
        client: AsyncVecML,
        report: IngestReport,
        envelope: Envelope,
        encoder: ChunkEncoder,
        *,
        on_invalid: str,
        checkpoint: Checkpoint | None,
        wait: bool,
        progress: ProgressCallback | None,
        max_consecutive_failures: int,
        rows_expected: int | None,
    ) -> None:
        self.client = client
        self.transport = client.transport
        self.report = report
        self.envelope = envelope
        self.encoder = encoder
        self.on_invalid = on_invalid
        self.checkpoint = checkpoint
        self.wait = wait
        self.progress = progress
        self.max_consecutive_failures = max_consecutive_failures
        self.rows_expected = rows_expected
        self.started = time.monotonic()
        self.stopping: str | None = None
        self.aborted = False
        self.source_scope: anyio.CancelScope | None = None
        self.consecutive_failures = 0
        self.jobs: list[tuple[int, str]] = []  # (batch index, job id)
        self.pending_jobs: list[tuple[str, int, int, list[tuple[int, int]], bytes]] = []
        self.invalid: InvalidInputError | None = None

    # ------------------------------------------------------------------ stopping

    def stop_reading(self, reason: str) -> None:
        """Read no more input; batches already made still go out."""
        if self.stopping is None:
            self.stopping = reason
            self.report.stopped = reason
        if self.source_scope is not None:
            self.source_scope.cancel()

    def abort(self, reason: str) -> None:
        """Read no more input and send no more batches (those left are ``not_sent``)."""
        self.stop_reading(reason)
        self.aborted = True

    def fail(
        self, kind: str, batch: Batch, error: BaseException, job_id: str | None = None
    ) -> None:
        self.report.failures.append(
            BatchFailure(
                kind=kind,
                batch_index=batch.index,
                row_ids=batch.ids(),
                first_row=batch.first_row,
                error=str(error),
                exception=error,
                job_id=job_id,
                batch=batch,
            )
        )

    # ------------------------------------------------------------------ producer

    async def produce(
        self, data: Any, options: SourceOptions, batcher: Batcher, out: ObjectSendStream[Batch]
    ) -> None:
        async with out:
            source = iter_chunks(data, options).__aiter__()
            try:
                while self.stopping is None:
                    with anyio.CancelScope() as scope:
                        self.source_scope = scope
                        raw = await source.__anext__()
                    self.source_scope = None
                    if scope.cancelled_caught:
                        break
                    for part in self._unrecorded(raw):
                        for encoded in await self._encode_valid(part):
                            self.report.rows_total += len(encoded)
                            for item in await self._pack(batcher, encoded):
                                await self._emit(item, out)
                        if self.invalid is not None and self.on_invalid == "raise":
                            break
            except StopAsyncIteration:
                pass
            except InvalidInputError as err:  # the source itself refused (e.g. bad file)
                self.invalid = self.invalid or err
                self.report.failures.append(
                    BatchFailure(
                        "invalid",
                        None,
                        [err.row_id] if err.row_id else [],
                        err.index or 0,
                        str(err),
                        err,
                    )
                )
                self.stop_reading("invalid input")
            finally:
                self.source_scope = None
                closer = getattr(source, "aclose", None)
                if closer is not None:
                    with anyio.CancelScope(shield=True):
                        await closer()
            last = batcher.flush()
            if last is not None:
                await self._emit(last, out)

    async def _emit(self, item: Batch | OversizeRow, out: ObjectSendStream[Batch]) -> None:
        if isinstance(item, Batch):
            await out.send(item)
            return
        error = InvalidInputError(
            f"the row alone makes a {item.size:,}-byte request, over the "
            f"{HARD_MAX_REQUEST_BYTES:,}-byte cap",
            field="data",
            index=item.index,
            row_id=item.row_id,
        )
        # The row was counted when its chunk went into the batcher.
        self._record_invalid(error, item.row_id, item.index, counted=True)

    def _record_invalid(
        self, error: InvalidInputError, row_id: str | None, index: int, *, counted: bool = False
    ) -> None:
        self.invalid = self.invalid or error
        if not counted:
            self.report.rows_total += 1
        self.report.failures.append(
            BatchFailure("invalid", None, [row_id] if row_id else [], index, str(error), error)
        )
        if self.on_invalid == "raise":
            self.stop_reading("invalid input")

    def _unrecorded(self, raw: RawChunk) -> list[RawChunk]:
        """The parts of ``raw`` the checkpoint does not have yet (all of it without one)."""
        checkpoint = self.checkpoint
        if checkpoint is None:
            return [raw]
        stop = raw.start + len(raw)
        parts = checkpoint.remaining(raw.start, stop)
        skipped = len(raw) - sum(b - a for a, b in parts)
        if skipped:
            if raw.ids is not None:
                for index, expected in checkpoint.known_ids.items():
                    if raw.start <= index < stop and str(raw.ids[index - raw.start]) != expected:
                        raise InvalidInputError(
                            f"the checkpoint recorded id {expected!r} at this row; this is not "
                            "the input the checkpoint was written for",
                            field="checkpoint",
                            index=index,
                            row_id=str(raw.ids[index - raw.start]),
                        )
            self.report.rows_total += skipped
            self.report.rows_skipped += skipped
        return [_slice(raw, a - raw.start, b - raw.start) for a, b in parts]

    async def _pack(self, batcher: Batcher, encoded: EncodedRows) -> list[Batch | OversizeRow]:
        if encoded.nbytes >= _THREAD_MIN_BYTES:
            return await anyio.to_thread.run_sync(batcher.add, encoded)
        return batcher.add(encoded)

    async def _encode(self, raw: RawChunk) -> EncodedRows:
        if len(raw) * (self.encoder.dim or 64) * 10 >= _THREAD_MIN_BYTES:
            return await anyio.to_thread.run_sync(self.encoder.encode, raw)
        return self.encoder.encode(raw)

    async def _encode_valid(self, raw: RawChunk) -> list[EncodedRows]:
        """Encode ``raw``; an invalid row is recorded, and the rows before it are kept (and,
        with ``on_invalid="skip"``, the rows after it too)."""
        parts: list[EncodedRows] = []
        while len(raw) and not (self.invalid is not None and self.on_invalid == "raise"):
            try:
                parts.append(await self._encode(raw))
                break
            except InvalidInputError as caught:
                err = caught
            k = None if err.index is None else err.index - raw.start
            if k is None or not 0 <= k < len(raw):
                raise err
            if self.on_invalid == "raise" and self.report.rows_total == 0 and not parts:
                # Nothing was read before this chunk: refuse the input before sending anything.
                self._record_invalid(err, err.row_id, raw.start + k)
                break
            if k:
                # The rows before the bad one; they may hide an earlier bad row (e.g. the ids
                # are checked before the vectors), which is then the one reported.
                parts.extend(await self._encode_valid(_slice(raw, 0, k)))
                if self.invalid is not None and self.on_invalid == "raise":
                    break
            self._record_invalid(err, err.row_id, raw.start + k)
            raw = _slice(raw, k + 1, len(raw))
        return parts

    # ------------------------------------------------------------------ senders

    async def send_all(self, batches: ObjectReceiveStream[Batch]) -> None:
        async with batches:
            async for batch in batches:
                if self.aborted:
                    self.fail("not_sent", batch, VecMLError(f"not sent: {self.stopping}"))
                    continue
                await self._send(batch)
                await self._report_progress()

    async def _send(self, batch: Batch) -> None:
        report = self.report
        body = batch.body(self.envelope)
        stats = SendStats()
        try:
            answer = await self.transport.send("add_data_batch", body, stats)
            job_id = answer.get("job_id")
            if not isinstance(job_id, str) or not job_id:
                raise VecMLError("the server accepted the batch but returned no job_id")
        except VecMLError as err:
            report.retries += stats.retries
            report.rate_limited += stats.rate_limited
            self.fail("send", batch, err)
            self.consecutive_failures += 1
            if not isinstance(err, TRANSIENT):
                self.abort(f"{type(err).__name__}: {err}")
            elif self.consecutive_failures >= self.max_consecutive_failures:
                self.abort(f"{self.consecutive_failures} batches in a row failed")
            return
        report.retries += stats.retries
        report.rate_limited += stats.rate_limited
        self.consecutive_failures = 0
        report.rows_sent += batch.rows
        report.batches_sent += 1
        report.bytes_sent += body.length
        self.jobs.append((batch.index, job_id))
        ranges = batch.row_ranges()
        if self.checkpoint is not None:
            await self.checkpoint.record(ranges, job_id, batch.ids())
        if self.wait:
            id_blob = b",".join(bytes(s.chunk.id_col.span(s.first, s.stop)) for s in batch.segments)
            self.pending_jobs.append((job_id, batch.index, batch.first_row, ranges, id_blob))

    async def _report_progress(self) -> None:
        if self.progress is None:
            return
        report = self.report
        state = IngestProgress(
            rows_read=report.rows_total,
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
            self.abort(STOPPED_BY_CALLBACK)

    # ------------------------------------------------------------------ jobs

    async def wait_for_jobs(self, timeout: float | None, concurrency: int) -> None:
        pending = self.pending_jobs
        self.pending_jobs = []
        limiter = anyio.Semaphore(max(1, concurrency))

        async def wait_one(item: tuple[str, int, int, list[tuple[int, int]], bytes]) -> None:
            job_id, index, first_row, ranges, id_blob = item
            async with limiter:
                job = self.client.upload_job(job_id)
                try:
                    await (job.wait() if timeout is None else job.wait(timeout=timeout))
                except VecMLError as err:
                    ids: list[str] = orjson.loads(b"[" + id_blob + b"]")
                    self.report.rows_sent -= len(ids)
                    self.report.failures.append(
                        BatchFailure("job", index, ids, first_row, str(err), err, job_id)
                    )
                    if self.checkpoint is not None:
                        await self.checkpoint.undo(ranges, job_id)
                else:
                    self.report.jobs_finished += 1

        async with anyio.create_task_group() as group:
            for item in pending:
                group.start_soon(wait_one, item)


async def ingest(
    client: AsyncVecML,
    project_name: str,
    collection_name: str,
    data: Any,
    *,
    ids: Sequence[object] | None = None,
    attributes: Sequence[Mapping[str, object] | None] | None = None,
    vector_columns: Sequence[str] | str | None = None,
    id_column: str | None = None,
    attribute_columns: Sequence[str] = (),
    file_format: str | None = None,
    vector_dim: int | None = None,
    sparse: bool | None = None,
    sparse_format: str = "pairs",
    max_rows: int = DEFAULT_MAX_ROWS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    concurrency: int = DEFAULT_CONCURRENCY,
    wait: bool = False,
    job_timeout: float | None = None,
    raise_on_error: bool = True,
    on_invalid: str = "raise",
    checkpoint: str | os.PathLike[str] | None = None,
    progress: ProgressCallback | str | bool | None = None,
    check_duplicate_ids: bool | None = None,
    max_consecutive_failures: int = 8,
) -> IngestReport:
    """Send any amount of rows to a collection, as concurrent ``add_data_batch`` requests.

    Rows are encoded once, cut into requests of at most ``max_rows`` rows and
    ``max_bytes`` bytes (the whole body counted exactly; never over the 200 MB cap), and
    sent by ``concurrency`` tasks under the client's rate limiter. Retries re-send the same
    bytes with the same ids. Memory stays bounded whatever the input size.

    Args:
        data: a 2-D numpy array; a list of vectors; a scipy.sparse matrix (sparse
            collections); a pandas DataFrame; an iterable or async iterable of rows,
            each ``(id, vector)``, ``(id, vector, attributes)`` or a dict with ``id``,
            ``vector`` and ``attributes``; or a file path (``.csv``, ``.jsonl``,
            ``.json``, ``.npy``, ``.parquet``, optionally ``.gz``).
        ids / attributes: per-row ids and attribute dicts, next to an array or list.
            Without ids, unique ids (``report.id_prefix`` + row index) are generated
            before the first send.
        vector_columns / id_column / attribute_columns: columns of a frame or file.
        vector_dim / sparse / sparse_format: the collection's dimension (known after
            this client's ``init``), whether it is sparse, and the sparse JSON form.
        max_rows / max_bytes: per-request limits (``max_bytes`` counts the whole body).
        concurrency: requests in flight.
        wait: await every upload job; failed jobs count as failures.
        job_timeout: deadline of each job wait (default: the client's ``PollPolicy``).
        raise_on_error: raise :class:`IngestError` (with the report) when rows failed.
        on_invalid: ``"raise"`` stops at the first invalid row (when nothing was sent
            yet, as :class:`InvalidInputError`); ``"skip"`` reports it and goes on.
        checkpoint: a journal path; re-running the same ingest with it resumes.
        progress: a callback receiving :class:`IngestProgress` after each batch
            (return ``False`` to stop), or ``True``/``"rich"``/``"tqdm"`` for a bar.
        check_duplicate_ids: refuse an id repeated within the input; default: on for
            in-memory inputs, off for streams (the set would grow with the input).
        max_consecutive_failures: stop after this many batches in a row failed.

    Returns:
        An :class:`IngestReport` accounting for every row: sent, skipped (resume), or
        failed with its id.
    """
    if concurrency < 1:
        raise InvalidInputError("must be >= 1", field="concurrency")
    if not 0 < max_bytes <= HARD_MAX_REQUEST_BYTES:
        raise InvalidInputError(f"must be in 1..{HARD_MAX_REQUEST_BYTES}", field="max_bytes")
    if max_rows < 1:
        raise InvalidInputError("must be >= 1", field="max_rows")
    if on_invalid not in ("raise", "skip"):
        raise InvalidInputError("must be 'raise' or 'skip'", field="on_invalid")
    if max_consecutive_failures < 1:
        raise InvalidInputError("must be >= 1", field="max_consecutive_failures")
    encoder, is_sparse = client._encoder(project_name, collection_name, vector_dim, sparse)
    encoder.sparse_format = sparse_format
    if check_duplicate_ids is None:
        # In-memory inputs hold their ids already; a set of them costs about as much again.
        # For streams (iterators, files) that set would grow without bound, so it is opt-in.
        check_duplicate_ids = _rows_expected(data) is not None
    encoder.check_duplicates = check_duplicate_ids
    journal = None
    if checkpoint is not None:
        journal = await Checkpoint.open(
            checkpoint, project_name, collection_name, encoder.id_prefix
        )
        encoder.id_prefix = journal.id_prefix or encoder.id_prefix
    rows_expected = _rows_expected(data)
    # A pass over the whole input (ids set, finiteness): off the event loop.
    await anyio.to_thread.run_sync(_precheck, data, ids, attributes, encoder, check_duplicate_ids)
    report = IngestReport(project_name, collection_name, id_prefix=encoder.id_prefix)
    envelope = client._envelope(project_name, collection_name)
    batcher = Batcher(
        envelope, max_rows=max_rows, max_bytes=max_bytes, hard_max_bytes=HARD_MAX_REQUEST_BYTES
    )
    from vecml_async._ingest.progress import progress_callback

    async with progress_callback(progress, rows_expected) as callback:
        run = _Run(
            client,
            report,
            envelope,
            encoder,
            on_invalid=on_invalid,
            checkpoint=journal,
            wait=wait,
            progress=callback,
            max_consecutive_failures=max_consecutive_failures,
            rows_expected=rows_expected,
        )
        options = SourceOptions(
            ids=ids,
            attributes=attributes,
            vector_columns=vector_columns,
            id_column=id_column,
            attribute_columns=tuple(attribute_columns),
            file_format=file_format,
            sparse=is_sparse,
            dim=encoder.dim,
        )
        send, receive = anyio.create_memory_object_stream[Batch](max_buffer_size=concurrency)
        try:
            async with anyio.create_task_group() as group:
                group.start_soon(run.produce, data, options, batcher, send)
                async with receive:
                    for _ in range(concurrency):
                        group.start_soon(run.send_all, receive.clone())
            if wait and run.pending_jobs:
                await run.wait_for_jobs(job_timeout, concurrency * 2)
        except BaseExceptionGroup as group_error:
            raise _first_error(group_error) from None
    if report.rows_total == 0 and not report.failures and report.stopped is None:
        raise InvalidInputError("the input holds no rows", field="data")
    report.generated_ids = encoder.generated
    report.job_ids = [job for _, job in sorted(run.jobs)]
    report.elapsed = time.monotonic() - run.started
    if (
        run.invalid is not None
        and on_invalid == "raise"
        and report.rows_total <= 1
        and report.batches_sent == 0
        and len(report.failures) == 1
    ):
        raise run.invalid  # refused before anything was sent
    if raise_on_error and report.failures and report.stopped != STOPPED_BY_CALLBACK:
        first = report.failures[0].exception
        raise IngestError(report) from first
    return report


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error of a task group (an unexpected one, e.g. a missing extra)."""
    errors: tuple[BaseException, ...] = group.exceptions
    for error in errors:
        if isinstance(error, BaseExceptionGroup):
            return _first_error(error)
        if not isinstance(error, anyio.get_cancelled_exc_class()):
            return error
    return errors[0]


def _rows_expected(data: Any) -> int | None:
    shape = getattr(data, "shape", None)
    if shape is not None and len(shape) >= 1:
        return int(shape[0])
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        return len(data)
    return None


def _precheck(
    data: Any,
    ids: Sequence[object] | None,
    attributes: Sequence[object] | None,
    encoder: ChunkEncoder,
    check_duplicates: bool,
) -> None:
    """Checks that cost little and let an in-memory input fail before anything is sent.

    What is checked here for the whole input is not checked again chunk by chunk: the
    encoder is told (``check_duplicates``, ``check_finite``)."""
    n = _rows_expected(data)
    if n == 0:
        raise InvalidInputError("no rows to ingest", field="data")
    if n is not None:
        for name, values in (("string_ids", ids), ("attributes", attributes)):
            if values is not None and hasattr(values, "__len__") and len(values) != n:
                raise InvalidInputError(f"{len(values)} entries for {n} vectors", field=name)
    if check_duplicates and isinstance(ids, Sequence):
        if len(set(map(str, ids))) != len(ids):
            seen: set[str] = set()
            for index, value in enumerate(map(str, ids)):
                if value in seen:
                    raise InvalidInputError(
                        "duplicate id", field="string_ids", index=index, row_id=value
                    )
                seen.add(value)
        encoder.check_duplicates = False  # the whole sequence of ids is unique
    if (
        type(data).__module__ == "numpy"
        and getattr(data, "ndim", 0) == 2
        and data.dtype.kind == "f"
    ):
        import numpy as np

        finite = np.isfinite(data).all(axis=1)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            row_id = str(ids[bad]) if ids is not None else None
            raise InvalidInputError(
                "vector contains NaN or infinity; JSON cannot carry them",
                field="data",
                index=bad,
                row_id=row_id,
            )
        if encoder.dim is not None and data.shape[1] != encoder.dim:
            raise InvalidInputError(
                f"vectors have {data.shape[1]} values, the collection {encoder.dim}", field="data"
            )
        encoder.check_finite = False  # every row was just checked
