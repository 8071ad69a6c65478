"""Packing encoded rows into ``add_data_batch`` requests (pure, no I/O).

A :class:`Batcher` is a state machine with two triggers, rows and bytes. It receives chunks of
encoded rows (:class:`~vecml_async._ingest.encoding.EncodedRows`) in input order and cuts them into
:class:`Batch` objects so that no batch has more than ``max_rows`` rows or a body longer than
``max_bytes``, counting the whole body exactly: the envelope with the key and names, the
brackets, and every comma. A single row whose body would exceed ``max_bytes`` goes alone in a
batch as long as it fits under ``hard_max_bytes``; past that it is reported as an
:class:`OversizeRow` (the rows before it still go out).

The body length of a batch of ``n`` rows is::

    fixed + sum(id_i) + (n - 1) + sum(vec_i) + (n - 1) [+ attr_fixed + sum(attr_i) + (n - 1)]

where ``fixed`` counts the envelope and the attribute part is present when any row of the
batch has attributes (rows without any then send ``{}``).
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from vecml_async._body import NUMPY_OPTION, EncodedBody
from vecml_async._ingest.encoding import EncodedRows
from vecml_async.errors import InvalidInputError

IDS_OPEN: Final = b',"string_ids":['
IDS_TO_DATA: Final = b'],"data":['
DATA_OPEN: Final = b',"data":['
DATA_TO_ATTRS: Final = b'],"attributes":['
CLOSE: Final = b"]}"
EMPTY_ATTRS: Final = b"{}"
#: Fields every add_data_batch body is made of (extra fields may not replace them).
_BODY_FIELDS: Final = frozenset(
    {"user_api_key", "project_name", "collection_name", "string_ids", "data", "attributes"}
)


@dataclass(frozen=True)
class Envelope:
    """The constant part of every ``add_data_batch`` body of one ingest."""

    # '{"user_api_key":...,"project_name":...,"collection_name":...': holds the key, so it is
    # kept out of repr (tracebacks rendered with locals show reprs).
    head: bytes = field(repr=False)

    @classmethod
    def create(
        cls,
        api_key: str,
        project_name: str,
        collection_name: str,
        extra: Mapping[str, Any] | None = None,
    ) -> Envelope:
        """The envelope of one collection; ``extra`` adds constant fields to every body
        (refused where it would replace a field the body is made of)."""
        clash = sorted(set(extra or ()) & _BODY_FIELDS)
        if clash:
            raise InvalidInputError(
                f"{', '.join(clash)} cannot be set through extra fields", field="extra_body"
            )
        fields = {
            "user_api_key": api_key,
            "project_name": project_name,
            "collection_name": collection_name,
            **(extra or {}),
        }
        try:
            encoded = orjson.dumps(fields, option=NUMPY_OPTION)
        except orjson.JSONEncodeError as err:
            raise InvalidInputError(f"cannot be sent as JSON: {err}", field="extra_body") from None
        return cls(encoded[:-1])

    @property
    def prefix(self) -> bytes:
        """Everything up to the first id."""
        return self.head + IDS_OPEN

    def fixed(self, with_attributes: bool) -> int:
        """Bytes of a body that do not depend on its rows."""
        size = len(self.head) + len(IDS_OPEN) + len(IDS_TO_DATA) + len(CLOSE)
        return size + len(DATA_TO_ATTRS) if with_attributes else size


@dataclass(frozen=True)
class Segment:
    """Rows ``first`` to ``stop - 1`` of one chunk."""

    chunk: EncodedRows
    first: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.first


@dataclass(frozen=True)
class Batch:
    """One ``add_data_batch`` request's worth of rows, with its exact body length."""

    index: int
    segments: tuple[Segment, ...]
    rows: int
    length: int
    has_attributes: bool
    #: The byte target the batch was cut at, and whether it is full at that target (the
    #: next row would have taken it over, or it holds ``max_rows`` rows); only the last
    #: batch of an input (or of a stop) is not.
    target: int = 0
    full: bool = True

    @property
    def first_row(self) -> int:
        """Index, in the whole input, of the batch's first row."""
        first = self.segments[0]
        return first.chunk.start + first.first

    def row_ranges(self) -> list[tuple[int, int]]:
        """The batch's rows as ``[start, stop)`` ranges of input indices (merged)."""
        out: list[tuple[int, int]] = []
        for seg in self.segments:
            start, stop = seg.chunk.start + seg.first, seg.chunk.start + seg.stop
            if out and out[-1][1] == start:
                out[-1] = (out[-1][0], stop)
            else:
                out.append((start, stop))
        return out

    def ids(self) -> list[str]:
        """The batch's row ids, in order."""
        out: list[str] = []
        for seg in self.segments:
            out.extend(seg.chunk.ids[seg.first : seg.stop])
        return out

    def body(self, envelope: Envelope) -> EncodedBody:
        """The request body as slices of the encoded chunks (nothing is encoded again)."""
        pieces: list[bytes | memoryview] = [envelope.prefix]
        _join(pieces, (s.chunk.id_col.span(s.first, s.stop) for s in self.segments))
        pieces.append(IDS_TO_DATA)
        _join(pieces, (s.chunk.vec_col.span(s.first, s.stop) for s in self.segments))
        if self.has_attributes:
            pieces.append(DATA_TO_ATTRS)
            _join(pieces, (_attr_span(s) for s in self.segments))
        pieces.append(CLOSE)
        length = sum(len(p) for p in pieces)
        if length != self.length:  # the batcher's arithmetic is the contract; check it
            raise AssertionError(f"batch body is {length} bytes, expected {self.length}")
        return EncodedBody(tuple(pieces), length)

    def column_bytes(self, *, vectors: bool = True) -> tuple[bytes, bytes | None, bytes | None]:
        """Copies of the batch's encoded ids, vectors (unless ``vectors=False``) and
        attributes (``None`` when it has none), each column's fragments joined by commas.

        They hold nothing of the chunks, so they outlive them (a failure keeps them).
        """
        ids = b",".join(bytes(s.chunk.id_col.span(s.first, s.stop)) for s in self.segments)
        if not vectors:
            return ids, None, None
        vecs = b",".join(bytes(s.chunk.vec_col.span(s.first, s.stop)) for s in self.segments)
        attrs = None
        if self.has_attributes:
            attrs = b",".join(bytes(_attr_span(s)) for s in self.segments)
        return ids, vecs, attrs

    def digests(self) -> tuple[int, int]:
        """Checksums of the batch's first and last rows (see ``EncodedRows.digest``)."""
        first, last = self.segments[0], self.segments[-1]
        return first.chunk.digest(first.first), last.chunk.digest(last.stop - 1)

    def end_ids(self) -> tuple[str, str]:
        """The ids of the batch's first and last rows."""
        first, last = self.segments[0], self.segments[-1]
        return first.chunk.ids[first.first], last.chunk.ids[last.stop - 1]


def _join(pieces: list[bytes | memoryview], spans: Iterator[bytes | memoryview]) -> None:
    for n, span in enumerate(spans):
        if n:
            pieces.append(b",")
        pieces.append(span)


def _attr_span(seg: Segment) -> bytes | memoryview:
    if seg.chunk.attr_col is not None:
        return seg.chunk.attr_col.span(seg.first, seg.stop)
    return b",".join([EMPTY_ATTRS] * len(seg))


@dataclass(frozen=True)
class OversizeRow:
    """A row whose body alone would exceed the hard cap: it cannot be sent."""

    index: int
    row_id: str
    size: int


@dataclass(frozen=True)
class _Costs:
    base: list[int]  # cumulative id + vector bytes + 2 commas per row
    both: list[int]  # base plus cumulative attribute bytes + 1 comma per row
    attrs: list[int]  # cumulative attribute bytes + 1 comma per row


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
    return _Costs(base.tolist(), (base + attrs).tolist(), attrs.tolist())


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

    def tolist(self) -> list[int]:
        return list(self)


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
                q = bisect_right(cum, limit - current + cum[p], p, p + room + 1) - 1
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
        plan.base += costs.base[q] - costs.base[p]
        plan.attrs += costs.attrs[q] - costs.attrs[p]
        plan.any_attr = any_attr

    def _alone(self, plan: _Plan, queued: _Queued, p: int) -> None:
        """Row ``p`` alone exceeds the target: it goes alone if the hard cap allows."""
        chunk, costs = queued.chunk, queued.costs
        alone_attr = chunk.attr_col is not None
        size = self._size(
            alone_attr, costs.base[p + 1] - costs.base[p], costs.attrs[p + 1] - costs.attrs[p]
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
