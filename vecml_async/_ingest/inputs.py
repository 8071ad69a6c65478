"""Which source reads an input: one function from ``data`` to a :class:`Source`.

Options that the input cannot honour are refused here, naming the option, rather than
ignored: column options for inputs without columns, ``file_format`` for what is not a
path. Optional libraries are imported only when such an input is given.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterable, Iterable, Sequence
from dataclasses import dataclass, field

from vecml_async._ingest.chunks import CHUNK_BYTES, Source, is_row
from vecml_async._ingest.files import open_file
from vecml_async._ingest.frames import Columns, FrameSource
from vecml_async._ingest.sources import (
    ArraySource,
    AsyncRowsSource,
    RowsSource,
    SparseSource,
    VectorsSource,
)
from vecml_async.errors import InvalidInputError


@dataclass(frozen=True)
class ReadOptions:
    """How an input is read (what ``ingest`` options say about the input itself)."""

    columns: Columns = field(default_factory=Columns)
    file_format: str | None = None
    sparse: bool = False
    dim: int | None = None
    chunk_bytes: int = CHUNK_BYTES


def _module_of(obj: object) -> str:
    return type(obj).__module__.split(".")[0]


def open_source(data: object, options: ReadOptions) -> Source:
    """The source of ``data`` (may block: files are opened; call it from a worker thread)."""
    if isinstance(data, (str, os.PathLike)):
        return open_file(
            os.fspath(data),
            options.file_format,
            options.columns,
            options.sparse,
            options.chunk_bytes,
        )
    if options.file_format is not None:
        raise InvalidInputError("file_format applies to file paths only", field="file_format")
    module = _module_of(data)
    if module == "pandas" and hasattr(data, "columns"):
        return FrameSource(data, options.columns, options.chunk_bytes)
    if options.columns.given:
        raise InvalidInputError(
            f"a {type(data).__name__} has no columns; the column options apply to CSV and "
            "Parquet files and DataFrames",
            field=options.columns.first_given(),
        )
    if module == "numpy" and hasattr(data, "ndim"):
        return ArraySource(data, options.chunk_bytes)
    if module == "scipy" and hasattr(data, "tocsr"):
        return SparseSource(data, options.chunk_bytes)
    if isinstance(data, AsyncIterable):
        return AsyncRowsSource(data, options.dim, options.sparse, options.chunk_bytes)
    if isinstance(data, Sequence) and not isinstance(data, (str, bytes)):
        if len(data) and is_row(data[0]):
            return RowsSource(data, options.dim, options.sparse, options.chunk_bytes)
        return VectorsSource(data, options.dim, options.sparse, options.chunk_bytes)
    if isinstance(data, Iterable) and not isinstance(data, (bytes, dict)):
        return RowsSource(data, options.dim, options.sparse, options.chunk_bytes)
    raise InvalidInputError(
        f"cannot ingest a {type(data).__name__}; see ingest() for the supported inputs",
        field="data",
    )
