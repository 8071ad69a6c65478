"""Estimators, cross-validation and metrics behind :mod:`vecml_async.emulator.automl`.

Models per training mode (every candidate is seeded; sklearn-level parallelism is off, n_jobs=1):

* ``high_speed``: standard scaling + LogisticRegression (C=1) / Ridge (alpha=1); sparse input
  stays sparse (scaling without centring).
* ``balanced`` (and ``auto``): HistGradientBoosting, 100 iterations, learning rate 0.1.
* ``high_accuracy``: a 3-fold search over the linear model, HistGradientBoosting (200 iterations,
  rate 0.1) and a shallower, regularised HistGradientBoosting (300 iterations, rate 0.05,
  15 leaves, l2 1.0). The best by out-of-fold accuracy (then AUC) / MSE is refitted on all rows.

Training and prediction run inside :func:`one_thread`: one OpenMP thread (HistGradientBoosting)
and one BLAS thread (lbfgs, Ridge). The server shares two cores, and spinning worker threads slow
down many-fold when another thread or process holds a core (measured under load: a 1000-row
HistGradientBoosting fit 36 s instead of 3.5 s; an 80-row lbfgs fit 0.9 s instead of 0.2 s).
Early stopping is off so that the number of trees does not depend on an internal split.
"""

from __future__ import annotations

import sys
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import precision_recall_fscore_support, roc_auc_score
from sklearn.model_selection import KFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

from vecml_async.emulator._automl_features import Matrix

CLASSIFICATION_METRIC_KEYS = (
    "accuracy",
    "micro_precision",
    "macro_precision",
    "micro_recall",
    "macro_recall",
    "micro_f1",
    "macro_f1",
    "auc",
)

Factory = Callable[[], Any]
Splits = list[tuple[NDArray[np.intp], NDArray[np.intp]]]


# The BLAS limit is process-wide, so concurrent trainings share one limiter: the first to enter
# sets it and the last to leave restores the original thread count.
_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter: Any = None


@contextmanager
def one_thread() -> Iterator[None]:
    """Run the block with one OpenMP thread (a per-thread setting: omp_set_num_threads changes the
    caller's own ICV) and one BLAS thread (process-wide, reference-counted across callers)."""
    global _blas_users, _blas_limiter
    with _blas_lock:
        if _blas_users == 0:
            _blas_limiter = threadpool_limits(limits=1, user_api="blas")
        _blas_users += 1
    try:
        with threadpool_limits(limits=1, user_api="openmp"):
            yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()
                _blas_limiter = None


def _linear(classification: bool, sparse: bool, seed: int) -> Any:
    # Centring would densify a sparse matrix; scaling alone keeps lbfgs well conditioned.
    scaler = StandardScaler(with_mean=not sparse)
    if classification:
        return make_pipeline(scaler, LogisticRegression(C=1.0, max_iter=2000, random_state=seed))
    return make_pipeline(scaler, Ridge(alpha=1.0))


def _gbdt(classification: bool, seed: int, **params: Any) -> Any:
    cls = HistGradientBoostingClassifier if classification else HistGradientBoostingRegressor
    return cls(early_stopping=False, random_state=seed, **params)


def candidates(
    mode: str, classification: bool, sparse: bool, seed: int
) -> tuple[int, list[tuple[str, Factory]]]:
    """(cross-validation folds, [(description, estimator factory), ...]) for a training mode."""
    c = classification
    linear = ("linear", lambda: _linear(c, sparse, seed))
    gbdt = ("gbdt(100, 0.1)", lambda: _gbdt(c, seed, max_iter=100, learning_rate=0.1))
    if mode == "high_speed":
        return 5, [linear]
    if mode in ("balanced", "auto"):
        return 5, [gbdt]
    return 3, [
        linear,
        ("gbdt(200, 0.1)", lambda: _gbdt(c, seed, max_iter=200, learning_rate=0.1)),
        (
            "gbdt(300, 0.05, 15 leaves, l2 1)",
            lambda: _gbdt(
                c, seed, max_iter=300, learning_rate=0.05, max_leaf_nodes=15, l2_regularization=1.0
            ),
        ),
    ]


def fit(factory: Factory, X: Matrix, y: NDArray[Any]) -> Any:
    """Fit a fresh estimator. lbfgs may stop at max_iter on hard data; that model is still
    usable, so its ConvergenceWarning is silenced here rather than leaked to the server."""
    est = factory()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        est.fit(X, y)
    return est


def scores(est: Any, X: Matrix, n_classes: int) -> NDArray[np.float64]:
    """Class probabilities (n, n_classes) for classifiers, predictions (n,) for regressors."""
    if n_classes == 0:
        return np.asarray(est.predict(X), dtype=np.float64)
    out = np.zeros((X.shape[0], n_classes))
    out[:, est.classes_] = est.predict_proba(X)
    return out


def splits(y: NDArray[Any], classification: bool, folds: int, seed: int) -> Splits:
    """Seeded folds: stratified when every class has 2+ rows, plain shuffled KFold otherwise."""
    n = len(y)
    fake_x = np.zeros((n, 1))
    if classification:
        counts = np.bincount(y)
        smallest = int(counts[counts > 0].min())
        if smallest >= 2:
            skf = StratifiedKFold(min(folds, smallest), shuffle=True, random_state=seed)
            return list(skf.split(fake_x, y))
    return list(KFold(min(folds, n), shuffle=True, random_state=seed).split(fake_x))


def out_of_fold(
    factory: Factory, X: Matrix, y: NDArray[Any], n_classes: int, folds: Splits
) -> NDArray[np.float64]:
    """Scores of every row from a model that did not see it (n_classes 0 = regression)."""
    out = np.zeros((len(y), n_classes)) if n_classes else np.zeros(len(y))
    for train, test in folds:
        y_train = y[train]
        if n_classes and np.unique(y_train).size < 2:
            # A fold that saw one class cannot fit a classifier; it predicts that class.
            out[test, int(y_train[0])] = 1.0
            continue
        out[test] = scores(fit(factory, X[train], y_train), X[test], n_classes)
    return out


def _finite_unit(x: float) -> float:
    return float(min(max(x, 0.0), 1.0)) if np.isfinite(x) else 0.0


def _auc(y_true: NDArray[Any], proba: NDArray[np.float64]) -> float:
    known = y_true >= 0
    y, p = y_true[known], proba[known]
    present = np.unique(y)
    if present.size < 2:
        # ROC AUC is undefined with one class; 0.5 is the score of an uninformative ranking.
        return 0.5
    if p.shape[1] == 2:
        return float(roc_auc_score(y == 1, p[:, 1]))
    # One-vs-rest, macro over the classes present among the evaluated rows.
    return float(np.mean([roc_auc_score(y == c, p[:, c]) for c in present]))


def classification_metrics(y_true: NDArray[Any], proba: NDArray[np.float64]) -> dict[str, float]:
    """The 8 documented metrics; ``y_true`` is -1 on labels the model never saw (always wrong)."""
    y_pred = proba.argmax(axis=1)
    out = {"accuracy": float(np.mean(y_true == y_pred)), "auc": _auc(y_true, proba)}
    for avg in ("micro", "macro"):
        p, r, f, _ = precision_recall_fscore_support(y_true, y_pred, average=avg, zero_division=0)
        out[f"{avg}_precision"], out[f"{avg}_recall"], out[f"{avg}_f1"] = p, r, f
    return {k: _finite_unit(float(out[k])) for k in CLASSIFICATION_METRIC_KEYS}


def mse(y_true: NDArray[Any], y_pred: NDArray[np.float64]) -> float:
    """Mean squared error as a finite Python float (capped at the largest double)."""
    with np.errstate(over="ignore"):
        value = float(np.mean((y_true - y_pred) ** 2))
    return value if np.isfinite(value) else sys.float_info.max


def better(a: dict[str, float] | float, b: dict[str, float] | float) -> bool:
    """Whether metric a beats b: higher accuracy then AUC, or lower MSE; ties keep b."""
    if isinstance(a, dict):
        return isinstance(b, dict) and (a["accuracy"], a["auc"]) > (b["accuracy"], b["auc"])
    return not isinstance(b, dict) and a < b
