"""Row chunks from pandas frames and from files (CSV, JSON lines, JSON, .npy, Parquet).

Files are streamed: memory stays about one chunk whatever the file size, except for a plain
JSON array (``.json``), which has to be parsed whole. Blocking reads run in a worker thread,
one chunk at a time. ``.gz`` files are decompressed on the fly.

Columns (CSV, Parquet, frames): ``id_column`` gives the ids, ``attribute_columns`` the
attributes, and ``vector_columns`` the vector (default: every other column). In JSON lines
each line is a row dict (``id``/``string_id``, ``vector``/``data``, ``attributes``).
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import zlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from typing import IO, Any

import anyio
import anyio.to_thread
import orjson

from vecml_async._ingest.sources import (
    RawChunk,
    SourceOptions,
    _array_chunks,
    require,
    rows_per_chunk,
    rows_to_chunk,
)
from vecml_async.errors import InvalidInputError

FORMATS_BY_SUFFIX = {
    ".csv": "csv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "json",
    ".npy": "npy",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def file_format_of(path: str, given: str | None) -> tuple[str, bool]:
    """``(format, gzipped)`` of a file, from ``given`` or its name."""
    lowered = path.lower()
    gzipped = lowered.endswith(".gz")
    if gzipped:
        lowered = lowered[:-3]
    if given is not None:
        fmt = given.lower()
        if fmt not in set(FORMATS_BY_SUFFIX.values()):
            raise InvalidInputError(
                f"unknown file format {given!r}; use csv, jsonl, json, npy or parquet",
                field="file_format",
            )
        return fmt, gzipped
    for suffix, fmt in FORMATS_BY_SUFFIX.items():
        if lowered.endswith(suffix):
            return fmt, gzipped
    raise InvalidInputError(
        f"cannot tell the format of {path!r} from its name; pass file_format=",
        field="file_format",
    )


def _open_text(path: str, gzipped: bool) -> IO[str]:
    if gzipped:
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", newline="")
    return open(path, encoding="utf-8", newline="")


def _next_chunk(chunks: Iterator[RawChunk], path: str) -> RawChunk | None:
    """The next chunk; a file that cannot be read or decoded is an input error."""
    try:
        return next(chunks, None)
    except InvalidInputError:
        raise
    except (OSError, EOFError, ValueError, csv.Error, zlib.error) as err:
        # gzip.BadGzipFile / truncated gzip, UnicodeDecodeError, pyarrow's ArrowInvalid, ...
        raise InvalidInputError(
            f"cannot read {path!r}: {type(err).__name__}: {err}", field="data"
        ) from err


async def _threaded(chunks: Iterator[RawChunk], path: str) -> AsyncIterator[RawChunk]:
    """Run a blocking chunk generator one step at a time in a worker thread."""
    try:
        while True:
            chunk = await anyio.to_thread.run_sync(_next_chunk, chunks, path)
            if chunk is None:
                return
            yield chunk
    finally:
        close: Callable[[], None] | None = getattr(chunks, "close", None)
        if close is not None:
            close()


async def read_file(path: str, options: SourceOptions) -> AsyncIterator[RawChunk]:
    """Chunks of a data file (see the module docstring)."""
    if not await anyio.Path(path).is_file():
        raise InvalidInputError(f"no such file: {path!r}", field="data")
    fmt, gzipped = file_format_of(path, options.file_format)
    if fmt == "npy":
        if gzipped:
            raise InvalidInputError(
                ".npy files are read memory-mapped; decompress it first", field="data"
            )
        np = require("numpy", "numpy")
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as err:
            raise InvalidInputError(f"not a readable .npy file: {err}", field="data") from err
        for chunk in _array_chunks(array, options):
            yield chunk
        return
    generator = {
        "csv": _csv_chunks,
        "jsonl": _jsonl_chunks,
        "json": _json_chunks,
        "parquet": _parquet_chunks,
    }[fmt](path, gzipped, options)
    async for chunk in _threaded(generator, path):
        yield chunk


def _csv_chunks(path: str, gzipped: bool, options: SourceOptions) -> Iterator[RawChunk]:
    with _open_text(path, gzipped) as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None:
            raise InvalidInputError(f"{path!r} is empty", field="data")
        id_at, attr_at, vec_at = _column_plan(header, options)
        step = rows_per_chunk(len(vec_at), options.chunk_bytes)
        start = 0
        while True:
            lines = [row for _, row in zip(range(step), reader)]
            if not lines:
                return
            vectors: list[list[float]] = []
            ids: list[object] | None = [] if id_at is not None else None
            attrs: list[object] | None = [] if attr_at else None
            for offset, row in enumerate(lines):
                line = start + offset + 2  # 1-based, after the header
                if len(row) != len(header):
                    raise InvalidInputError(
                        f"line {line} has {len(row)} fields, the header {len(header)}",
                        field="data",
                        index=start + offset,
                    )
                try:
                    vectors.append([float(row[j]) for j in vec_at])
                except ValueError:
                    j = next(j for j in vec_at if not _is_number(row[j]))
                    raise InvalidInputError(
                        f"line {line}: column {header[j]!r} holds {row[j]!r}, not a number; "
                        "list non-numeric columns in attribute_columns",
                        field="data",
                        index=start + offset,
                    ) from None
                if ids is not None and id_at is not None:
                    ids.append(row[id_at])
                if attrs is not None:
                    attrs.append({name: row[j] for name, j in attr_at if row[j] != ""})
            yield RawChunk(start, vectors, ids, attrs, options.sparse)
            start += len(lines)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _column_plan(
    header: Sequence[str], options: SourceOptions
) -> tuple[int | None, list[tuple[str, int]], list[int]]:
    """Positions of the id column, the attribute columns and the vector columns."""
    position = {name: j for j, name in enumerate(header)}

    def find(name: str, what: str) -> int:
        if name not in position:
            raise InvalidInputError(f"no column {name!r} in the header", field=what)
        return position[name]

    id_at = find(options.id_column, "id_column") if options.id_column else None
    attr_at = [(name, find(name, "attribute_columns")) for name in options.attribute_columns]
    if options.vector_columns is not None:
        names = (
            [options.vector_columns]
            if isinstance(options.vector_columns, str)
            else list(options.vector_columns)
        )
        vec_at = [find(name, "vector_columns") for name in names]
    else:
        taken = {id_at, *(j for _, j in attr_at)}
        vec_at = [j for j in range(len(header)) if j not in taken]
    if not vec_at:
        raise InvalidInputError("no vector columns left", field="vector_columns")
    return id_at, attr_at, vec_at


def _jsonl_chunks(path: str, gzipped: bool, options: SourceOptions) -> Iterator[RawChunk]:
    with _open_text(path, gzipped) as handle:
        step: int | None = None
        start = 0
        rows: list[Any] = []
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                rows.append(orjson.loads(line))
            except orjson.JSONDecodeError as err:
                raise InvalidInputError(
                    f"line {number} is not JSON: {err}", field="data", index=start + len(rows)
                ) from None
            if step is None:
                vector = (
                    rows[0].get("vector", rows[0].get("data"))
                    if isinstance(rows[0], dict)
                    else None
                )
                step = rows_per_chunk(
                    len(vector) if isinstance(vector, list) else None, options.chunk_bytes
                )
            if len(rows) >= step:
                yield rows_to_chunk(start, rows, options.sparse)
                start += len(rows)
                rows = []
        if rows:
            yield rows_to_chunk(start, rows, options.sparse)


def _json_chunks(path: str, gzipped: bool, options: SourceOptions) -> Iterator[RawChunk]:
    opener = gzip.open if gzipped else open
    with opener(path, "rb") as handle:
        raw = handle.read()
    try:
        records = orjson.loads(raw)
    except orjson.JSONDecodeError as err:
        raise InvalidInputError(f"{path!r} is not JSON: {err}", field="data") from None
    if not isinstance(records, list):
        raise InvalidInputError("a .json input must hold an array of row objects", field="data")
    step = rows_per_chunk(options.dim, options.chunk_bytes)
    for start in range(0, len(records), step):
        yield rows_to_chunk(start, records[start : start + step], options.sparse)


def _parquet_chunks(path: str, gzipped: bool, options: SourceOptions) -> Iterator[RawChunk]:
    if gzipped:
        raise InvalidInputError("Parquet files carry their own compression", field="data")
    pq = require("pyarrow.parquet", "parquet")
    parquet = pq.ParquetFile(path)
    start = 0
    step = rows_per_chunk(options.dim, options.chunk_bytes)
    for record_batch in parquet.iter_batches(batch_size=step):
        frame = record_batch.to_pandas()
        yield from frame_chunks(frame, options, start)
        start += len(frame)


def frame_chunks(frame: Any, options: SourceOptions, offset: int) -> Iterator[RawChunk]:
    """Chunks of a pandas DataFrame; row indices start at ``offset``."""
    np = require("numpy", "pandas")
    columns = [str(c) for c in frame.columns]
    id_at, attr_at, vec_at = _column_plan(columns, options)
    attr_names = [name for name, _ in attr_at]
    vec_names = [columns[j] for j in vec_at]
    if len(vec_names) == 1 and frame[vec_names[0]].dtype == object:
        cells = frame[vec_names[0]].to_list()
        try:
            vectors = np.stack([np.asarray(c) for c in cells]) if cells else np.empty((0, 0))
        except ValueError:
            raise InvalidInputError(
                f"column {vec_names[0]!r} holds vectors of different lengths", field="data"
            ) from None
    else:
        for name in vec_names:
            if frame[name].dtype.kind not in "fiu":
                raise InvalidInputError(
                    f"column {name!r} is not numeric; list it in attribute_columns",
                    field="vector_columns",
                )
        vectors = frame[vec_names].to_numpy()
    n = len(frame)
    ids = frame[columns[id_at]].astype(str).to_list() if id_at is not None else options.ids
    if ids is not None and id_at is None:
        ids = list(ids)
    records = frame[attr_names].to_dict("records") if attr_names else None
    attrs = [_drop_missing(r) for r in records] if records is not None else options.attributes
    step = rows_per_chunk(int(vectors.shape[1]) if vectors.ndim == 2 else None, options.chunk_bytes)
    for start in range(0, n, step):
        stop = min(n, start + step)
        yield RawChunk(
            offset + start,
            vectors[start:stop],
            ids[start:stop] if ids is not None else None,  # type: ignore[index]
            attrs[start:stop] if attrs is not None else None,  # type: ignore[index]
        )


def _drop_missing(record: dict[str, Any]) -> dict[str, Any]:
    """Attributes of a frame row; missing values (None, NaN, NA) leave the attribute out."""
    out = {}
    for key, value in record.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if type(value).__name__ in ("NAType", "NaTType"):
            continue
        out[str(key)] = value
    return out
