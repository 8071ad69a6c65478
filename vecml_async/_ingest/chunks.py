"""The source contract: what every input adapter yields, and the helpers adapters share.

An adapter (``sources.py`` for in-memory inputs, ``files.py`` for files, ``frames.py`` for
pandas frames) is a :class:`Source`. It reads its input as a sequence of items, in input
order:

* :class:`RawChunk`: the consecutive rows ``[start, start + len)``, not yet encoded, with
  the ids and attributes the input itself holds (an id column, ids in the rows);
* :class:`RowError`: one row that could not be parsed (a bad CSV or JSON line), at its index.

Indices are absolute: the ``k``-th row of the input is row ``k`` whichever chunk holds it, and
a row that failed to parse keeps its place. Parallel ``ids=`` / ``attributes=``, generated ids,
the checkpoint and the report all count rows this way, so they agree about every row.
"""

from __future__ import annotations

import abc
import importlib
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

#: Encoded size a chunk aims at: per-chunk overhead stays small, and encoding one chunk
#: holds the event loop (or a worker thread) for a few milliseconds only.
CHUNK_BYTES = 1 << 20
#: Rough encoded bytes per float, used only to size chunks.
_BYTES_PER_FLOAT = 12


def require(module: str, extra: str) -> Any:
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"this input needs {module.split('.')[0]}: pip install 'vecml-async[{extra}]'"
        ) from None


def rows_per_chunk(dim: int | None, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Rows per chunk for vectors of ``dim`` values (about ``chunk_bytes`` encoded)."""
    return max(1, chunk_bytes // ((dim or 64) * _BYTES_PER_FLOAT + 48))


@dataclass(frozen=True)
class RawChunk:
    """Consecutive input rows ``[start, start + len(self))``, not yet encoded.

    ``vectors`` is a 2-D numpy array, a list of dense vectors, a scipy CSR matrix (sparse) or
    a list of ``{index: value}`` / ``(indices, values)`` rows (sparse). ``ids`` and
    ``attributes`` are the input's own (``None``: it holds none).
    """

    start: int
    vectors: Any
    ids: Sequence[object] | None = None
    attributes: Sequence[object] | None = None
    sparse: bool = False

    def __len__(self) -> int:
        return int(self.vectors.shape[0]) if hasattr(self.vectors, "shape") else len(self.vectors)

    @property
    def stop(self) -> int:
        return self.start + len(self)

    def slice(self, first: int, stop: int) -> RawChunk:
        """Rows ``first`` to ``stop - 1`` of this chunk (positions within it)."""
        return RawChunk(
            self.start + first,
            self.vectors[first:stop],
            self.ids[first:stop] if self.ids is not None else None,
            self.attributes[first:stop] if self.attributes is not None else None,
            self.sparse,
        )

    def with_parallel(
        self, ids: Sequence[object] | None, attributes: Sequence[object] | None
    ) -> RawChunk:
        """This chunk with ids / attributes given next to the input (``None``: keep its own)."""
        return RawChunk(
            self.start,
            self.vectors,
            ids if ids is not None else self.ids,
            attributes if attributes is not None else self.attributes,
            self.sparse,
        )


@dataclass(frozen=True)
class RowError:
    """An input row that could not be parsed; it keeps its place ``index`` in the input.

    ``line`` is its 1-based line in a text file, when it comes from one.
    """

    index: int
    message: str
    line: int | None = None
    row_id: str | None = None

    @property
    def stop(self) -> int:
        return self.index + 1


#: What a source yields.
Item = RawChunk | RowError


class Source(abc.ABC):
    """One input, read as :data:`Item` s in order.

    Attributes:
        length: the input's rows, when known before reading it (``None``: a stream, or a
            file whose rows are counted only by reading it).
        rereadable: reading again gives the same rows (arrays, sequences, frames, files), so
            rows that were never sent can be read again for ``failed_rows()``.
        own_ids: the input holds the rows' ids (an id column, ids in the rows); ``None``
            when only its first row tells.
        own_attributes: likewise for attributes.
        blocking: reading blocks on I/O, so it runs in a worker thread.
    """

    length: int | None = None
    rereadable: bool = True
    own_ids: bool | None = False
    own_attributes: bool | None = False
    blocking: bool = False

    @abc.abstractmethod
    def items(self, start: int = 0) -> Iterator[Item]:
        """The items of the input from row ``start`` on (synchronous; may block)."""

    async def aitems(self) -> AsyncIterator[Item]:
        """The items of the whole input, for the event loop."""
        iterator = self.items()
        if not self.blocking:
            for item in iterator:
                yield item
            return
        try:
            while True:
                step: Item | None = await anyio.to_thread.run_sync(_next_item, iterator)
                if step is None:
                    return
                yield step
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def fingerprint(self) -> dict[str, Any]:
        """What identifies this input (checked when a checkpoint resumes); may block."""
        return {"kind": "stream"}

    def identity(self) -> bytes | None:
        """A digest of the whole content, when it can be had cheaply; may block.

        It derives the generated ids, so the same input sent again upserts the same rows.
        """
        return None


def _next_item(items: Iterator[Item]) -> Item | None:
    return next(items, None)


# ----------------------------------------------------------------------------- slicing


def slice_items(data: Any, length: int, start: int, step: int, sparse: bool) -> Iterator[Item]:
    """Chunks of ``step`` rows of a sliceable in-memory input, from row ``start``."""
    for first in range(start, length, step):
        stop = min(length, first + step)
        yield RawChunk(first, data[first:stop], sparse=sparse)


# ----------------------------------------------------------------------------- row tuples


def is_row(item: object) -> bool:
    """A row (a tuple with a string id first, or a dict with a vector); otherwise a bare
    vector (a list, an array, or a ``{index: value}`` sparse vector)."""
    if isinstance(item, Mapping):
        return "vector" in item or "data" in item
    return isinstance(item, tuple) and len(item) in (2, 3) and isinstance(item[0], str)


def split_row(row: object) -> tuple[object | None, object, object | None]:
    """``(id, vector, attributes)`` of one row given as a tuple, a dict or a bare vector.

    Raises ``ValueError`` for a dict without a vector.
    """
    if isinstance(row, Mapping):
        if "vector" not in row and "data" not in row:
            raise ValueError("a row dict needs a 'vector' (or 'data') entry")
        vector = row["vector"] if "vector" in row else row["data"]
        return row.get("id", row.get("string_id")), vector, row.get("attributes")
    if is_row(row):
        assert isinstance(row, tuple)
        return row[0], row[1], row[2] if len(row) == 3 else None
    return None, row, None


class RowParser:
    """Turns rows (tuples ``(id, vector[, attributes])``, dicts with ``id``, ``vector`` and
    ``attributes``, or bare vectors) into chunks.

    Whether the rows carry ids is decided by the input's first row and holds for the whole
    input: a row that breaks the rule, or a dict without a vector, is a :class:`RowError`
    and the rows around it go on.
    """

    def __init__(self, sparse: bool) -> None:
        self.sparse = sparse
        self.has_ids: bool | None = None

    def parse(
        self, start: int, rows: Sequence[object], lines: Sequence[int] | None = None
    ) -> Iterator[Item]:
        """Chunks (and row errors) of ``rows``, the input's rows from index ``start``."""
        ids: list[object] = []
        vectors: list[object] = []
        attrs: list[object | None] = []
        first = start
        for offset, row in enumerate(rows):
            problem = None
            try:
                row_id, vector, attributes = split_row(row)
            except ValueError as err:
                problem = str(err)
            else:
                if self.has_ids is None:
                    self.has_ids = row_id is not None
                if (row_id is not None) != self.has_ids:
                    problem = (
                        "this row has no id; the input's first row has one"
                        if self.has_ids
                        else "this row has an id; the input's first row has none"
                    )
            if problem is not None:
                if vectors:
                    yield self._chunk(first, ids, vectors, attrs)
                    ids, vectors, attrs = [], [], []
                line = lines[offset] if lines is not None else None
                yield RowError(start + offset, problem, line)
                first = start + offset + 1
                continue
            ids.append(row_id)
            vectors.append(vector)
            attrs.append(attributes)
        if vectors:
            yield self._chunk(first, ids, vectors, attrs)

    def _chunk(
        self, start: int, ids: list[object], vectors: list[object], attrs: list[object | None]
    ) -> RawChunk:
        return RawChunk(
            start,
            vectors,
            ids if self.has_ids else None,
            attrs if any(a is not None for a in attrs) else None,
            self.sparse,
        )


def first_dim(rows: Sequence[object]) -> int | None:
    """The dimension of the first row's vector, to size chunks (``None`` when unknown)."""
    try:
        vector = split_row(rows[0])[1]
        return len(vector)  # type: ignore[arg-type]
    except (ValueError, TypeError, IndexError):
        return None
