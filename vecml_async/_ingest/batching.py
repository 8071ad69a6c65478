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


class Batcher:
    """Cuts chunks of encoded rows into batches under ``max_rows`` and ``max_bytes``."""

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
        self._reset()

    def _reset(self) -> None:
        self._segments: list[Segment] = []
        self._rows = 0
        self._base = 0
        self._attrs = 0
        self._any_attr = False

    def _size(self, any_attr: bool, base: int, attrs: int) -> int:
        return self.envelope.fixed(any_attr) - 2 + base + (attrs - 1 if any_attr else 0)

    def _emit(self) -> Batch:
        batch = Batch(
            index=self._next_index,
            segments=tuple(self._segments),
            rows=self._rows,
            length=self._size(self._any_attr, self._base, self._attrs),
            has_attributes=self._any_attr,
        )
        self._next_index += 1
        self._reset()
        return batch

    def add(self, chunk: EncodedRows) -> list[Batch | OversizeRow]:
        """Take a chunk; return the batches it completes (and rows that can never fit)."""
        out: list[Batch | OversizeRow] = []
        costs = _costs(chunk)
        n = len(chunk)
        p = 0
        while p < n:
            any_attr = self._any_attr or chunk.attr_col is not None
            cum = costs.both if any_attr else costs.base
            current = self._size(any_attr, self._base, self._attrs)
            room = min(n - p, self.max_rows - self._rows)
            # largest q in [p, p + room] with current + cum[q] - cum[p] <= max_bytes
            q = bisect_right(cum, self.max_bytes - current + cum[p], p, p + room + 1) - 1
            if q > p:
                self._segments.append(Segment(chunk, p, q))
                self._rows += q - p
                self._base += costs.base[q] - costs.base[p]
                self._attrs += costs.attrs[q] - costs.attrs[p]
                self._any_attr = any_attr
                p = q
                if self._rows == self.max_rows:
                    out.append(self._emit())
                continue
            if self._rows:
                out.append(self._emit())  # row p does not fit here; it opens the next batch
                continue
            # Row p alone exceeds max_bytes: send it alone if the hard cap allows.
            alone_attr = chunk.attr_col is not None
            size = self._size(
                alone_attr,
                costs.base[p + 1] - costs.base[p],
                costs.attrs[p + 1] - costs.attrs[p],
            )
            if size <= self.hard_max_bytes:
                self._segments.append(Segment(chunk, p, p + 1))
                self._rows, self._any_attr = 1, alone_attr
                self._base = costs.base[p + 1] - costs.base[p]
                self._attrs = costs.attrs[p + 1] - costs.attrs[p]
                out.append(self._emit())
            else:
                out.append(OversizeRow(chunk.start + p, chunk.ids[p], size))
            p += 1
        return out

    def flush(self) -> Batch | None:
        """The last, partly filled batch, if any."""
        return self._emit() if self._rows else None
