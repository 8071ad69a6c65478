"""The csv and libsvm readers behind :func:`vecml_async.emulator.formats.parse_file`.

Both read the whole text once and convert numbers column- or token-wise with numpy, so their
cost is linear in the file size; the slow per-value loops run only to locate an error.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

from vecml_async.emulator._vectors import (
    SPARSE_DEFAULT_DIM,
    FileFormatError,
    Where,
    as_kind,
    build_csr,
)


def _read_rows(
    text: str, has_field_names: bool
) -> tuple[list[str] | None, list[list[str]], list[int]]:
    """(header, data rows, line number of each row); blank lines skipped, ragged rows refused."""
    # strict: an unterminated or stray quote is an error, not a silently merged field.
    reader = csv.reader(io.StringIO(text), strict=True)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if not row:
                continue
            if header is None and has_field_names:
                header = row
                continue
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as e:
        raise FileFormatError(f"csv line {reader.line_num}: {e}") from None
    if not rows:
        raise FileFormatError("the csv file has no data rows")
    width = len(header) if header is not None else len(rows[0])
    for row, line in zip(rows, lines, strict=True):
        if len(row) != width:
            raise FileFormatError(f"csv line {line} has {len(row)} fields, expected {width}")
    return header, rows, lines


def _column(sel: str | int, names: list[str], has_header: bool) -> int:
    """Resolve a column selector: a 0-based index, or a header name (digits without a header)."""
    if isinstance(sel, str) and not has_header and sel.isascii() and sel.isdigit():
        sel = int(sel)
    if isinstance(sel, bool) or not isinstance(sel, (int, str)):
        raise FileFormatError(f"column selector {sel!r} must be a column name or index")
    if isinstance(sel, int):
        if not 0 <= sel < len(names):
            raise FileFormatError(f"column index {sel} is out of range (the csv has {len(names)})")
        return sel
    if not has_header:
        raise FileFormatError(
            f"column {sel!r} cannot be found without a header row; use a 0-based index"
        )
    if sel not in names:
        raise FileFormatError(f"column {sel!r} is not in the csv header")
    return names.index(sel)


def parse_csv(
    text: str,
    *,
    has_field_names: bool,
    string_id_column: str | int | None,
    attribute_columns: Sequence[str | int],
    label_attribute: str,
    kind: str,
    vector_dim: int | None,
) -> tuple[list[str] | None, NDArray[np.float32] | csr_matrix, list[dict[str, str]]]:
    """Split a csv into (ids, float32 vectors, attributes) per the csv convention of the README."""
    header, rows, lines = _read_rows(text, has_field_names)
    width = len(rows[0])
    names = header if header is not None else [str(i) for i in range(width)]
    has_header = header is not None
    if isinstance(attribute_columns, (str, bytes)):
        raise FileFormatError("attribute_columns must be a list of column names or indices")
    id_col = None if string_id_column is None else _column(string_id_column, names, has_header)
    attr_cols = _attribute_columns(attribute_columns, label_attribute, id_col, names, has_header)
    columns = list(zip(*rows, strict=True))
    X, auto = _vector_columns(columns, names, lines, id_col, attr_cols)
    attr_names = [names[c] for c in attr_cols]
    for name in attr_names:
        if not name or attr_names.count(name) > 1:
            raise FileFormatError(f"attribute column name {name!r} is empty or repeated")
    ids = None
    if id_col is not None:
        ids = list(columns[id_col])
        if "" in ids:
            raise FileFormatError(f"csv line {lines[ids.index('')]}: the string id is empty")
    attributes = [
        {attr_names[j]: row[c] for j, c in enumerate(attr_cols) if row[c] != ""} for row in rows
    ]
    if kind == "dense" and vector_dim is not None and X.shape[1] != vector_dim:
        # Say where the columns went: a stray text cell turns a vector column into an attribute.
        note = f"; non-numeric columns taken as attributes: {', '.join(auto)}" if auto else ""
        raise FileFormatError(
            f"the csv has {X.shape[1]} numeric vector columns but vector_dim is {vector_dim}{note}"
        )
    return ids, as_kind(X.astype(np.float32), kind, vector_dim), attributes


def _attribute_columns(
    attribute_columns: Sequence[str | int],
    label_attribute: str,
    id_col: int | None,
    names: list[str],
    has_header: bool,
) -> list[int]:
    """The attribute columns, in order: those asked for, then the label's column if the header
    names it (neither may be the id column)."""
    attr_cols: list[int] = []
    for sel in attribute_columns:
        c = _column(sel, names, has_header)
        if c == id_col:
            raise FileFormatError(f"column {sel!r} is both the id column and an attribute")
        if c not in attr_cols:
            attr_cols.append(c)
    if has_header and label_attribute in names:
        c = names.index(label_attribute)
        if c != id_col and c not in attr_cols:
            attr_cols.append(c)
    return attr_cols


def _vector_columns(
    columns: list[tuple[str, ...]],
    names: list[str],
    lines: list[int],
    id_col: int | None,
    attr_cols: list[int],
) -> tuple[NDArray[np.float64], list[str]]:
    """The numeric columns left over as the vectors (finite, within float32), and the
    non-numeric ones, which are appended to ``attr_cols`` and described for error messages."""
    vector_cols: list[int] = []
    vectors: list[NDArray[np.float64]] = []
    # Non-numeric columns that became attributes on their own; named when the width is wrong.
    auto: list[str] = []
    for c in range(len(columns)):
        if c == id_col or c in attr_cols:
            continue
        try:
            vectors.append(np.array(columns[c], dtype=np.float64))
            vector_cols.append(c)
        except ValueError:
            attr_cols.append(c)
            r = next(i for i, v in enumerate(columns[c]) if not _is_float(v))
            auto.append(f"{names[c]!r} (line {lines[r]}: {columns[c][r]!r})")
    if not vectors:
        raise FileFormatError("the csv has no numeric columns to form the vector")
    X = np.column_stack(vectors)
    bad = ~np.isfinite(X) | (np.abs(X) > np.finfo(np.float32).max)
    if bad.any():
        r, k = np.argwhere(bad)[0]
        raise FileFormatError(
            f"csv line {lines[r]} column {names[vector_cols[k]]!r}: "
            f"value {columns[vector_cols[k]][r]!r} is not finite"
        )
    return X, auto


def _is_float(v: str) -> bool:
    try:
        float(v)
    except ValueError:
        return False
    return True


def _convert(
    tokens: list[str],
    dtype: type[np.int64] | type[np.float64],
    what: str,
    where: Where,
    row_of: Callable[[int], int],
) -> NDArray[Any]:
    """Convert tokens in one numpy call; on failure find the first bad one for the message."""
    try:
        return np.array(tokens, dtype=dtype).reshape(len(tokens))
    except (ValueError, OverflowError):
        k = next(k for k, tok in enumerate(tokens) if not _parses(tok, dtype))
        raise FileFormatError(f"{where(row_of(k))}: {tokens[k]!r} is not {what}") from None


def _parses(token: str, dtype: type[np.int64] | type[np.float64]) -> bool:
    try:
        np.array([token], dtype=dtype)
    except (ValueError, OverflowError):
        return False
    return True


def parse_libsvm(
    text: str, kind: str, vector_dim: int | None, label_attribute: str
) -> tuple[NDArray[np.float32] | csr_matrix, list[dict[str, str]]]:
    """Parse ``label i:v ...`` lines (1-based indices) into (vectors, attributes)."""
    indptr = [0]
    idx_tokens: list[str] = []
    val_tokens: list[str] = []
    attributes: list[dict[str, str]] = []
    lines: list[int] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        tokens = line.split()
        if not tokens:
            continue
        if ":" in tokens[0]:
            attributes.append({})
        else:
            attributes.append({label_attribute: tokens[0]})
            tokens = tokens[1:]
        for tok in tokens:
            i, sep, v = tok.partition(":")
            if not sep or not i or not v:
                raise FileFormatError(f"libsvm line {lineno}: token {tok!r} is not index:value")
            idx_tokens.append(i)
            val_tokens.append(v)
        indptr.append(len(idx_tokens))
        lines.append(lineno)

    def where(r: int) -> str:
        return f"libsvm line {lines[r]}"

    def row_of(k: int) -> int:
        return int(np.searchsorted(indptr, k, side="right")) - 1

    cols = _convert(idx_tokens, np.int64, "an integer index", where, row_of)
    vals = _convert(val_tokens, np.float64, "a number", where, row_of)
    if kind == "dense":
        if vector_dim is None:
            if not len(cols):
                raise FileFormatError(
                    "the libsvm file has no index:value pairs to infer vector_dim"
                )
            vector_dim = max(int(cols.max()), 1)
        dim = vector_dim
    else:
        dim = vector_dim or SPARSE_DEFAULT_DIM
    m = build_csr(indptr, cols, vals, dim, where, base=1)
    if kind == "dense":
        return m.toarray(), attributes
    return m, attributes
