"""Packing encoded rows into ``add_data_batch`` requests (pure, no I/O).

A :class:`Batcher` is a state machine with two triggers, rows and bytes. It receives chunks of
encoded rows (:class:`~vecml_async._ingest.encoding.EncodedRows`) in input order and cuts them into
:class:`~.bodies.Batch` objects so that no batch has more than ``max_rows`` rows or a body
longer than its byte target, counting the whole body exactly (see ``bodies.py``): the
envelope with the key and names, the brackets, and every comma. A single row whose body
would exceed the target goes alone in a batch as long as it fits under ``hard_max_bytes``;
past that it is reported as an :class:`~.bodies.OversizeRow` (the rows before it still go
out).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from vecml_async._ingest.bodies import Batch, Envelope, OversizeRow, Segment
from vecml_async._ingest.encoding import EncodedRows

__all__ = ["Batch", "Batcher", "Envelope", "OversizeRow", "Segment"]


@dataclass(frozen=True)
class _Costs:
    """Cumulative bytes of a chunk's first ``k`` rows: int64 arrays when numpy is there
    (8 bytes a row, no Python int per row), else lists."""

    base: Sequence[int]  # cumulative id + vector bytes + 2 commas per row
    both: Sequence[int]  # base plus cumulative attribute bytes + 1 comma per row
    attrs: Sequence[int]  # cumulative attribute bytes + 1 comma per row


def _costs(chunk: EncodedRows) -> _Costs:
    # Cumulative bytes of the first k rows with their commas are differences of the bounds
    # (numpy arrays or lists; the arithmetic below works on both).
    ids, vecs = _as_array(chunk.id_col.bounds), _as_array(chunk.vec_col.bounds)
    base = ids + vecs - (ids[0] + vecs[0])
    if chunk.attr_col is None:
        attrs = _as_array(range(0, 3 * len(chunk) + 1, 3))
    else:
        bounds = _as_array(chunk.attr_col.bounds)
        attrs = bounds - bounds[0]
    return _Costs(base, base + attrs, attrs)


def _as_array(values: Sequence[int]) -> Any:
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is optional
        return _IntList(values)
    return np.asarray(values, dtype=np.int64)


class _IntList(list[int]):
    """Element-wise arithmetic on a list of ints, for when numpy is not installed."""

    def __add__(self, other: Any) -> _IntList:  # type: ignore[override]
        if isinstance(other, int):
            return _IntList(v + other for v in self)
        return _IntList(a + b for a, b in zip(self, other))

    def __sub__(self, other: Any) -> _IntList:
        if isinstance(other, int):
            return _IntList(v - other for v in self)
        return _IntList(a - b for a, b in zip(self, other))


@dataclass
class _Queued:
    """Rows ``position`` to ``stop - 1`` of a chunk fed to the batcher, not cut yet, with
    the chunk's cumulative costs."""

    chunk: EncodedRows
    costs: _Costs
    position: int
    stop: int


@dataclass
class _Plan:
    """The next batch, worked out without consuming anything (see :meth:`Batcher.cut`)."""

    segments: list[Segment] = field(default_factory=list)
    rows: int = 0
    base: int = 0
    attrs: int = 0
    any_attr: bool = False
    full: bool = False
    ends: list[int] = field(default_factory=list)  # queue position after each segment
    oversize: OversizeRow | None = None


class Batcher:
    """Cuts encoded rows into batches under ``max_rows`` and a byte target.

    Two ways to use it. *Push*: :meth:`add` takes a chunk and returns the batches it
    completes at ``max_bytes``; :meth:`flush` gives the last one. *Pull*: :meth:`feed`
    queues chunks and :meth:`cut` cuts the next batch at the target given then (at most
    ``max_bytes``), so a target chosen while rows wait in the queue applies to the very
    next batch. Either way a batch is *full* (the next row would take it over its target, or
    it holds ``max_rows`` rows) unless it is the last.
    """

    def __init__(
        self,
        envelope: Envelope,
        *,
        max_rows: int,
        max_bytes: int,
        hard_max_bytes: int | None = None,
    ) -> None:
        if max_rows < 1:
            raise ValueError("max_rows must be >= 1")
        hard = max_bytes if hard_max_bytes is None else hard_max_bytes
        if max_bytes > hard:
            raise ValueError("max_bytes must not exceed hard_max_bytes")
        if envelope.fixed(True) > max_bytes:
            raise ValueError("max_bytes is too small for any request")
        self.envelope = envelope
        self.max_rows = max_rows
        self.max_bytes = max_bytes
        self.hard_max_bytes = hard
        self._next_index = 0
        self._queue: list[_Queued] = []
        self.pending_rows = 0

    @property
    def min_target(self) -> int:
        """The smallest target any batch can be cut at (the envelope alone)."""
        return self.envelope.fixed(True)

    def _size(self, any_attr: bool, base: int, attrs: int) -> int:
        return self.envelope.fixed(any_attr) - 2 + base + (attrs - 1 if any_attr else 0)

    def oversize_row(self, chunk: EncodedRows) -> OversizeRow | None:
        """The first row of ``chunk`` whose body alone would exceed the hard cap, if any."""
        if chunk.nbytes + self.envelope.fixed(True) <= self.hard_max_bytes:
            return None  # the whole chunk fits in one body: no row of it is over
        queued = _Queued(chunk, _costs(chunk), 0, len(chunk))
        for p in range(len(chunk)):
            plan = _Plan()
            self._alone(plan, queued, p)
            if plan.oversize is not None:
                return plan.oversize
        return None

    # ------------------------------------------------------------------ pull

    def feed(self, chunk: EncodedRows) -> None:
        """Queue ``chunk``'s rows (after every row queued before)."""
        if len(chunk):
            self._queue.append(_Queued(chunk, _costs(chunk), 0, len(chunk)))
            self.pending_rows += len(chunk)

    def put_back(self, batch: Batch) -> None:
        """Queue ``batch``'s rows again, before every row still queued (a body the server
        refused as too large, to be cut again at a smaller target)."""
        self._queue[:0] = [
            _Queued(s.chunk, _costs(s.chunk), s.first, s.stop) for s in batch.segments
        ]
        self.pending_rows += batch.rows

    def ready(self, target: int) -> bool:
        """Whether the queued rows make a full batch at ``target`` (or a row that can
        never be sent, which :meth:`cut` reports)."""
        plan = self._plan(target)
        return plan.full or plan.oversize is not None

    def cut(self, target: int, *, final: bool = False) -> Batch | OversizeRow | None:
        """The next batch at ``target`` (capped at ``max_bytes``), or a row that cannot be
        sent alone under the hard cap; ``None`` when the queued rows do not fill a batch and
        more may come (``final=False``), or when nothing is queued."""
        plan = self._plan(target)
        if plan.oversize is not None:
            self._drop_front_row()
            return plan.oversize
        if not plan.rows or not (plan.full or final):
            return None
        self._consume(plan)
        batch = Batch(
            index=self._next_index,
            segments=tuple(plan.segments),
            rows=plan.rows,
            length=self._size(plan.any_attr, plan.base, plan.attrs),
            has_attributes=plan.any_attr,
            target=self._limit(target),
            full=plan.full,
        )
        self._next_index += 1
        return batch

    def _limit(self, target: int) -> int:
        return min(max(target, self.min_target), self.max_bytes)

    def _plan(self, target: int) -> _Plan:
        """The batch :meth:`cut` would make at ``target`` (same arithmetic, nothing taken)."""
        limit = self._limit(target)
        plan = _Plan()
        for queued in self._queue:
            chunk, costs, p, n = queued.chunk, queued.costs, queued.position, queued.stop
            while p < n:
                any_attr = plan.any_attr or chunk.attr_col is not None
                cum = costs.both if any_attr else costs.base
                current = self._size(any_attr, plan.base, plan.attrs)
                room = min(n - p, self.max_rows - plan.rows)
                # largest q in [p, p + room] with current + cum[q] - cum[p] <= limit
                q = bisect_right(cum, limit - current + int(cum[p]), p, p + room + 1) - 1
                if q > p:
                    self._take(plan, queued, p, q, any_attr)
                    p = q
                    if plan.rows == self.max_rows:
                        plan.full = True
                        return plan
                    continue
                if plan.rows:
                    plan.full = True  # row p does not fit; it opens the next batch
                    return plan
                self._alone(plan, queued, p)  # row p alone is over the target
                return plan
        return plan

    def _take(self, plan: _Plan, queued: _Queued, p: int, q: int, any_attr: bool) -> None:
        costs = queued.costs
        plan.segments.append(Segment(queued.chunk, p, q))
        plan.ends.append(q)
        plan.rows += q - p
        plan.base += int(costs.base[q] - costs.base[p])
        plan.attrs += int(costs.attrs[q] - costs.attrs[p])
        plan.any_attr = any_attr

    def _alone(self, plan: _Plan, queued: _Queued, p: int) -> None:
        """Row ``p`` alone exceeds the target: it goes alone if the hard cap allows."""
        chunk, costs = queued.chunk, queued.costs
        alone_attr = chunk.attr_col is not None
        size = self._size(
            alone_attr,
            int(costs.base[p + 1] - costs.base[p]),
            int(costs.attrs[p + 1] - costs.attrs[p]),
        )
        if size <= self.hard_max_bytes:
            self._take(plan, queued, p, p + 1, alone_attr)
            plan.full = True
        else:
            plan.oversize = OversizeRow(chunk.start + p, chunk.ids[p], size)

    def _consume(self, plan: _Plan) -> None:
        """Take the plan's rows off the front of the queue (one segment per chunk touched,
        starting with the first queued chunk)."""
        del self._queue[: len(plan.segments) - 1]
        head = self._queue[0]
        head.position = plan.ends[-1]
        if head.position == head.stop:
            self._queue.pop(0)
        self.pending_rows -= plan.rows

    def _drop_front_row(self) -> None:
        head = self._queue[0]
        head.position += 1
        if head.position == head.stop:
            self._queue.pop(0)
        self.pending_rows -= 1

    # ------------------------------------------------------------------ push

    def add(self, chunk: EncodedRows) -> list[Batch | OversizeRow]:
        """Take a chunk; return the batches it completes at ``max_bytes`` (and rows that can
        never fit)."""
        self.feed(chunk)
        out: list[Batch | OversizeRow] = []
        while True:
            item = self.cut(self.max_bytes)
            if item is None:
                return out
            out.append(item)

    def flush(self) -> Batch | None:
        """The last, partly filled batch, if any (rows that can never fit are dropped: the
        push API reports them from :meth:`add`)."""
        while self.pending_rows:
            item = self.cut(self.max_bytes, final=True)
            if isinstance(item, Batch) or item is None:
                return item
        return None
