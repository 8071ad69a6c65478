"""Files as sources: CSV, JSON lines, JSON, ``.npy`` and Parquet, CSV and JSON optionally
``.gz``.

Files are streamed: memory stays about one chunk whatever the file size, except for a plain
JSON array (``.json``), which has to be parsed whole. Reads block, so sources of text files
and Parquet run in a worker thread, one chunk at a time.

A line that cannot be parsed (a CSV line with the wrong number of fields, an empty or
non-numeric vector cell; a JSON line that is not JSON) is a :class:`RowError` carrying its
line number; it keeps its place in the row numbering and the lines around it go on. A file
that cannot be read at all (missing, not gzip, not Parquet, no header) is an
:class:`InvalidInputError` for the whole input.

Columns (CSV, Parquet): see :mod:`vecml_async._ingest.frames`. In JSON lines each line is a
row dict (``id``/``string_id``, ``vector``/``data``, ``attributes``).
"""

from __future__ import annotations

import abc
import csv
import gzip
import io
import os
import zlib
from collections.abc import Iterator
from typing import IO, Any

import orjson

from vecml_async._ingest.chunks import (
    Item,
    RawChunk,
    RowError,
    RowParser,
    Source,
    require,
    rows_per_chunk,
)
from vecml_async._ingest.fingerprint import digest, file_fingerprint
from vecml_async._ingest.frames import Columns, FramePlan, column_plan, frame_items
from vecml_async._ingest.sources import ArraySource
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
#: Formats whose rows are columns (the column options apply to them).
COLUMNAR = frozenset({"csv", "parquet"})


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


class FileSource(Source):
    """A data file: re-readable, identified by its path, size, time and end blocks."""

    blocking = True

    def __init__(self, path: str, file_format: str, gzipped: bool, chunk_bytes: int) -> None:
        self.path = path
        self.format = file_format
        self.gzipped = gzipped
        self.chunk_bytes = chunk_bytes

    def items(self, start: int = 0) -> Iterator[Item]:
        """The file's items; a file that cannot be read or decoded is an input error."""
        items = self._items(start)
        while True:
            try:
                item = next(items)
            except StopIteration:
                return
            except InvalidInputError:
                raise
            except (OSError, EOFError, ValueError, csv.Error, zlib.error) as err:
                # gzip.BadGzipFile / truncated gzip, UnicodeDecodeError, pyarrow's errors, ...
                raise InvalidInputError(
                    f"cannot read {self.path!r}: {type(err).__name__}: {err}", field="data"
                ) from err
            yield item

    @abc.abstractmethod
    def _items(self, start: int) -> Iterator[Item]:
        """The items from row ``start``, letting read errors out as they come."""

    def fingerprint(self) -> dict[str, Any]:
        return file_fingerprint(self.path, self.format)

    def identity(self) -> bytes:
        return digest([orjson.dumps(self.fingerprint(), option=orjson.OPT_SORT_KEYS)]).encode()


class CsvSource(FileSource):
    """A CSV file with a header line."""

    def __init__(self, path: str, gzipped: bool, columns: Columns, chunk_bytes: int) -> None:
        super().__init__(path, "csv", gzipped, chunk_bytes)
        self.columns = columns
        self.own_ids = columns.id_column is not None
        self.own_attributes = bool(columns.attribute_columns)

    def _items(self, start: int) -> Iterator[Item]:
        with _open_text(self.path, self.gzipped) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None:
                raise InvalidInputError(f"{self.path!r} is empty", field="data")
            lines = _CsvLines(header, column_plan(header, self.columns))
            step = rows_per_chunk(len(lines.plan.vectors), self.chunk_bytes)
            index = 0
            for record in reader:
                if not record:
                    continue  # a blank line holds no row
                if index >= start:
                    problem = lines.add(index, record, reader.line_num)
                    if problem is not None:
                        yield from lines.flush()
                        yield problem
                    elif lines.pending >= step:
                        yield from lines.flush()
                index += 1
            yield from lines.flush()


class _CsvLines:
    """Parsed CSV records waiting to become a chunk."""

    def __init__(self, header: list[str], plan: Any) -> None:
        self.header = header
        self.plan = plan
        self._reset(0)

    def _reset(self, first: int) -> None:
        self.first = first
        self.vectors: list[list[float]] = []
        self.ids: list[object] = []
        self.attrs: list[object] = []

    @property
    def pending(self) -> int:
        return len(self.vectors)

    def add(self, index: int, record: list[str], line: int) -> RowError | None:
        """Take the record of row ``index``; a record that does not parse is a row error."""
        if not self.vectors:
            self.first = index
        header, plan = self.header, self.plan
        if len(record) != len(header):
            message = f"line {line} has {len(record)} fields, the header {len(header)}"
            return self._error(index, message, line, record)
        try:
            vector = [float(record[j]) for j in plan.vectors]
        except ValueError:
            j = next(j for j in plan.vectors if not _is_number(record[j]))
            what = "is empty" if not record[j].strip() else f"holds {record[j]!r}, not a number"
            message = f"line {line}: column {header[j]!r} {what}"
            if record[j].strip():
                message += "; list non-numeric columns in attribute_columns"
            return self._error(index, message, line, record)
        self.vectors.append(vector)
        if plan.id_at is not None:
            self.ids.append(record[plan.id_at])
        if plan.attributes:
            self.attrs.append({name: record[j] for name, j in plan.attributes if record[j] != ""})
        return None

    def _error(self, index: int, message: str, line: int, record: list[str]) -> RowError:
        at = self.plan.id_at
        row_id = record[at] if at is not None and at < len(record) and record[at] else None
        return RowError(index, message, line, row_id)

    def flush(self) -> Iterator[RawChunk]:
        if self.vectors:
            yield RawChunk(
                self.first,
                self.vectors,
                self.ids if self.plan.id_at is not None else None,
                self.attrs if self.plan.attributes else None,
            )
        self._reset(self.first + len(self.vectors))


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


class JsonLinesSource(FileSource):
    """One row dict per line (blank lines hold no row)."""

    own_ids = None
    own_attributes = None

    def __init__(self, path: str, gzipped: bool, sparse: bool, chunk_bytes: int) -> None:
        super().__init__(path, "jsonl", gzipped, chunk_bytes)
        self.parser = RowParser(sparse)

    def _items(self, start: int) -> Iterator[Item]:
        parser = self.parser
        if start:  # a second reading keeps what the first row decided
            parser = RowParser(self.parser.sparse)
            parser.has_ids = self.parser.has_ids
        step: int | None = None
        index, first = 0, start
        rows: list[Any] = []
        lines: list[int] = []
        with _open_text(self.path, self.gzipped) as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                index += 1
                if index <= start:
                    continue
                try:
                    rows.append(orjson.loads(line))
                except orjson.JSONDecodeError as err:
                    yield from parser.parse(first, rows, lines)
                    yield RowError(index - 1, f"line {number} is not JSON: {err}", number)
                    rows, lines, first = [], [], index
                    continue
                lines.append(number)
                if step is None:
                    step = rows_per_chunk(_dim_of(rows[0]), self.chunk_bytes)
                if len(rows) >= step:
                    yield from parser.parse(first, rows, lines)
                    rows, lines, first = [], [], index
            yield from parser.parse(first, rows, lines)


def _dim_of(row: object) -> int | None:
    vector = row.get("vector", row.get("data")) if isinstance(row, dict) else None
    return len(vector) if isinstance(vector, list) else None


class JsonSource(FileSource):
    """A JSON array of row dicts (parsed whole)."""

    own_ids = None
    own_attributes = None

    def __init__(self, path: str, gzipped: bool, sparse: bool, chunk_bytes: int) -> None:
        super().__init__(path, "json", gzipped, chunk_bytes)
        self.parser = RowParser(sparse)

    def _items(self, start: int) -> Iterator[Item]:
        opener = gzip.open if self.gzipped else open
        with opener(self.path, "rb") as handle:
            raw = handle.read()
        try:
            records = orjson.loads(raw)
        except orjson.JSONDecodeError as err:
            raise InvalidInputError(f"{self.path!r} is not JSON: {err}", field="data") from None
        if not isinstance(records, list):
            raise InvalidInputError("a .json input must hold an array of row objects", field="data")
        parser = self.parser
        if start:
            parser = RowParser(self.parser.sparse)
            parser.has_ids = self.parser.has_ids
        step = rows_per_chunk(_dim_of(records[0]) if records else None, self.chunk_bytes)
        for first in range(start, len(records), step):
            yield from parser.parse(first, records[first : first + step])


class NpySource(ArraySource):
    """A ``.npy`` file, memory-mapped: re-readable, identified as a file."""

    def __init__(self, path: str, chunk_bytes: int) -> None:
        np = require("numpy", "numpy")
        try:
            array = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as err:
            raise InvalidInputError(f"not a readable .npy file: {err}", field="data") from err
        super().__init__(array, chunk_bytes)
        self.path = path

    def fingerprint(self) -> dict[str, Any]:
        return file_fingerprint(self.path, "npy")

    def identity(self) -> bytes:
        return digest([orjson.dumps(self.fingerprint(), option=orjson.OPT_SORT_KEYS)]).encode()


class ParquetSource(FileSource):
    """A Parquet file, read by record batches (its row count is in its metadata)."""

    def __init__(self, path: str, columns: Columns, chunk_bytes: int) -> None:
        super().__init__(path, "parquet", False, chunk_bytes)
        pq = require("pyarrow.parquet", "parquet")
        self.columns = columns
        self.own_ids = columns.id_column is not None
        self.own_attributes = bool(columns.attribute_columns)
        try:
            self.length = int(pq.ParquetFile(path).metadata.num_rows)
        except (OSError, ValueError) as err:
            raise InvalidInputError(
                f"cannot read {path!r}: {type(err).__name__}: {err}", field="data"
            ) from err

    def _items(self, start: int) -> Iterator[Item]:
        pq = require("pyarrow.parquet", "parquet")
        parquet = pq.ParquetFile(self.path)
        names = list(parquet.schema_arrow.names)
        vectors = column_plan(names, self.columns).vectors
        step = rows_per_chunk(len(vectors) if len(vectors) > 1 else None, self.chunk_bytes)
        offset = 0
        plan: FramePlan | None = None
        for batch in parquet.iter_batches(batch_size=step):
            rows = int(batch.num_rows)
            if offset + rows > start:
                frame = batch.to_pandas()
                plan = plan or FramePlan(frame, self.columns)
                yield from frame_items(
                    frame, plan, offset, max(0, start - offset), self.chunk_bytes
                )
            offset += rows


def open_file(
    path: str, file_format: str | None, columns: Columns, sparse: bool, chunk_bytes: int
) -> Source:
    """The source of a data file (blocks: call it from a worker thread)."""
    if not os.path.isfile(path):
        raise InvalidInputError(f"no such file: {path!r}", field="data")
    fmt, gzipped = file_format_of(path, file_format)
    if columns.given and fmt not in COLUMNAR:
        raise InvalidInputError(
            f"a {fmt} file has no columns (its rows are dicts with 'id', 'vector' and "
            "'attributes'); the column options apply to CSV, Parquet and DataFrames",
            field=columns.first_given(),
        )
    if fmt in ("npy", "parquet") and gzipped:
        raise InvalidInputError(
            f"{fmt} files are read as they are; decompress it first", field="data"
        )
    if fmt == "npy":
        return NpySource(path, chunk_bytes)
    if fmt == "parquet":
        return ParquetSource(path, columns, chunk_bytes)
    if fmt == "csv":
        return CsvSource(path, gzipped, columns, chunk_bytes)
    if fmt == "jsonl":
        return JsonLinesSource(path, gzipped, sparse, chunk_bytes)
    return JsonSource(path, gzipped, sparse, chunk_bytes)
