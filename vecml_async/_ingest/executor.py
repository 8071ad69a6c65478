"""Running one ingest: the pieces of the pipeline put together, and the outcome.

:func:`run_ingest` opens the input as a :class:`Source`, checks the parallel ids and
attributes against it (``Aligner``), settles the prefix of generated ids (from the input's
identity, or the checkpoint's header) and opens the checkpoint, checks an in-memory array
whole, then runs one reader task (``reader.Reader``), ``concurrency`` sender tasks
(``senders.BatchSender``) and, with ``wait=True``, the job watcher (``watcher.JobWatcher``),
joined by the feed of encoded rows (``feed.Feed``, within the memory budget). The sizer
(``sizing.py``) chooses each body's size from what the calls before it measured; the turns
(``turns.py``) stand in front of the client's budget. It depends on the client only through
the :class:`~vecml_async._ingest.senders.Sender` protocol.

When it ends, the report accounts for every row of the input; for an input that can be read
again it can also read again the rows that did not land (``IngestReport.failed_rows``).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator, Sequence

import anyio
import anyio.to_thread
import orjson

from vecml_async._config import HARD_MAX_REQUEST_BYTES
from vecml_async._ingest.align import Aligner
from vecml_async._ingest.batching import Batcher, Envelope
from vecml_async._ingest.checkpoint import Checkpoint
from vecml_async._ingest.chunks import RowError, Source
from vecml_async._ingest.defaults import BODY_SHARE, HELD_SHARE
from vecml_async._ingest.encoder import ChunkEncoder
from vecml_async._ingest.encoding import EncodedRows
from vecml_async._ingest.feed import Feed
from vecml_async._ingest.fingerprint import derived_prefix, ids_digest, random_prefix
from vecml_async._ingest.inputs import ReadOptions, open_source
from vecml_async._ingest.options import IngestOptions
from vecml_async._ingest.progress import ProgressCallback, ProgressReporter, progress_callback
from vecml_async._ingest.reader import Reader, encode_valid
from vecml_async._ingest.report import IngestReport, Row
from vecml_async._ingest.senders import STOPPED_BY_CALLBACK, BatchSender, Sender
from vecml_async._ingest.sizing import INITIAL_BYTES, MIN_BYTES, AdaptiveSize, FixedSize, Sizer
from vecml_async._ingest.sources import ArraySource
from vecml_async._ingest.turns import Turns
from vecml_async._ingest.watcher import JobWatcher
from vecml_async.errors import IngestError, InvalidInputError

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup


async def run_ingest(
    sender: Sender,
    project_name: str,
    collection_name: str,
    data: object,
    options: IngestOptions,
    *,
    dim: int | None,
    sparse: bool,
    sparse_dim: int,
) -> IngestReport:
    """Send ``data`` to a collection as concurrent ``add_data_batch`` requests.

    ``dim`` and ``sparse`` describe the collection (``dim`` ``None``: learnt from the first
    row). See :meth:`AsyncVecML.ingest` for the options and the outcome.
    """
    read = ReadOptions(
        options.columns, options.file_format, sparse, None if sparse else dim, options.chunk_bytes
    )
    source = await anyio.to_thread.run_sync(open_source, data, read)
    aligner = Aligner(options.ids, options.attributes, source.length)
    aligner.check_source(source.own_ids, source.own_attributes)
    if source.length == 0:
        raise InvalidInputError("the input holds no rows", field="data")
    checkpoint, prefix = await _identify(source, aligner, options, project_name, collection_name)
    encoder = _encoder(source, options, prefix, None if sparse else dim, sparse_dim)
    # A pass over the whole input (ids set, finiteness): off the event loop.
    await anyio.to_thread.run_sync(_precheck, source, aligner, encoder)
    report = IngestReport(project_name, collection_name, id_prefix=prefix)
    envelope = sender.envelope(project_name, collection_name)
    batcher = _batcher(envelope, options)
    sizer = _sizer(batcher, options)
    feed = Feed(batcher, int(options.max_memory * HELD_SHARE), lambda: sizer.target)
    reader = Reader(source, aligner, encoder, feed, report, options, checkpoint)
    async with progress_callback(options.progress, source.length) as callback:
        watcher = _watcher(sender, report, checkpoint, options) if options.wait else None
        senders = BatchSender(
            sender,
            envelope,
            report,
            reader,
            feed=feed,
            sizer=sizer,
            turns=Turns(sender.budget, ready=feed.ready),
            checkpoint=checkpoint,
            watcher=watcher,
            progress=_reporter(callback, reader, watcher, source.length),
            max_consecutive_failures=options.max_consecutive_failures,
            resplit=options.adaptive,
        )
        await run(reader, senders, watcher, options.concurrency)
    report.peak_memory, report.target_history = feed.peak, list(sizer.history)
    if reader.refused is not None:
        raise reader.refused  # refused before anything was sent
    settle(reader, senders, source.length)
    if report.rows_total == 0 and not report.failures and report.stopped is None:
        raise InvalidInputError("the input holds no rows", field="data")
    if source.rereadable and aligner.rereadable:
        report.reread = Rereader(source, aligner, encoder, checkpoint)
    return outcome(report, options.raise_on_error)


def _encoder(
    source: Source, options: IngestOptions, prefix: str, dim: int | None, sparse_dim: int
) -> ChunkEncoder:
    check_duplicates = options.check_duplicate_ids
    if check_duplicates is None:
        # In-memory inputs hold their ids already; a set of them costs about as much again.
        # For streams (iterators, files) that set would grow without bound, so it is opt-in.
        check_duplicates = source.length is not None and not source.blocking
    return ChunkEncoder(
        prefix,
        dim=dim,
        sparse_format=options.sparse_format,
        sparse_dim=sparse_dim,
        check_duplicates=check_duplicates,
    )


def _batcher(envelope: Envelope, options: IngestOptions) -> Batcher:
    try:
        return Batcher(
            envelope,
            max_rows=options.max_rows,
            max_bytes=options.max_bytes,
            hard_max_bytes=HARD_MAX_REQUEST_BYTES,
        )
    except ValueError as err:  # max_bytes below the envelope itself
        raise InvalidInputError(str(err), field="max_bytes") from None


def _sizer(batcher: Batcher, options: IngestOptions) -> Sizer:
    """A fixed size (``batch_bytes``) or the adaptive one, within ``max_bytes`` and a
    share of ``max_memory`` (several bodies sent while others are read and filled)."""
    smallest = batcher.min_target
    if options.batch_bytes is not None:
        if options.batch_bytes < smallest:
            raise InvalidInputError(
                f"{options.batch_bytes} is too small for any request", field="batch_bytes"
            )
        return FixedSize(options.batch_bytes)
    maximum = max(smallest, min(options.max_bytes, int(options.max_memory * BODY_SHARE)))
    return AdaptiveSize(
        maximum,
        initial=INITIAL_BYTES,
        minimum=max(smallest, MIN_BYTES),
        senders=options.concurrency,
    )


def _reporter(
    callback: ProgressCallback | None,
    reader: Reader,
    watcher: JobWatcher | None,
    rows_expected: int | None,
) -> ProgressReporter | None:
    """What calls ``progress=`` after each batch and, with a watcher, each job seen final."""
    if callback is None:
        return None

    def jobs() -> tuple[int, int]:
        return (watcher.seen, watcher.jobs_total) if watcher is not None else (0, 0)

    report = reader.report
    progress = ProgressReporter(callback, report, rows_expected, lambda: reader.read_to, jobs)
    if watcher is not None:
        watcher.on_change = lambda: progress(waiting=watcher.sending_done_at is not None)
    return progress


def _watcher(
    sender: Sender, report: IngestReport, checkpoint: Checkpoint | None, options: IngestOptions
) -> JobWatcher:
    return JobWatcher(
        report,
        checkpoint,
        poll=sender.poll,
        timeout=options.job_timeout,
        pollers=options.concurrency,
        backlog_bytes=options.max_memory // 8,
    )


async def _identify(
    source: Source, aligner: Aligner, options: IngestOptions, project: str, collection: str
) -> tuple[Checkpoint | None, str]:
    """The checkpoint (opened and checked against the input) and the generated-id prefix."""
    generates = aligner.ids is None and source.own_ids is not True
    identity = await anyio.to_thread.run_sync(source.identity) if generates else None
    prefix = derived_prefix(identity, project, collection) if identity else random_prefix()
    if options.checkpoint is None:
        return None, prefix
    fingerprint = await anyio.to_thread.run_sync(source.fingerprint)
    given = aligner.ids.sequence if aligner.ids is not None else None
    if given is not None:
        fingerprint = {**fingerprint, "ids": await anyio.to_thread.run_sync(ids_digest, given)}
    checkpoint = await Checkpoint.open(
        options.checkpoint,
        project,
        collection,
        fingerprint=fingerprint,
        id_prefix=prefix,
        length=source.length,
    )
    return checkpoint, checkpoint.id_prefix


def _precheck(source: Source, aligner: Aligner, encoder: ChunkEncoder) -> None:
    """Checks that cost little and let an in-memory input fail before anything is sent.

    What is checked here for the whole input is not checked again chunk by chunk: the
    encoder is told (``check_duplicates``, ``check_finite``)."""
    ids = aligner.ids.sequence if aligner.ids is not None else None
    if encoder.check_duplicates and ids is not None:
        texts = [str(value) for value in ids]
        if len(set(texts)) != len(texts):
            seen: set[str] = set()
            for index, value in enumerate(texts):
                if value in seen:
                    raise InvalidInputError(
                        "duplicate id", field="string_ids", index=index, row_id=value
                    )
                seen.add(value)
        encoder.check_duplicates = False  # the whole sequence of ids is unique
    if type(source) is ArraySource and source.data.dtype.kind == "f":
        import numpy as np

        data = source.data
        finite = np.isfinite(data).all(axis=1)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise InvalidInputError(
                "vector contains NaN or infinity; JSON cannot carry them",
                field="data",
                index=bad,
                row_id=str(ids[bad]) if ids is not None else None,
            )
        if encoder.dim is not None and data.shape[1] != encoder.dim:
            raise InvalidInputError(
                f"vectors have {data.shape[1]} values, the collection {encoder.dim}", field="data"
            )
        encoder.check_finite = False  # every row was just checked


class Rereader:
    """Reads rows of a re-readable input again, as ``failed_rows()`` gives them back.

    The same source, aligner and id prefix give every row the id it had; rows the
    checkpoint has are left out, and so are rows that do not encode (they would be refused
    again).
    """

    def __init__(
        self, source: Source, aligner: Aligner, encoder: ChunkEncoder, checkpoint: Checkpoint | None
    ) -> None:
        self.source = source
        self.aligner = aligner
        self.checkpoint = checkpoint
        self.settings = {
            "id_prefix": encoder.id_prefix,
            "dim": encoder.dim,
            "sparse_format": encoder.sparse_format,
            "sparse_dim": encoder.sparse_dim,
        }

    def __call__(self, wanted: Sequence[tuple[int, int]], unread_from: int | None) -> Iterator[Row]:
        spans: list[tuple[int, int | None]] = list(wanted)
        if unread_from is not None:
            spans.append((unread_from, None))
        if not spans:
            return
        encoder = ChunkEncoder(check_duplicates=False, **self.settings)  # type: ignore[arg-type]
        last = None if unread_from is not None else max(b for _, b in wanted)
        for item in self.source.items(min(a for a, _ in spans)):
            if isinstance(item, RowError):
                continue
            try:
                raw = self.aligner.apply(item)
            except InvalidInputError:
                return  # the parallel values end here: nothing further can be sent
            for first, stop in self._parts(spans, raw.start, raw.stop):
                for part in encode_valid(
                    encoder.encode, raw.slice(first - raw.start, stop - raw.start)
                ):
                    if isinstance(part, EncodedRows):
                        yield from _decoded(part)
            if last is not None and raw.stop >= last:
                return

    def _parts(
        self, spans: list[tuple[int, int | None]], start: int, stop: int
    ) -> Iterator[tuple[int, int]]:
        for a, b in spans:
            first, end = max(a, start), stop if b is None else min(b, stop)
            if first >= end:
                continue
            if self.checkpoint is None:
                yield first, end
            else:
                yield from self.checkpoint.remaining(first, end)


def _decoded(rows: EncodedRows) -> Iterator[Row]:
    for i, row_id in enumerate(rows.ids):
        attrs = orjson.loads(rows.attr_col.row(i)) if rows.attr_col is not None else {}
        yield row_id, orjson.loads(rows.vec_col.row(i)), attrs


def first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first real error of a task group (an unexpected one, e.g. a missing extra)."""
    errors: tuple[BaseException, ...] = group.exceptions
    for error in errors:
        if isinstance(error, BaseExceptionGroup):
            return first_error(error)
        if not isinstance(error, anyio.get_cancelled_exc_class()):
            return error
    return errors[0]


async def run(
    reader: Reader, senders: BatchSender, watcher: JobWatcher | None, concurrency: int
) -> None:
    """Run the reader, the senders and the job watcher to the end."""
    started = time.monotonic()
    report = reader.report
    try:
        async with anyio.create_task_group() as group:
            group.start_soon(reader.produce)
            if watcher is not None:
                group.start_soon(watcher.run)
            async with anyio.create_task_group() as sending:
                for _ in range(concurrency):
                    sending.start_soon(senders.send_all)
            if watcher is not None:
                watcher.sending_done()
                if watcher.on_change is not None and watcher.outstanding:
                    await watcher.on_change()
    except BaseExceptionGroup as group_error:
        raise first_error(group_error) from None
    finally:
        ended = time.monotonic()
        report.elapsed = ended - started
        if watcher is not None and senders.last_send_end is not None:
            report.waited_after_send = max(0.0, ended - senders.last_send_end)


def settle(reader: Reader, senders: BatchSender, length: int | None) -> IngestReport:
    """The report's totals once everything stopped (see ``report.py`` for the sum)."""
    report = reader.report
    known = reader.rows_seen if reader.exhausted else length
    report.rows_unread = None if known is None else known - reader.read_to
    report.rows_total = reader.read_to + (report.rows_unread or 0)
    report.stopped_at = reader.read_to if report.rows_unread != 0 else None
    report.generated_ids = reader.encoder.generated
    report.job_ids = [job for _, job in sorted(senders.jobs)]
    return report


def outcome(report: IngestReport, raise_on_error: bool) -> IngestReport:
    """The report, or the :class:`IngestError` carrying it."""
    if raise_on_error and report.failures and report.stopped != STOPPED_BY_CALLBACK:
        first = report.failures[0].exception
        raise IngestError(report) from first
    return report
