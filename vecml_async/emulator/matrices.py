"""Fitting a parsed file's matrix to a collection's storage (dense rows or sparse rows).

Files come back from the formats module as a dense float32 array or a CSR matrix whose width
may be narrower than the collection (a libsvm file's width is its largest index). These
helpers convert between the two and check the width, raising ``RequestError`` on mismatch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from vecml_async.emulator.parsing import bad
from vecml_async.emulator.store import SparseRow

if TYPE_CHECKING:
    import scipy.sparse

__all__ = ["conform", "storage_rows"]


def _is_sparse(matrix: object) -> bool:
    return hasattr(matrix, "tocsr") and not isinstance(matrix, np.ndarray)


def _width_check(width: int, dim: int, vector_type: str) -> None:
    if vector_type == "dense" and width != dim:
        raise bad(f"The data has {width} columns but the collection's vector_dim is {dim}")
    if width > dim:
        raise bad(f"The data has {width} columns, more than the collection's vector_dim {dim}")


def conform(
    matrix: np.ndarray | scipy.sparse.csr_matrix, vector_type: str, dim: int
) -> np.ndarray | scipy.sparse.csr_matrix:
    """``matrix`` as the collection would hold it: float32 (n, dim) or CSR of width dim.

    A CSR matrix narrower than a dense collection is widened with zeros (a libsvm file whose
    last columns are all zero is still a valid file for that collection).
    """
    import scipy.sparse

    if _is_sparse(matrix):
        csr = scipy.sparse.csr_matrix(matrix, dtype=np.float32)
        if csr.shape[1] > dim:
            raise bad(f"The data has {csr.shape[1]} columns, more than the vector_dim {dim}")
        csr = scipy.sparse.csr_matrix(
            (csr.data, csr.indices, csr.indptr), shape=(csr.shape[0], dim)
        )
        return csr if vector_type == "sparse" else np.asarray(csr.toarray(), np.float32)
    dense = np.asarray(matrix, np.float32)
    if dense.ndim != 2:
        raise bad("The data is not a two-dimensional matrix")
    _width_check(dense.shape[1], dim, vector_type)
    if vector_type == "sparse":
        return scipy.sparse.csr_matrix(dense, shape=(dense.shape[0], dim))
    return dense


def storage_rows(
    matrix: np.ndarray | scipy.sparse.csr_matrix, vector_type: str, dim: int
) -> tuple[np.ndarray | None, list[SparseRow] | None]:
    """Split ``matrix`` into what :class:`~vecml_async.emulator.store.Batch` stores."""
    fitted = conform(matrix, vector_type, dim)
    if isinstance(fitted, np.ndarray):
        if not np.isfinite(fitted).all():
            raise bad("The data holds a value that is not finite in float32")
        return fitted, None
    fitted.sum_duplicates()  # sorted, unique indices per row, as sparse rows require
    if not np.isfinite(fitted.data).all():
        raise bad("The data holds a value that is not finite in float32")
    indptr, indices = fitted.indptr, fitted.indices.astype(np.int32)
    values = fitted.data.astype(np.float32)
    rows = [
        (indices[indptr[k] : indptr[k + 1]], values[indptr[k] : indptr[k + 1]])
        for k in range(fitted.shape[0])
    ]
    return None, rows
