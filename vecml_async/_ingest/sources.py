"""Adapting every supported input into one stream of row chunks, and encoding the chunks.

Inputs: a 2-D numpy array; a scipy.sparse matrix (sparse collections); a pandas DataFrame; a
sequence of vectors with parallel ``ids``/``attributes``; a sequence, iterator or async
iterator of rows, each a tuple ``(id, vector)`` / ``(id, vector, attributes)`` or a dict with
``id`` (or ``string_id``), ``vector`` (or ``data``) and ``attributes``; a file path (see
``vecml_async._ingest.files``). Optional libraries are imported only when such an input is given.

Chunks hold about ``chunk_bytes`` of encoded rows: large enough that per-chunk overhead is
small, small enough that encoding one chunk keeps the event loop free (a few milliseconds).
"""

from __future__ import annotations

import itertools
import os
import uuid
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from vecml_async._ingest.encoding import (
    EncodedRows,
    check_matrix,
    check_sparse_row,
    encode_attributes,
    encode_ids,
    encode_matrix,
    encode_sparse_row,
    encode_vector_list,
    join_fragments,
)
from vecml_async.errors import InvalidInputError

#: Default encoded size of a chunk (see the module docstring).
CHUNK_BYTES = 1 << 20
#: Rough encoded bytes per float, used only to size chunks.
_BYTES_PER_FLOAT = 12


def require(module: str, extra: str) -> Any:
    """Import an optional dependency, or say which extra installs it."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"this input needs {module.split('.')[0]}: pip install 'vecml-async[{extra}]'"
        ) from None


def _module_of(obj: object) -> str:
    return type(obj).__module__.split(".")[0]


def rows_per_chunk(dim: int | None, chunk_bytes: int = CHUNK_BYTES) -> int:
    """Rows per chunk for vectors of ``dim`` values (about ``chunk_bytes`` encoded)."""
    return max(1, chunk_bytes // ((dim or 64) * _BYTES_PER_FLOAT + 48))


@dataclass(frozen=True)
class RawChunk:
    """Consecutive input rows, not yet encoded.

    ``vectors`` is a 2-D numpy array, a list of dense vectors, a scipy CSR matrix (sparse) or a
    list of ``(indices, values)`` pairs (sparse). ``ids`` ``None`` means ids are generated.
    """

    start: int
    vectors: Any
    ids: Sequence[object] | None = None
    attributes: Sequence[object] | None = None
    sparse: bool = False

    def __len__(self) -> int:
        return int(self.vectors.shape[0]) if hasattr(self.vectors, "shape") else len(self.vectors)


@dataclass
class ChunkEncoder:
    """Encodes raw chunks: validates, generates missing ids, checks duplicate ids.

    Attributes:
        dim: the expected vector dimension (learnt from the first row when ``None``).
        id_prefix: generated ids are ``f"{id_prefix}{row_index}"``.
        sparse_format: JSON form of sparse vectors (see ``_encoding.SPARSE_FORMATS``).
        check_duplicates: refuse an id seen earlier in the same input (keeps a set of ids).
        check_finite: refuse NaN and infinity in arrays (off when the caller checked the
            whole input already).
    """

    dim: int | None = None
    id_prefix: str = field(default_factory=lambda: f"vx-{uuid.uuid4().hex[:12]}-")
    sparse_format: str = "pairs"
    sparse_dim: int = 2**21
    check_duplicates: bool = True
    check_finite: bool = True
    generated: bool = False
    _seen: set[str] = field(default_factory=set, repr=False)

    def generated_ids(self, start: int, count: int) -> list[str]:
        return [f"{self.id_prefix}{i}" for i in range(start, start + count)]

    def encode(self, raw: RawChunk) -> EncodedRows:
        """Validate and encode one chunk (see the class docstring)."""
        n = len(raw)
        if raw.ids is None:
            ids, id_col = encode_ids(self.generated_ids(raw.start, n), raw.start)
        else:
            if len(raw.ids) != n:
                raise InvalidInputError(
                    f"{len(raw.ids)} ids for {n} vectors", field="string_ids", index=raw.start
                )
            ids, id_col = encode_ids(raw.ids, raw.start)
        if raw.attributes is not None and len(raw.attributes) != n:
            raise InvalidInputError(
                f"{len(raw.attributes)} attribute rows for {n} vectors",
                field="attributes",
                index=raw.start,
            )
        if raw.sparse:
            vec_col = self._encode_sparse(raw, ids)
            dim = None
        elif hasattr(raw.vectors, "ndim") and _module_of(raw.vectors) == "numpy":
            block = check_matrix(
                raw.vectors, ids, raw.start, self.dim, check_finite=self.check_finite
            )
            vec_col, dim = encode_matrix(block), int(block.shape[1])
        else:
            vec_col, dim = encode_vector_list(raw.vectors, ids, raw.start, self.dim)
        if dim is not None:
            self.dim = dim
        attrs = encode_attributes(raw.attributes, ids, raw.start) if raw.attributes else None
        # Last, so a chunk refused for another reason leaves the set of seen ids untouched.
        if raw.ids is None:
            self.generated = True
        elif self.check_duplicates:
            self._check_duplicates(ids, raw.start)
        return EncodedRows(raw.start, ids, id_col, vec_col, attrs, dim)

    def _check_duplicates(self, ids: list[str], start: int) -> None:
        seen = self._seen
        fresh = set(ids)
        if len(fresh) == len(ids) and seen.isdisjoint(fresh):
            seen |= fresh
            return
        # Slow path, errors only: find the first repeated id.
        local: set[str] = set()
        for offset, value in enumerate(ids):
            if value in seen or value in local:
                raise InvalidInputError(
                    "duplicate id", field="string_ids", index=start + offset, row_id=value
                )
            local.add(value)

    def _encode_sparse(self, raw: RawChunk, ids: list[str]) -> Any:
        rows: Iterable[tuple[Sequence[int], Sequence[float]]]
        vectors = raw.vectors
        if hasattr(vectors, "tocsr"):
            csr = vectors.tocsr()
            indptr, indices, data = csr.indptr, csr.indices, csr.data
            rows = (
                (
                    indices[indptr[i] : indptr[i + 1]].tolist(),
                    data[indptr[i] : indptr[i + 1]].tolist(),
                )
                for i in range(csr.shape[0])
            )
        else:
            rows = (_sparse_pair(v, raw.start + i, ids[i]) for i, v in enumerate(vectors))
        fragments = []
        for offset, (indices_, values_) in enumerate(rows):
            idx, vals = check_sparse_row(
                indices_, values_, dim=self.sparse_dim, index=raw.start + offset, row_id=ids[offset]
            )
            fragments.append(encode_sparse_row(idx, vals, sparse_format=self.sparse_format))
        return join_fragments(fragments)


def _sparse_pair(value: object, index: int, row_id: str) -> tuple[Sequence[int], Sequence[float]]:
    """A sparse row given as ``{index: value}`` or ``(indices, values)``."""
    if isinstance(value, Mapping):
        return list(value), list(value.values())
    if (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(hasattr(part, "__len__") and not isinstance(part, str) for part in value)
    ):
        return value[0], value[1]
    raise InvalidInputError(
        "a sparse vector is a {index: value} mapping or an (indices, values) pair",
        field="data",
        index=index,
        row_id=row_id,
    )


# ----------------------------------------------------------------------------- rows


def split_row(row: object, index: int) -> tuple[object | None, object, object | None]:
    """``(id, vector, attributes)`` of one row given as a tuple or a dict."""
    if isinstance(row, Mapping):
        row_id = row.get("id", row.get("string_id"))
        vector = row.get("vector", row.get("data"))
        if vector is None:
            raise InvalidInputError(
                "a row dict needs a 'vector' (or 'data') entry", field="data", index=index
            )
        return row_id, vector, row.get("attributes")
    if isinstance(row, tuple) and len(row) in (2, 3):
        return row[0], row[1], row[2] if len(row) == 3 else None
    raise InvalidInputError(
        "a row is a tuple (id, vector[, attributes]) or a dict with 'id', 'vector' and "
        f"'attributes'; got {type(row).__name__}",
        field="data",
        index=index,
    )


def _is_row(item: object) -> bool:
    """A row (tuple with a string id first, or a dict with a vector); otherwise a bare vector
    (a list, an array, or a ``{index: value}`` sparse vector)."""
    if isinstance(item, Mapping):
        return "vector" in item or "data" in item
    return isinstance(item, tuple) and len(item) in (2, 3) and isinstance(item[0], str)


def rows_to_chunk(start: int, rows: Sequence[object], sparse: bool) -> RawChunk:
    ids: list[object | None] = []
    vectors: list[object] = []
    attrs: list[object | None] = []
    for offset, row in enumerate(rows):
        if _is_row(row):
            row_id, vector, attributes = split_row(row, start + offset)
        else:  # a bare vector
            row_id, vector, attributes = None, row, None
        ids.append(row_id)
        vectors.append(vector)
        attrs.append(attributes)
    missing = sum(1 for i in ids if i is None)
    if missing and missing != len(ids):
        first = next(n for n, i in enumerate(ids) if i is None)
        raise InvalidInputError(
            "either every row has an id or none has", field="string_ids", index=start + first
        )
    return RawChunk(
        start,
        vectors,
        None if missing else ids,
        attrs if any(a is not None for a in attrs) else None,
        sparse,
    )


def _batched(items: Iterator[Any], size: int) -> Iterator[list[Any]]:
    while batch := list(itertools.islice(items, size)):
        yield batch


# ----------------------------------------------------------------------------- dispatch


@dataclass(frozen=True)
class SourceOptions:
    """How ``ingest`` reads its input (columns for frames and files)."""

    ids: Sequence[object] | Iterable[object] | None = None
    attributes: Sequence[object] | Iterable[object] | None = None
    vector_columns: Sequence[str] | str | None = None
    id_column: str | None = None
    attribute_columns: Sequence[str] = ()
    file_format: str | None = None
    sparse: bool = False
    dim: int | None = None
    chunk_bytes: int = CHUNK_BYTES


async def iter_chunks(data: object, options: SourceOptions) -> AsyncIterator[RawChunk]:
    """Every chunk of ``data``, in order (see the module docstring for the inputs)."""
    if isinstance(data, (str, os.PathLike)):
        from vecml_async._ingest.files import read_file

        async for chunk in read_file(os.fspath(data), options):
            yield chunk
        return
    module = _module_of(data)
    if module == "numpy":
        for chunk in _array_chunks(data, options):
            yield chunk
        return
    if module == "scipy" and hasattr(data, "tocsr"):
        for chunk in _sparse_chunks(data, options):
            yield chunk
        return
    if module == "pandas":
        from vecml_async._ingest.files import frame_chunks

        for chunk in frame_chunks(data, options, 0):
            yield chunk
        return
    if isinstance(data, AsyncIterable):
        async for chunk in _async_row_chunks(data, options):
            yield chunk
        return
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        for chunk in _sequence_chunks(data, options):
            yield chunk
        return
    if isinstance(data, Iterable):
        for chunk in _iter_chunks(iter(data), options):
            yield chunk
        return
    raise InvalidInputError(
        f"cannot ingest a {type(data).__name__}; see ingest() for the supported inputs",
        field="data",
    )


def _parallel(values: object, count: int, field_name: str) -> Sequence[object] | None:
    if values is None:
        return None
    seq = values if isinstance(values, Sequence) else list(values)  # type: ignore[call-overload]
    if len(seq) != count:
        raise InvalidInputError(f"{len(seq)} entries for {count} vectors", field=field_name)
    return seq


def _slices(
    data: Any, n: int, step: int, options: SourceOptions, sparse: bool
) -> Iterator[RawChunk]:
    """Chunks of ``step`` rows of an in-memory input and its parallel ids/attributes."""
    ids = _parallel(options.ids, n, "string_ids")
    attrs = _parallel(options.attributes, n, "attributes")
    for start in range(0, n, step):
        stop = min(n, start + step)
        yield RawChunk(
            start,
            data[start:stop],
            ids[start:stop] if ids is not None else None,
            attrs[start:stop] if attrs is not None else None,
            sparse,
        )


def _array_chunks(data: Any, options: SourceOptions) -> Iterator[RawChunk]:
    if data.ndim != 2:
        raise InvalidInputError(f"a vector array must be 2-D, got {data.ndim}-D", field="data")
    step = rows_per_chunk(int(data.shape[1]), options.chunk_bytes)
    yield from _slices(data, int(data.shape[0]), step, options, sparse=False)


def _sparse_chunks(data: Any, options: SourceOptions) -> Iterator[RawChunk]:
    csr = data.tocsr()
    n = int(csr.shape[0])
    avg_nnz = max(1, csr.nnz // max(1, n))
    step = max(1, options.chunk_bytes // (avg_nnz * 24 + 48))
    yield from _slices(csr, n, step, options, sparse=True)


def _sequence_chunks(data: Sequence[object], options: SourceOptions) -> Iterator[RawChunk]:
    n = len(data)
    if n and _is_row(data[0]) and options.ids is None and options.attributes is None:
        yield from _iter_chunks(iter(data), options)
        return
    dim = options.dim or (len(data[0]) if n and hasattr(data[0], "__len__") else None)
    yield from _slices(data, n, rows_per_chunk(dim, options.chunk_bytes), options, options.sparse)


def _first_dim(rows: list[Any]) -> int | None:
    try:
        vector = split_row(rows[0], 0)[1] if _is_row(rows[0]) else rows[0]
        return len(vector)  # type: ignore[arg-type]
    except (InvalidInputError, TypeError):
        return None


def _iter_chunks(items: Iterator[Any], options: SourceOptions) -> Iterator[RawChunk]:
    if options.ids is not None or options.attributes is not None:
        raise InvalidInputError(
            "with an iterator, give rows as (id, vector, attributes) tuples or dicts instead "
            "of separate ids/attributes",
            field="data",
        )
    first = list(itertools.islice(items, 1))
    if not first:
        return
    step = rows_per_chunk(options.dim or _first_dim(first), options.chunk_bytes)
    start = 0
    for batch in _batched(itertools.chain(first, items), step):
        yield rows_to_chunk(start, batch, options.sparse)
        start += len(batch)


async def _async_row_chunks(
    items: AsyncIterable[Any], options: SourceOptions
) -> AsyncIterator[RawChunk]:
    buffer: list[Any] = []
    start = 0
    step: int | None = None
    async for item in items:
        buffer.append(item)
        if step is None:
            step = rows_per_chunk(options.dim or _first_dim(buffer), options.chunk_bytes)
        if len(buffer) >= step:
            yield rows_to_chunk(start, buffer, options.sparse)
            start += len(buffer)
            buffer = []
    if buffer:
        yield rows_to_chunk(start, buffer, options.sparse)
