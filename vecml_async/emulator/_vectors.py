"""Vector validation shared by the emulator's file parser and its JSON endpoints.

Everything here raises :class:`FileFormatError`; callers that are not parsing a file (the
``add_data_batch`` handler) turn it into a 400 with the same text. The public names are
re-exported by :mod:`vecml_async.emulator.formats`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

#: Width of a sparse collection created without ``vector_dim`` (the old client's fixed 2**21).
SPARSE_DEFAULT_DIM = 2**21

# Values beyond this overflow to inf when stored as float32, which would poison every model.
_F32_MAX = float(np.finfo(np.float32).max)

Where = Callable[[int], str]
"""Maps a row position to the words that name it in an error message ("line 7", "row index 2")."""


class FileFormatError(Exception):
    """A file or a vector payload is malformed; ``str(e)`` says where and why."""


def row_index(i: int) -> str:
    """The default way to name a row of a payload in an error message (0-based)."""
    return f"row index {i}"


def _is_number(x: object) -> bool:
    # bool is an int subclass, but True is not a vector component anyone means to send.
    return type(x) is float or type(x) is int


def check_finite(values: NDArray[np.float64], row_of: Callable[[int], int], where: Where) -> None:
    """Reject NaN, infinities and magnitudes that overflow float32.

    ``values`` is flat; ``row_of`` maps a position in it to the row that holds it.
    """
    bad = ~np.isfinite(values) | (np.abs(values) > _F32_MAX)
    if bad.any():
        k = int(np.argmax(bad))
        raise FileFormatError(
            f"{where(row_of(k))}: value {float(values[k])!r} is not finite (or overflows float32)"
        )


def dense_rows_to_array(
    rows: Sequence[object], dim: int | None, where: Where = row_index
) -> NDArray[np.float32]:
    """Validate dense vectors (lists of JSON numbers) and stack them as float32 (n, dim).

    ``dim`` None takes the width of the first row. Raises FileFormatError naming the first bad row
    (not a list, wrong length, a non-number element, non-finite value).
    """
    if not rows:
        raise FileFormatError("no vectors")
    width = dim
    for i, row in enumerate(rows):
        if not isinstance(row, (list, tuple)):
            raise FileFormatError(f"{where(i)}: a dense vector must be a list of numbers")
        if width is None:
            width = len(row)
            if width == 0:
                raise FileFormatError(f"{where(i)}: empty vector")
        if len(row) != width:
            raise FileFormatError(f"{where(i)}: vector has {len(row)} values, expected {width}")
        # A set of the element types is a C-speed check of the whole row.
        if not {type(x) for x in row} <= {int, float}:
            bad = next(x for x in row if not _is_number(x))
            raise FileFormatError(f"{where(i)}: vector element {bad!r} is not a number")
    try:
        arr = np.array(rows, dtype=np.float64).reshape(len(rows), width or 0)
    except OverflowError:
        # A JSON integer beyond float range (e.g. 10**400) cannot be a float32 component.
        raise FileFormatError("a vector element is too large to be a float") from None
    check_finite(arr.ravel(), lambda k: k // max(arr.shape[1], 1), where)
    return arr.astype(np.float32)


def _split_token(tok: str, where: str) -> tuple[int, float]:
    # A token without ":" leaves v empty, which float() refuses like any other malformed token.
    i, _, v = tok.partition(":")
    try:
        return int(i), float(v)
    except ValueError:
        raise FileFormatError(f"{where}: token {tok!r} is not index:value") from None


def _pairs_of(el: object, where: str) -> tuple[list[object], list[object]]:
    """Split one sparse vector in any accepted encoding into (indices, values), unchecked."""
    if isinstance(el, str):
        idx: list[object] = []
        val: list[object] = []
        for tok in el.split():
            i, v = _split_token(tok, where)
            idx.append(i)
            val.append(v)
        return idx, val
    if isinstance(el, dict):
        if set(el) == {"indices", "values"}:
            ii, vv = el["indices"], el["values"]
            if not isinstance(ii, list) or not isinstance(vv, list) or len(ii) != len(vv):
                raise FileFormatError(
                    f"{where}: 'indices' and 'values' must be lists of the same length"
                )
            return ii, vv
        idx = []
        for key in el:
            if isinstance(key, str) and key.isascii() and key.isdigit():
                idx.append(int(key))
            elif type(key) is int:
                idx.append(key)
            else:
                raise FileFormatError(f"{where}: key {key!r} is not a non-negative integer index")
        return idx, list(el.values())
    if isinstance(el, (list, tuple)):
        idx, val = [], []
        for pair in el:
            if not isinstance(pair, (list, tuple)) or len(pair) != 2:
                raise FileFormatError(f"{where}: element {pair!r} is not an [index, value] pair")
            idx.append(pair[0])
            val.append(pair[1])
        return idx, val
    raise FileFormatError(
        f'{where}: a sparse vector must be [[i, v], ...], {{"i": v}}, '
        '{"indices": [...], "values": [...]} or "i:v i:v"'
    )


def build_csr(
    indptr: Sequence[int],
    cols: NDArray[np.int64],
    vals: NDArray[np.float64],
    dim: int,
    where: Where,
    *,
    base: int = 0,
) -> csr_matrix:
    """Assemble validated CSR rows; ``cols`` are ``base``-based and checked against ``dim``.

    Rejects out-of-range indices, non-finite values and an index repeated within a row.
    """
    ptr = np.asarray(indptr, dtype=np.int64)
    n = len(ptr) - 1

    def row_of(k: int) -> int:
        return int(np.searchsorted(ptr, k, side="right")) - 1

    out = (cols < base) | (cols >= dim + base)
    if out.any():
        k = int(np.argmax(out))
        raise FileFormatError(
            f"{where(row_of(k))}: index {int(cols[k])} is out of range "
            f"(valid {base}..{dim + base - 1})"
        )
    check_finite(vals, row_of, where)
    m = csr_matrix((vals.astype(np.float32), cols - base, ptr), shape=(n, dim), dtype=np.float32)
    m.has_sorted_indices = False
    m.sort_indices()
    # After sorting, a repeated index sits next to itself within its row.
    same = np.diff(m.indices) == 0
    same &= np.diff(np.searchsorted(ptr, np.arange(len(m.indices)), side="right")) == 0
    if same.any():
        k = int(np.argmax(same))
        raise FileFormatError(
            f"{where(row_of(k))}: index {int(m.indices[k]) + base} appears more than once"
        )
    m.eliminate_zeros()
    return m


def sparse_rows_to_csr(rows: Sequence[object], dim: int, where: Where = row_index) -> csr_matrix:
    """Parse sparse vectors (0-based indices) into a float32 CSR matrix of shape (len(rows), dim).

    Each element may be ``[[i, v], ...]``, ``{"i": v, ...}`` (string keys), ``{"indices": [...],
    "values": [...]}`` or the string ``"i:v i:v"``. Indices must be integers in ``[0, dim)`` and
    unique within a row; values finite numbers. Raises FileFormatError naming the row (0-based).
    """
    indptr = [0]
    idx_all: list[object] = []
    val_all: list[object] = []
    for r, el in enumerate(rows):
        idx, val = _pairs_of(el, where(r))
        for i in idx:
            if type(i) is not int:
                raise FileFormatError(f"{where(r)}: index {i!r} is not an integer")
        for v in val:
            if not _is_number(v):
                raise FileFormatError(f"{where(r)}: value {v!r} is not a number")
        idx_all.extend(idx)
        val_all.extend(val)
        indptr.append(len(idx_all))
    try:
        cols = np.array(idx_all, dtype=np.int64)
        vals = np.array(val_all, dtype=np.float64)
    except OverflowError:
        raise FileFormatError("a sparse index or value is too large") from None
    return build_csr(indptr, cols, vals, dim, where)


def as_kind(
    X: NDArray[np.float32], kind: str, vector_dim: int | None
) -> NDArray[np.float32] | csr_matrix:
    """Fit a dense matrix parsed from a file to the collection: exact width for dense, CSR else."""
    n, width = X.shape
    if kind == "dense":
        if vector_dim is not None and width != vector_dim:
            raise FileFormatError(f"the rows have {width} values but vector_dim is {vector_dim}")
        return X
    dim = vector_dim or SPARSE_DEFAULT_DIM
    if width > dim:
        raise FileFormatError(f"the rows have {width} values but the sparse vector_dim is {dim}")
    m = csr_matrix(X)
    m.resize(n, dim)
    m.eliminate_zeros()
    return m
