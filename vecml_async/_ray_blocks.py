"""What the Ray Data sink does with one block, and with the reports of its write tasks.

Pure code (pyarrow and numpy, no Ray): a block becomes ``(vectors, ids, attributes)`` for
``AsyncVecML.ingest``, ids are taken from a column or derived from named columns, and the
reports the write tasks return are merged into one on the driver.

Ids must be the same every time Ray runs a write task again (after a worker died), so the
server replaces the rows it already has instead of storing them twice. They come from:

* ``id_column``: a column of unique ids (any scalar type; sent as text). Ray's
  ``read_parquet(..., include_row_hash=True)`` adds such a column, ``row_hash``, derived
  from each row's file and position;
* ``id_from``: columns that together identify a row; the id is a digest of their values.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
from collections.abc import Sequence
from typing import Any

import numpy as np
import orjson

from vecml_async import IngestReport
from vecml_async.errors import InvalidInputError

#: Report fields merge_reports does not add up: the names, the unread rows (summed apart: a
#: count may be unknown), where each block stopped (a row of that block, not of the dataset)
#: and the means to read a block again.
_NOT_MERGED = frozenset({"project_name", "collection_name", "rows_unread", "stopped_at", "reread"})

__all__ = ["block_rows", "derived_ids", "merge_reports", "portable_report"]

#: Bytes of the digest behind a derived id (hex: twice as many characters).
ID_DIGEST_BYTES = 12


def _arrow_table(block: Any) -> Any:
    import pyarrow as pa

    if isinstance(block, pa.Table):
        return block
    return pa.Table.from_pandas(block, preserve_index=False)


def _column(table: Any, name: str) -> Any:
    if name not in table.column_names:
        raise InvalidInputError(
            f"the dataset has no column {name!r} (columns: {', '.join(table.column_names)})",
            field=name,
        )
    return table.column(name).combine_chunks()


def block_vectors(table: Any, column: str) -> np.ndarray[Any, Any]:
    """The vector column as a (rows, dim) array: list, fixed-size list or tensor columns."""
    import pyarrow as pa

    col = _column(table, column)
    if col.null_count:
        bad = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise InvalidInputError("the row has no vector", field=column, index=bad)
    n = len(col)
    if pa.types.is_list(col.type) or pa.types.is_large_list(col.type):
        offsets = np.asarray(col.offsets)
        lengths = np.diff(offsets)
        if n and (lengths != lengths[0]).any():
            bad = int(np.flatnonzero(lengths != lengths[0])[0])
            raise InvalidInputError(
                f"vectors of different lengths ({lengths[0]} and {lengths[bad]})",
                field=column,
                index=bad,
            )
        dim = int(lengths[0]) if n else 0
        values = col.values.slice(offsets[0], offsets[-1] - offsets[0]) if n else col.values
        return np.asarray(values.to_numpy(zero_copy_only=False)).reshape(n, dim)
    if pa.types.is_fixed_size_list(col.type):
        return np.asarray(col.flatten().to_numpy(zero_copy_only=False)).reshape(
            n, col.type.list_size
        )
    # Tensor extension columns (Ray's ArrowTensorType) convert themselves.
    array = np.asarray(col.to_numpy(zero_copy_only=False))
    if array.dtype == object:
        array = np.stack([np.asarray(v) for v in array])
    return array.reshape(n, -1)


def derived_ids(table: Any, columns: Sequence[str]) -> list[str]:
    """Ids that depend only on the values of ``columns`` (a digest of them, in hex)."""
    values = [_column(table, name).to_pylist() for name in columns]
    ids = []
    for row in zip(*values):
        text = orjson.dumps(row, option=orjson.OPT_NON_STR_KEYS, default=str)
        ids.append(hashlib.blake2b(text, digest_size=ID_DIGEST_BYTES).hexdigest())
    return ids


def block_ids(table: Any, id_column: str | None, id_from: Sequence[str]) -> list[str]:
    """The ids of a block's rows, from ``id_column`` or derived from ``id_from``."""
    if id_column is None:
        return derived_ids(table, id_from)
    col = _column(table, id_column)
    if col.null_count:
        bad = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        raise InvalidInputError("the row has no id", field=id_column, index=bad)
    return [str(v) for v in col.to_pylist()]


def block_rows(
    block: Any,
    *,
    vector_column: str,
    id_column: str | None,
    id_from: Sequence[str],
    attribute_columns: Sequence[str],
) -> tuple[np.ndarray[Any, Any], list[str], list[dict[str, Any]] | None]:
    """``(vectors, ids, attributes)`` of one block (a pyarrow Table or a pandas DataFrame)."""
    table = _arrow_table(block)
    vectors = block_vectors(table, vector_column)
    ids = block_ids(table, id_column, id_from)
    attributes = None
    if attribute_columns:
        columns = {name: _column(table, name).to_pylist() for name in attribute_columns}
        attributes = [
            {name: values[i] for name, values in columns.items() if values[i] is not None}
            for i in range(len(ids))
        ]
    return vectors, ids, attributes


def portable_report(report: IngestReport) -> IngestReport:
    """The report without what should not travel back to the driver: the exception objects
    (their text stays in ``error``) and the means to read the block again. The failed rows'
    ids and encoded bytes stay: they are bounded by what failed."""
    failures = []
    for failure in report.failures:
        light = copy.copy(failure)
        light.exception = None
        failures.append(light)
    return dataclasses.replace(report, failures=failures, reread=None)


def merge_reports(
    project_name: str, collection_name: str, reports: Sequence[IngestReport]
) -> IngestReport:
    """One report for the whole write: counts added up, lists joined, the first reason to
    stop kept; ``elapsed`` is the longest task's (the sink replaces it by the wall time)."""
    merged = IngestReport(project_name, collection_name)
    unread = [r.rows_unread for r in reports]
    merged.rows_unread = None if None in unread else sum(u for u in unread if u is not None)
    for f in dataclasses.fields(IngestReport):
        if f.name in _NOT_MERGED or not f.init:
            continue
        values = [getattr(r, f.name) for r in reports]
        current = getattr(merged, f.name)
        if isinstance(current, bool):
            setattr(merged, f.name, any(values))
        elif isinstance(current, int):
            setattr(merged, f.name, sum(values))
        elif isinstance(current, float):
            setattr(merged, f.name, max(values, default=0.0))
        elif isinstance(current, list):
            setattr(merged, f.name, [item for v in values for item in v])
        else:
            setattr(merged, f.name, next((v for v in values if v is not None), current))
    return merged
