"""The request bodies of ``add_data_batch``: the envelope, batches of encoded rows, and how
a batch's body is assembled from slices of its chunks without encoding anything twice.

The body length of a batch of ``n`` rows is::

    fixed + sum(id_i) + (n - 1) + sum(vec_i) + (n - 1) [+ attr_fixed + sum(attr_i) + (n - 1)]

where ``fixed`` counts the envelope and the attribute part is present when any row of the
batch has attributes (rows without any then send ``{}``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
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
