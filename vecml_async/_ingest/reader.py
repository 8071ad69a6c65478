"""The reader task of an ingest: source -> aligned chunks -> encoded rows -> batches.

The reader takes the input's items in order (``Source.aitems``), gives each chunk its
parallel ids and attributes (``Aligner``), leaves out the rows a checkpoint has (checking
its end rows against the input), encodes the rest once (in a worker thread when large), and
queues the rows in the :class:`~.feed.Feed`, from which the ``concurrency`` sender tasks
(``BatchSender``) cut their batches. The feed admits a chunk only within the memory budget
and a short read-ahead, so the input is never read further ahead than that (backpressure,
bounded memory).

Every row of the input ends up sent, skipped (resume), failed (with its id) or unread. The
reader keeps ``read_to``: every row before it is in one of the first three places, every
row from it on is unread. An invalid row (one that does not parse or encode) is reported
and, with ``on_invalid="raise"``, stops reading; when nothing was handed to the senders yet,
the ingest raises the :class:`InvalidInputError` itself and sends nothing. A row whose body
alone would exceed the hard cap is an invalid row too, found as the chunk is encoded.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import anyio
import anyio.to_thread

from vecml_async._config import HARD_MAX_REQUEST_BYTES
from vecml_async._ingest.align import Aligner
from vecml_async._ingest.checkpoint import Checkpoint
from vecml_async._ingest.chunks import Item, RawChunk, RowError, Source
from vecml_async._ingest.encoder import ChunkEncoder
from vecml_async._ingest.encoding import EncodedRows
from vecml_async._ingest.feed import Feed
from vecml_async._ingest.options import IngestOptions
from vecml_async._ingest.report import BatchFailure, IngestReport, detached
from vecml_async.errors import InvalidInputError

#: Chunks with more encoded bytes than this are encoded (and packed) in a worker thread.
THREAD_MIN_BYTES = 64 * 1024
INVALID = "invalid input"


def encode_valid(
    encode: Callable[[RawChunk], EncodedRows], raw: RawChunk
) -> Iterator[EncodedRows | InvalidInputError]:
    """``raw`` encoded, in order: runs of valid rows, and the error of each invalid row.

    The encoder refuses a chunk at its first bad row; the rows before it are encoded again
    on their own (they may hide an earlier bad row, e.g. ids are checked before vectors, and
    that one is then reported first) and the rows after it go on.
    """
    while len(raw):
        try:
            encoded = encode(raw)
        except InvalidInputError as err:
            error = err
        else:
            yield encoded
            return
        k = None if error.index is None else error.index - raw.start
        if k is None or not 0 <= k < len(raw):
            raise error
        if k:
            yield from encode_valid(encode, raw.slice(0, k))
        yield error
        raw = raw.slice(k + 1, len(raw))


def _cost(raw: RawChunk, encoder: ChunkEncoder) -> int:
    """Rough encoded bytes of a chunk (decides whether it is encoded in a thread)."""
    return len(raw) * (encoder.dim or 64) * 10


class Reader:
    """The reader task and the state the senders share with it (see the module docstring)."""

    def __init__(
        self,
        source: Source,
        aligner: Aligner,
        encoder: ChunkEncoder,
        feed: Feed,
        report: IngestReport,
        options: IngestOptions,
        checkpoint: Checkpoint | None,
    ) -> None:
        self.source = source
        self.aligner = aligner
        self.encoder = encoder
        self.feed = feed
        self.report = report
        self.skip_invalid = options.skip_invalid
        self.checkpoint = checkpoint
        self.read_to = 0  # rows before it are accounted for; the rest are unread
        self.rows_seen = 0  # rows the source yielded (more than read_to when stopped)
        self.exhausted = False
        self.refused: InvalidInputError | None = None  # raised instead of a report
        self.hold_back = aligner.active and source.length is None
        self._stopping: str | None = None
        self._aborted = False
        self._scope: anyio.CancelScope | None = None

    # ------------------------------------------------------------------ control

    @property
    def aborted(self) -> bool:
        return self._aborted

    @property
    def stopping(self) -> str | None:
        return self._stopping

    @property
    def rows_read(self) -> int:
        return self.read_to

    def stop_reading(self, reason: str) -> None:
        """Read no more input; batches already made still go out."""
        if self._stopping is None:
            self._stopping = reason
            self.report.stopped = reason
        if self._scope is not None:
            self._scope.cancel()

    def abort(self, reason: str) -> None:
        """Read no more input and send no more batches (those left are ``not_sent``)."""
        self.stop_reading(reason)
        self._aborted = True

    # ------------------------------------------------------------------ reading

    @property
    def handed_over(self) -> bool:
        """Whether a batch was handed to the senders: cut already, or full in the feed (the
        rows queued make a whole batch at the current target, which would go out)."""
        return self.feed.cuts > 0 or self.feed.batcher.ready(self.feed.target())

    async def produce(self) -> None:
        """The reader task: every item of the input into the feed."""
        try:
            await self._read()
        except InvalidInputError as err:  # the input itself refused (a file, the ids)
            self._invalid(err, whole_input=True)
        finally:
            self.feed.close(discard=self.refused is not None)

    async def _read(self) -> None:
        items = self.source.aitems()
        # With parallel values next to an input of unknown length, one chunk is held back
        # until the next item (or the end) is known: entries left over are then refused
        # before the last chunk goes out.
        pending: RawChunk | None = None
        try:
            while self._stopping is None:
                await self.feed.wait_for_room()
                item = await self._next(items)
                if item is None:
                    break
                self.rows_seen = max(self.rows_seen, item.stop)
                if pending is not None:
                    await self._process(pending)
                    pending = None
                if self._stopping is not None:
                    break
                if isinstance(item, RowError):
                    self._row_error(item)
                elif self.hold_back:
                    pending = item
                else:
                    await self._process(item)
            if self.exhausted:
                self.aligner.finish(self.rows_seen)
                if pending is not None:
                    await self._process(pending)
        finally:
            with anyio.CancelScope(shield=True):
                await items.aclose()  # type: ignore[attr-defined]

    async def _next(self, items: AsyncIterator[Item]) -> Item | None:
        """The next item; ``None`` at the end or when reading was stopped meanwhile."""
        with anyio.CancelScope() as scope:
            self._scope = scope
            try:
                return await items.__anext__()
            except StopAsyncIteration:
                self.exhausted = True
                return None
            finally:
                self._scope = None
        return None  # cancelled by stop_reading

    async def _process(self, raw: RawChunk) -> None:
        """Align, skip what the checkpoint has, encode and pack one chunk."""
        assert raw.start == self.read_to, (raw.start, self.read_to)
        aligned = self.aligner.apply(raw)
        for first, stop, recorded in self._segments(aligned):
            if recorded:
                self.report.rows_skipped += stop - first
                self.read_to = stop
                continue
            part = aligned.slice(first - aligned.start, stop - aligned.start)
            self.read_to = await self._send_rows(part)
            if self.read_to < stop:
                return  # stopped at an invalid row

    def _segments(self, raw: RawChunk) -> list[tuple[int, int, bool]]:
        """``raw`` cut into ``(start, stop, recorded)`` runs by the checkpoint, after checking
        the recorded rows it holds against what the checkpoint saw of them."""
        if self.checkpoint is None:
            return [(raw.start, raw.stop, False)]
        todo = self.checkpoint.remaining(raw.start, raw.stop)
        out: list[tuple[int, int, bool]] = []
        position = raw.start
        for first, stop in todo:
            if first > position:
                out.append((position, first, True))
            out.append((first, stop, False))
            position = stop
        if position < raw.stop:
            out.append((position, raw.stop, True))
        recorded = [(a, b) for a, b, done in out if done]
        for index, digest, row_id in self.checkpoint.checks_in(raw.start, raw.stop):
            if any(a <= index < b for a, b in recorded):
                self._check_row(raw, index, digest, row_id)
        return out

    def _check_row(self, raw: RawChunk, index: int, digest: int, row_id: str) -> None:
        k = index - raw.start
        try:
            same = self.encoder.encode(raw.slice(k, k + 1), record=False).digest(0) == digest
        except InvalidInputError:
            same = False
        if not same:
            raise InvalidInputError(
                f"the checkpoint recorded row {index} (id {row_id!r}) with other content; "
                "this is not the input the checkpoint was written for",
                field="checkpoint",
                index=index,
            )

    async def _send_rows(self, raw: RawChunk) -> int:
        """Encode ``raw`` and queue it; the index after the last row accounted for."""
        if _cost(raw, self.encoder) >= THREAD_MIN_BYTES:
            parts = await anyio.to_thread.run_sync(self._encode_all, raw)
        else:
            parts = self._encode_all(raw)
        end = raw.start
        for part in parts:
            if isinstance(part, InvalidInputError):
                assert part.index is not None
                self._invalid(part)
                end = part.index + 1
                if self._stopping is not None:
                    return end
                continue
            await self.feed.put(part)
            end = part.start + len(part)
        return raw.stop if self._stopping is None else end

    def _encode_all(self, raw: RawChunk) -> list[EncodedRows | InvalidInputError]:
        out: list[EncodedRows | InvalidInputError] = []
        for part in encode_valid(self._encode_sized, raw):
            out.append(part)
            if isinstance(part, InvalidInputError) and not self.skip_invalid:
                break  # nothing after the first invalid row is used
        return out

    def _encode_sized(self, raw: RawChunk) -> EncodedRows:
        """``raw`` encoded; refused at its first row whose body alone is over the cap."""
        return self.encoder.encode(raw, check=self._check_sizes)

    def _check_sizes(self, encoded: EncodedRows) -> None:
        over = self.feed.batcher.oversize_row(encoded)
        if over is not None:
            raise InvalidInputError(
                f"the row alone makes a {over.size:,}-byte request, over the "
                f"{HARD_MAX_REQUEST_BYTES:,}-byte cap",
                field="data",
                index=over.index,
                row_id=over.row_id,
            )

    # ------------------------------------------------------------------ invalid rows

    def _row_error(self, item: RowError) -> None:
        error = InvalidInputError(item.message, field="data", index=item.index, row_id=item.row_id)
        self._invalid(error)
        self.read_to = item.stop

    def _invalid(self, error: InvalidInputError, *, whole_input: bool = False) -> None:
        """Report an invalid row (or input); stop reading unless invalid rows are skipped.

        Nothing handed to the senders yet and reading stops: the input is refused as a
        whole (the error is raised, nothing is sent). An error of the whole input counts
        no row: the rows from where it was found on are unread.
        """
        stops = whole_input or not self.skip_invalid
        if stops and not self.handed_over:
            self.refused = error
            self.stop_reading(INVALID)
            return
        self.report.failures.append(
            BatchFailure(
                "invalid",
                None,
                [error.row_id] if error.row_id and not whole_input else [],
                error.index if error.index is not None else self.read_to,
                str(error),
                detached(error),
                count=0 if whole_input else 1,
            )
        )
        if stops:
            self.stop_reading(INVALID)
