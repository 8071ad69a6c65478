"""In-memory inputs as sources: numpy arrays, scipy.sparse matrices, sequences of vectors,
and rows (tuples or dicts) from sequences, iterators and async iterators.

Arrays, matrices and sequences are re-readable from any row and know their length; their
fingerprint samples rows along them. Iterators are read once, and their length is learnt
by reading them to the end.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterable, AsyncIterator, Iterator, Sequence
from typing import Any

import orjson

from vecml_async._ingest.chunks import (
    CHUNK_BYTES,
    Item,
    RowParser,
    Source,
    first_dim,
    is_row,
    rows_per_chunk,
    slice_items,
)
from vecml_async._ingest.fingerprint import digest, memory_fingerprint, sample_indices
from vecml_async.errors import InvalidInputError

_JSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _dumps(value: object) -> bytes:
    """Rows as bytes for a fingerprint (anything orjson cannot write goes by its repr)."""
    return orjson.dumps(value, option=_JSON_OPTIONS, default=repr)


class ArraySource(Source):
    """A 2-D numpy array (or a memory-mapped ``.npy`` file), sliced in chunks."""

    def __init__(self, data: Any, chunk_bytes: int = CHUNK_BYTES) -> None:
        if data.ndim != 2:
            raise InvalidInputError(f"a vector array must be 2-D, got {data.ndim}-D", field="data")
        self.data = data
        self.rows = int(data.shape[0])
        self.length = self.rows
        self.step = rows_per_chunk(int(data.shape[1]), chunk_bytes)

    def items(self, start: int = 0) -> Iterator[Item]:
        return slice_items(self.data, self.rows, start, self.step, sparse=False)

    def fingerprint(self) -> dict[str, Any]:
        rows = self.data[sample_indices(self.rows)]
        return memory_fingerprint(
            "array",
            self.rows,
            digest([rows.tobytes()]),
            dim=int(self.data.shape[1]),
            dtype=str(self.data.dtype),
        )

    def identity(self) -> bytes:
        import numpy as np

        shape = f"{self.data.shape}{self.data.dtype.str}".encode()
        blocks = range(0, self.rows, self.step)
        parts = [np.ascontiguousarray(self.data[i : i + self.step]).data for i in blocks]
        return digest([shape, *parts]).encode()


class SparseSource(Source):
    """A scipy.sparse matrix (sparse collections), as CSR row slices."""

    def __init__(self, data: Any, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.csr = data.tocsr()
        self.rows = int(self.csr.shape[0])
        self.length = self.rows
        avg_nnz = max(1, self.csr.nnz // max(1, self.rows))
        self.step = max(1, chunk_bytes // (avg_nnz * 24 + 48))

    def items(self, start: int = 0) -> Iterator[Item]:
        return slice_items(self.csr, self.rows, start, self.step, sparse=True)

    def _parts(self, csr: Any) -> list[bytes]:
        return [
            str(csr.shape).encode(),
            csr.indptr.tobytes(),
            csr.indices.tobytes(),
            csr.data.tobytes(),
        ]

    def fingerprint(self) -> dict[str, Any]:
        rows = self.csr[sample_indices(self.rows)]
        return memory_fingerprint("sparse", self.rows, digest(self._parts(rows)))

    def identity(self) -> bytes:
        return digest(self._parts(self.csr)).encode()


class VectorsSource(Source):
    """A sequence of vectors (lists, tuples, 1-D arrays, or sparse ``{index: value}``)."""

    def __init__(
        self, data: Sequence[object], dim: int | None, sparse: bool, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        self.data = data
        self.rows = len(data)
        self.length = self.rows
        self.sparse = sparse
        if dim is None and self.rows and hasattr(data[0], "__len__"):
            dim = len(data[0])
        self.step = rows_per_chunk(dim, chunk_bytes)

    def items(self, start: int = 0) -> Iterator[Item]:
        return slice_items(self.data, self.rows, start, self.step, self.sparse)

    def fingerprint(self) -> dict[str, Any]:
        rows = [self.data[i] for i in sample_indices(self.rows)]
        return memory_fingerprint("vectors", self.rows, digest([_dumps(rows)]))


class RowsSource(Source):
    """Rows ``(id, vector[, attributes])`` or dicts from a sequence (re-readable) or an
    iterator (read once)."""

    def __init__(
        self, data: Any, dim: int | None, sparse: bool, chunk_bytes: int = CHUNK_BYTES
    ) -> None:
        self.sparse = sparse
        self.dim = dim
        self.chunk_bytes = chunk_bytes
        if isinstance(data, Sequence):
            self.data: Any = data
            self.rows = len(data)
            self.length = self.rows
            self.own_ids = bool(self.length) and _row_id(data[0]) is not None
            self.own_attributes = None
        else:
            self.data = iter(data)
            self.rereadable = False
            self.own_ids = None
            self.own_attributes = None

    def items(self, start: int = 0) -> Iterator[Item]:
        if not isinstance(self.data, Sequence):
            if start:
                raise RuntimeError("a one-shot iterator cannot be read again")
            yield from _iterator_items(self.data, self.dim, self.sparse, self.chunk_bytes)
            return
        parser = RowParser(self.sparse)
        parser.has_ids = self.own_ids
        step = rows_per_chunk(self.dim or first_dim(self.data), self.chunk_bytes)
        for first in range(start, len(self.data), step):
            yield from parser.parse(first, self.data[first : first + step])

    def fingerprint(self) -> dict[str, Any]:
        if not isinstance(self.data, Sequence):
            return super().fingerprint()
        rows = [self.data[i] for i in sample_indices(len(self.data))]
        return memory_fingerprint("rows", len(self.data), digest([_dumps(rows)]))


def _row_id(row: object) -> object | None:
    if isinstance(row, dict):
        return row.get("id", row.get("string_id"))
    return row[0] if is_row(row) else None  # type: ignore[index]


def _iterator_items(
    rows: Iterator[object], dim: int | None, sparse: bool, chunk_bytes: int
) -> Iterator[Item]:
    first = list(itertools.islice(rows, 1))
    if not first:
        return
    step = rows_per_chunk(dim or first_dim(first), chunk_bytes)
    parser = RowParser(sparse)
    start = 0
    everything = itertools.chain(first, rows)
    while batch := list(itertools.islice(everything, step)):
        yield from parser.parse(start, batch)
        start += len(batch)


class AsyncRowsSource(Source):
    """Rows from an async iterable (read once, on the event loop)."""

    rereadable = False
    own_ids = None
    own_attributes = None

    def __init__(
        self, data: AsyncIterable[object], dim: int | None, sparse: bool, chunk_bytes: int
    ) -> None:
        self.data = data
        self.dim = dim
        self.sparse = sparse
        self.chunk_bytes = chunk_bytes

    def items(self, start: int = 0) -> Iterator[Item]:
        raise RuntimeError("an async iterable is read with aitems()")

    async def aitems(self) -> AsyncIterator[Item]:
        buffer: list[object] = []
        start = 0
        step: int | None = None
        parser = RowParser(self.sparse)
        async for row in self.data:
            buffer.append(row)
            if step is None:
                step = rows_per_chunk(self.dim or first_dim(buffer), self.chunk_bytes)
            if len(buffer) >= step:
                for item in parser.parse(start, buffer):
                    yield item
                start += len(buffer)
                buffer = []
        for item in parser.parse(start, buffer):
            yield item
