"""Permutation feature importance for the observed ``/get_feature_importance`` endpoint.

VecML does not document the endpoint; third-party code reads a list of ``{"feature",
"importance"}``. The emulator answers with permutation importance measured on a small sample
of the training rows kept with the model (``automl.SAMPLE_ROWS``): for each feature, the drop in
accuracy (classification) or the rise in MSE (regression) when that feature's values are
shuffled between the rows. Features are the vector components, named ``vector[j]``, and the
categorical attributes, by name (all their one-hot columns are shuffled together). Drops below
zero count as zero; the importances are then scaled to sum to 1 (all zeros stay zeros), and
listed from the most important. Sparse collections list only the ``MAX_SPARSE_FEATURES``
components most often non-zero in the sample. Pure functions, deterministic for a seed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix, issparse

from vecml_async.emulator import _automl_models as models

if TYPE_CHECKING:
    from vecml_async.emulator.automl import TrainedModel

__all__ = ["MAX_SPARSE_FEATURES", "feature_importance"]

#: Components of a sparse collection evaluated (the most often non-zero in the sample).
MAX_SPARSE_FEATURES = 256


def _score(model: TrainedModel, X: Any, attributes: Sequence[Mapping[str, str]], y: Any) -> float:
    """Higher is better: accuracy, or minus the MSE."""
    n_classes = len(model.classes or ())
    out = models.scores(model.estimator, model.features.transform(X, attributes), n_classes)
    if n_classes:
        return float(np.mean(out.argmax(axis=1) == y))
    return -float(np.mean((out - y) ** 2))


def _with_column(X: Any, j: int, order: NDArray[np.intp]) -> Any:
    """X with column ``j`` taken from the rows in ``order`` (dense copy, or a CSR sum)."""
    if not issparse(X):
        shuffled = X.copy()
        shuffled[:, j] = X[order, j]
        return shuffled
    column = np.asarray(X[:, [j]].toarray()).ravel()
    delta = column[order] - column
    rows = np.flatnonzero(delta)
    change = csr_matrix((delta[rows], (rows, np.full(len(rows), j))), shape=X.shape)
    return csr_matrix(X + change, dtype=np.float32)


def _columns(X: Any) -> list[int]:
    if not issparse(X):
        return list(range(X.shape[1]))
    counts = np.asarray(csr_matrix(X).getnnz(axis=0)).ravel()
    used = np.flatnonzero(counts)
    top = used[np.argsort(-counts[used], kind="stable")][:MAX_SPARSE_FEATURES]
    return sorted(int(j) for j in top)


def feature_importance(model: TrainedModel, seed: int = 0) -> list[tuple[str, float]]:
    """``(feature, importance)`` pairs, most important first (see the module docstring)."""
    X, attributes, y = model.sample
    rng = np.random.default_rng(seed)
    order = rng.permutation(X.shape[0]).astype(np.intp)
    with models.one_thread():
        base = _score(model, X, attributes, y)
        drops: list[tuple[str, float]] = [
            (f"vector[{j}]", base - _score(model, _with_column(X, j, order), attributes, y))
            for j in _columns(X)
        ]
        for name in model.categorical_features:
            values = [a.get(name) for a in attributes]
            shuffled = []
            for attrs, k in zip(attributes, order):
                moved = {key: v for key, v in attrs.items() if key != name}
                if values[k] is not None:
                    moved[name] = values[k]
                shuffled.append(moved)
            drops.append((name, base - _score(model, X, shuffled, y)))
    clipped = [(name, max(0.0, drop)) for name, drop in drops]
    total = sum(value for _, value in clipped)
    scaled = [(name, value / total if total > 0 else 0.0) for name, value in clipped]
    return sorted(scaled, key=lambda item: -item[1])
