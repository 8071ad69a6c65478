"""Parallel ``ids=`` and ``attributes=``: applied to every input's rows in one place.

Each chunk a source yields covers the absolute rows ``[start, stop)``; the aligner gives it
entries ``start`` to ``stop - 1`` of the parallel ids and attributes, whatever the input
kind. A sequence is sliced (and can be sliced again when rows are read again); an iterable
next to a stream is consumed in step with the rows, a row that failed to parse taking its
entry too. Next to an input of known length an iterable is read into a list first (at most
one entry more than the rows), so that a wrong length is refused before anything is sent.

Refused, never ignored (:class:`InvalidInputError` naming ``ids`` or ``attributes``):

* a length that does not match the rows read, raised before the chunk concerned is sent:
  too few entries at the first chunk that finds none left, too many when the input ends
  (before its last chunk is sent);
* parallel values next to an input that holds its own (an id column, rows with ids,
  attribute columns, rows with attributes).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator, Mapping, Sequence, Set

from vecml_async._ingest.chunks import RawChunk
from vecml_async.errors import InvalidInputError

#: Values that are not one entry per row, in order.
_NOT_PARALLEL = (str, bytes, Mapping, Set)


class _Parallel:
    """One parallel field: a sequence sliced by offset, or an iterator consumed in step."""

    def __init__(self, name: str, values: object, length: int | None) -> None:
        self.name = name
        self.sequence: Sequence[object] | None = None
        self.iterator: Iterator[object] | None = None
        self.position = 0
        if isinstance(values, _NOT_PARALLEL) or not isinstance(values, Iterable):
            raise InvalidInputError(
                f"{name} must be a sequence or an iterable with one entry per row", field=name
            )
        entries: Iterable[object] = values
        if hasattr(entries, "to_list"):  # a pandas Series: slice it by position
            entries = entries.to_list()
        if hasattr(entries, "__len__") and hasattr(entries, "__getitem__"):
            self.sequence = entries  # type: ignore[assignment]  # numpy arrays slice as well
        elif length is not None:
            self.sequence = list(itertools.islice(entries, length + 1))
        else:
            self.iterator = iter(entries)
        if self.sequence is not None and length is not None and len(self.sequence) != length:
            raise InvalidInputError(
                f"{len(self.sequence)} entries for the input's {length} rows", field=name
            )

    @property
    def rereadable(self) -> bool:
        return self.sequence is not None

    def take(self, start: int, count: int) -> Sequence[object]:
        """Entries ``start`` to ``start + count - 1``; too few is refused."""
        if self.sequence is not None:
            part = self.sequence[start : start + count]
        else:
            assert self.iterator is not None
            self.skip_to(start)
            part = list(itertools.islice(self.iterator, count))
            self.position += len(part)
        if len(part) != count:
            have = start + len(part)
            raise InvalidInputError(
                f"{have} entries, and the input has more rows", field=self.name, index=have
            )
        return part

    def skip_to(self, start: int) -> None:
        """Consume the entries of rows before ``start`` (rows that failed to parse)."""
        if self.iterator is not None and start > self.position:
            skipped = sum(1 for _ in itertools.islice(self.iterator, start - self.position))
            self.position += skipped

    def finish(self, rows: int) -> None:
        """The input ended after ``rows`` rows: more entries than that are refused."""
        if self.sequence is not None:
            extra = len(self.sequence) > rows
        else:
            assert self.iterator is not None
            self.skip_to(rows)
            extra = next(self.iterator, _END) is not _END
        if extra:
            raise InvalidInputError(
                f"more entries than the input's {rows} rows", field=self.name, index=rows
            )


_END = object()


class Aligner:
    """Gives each chunk its parallel ids and attributes (see the module docstring)."""

    def __init__(self, ids: object, attributes: object, length: int | None) -> None:
        self.ids = _Parallel("ids", ids, length) if ids is not None else None
        self.attributes = (
            _Parallel("attributes", attributes, length) if attributes is not None else None
        )

    @property
    def active(self) -> bool:
        return self.ids is not None or self.attributes is not None

    @property
    def rereadable(self) -> bool:
        """The parallel values can be given again for rows read again."""
        return all(p.rereadable for p in (self.ids, self.attributes) if p is not None)

    def check_source(self, own_ids: bool | None, own_attributes: bool | None) -> None:
        """Refuse parallel values next to an input known to hold its own."""
        if own_ids and self.ids is not None:
            raise InvalidInputError(
                "the input holds its own ids (an id column or ids in the rows); "
                "pass either those or ids=, not both",
                field="ids",
            )
        if own_attributes and self.attributes is not None:
            raise InvalidInputError(
                "the input holds its own attributes (attribute columns or attributes in the "
                "rows); pass either those or attributes=, not both",
                field="attributes",
            )

    def apply(self, chunk: RawChunk) -> RawChunk:
        """``chunk`` with its parallel ids and attributes."""
        if not self.active:
            return chunk
        self.check_source(chunk.ids is not None, chunk.attributes is not None)
        n = len(chunk)
        ids = self.ids.take(chunk.start, n) if self.ids is not None else None
        attrs = self.attributes.take(chunk.start, n) if self.attributes is not None else None
        return chunk.with_parallel(ids, attrs)

    def skip_to(self, start: int) -> None:
        for parallel in (self.ids, self.attributes):
            if parallel is not None:
                parallel.skip_to(start)

    def finish(self, rows: int) -> None:
        """The input ended after ``rows`` rows; refuse parallel values left over."""
        for parallel in (self.ids, self.attributes):
            if parallel is not None:
                parallel.finish(rows)
