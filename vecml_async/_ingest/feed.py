"""Encoded rows between the reader and the senders, within the memory budget.

The reader :meth:`Feed.put` s encoded chunks; a sender about to send :meth:`Feed.cut` s the
next batch from them at the target in force then (see :class:`~.batching.Batcher`'s pull
API), and gives it back with :meth:`Feed.done` once it landed or failed.

**Memory.** Everything the pipeline holds of the input is counted here, in the bytes of the
encoded chunks (``held``): the rows read ahead and the batches being sent, which are slices
of the same chunks. A chunk's bytes are given back when every row of it is done. The reader
waits before a chunk would take ``held`` past ``limit`` while some batch is in flight (one
will give bytes back; with nothing in flight a chunk is always taken, so a single body
larger than the budget still goes, alone), and it reads ahead no further than
:data:`READ_AHEAD` targets: one batch ready to go, one filling. ``peak`` is the most held at
once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

import anyio

from vecml_async._ingest.batching import Batch, Batcher, OversizeRow
from vecml_async._ingest.encoding import EncodedRows

#: Targets' worth of rows the reader keeps queued ahead of the senders.
READ_AHEAD: Final = 2


class _Held:
    """A chunk fed to the batcher: its bytes, and its rows not done yet."""

    __slots__ = ("nbytes", "rows_left")

    def __init__(self, nbytes: int, rows: int) -> None:
        self.nbytes = nbytes
        self.rows_left = rows


class Feed:
    """The queue of encoded rows of one ingest (see the module docstring)."""

    def __init__(self, batcher: Batcher, limit: int, target: Callable[[], int]) -> None:
        self.batcher = batcher
        self.limit = limit
        self.target = target
        self.held = 0
        self.peak = 0
        self.in_flight = 0
        self.cuts = 0
        self.closed = False
        self._chunks: dict[int, _Held] = {}
        self._changed = anyio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = anyio.Event()

    async def _wait(self) -> None:
        await self._changed.wait()

    # ------------------------------------------------------------------ reader side

    def _room(self, nbytes: int) -> bool:
        if self.batcher.ready(READ_AHEAD * self.target()):
            return False  # far enough ahead
        return self.held + nbytes <= self.limit or self.in_flight == 0 or not self.held

    async def wait_for_room(self) -> None:
        """Wait until the reader may read further (before it takes the next item of the
        input, so that nothing is read that could not be queued)."""
        while not self._room(0):
            await self._wait()

    async def put(self, chunk: EncodedRows) -> None:
        """Queue ``chunk`` once there is room for it."""
        if not len(chunk):
            return
        while not self._room(chunk.nbytes):
            await self._wait()
        self._chunks[id(chunk)] = _Held(chunk.nbytes, len(chunk))
        self.held += chunk.nbytes
        self.peak = max(self.peak, self.held)
        self.batcher.feed(chunk)
        self._notify()

    def close(self, *, discard: bool = False) -> None:
        """No more rows will come (``discard``: drop the queued ones, nothing is sent)."""
        self.closed = True
        if discard:
            while self.batcher.pending_rows:
                self.batcher.cut(self.batcher.max_bytes, final=True)
        self._notify()

    # ------------------------------------------------------------------ sender side

    @property
    def exhausted(self) -> bool:
        """Nothing is queued and nothing more will be."""
        return self.closed and not self.batcher.pending_rows

    def ready(self) -> bool:
        """Whether a batch can be cut now at the target in force."""
        if self.exhausted:
            return False
        return self.closed or self.batcher.ready(self.target())

    async def wait_ready(self) -> int | None:
        """Wait until a batch can be cut at the target in force (full, or the last rows);
        that target, or ``None`` once nothing is left.

        The target is read again at every wake-up: a call that ends meanwhile may move it,
        and the reader reads ahead by the target in force, so waiting for a full batch at
        an older, larger target could wait for rows the reader will not read."""
        while True:
            if self.exhausted:
                return None
            target = self.target()
            if self.closed or self.batcher.ready(target):
                return target
            await self._wait()

    def cut(self, target: int) -> Batch | None:
        """The next batch at ``target`` (``None`` if the rows do not fill one yet); a batch
        is in flight until :meth:`done` or :meth:`requeue`."""
        item = self.batcher.cut(target, final=self.closed)
        # The reader refuses every row over the hard cap before it is queued.
        assert not isinstance(item, OversizeRow), "a row over the hard cap was queued"
        if item is not None:
            self.in_flight += 1
            self.cuts += 1
            self._notify()  # room to read further ahead
        return item

    def requeue(self, batch: Batch) -> None:
        """``batch`` goes back to the front of the queue, to be cut again."""
        self.in_flight -= 1
        self.batcher.put_back(batch)
        self._notify()

    def done(self, batch: Batch) -> None:
        """``batch`` landed or failed: its rows' bytes can go."""
        self.in_flight -= 1
        for segment in batch.segments:
            held = self._chunks.get(id(segment.chunk))
            if held is None:
                continue
            held.rows_left -= len(segment)
            if held.rows_left <= 0:
                self.held -= held.nbytes
                del self._chunks[id(segment.chunk)]
        self._notify()
