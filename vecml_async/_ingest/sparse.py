"""Sparse vectors: validation, and their JSON forms (pure, no I/O).

A sparse row is given as a ``{index: value}`` mapping, an ``(indices, values)`` pair, or a
row of a scipy CSR matrix. It is checked (integral indices in range, none twice, finite
values), sorted by index, and written in the chosen form (``SPARSE_FORMATS``); every row of
a chunk is encoded on its own and the fragments joined into one column.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Final, Literal, get_args

import orjson

from vecml_async._ingest.encoding import Column, join_fragments
from vecml_async.errors import InvalidInputError

#: The JSON forms a sparse vector can be sent in (VecML does not document its own).
SparseFormat = Literal["pairs", "dict", "indices_values", "libsvm"]
SPARSE_FORMATS: Final[tuple[str, ...]] = get_args(SparseFormat)


def encode_sparse_row(
    indices: Sequence[int], values: Sequence[float], *, sparse_format: str
) -> bytes:
    """One sparse vector in the chosen JSON form (indices 0-based, sorted by the caller)."""
    if sparse_format == "pairs":
        return orjson.dumps([[i, v] for i, v in zip(indices, values)])
    if sparse_format == "dict":
        return orjson.dumps({str(i): v for i, v in zip(indices, values)})
    if sparse_format == "indices_values":
        return orjson.dumps({"indices": list(indices), "values": list(values)})
    if sparse_format == "libsvm":
        return orjson.dumps(" ".join(f"{i}:{v!r}" for i, v in zip(indices, values)))
    raise InvalidInputError(
        f"unknown sparse format {sparse_format!r}; use one of {', '.join(SPARSE_FORMATS)}",
        field="sparse_format",
    )


def _sparse_index(value: object) -> int:
    """An integral index (``3`` or ``3.0``); ``0.5``, ``True`` and ``"3"`` are refused."""
    if isinstance(value, (bool, str, bytes)):
        raise TypeError(f"index {value!r} is not an integer")
    number: int = int(value)  # type: ignore[call-overload]
    if number != value:
        raise ValueError(f"index {value!r} is not an integer")
    return number


def check_sparse_row(
    indices: Sequence[int],
    values: Sequence[float],
    *,
    dim: int | None,
    index: int,
    row_id: str | None,
) -> tuple[list[int], list[float]]:
    """Validate one sparse row; returns it sorted by index, as Python ints and floats."""
    if len(indices) != len(values):
        raise InvalidInputError(
            f"{len(indices)} indices but {len(values)} values",
            field="data",
            index=index,
            row_id=row_id,
        )
    try:
        raw = [(_sparse_index(i), float(v)) for i, v in zip(indices, values)]
    except (TypeError, ValueError) as err:
        raise InvalidInputError(
            f"sparse indices must be integers and values numbers ({err})",
            field="data",
            index=index,
            row_id=row_id,
        ) from None
    pairs = sorted(raw)
    seen = -1
    for i, v in pairs:
        if i < 0 or (dim is not None and i >= dim):
            raise InvalidInputError(
                f"sparse index {i} is outside 0..{(dim or 0) - 1}",
                field="data",
                index=index,
                row_id=row_id,
            )
        if i == seen:
            raise InvalidInputError(
                f"sparse index {i} appears twice", field="data", index=index, row_id=row_id
            )
        if not math.isfinite(v):
            raise InvalidInputError(
                "vector contains NaN or infinity; JSON cannot carry them",
                field="data",
                index=index,
                row_id=row_id,
            )
        seen = i
    return [p[0] for p in pairs], [p[1] for p in pairs]


def sparse_pair(value: object, index: int, row_id: str) -> tuple[Sequence[int], Sequence[float]]:
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


def encode_sparse(
    vectors: Any, ids: Sequence[str], start: int, *, dim: int | None, sparse_format: str
) -> Column:
    """Encode the sparse rows of a chunk (a CSR matrix or a list of sparse rows)."""
    rows: Iterable[tuple[Sequence[int], Sequence[float]]]
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
        rows = (sparse_pair(v, start + i, ids[i]) for i, v in enumerate(vectors))
    fragments = []
    for offset, (indices_, values_) in enumerate(rows):
        idx, vals = check_sparse_row(
            indices_, values_, dim=dim, index=start + offset, row_id=ids[offset]
        )
        fragments.append(encode_sparse_row(idx, vals, sparse_format=sparse_format))
    return join_fragments(fragments)
