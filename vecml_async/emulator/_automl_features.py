"""Feature construction for the emulator's AutoML: the vector columns plus one-hot categoricals.

A :class:`FeatureMap` is fitted on the labelled training rows and replayed on validation and
prediction rows, so every matrix a model sees has the same columns in the same order.

Choices (listed in the README):

* A categorical attribute that is absent or empty on a row is its own category, ``MISSING``.
* Each categorical feature keeps its ``MAX_CATEGORIES`` most frequent training values (ties by
  name); other values, and values never seen in training, encode as all zeros.
* Sparse input keeps only the columns that are non-zero somewhere in the training rows (a
  2**21-wide collection usually touches a few thousand); the linear model uses them as they are.
  Tree models need dense input and slow down with every column: up to ``DENSE_MAX_COLUMNS``
  kept columns are densified, more are reduced to at most ``SVD_COMPONENTS`` components by a
  seeded TruncatedSVD.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix, hstack, issparse
from sklearn.decomposition import TruncatedSVD

MISSING = "\x00missing"
MAX_CATEGORIES = 100
DENSE_MAX_COLUMNS = 512
SVD_COMPONENTS = 128

# scipy is untyped here, so the union is effectively Any; the alias documents intent.
Matrix: TypeAlias = "NDArray[np.float32] | csr_matrix"
Attributes: TypeAlias = Sequence[Mapping[str, str]]


def as_matrix(X: object) -> Matrix:
    """Coerce X to a finite float32 2-D array or CSR matrix; ValueError says what is wrong."""
    if issparse(X):
        m = csr_matrix(X, dtype=np.float32)
        if not np.isfinite(m.data).all():
            raise ValueError("the vectors contain non-finite values")
        return m
    a = np.asarray(X, dtype=np.float32)
    if a.ndim != 2:
        raise ValueError(f"the vectors must form a 2-D matrix, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError("the vectors contain non-finite values")
    return a


def category_of(attrs: Mapping[str, str], name: str) -> str:
    """The category a row falls in for feature ``name`` (absent or empty -> MISSING)."""
    return attrs.get(name) or MISSING


@dataclass(frozen=True, eq=False)
class FeatureMap:
    """Turns (vectors, attributes) into a model matrix; see the module doc for the rules."""

    vector_dim: int
    sparse_input: bool
    dense_output: bool
    used_columns: NDArray[np.intp] | None
    svd: Any
    categories: tuple[tuple[str, tuple[str, ...]], ...]

    @property
    def categorical_width(self) -> int:
        """Number of one-hot columns."""
        return sum(len(cats) for _, cats in self.categories)

    def transform(self, X: Matrix, attributes: Attributes) -> Matrix:
        """Model matrix for rows X (the caller has checked X's width) and their attributes."""
        vec = self._vectors(X)
        if not self.categories:
            return vec
        onehot = self._one_hot(attributes)
        if issparse(vec):
            return csr_matrix(hstack([vec, onehot], format="csr", dtype=np.float32))
        return np.hstack([vec, onehot.toarray()])

    def _vectors(self, X: Matrix) -> Matrix:
        if not self.sparse_input:
            return np.asarray(csr_matrix(X).toarray() if issparse(X) else X, dtype=np.float32)
        m = csr_matrix(X, dtype=np.float32)[:, self.used_columns]
        if self.svd is not None:
            return np.asarray(self.svd.transform(m), dtype=np.float32)
        return np.asarray(m.toarray(), dtype=np.float32) if self.dense_output else m

    def _one_hot(self, attributes: Attributes) -> csr_matrix:
        rows: list[int] = []
        cols: list[int] = []
        offset = 0
        for name, cats in self.categories:
            lookup = {c: offset + j for j, c in enumerate(cats)}
            for r, attrs in enumerate(attributes):
                col = lookup.get(category_of(attrs, name))
                if col is not None:
                    rows.append(r)
                    cols.append(col)
            offset += len(cats)
        ones = np.ones(len(rows), dtype=np.float32)
        return csr_matrix((ones, (rows, cols)), shape=(len(attributes), offset))


def fit_feature_map(
    X: Matrix, attributes: Attributes, categorical: Sequence[str], *, dense: bool, seed: int
) -> FeatureMap:
    """Fit the column choices on the training rows; ``dense`` asks for a dense model matrix."""
    n, dim = X.shape
    used: NDArray[np.intp] | None = None
    svd = None
    if issparse(X):
        used = np.flatnonzero(csr_matrix(X).getnnz(axis=0))
        if used.size == 0:
            # All-zero training vectors: keep one (zero) column so the matrix is never empty.
            used = np.zeros(1, dtype=np.intp)
        if dense and used.size > DENSE_MAX_COLUMNS:
            k = max(1, min(SVD_COMPONENTS, n - 1))
            svd = TruncatedSVD(n_components=k, random_state=seed)
            svd.fit(csr_matrix(X, dtype=np.float32)[:, used])
    categories = []
    for name in categorical:
        counts = Counter(category_of(a, name) for a in attributes)
        top = sorted(counts, key=lambda c: (-counts[c], c))[:MAX_CATEGORIES]
        categories.append((name, tuple(sorted(top))))
    return FeatureMap(
        vector_dim=dim,
        sparse_input=issparse(X),
        dense_output=dense,
        used_columns=used,
        svd=svd,
        categories=tuple(categories),
    )
