"""The emulator's AutoML: train and apply scikit-learn models on a collection's rows.

Pure functions without I/O or asyncio; the server runs them in a worker thread. ``X`` is a float
array (n, dim) or a CSR matrix; ``attributes`` holds one ``{name: str}`` mapping per row.

Contracts (listed in the README):

* The label is the attribute ``label_attribute``; rows where it is absent or blank are left out
  of training and of metrics. Labels are stripped of surrounding whitespace.
* Classification classes are the distinct labels. When every label parses as a finite number the
  classes are numbers (``"1"`` and ``"1.0"`` are one class) and predictions are those numbers;
  otherwise classes are the labels sorted as strings and predictions are class indices, with
  :attr:`Prediction.classes` listing the labels.
* Features are the vector plus the one-hot ``categorical_features`` (see ``_automl_features``);
  other attributes are ignored. The label may not be a categorical feature.
* Validation metric: on ``validation`` rows that carry a label when given, else out-of-fold
  predictions (5-fold, 3-fold for high_accuracy; stratified when every class has 2+ rows); the
  model is then fitted on all labelled rows. In the high_accuracy search the candidate is chosen
  on the same folds (or on the validation rows) that produce the reported metric.
* Metrics: classification -> :data:`CLASSIFICATION_METRIC_KEYS` (micro/macro with
  zero_division=0; AUC on the positive-class probability for two classes, one-vs-rest macro
  otherwise, 0.5 when the evaluated rows hold one class); a label unseen in training counts as a
  wrong prediction and is left out of the AUC. Regression -> MSE. All finite Python floats.
* Deterministic for a given ``seed`` (except ``created_at``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, TypeAlias, TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import issparse

from vecml_async.emulator import _automl_models as models
from vecml_async.emulator._automl_features import FeatureMap, Matrix, as_matrix, fit_feature_map
from vecml_async.emulator._automl_labels import (
    Attributes,
    classes_of,
    encode,
    labelled_rows,
    missing_categorical,
    targets,
)
from vecml_async.emulator._automl_models import CLASSIFICATION_METRIC_KEYS
from vecml_async.models import ALL_TRAINING_MODES, TASK_TYPES

__all__ = [
    "CLASSIFICATION_METRIC_KEYS",
    "TASK_TYPES",
    "TRAINING_MODES",
    "Prediction",
    "PredictionError",
    "TrainedModel",
    "TrainingError",
    "predict",
    "train_model",
]

#: Every mode this module trains (``auto`` as ``balanced``); the server decides which it takes.
TRAINING_MODES = ALL_TRAINING_MODES

#: Training rows kept with a model, to measure feature importance on.
SAMPLE_ROWS = 128

Metric: TypeAlias = dict[str, float] | float


class TrainingError(Exception):
    """Training cannot proceed; ``str(e)`` is the job's error text shown to users."""


class PredictionError(Exception):
    """The prediction data does not fit the model; ``str(e)`` is the user-facing message."""


@dataclass(frozen=True, eq=False)
class TrainedModel:
    """A fitted model and what the API reports about it.

    ``classes`` lists the class labels in class order (classification only); ``class_values``
    holds their numbers when every label is numeric. ``estimator_name`` says which candidate won.
    """

    model_name: str
    task_type: str
    training_mode: str
    label_attribute: str
    categorical_features: tuple[str, ...]
    vector_dim: int
    created_at: datetime
    validation_metric: Metric
    classes: tuple[str, ...] | None
    class_values: tuple[float, ...] | None
    estimator_name: str
    num_training_rows: int
    features: FeatureMap = field(repr=False)
    estimator: Any = field(repr=False)
    #: A few training rows (vectors, attributes, encoded targets) to measure feature
    #: importance on (see ``_automl_importance``).
    sample: tuple[Any, list[Mapping[str, str]], NDArray[Any]] = field(repr=False)


@dataclass(frozen=True)
class Prediction:
    """The /automl_predict payload: ``num_samples`` counts the rows that carry a label, and
    ``metric`` is computed on them (None when there are none)."""

    predictions: list[float]
    metric: Metric | None
    num_samples: int
    classes: list[str] | None


def _evaluate(
    model: TrainedModel, X: Matrix, attributes: Attributes, error: type[Exception], what: str
) -> tuple[NDArray[np.float64], Metric | None, int]:
    """Scores of every row and the metric over the labelled ones (shared by predict/validate)."""
    if X.shape[1] != model.vector_dim:
        raise error(f"{what} has vector_dim {X.shape[1]}, the model expects {model.vector_dim}")
    missing = missing_categorical(attributes, model.categorical_features, what)
    if missing:
        raise error(missing)
    n_classes = len(model.classes or ())
    out = models.scores(model.estimator, model.features.transform(X, attributes), n_classes)
    rows, labels, _ = labelled_rows(attributes, model.label_attribute)
    if not rows:
        return out, None, 0
    idx = np.array(rows, dtype=np.intp)
    if n_classes:
        y_true = encode(model.classes or (), model.class_values, labels)
        metric: Metric = models.classification_metrics(y_true, out[idx])
    else:
        y = targets(labels, model.label_attribute, rows, error)
        metric = models.mse(y, out[idx])
    return out, metric, len(rows)


def _matrix(X: Any, attributes: Attributes, error: type[Exception], what: str) -> Matrix:
    try:
        Xm = as_matrix(X)
    except ValueError as e:
        raise error(f"{what}: {e}") from None
    if Xm.shape[0] != len(attributes):
        raise error(f"{what}: {Xm.shape[0]} vectors but {len(attributes)} attribute rows")
    if Xm.shape[1] == 0:
        raise error(f"{what}: the vectors have no components")
    return Xm


def _check_validation(
    validation: tuple[Any, Attributes], dim: int, cats: Sequence[str], label: str
) -> tuple[Matrix, Attributes]:
    """Refuse an unusable validation dataset before any model is fitted."""
    what = "the validation dataset"
    Xv = _matrix(validation[0], validation[1], TrainingError, what)
    if Xv.shape[1] != dim:
        raise TrainingError(f"{what} has vector_dim {Xv.shape[1]}, the training dataset {dim}")
    missing = missing_categorical(validation[1], cats, what)
    if missing:
        raise TrainingError(missing)
    if not labelled_rows(validation[1], label)[0]:
        raise TrainingError(f"no row of {what} has a value for the label attribute {label!r}")
    return Xv, validation[1]


def train_model(
    X: Any,
    attributes: Attributes,
    *,
    model_name: str,
    task_type: str,
    training_mode: str,
    label_attribute: str,
    categorical_features: Sequence[str] = (),
    validation: tuple[Any, Attributes] | None = None,
    seed: int = 0,
) -> TrainedModel:
    """Train a model on the labelled rows of (X, attributes).

    The model family depends on ``training_mode`` (see ``_automl_models``); ``auto`` is
    ``balanced``. ``validation`` is ``(X_val, attributes_val)`` of a second collection.

    Raises TrainingError (message for users) on: an unknown task_type or training_mode; vectors
    that are non-finite, zero-width or do not match the attribute rows; a label attribute on no
    row ("label attribute 'x' not found") or empty on every row; one class only; a non-numeric
    regression label (named); fewer than two labelled regression rows; a categorical feature
    that is the label or is absent from every row; a validation dataset of another vector_dim,
    without labelled rows, or missing a categorical feature everywhere.
    """
    with models.one_thread():
        return _train(
            X,
            attributes,
            model_name=model_name,
            task_type=task_type,
            training_mode=training_mode,
            label_attribute=label_attribute,
            categorical_features=categorical_features,
            validation=validation,
            seed=seed,
        )


def _train(
    X: Any,
    attributes: Attributes,
    *,
    model_name: str,
    task_type: str,
    training_mode: str,
    label_attribute: str,
    categorical_features: Sequence[str],
    validation: tuple[Any, Attributes] | None,
    seed: int,
) -> TrainedModel:
    Xm, cats, rows, labels = _training_rows(
        X, attributes, task_type, training_mode, label_attribute, categorical_features
    )
    classes, class_values, y = _training_targets(task_type, labels, label_attribute, rows)
    checked = None
    if validation is not None:
        checked = _check_validation(validation, Xm.shape[1], cats, label_attribute)

    idx = np.array(rows, dtype=np.intp)
    train_attrs = [attributes[i] for i in rows]
    fmap = fit_feature_map(
        Xm[idx], train_attrs, cats, dense=training_mode != "high_speed", seed=seed
    )
    Xf = fmap.transform(Xm[idx], train_attrs)
    kept = sample_rows(len(rows), seed)
    sample = (Xm[idx][kept], [train_attrs[k] for k in kept], y[kept])
    n_classes = len(classes or ())
    folds, cands = models.candidates(training_mode, n_classes > 0, issparse(Xf), seed)

    def model_for(name: str, est: Any, metric: Metric) -> TrainedModel:
        return TrainedModel(
            model_name=model_name,
            task_type=task_type,
            training_mode=training_mode,
            label_attribute=label_attribute,
            categorical_features=cats,
            vector_dim=int(Xm.shape[1]),
            created_at=datetime.now(timezone.utc),
            validation_metric=metric,
            classes=classes,
            class_values=class_values,
            estimator_name=name,
            num_training_rows=len(rows),
            features=fmap,
            estimator=est,
            sample=sample,
        )

    if checked is None:
        name, est, metric = _best_out_of_fold(cands, Xf, y, n_classes, folds, seed)
    else:
        name, est, metric = _best_on_validation(cands, Xf, y, checked, model_for)
    return model_for(name, est, metric)


def _best_out_of_fold(
    cands: Sequence[tuple[str, models.Factory]],
    Xf: Matrix,
    y: NDArray[Any],
    n_classes: int,
    folds: int,
    seed: int,
) -> tuple[str, Any, Metric]:
    """The candidate with the best out-of-fold metric, fitted on all rows, and that metric."""
    splits = models.splits(y, n_classes > 0, folds, seed)
    scored = []
    for name, factory in cands:
        oof = models.out_of_fold(factory, Xf, y, n_classes, splits)
        metric = models.classification_metrics(y, oof) if n_classes else models.mse(y, oof)
        scored.append((name, factory, metric))
    name, factory, metric = _select(scored)
    return name, models.fit(factory, Xf, y), metric


def _best_on_validation(
    cands: Sequence[tuple[str, models.Factory]],
    Xf: Matrix,
    y: NDArray[Any],
    checked: tuple[Matrix, Attributes],
    model_for: Callable[[str, Any, Metric], TrainedModel],
) -> tuple[str, Any, Metric]:
    """The candidate (each fitted on all rows) with the best metric on the validation rows."""
    fitted = []
    for name, factory in cands:
        candidate = model_for(name, models.fit(factory, Xf, y), 0.0)
        _, metric_v, _ = _evaluate(candidate, *checked, TrainingError, "the validation dataset")
        assert metric_v is not None  # _check_validation saw labelled rows
        fitted.append((name, candidate.estimator, metric_v))
    return _select(fitted)


def _training_rows(
    X: Any,
    attributes: Attributes,
    task_type: str,
    training_mode: str,
    label_attribute: str,
    categorical_features: Sequence[str],
) -> tuple[Matrix, tuple[str, ...], list[int], list[str]]:
    """Refuse an unusable training request; else the matrix, the categorical features
    (deduplicated), and the indices and stripped labels of the labelled rows."""
    if task_type not in TASK_TYPES:
        raise TrainingError(
            f"unknown task_type {task_type!r} (expected classification or regression)"
        )
    if training_mode not in TRAINING_MODES:
        raise TrainingError(
            f"unknown training_mode {training_mode!r} (expected {', '.join(TRAINING_MODES)})"
        )
    Xm = _matrix(X, attributes, TrainingError, "the training dataset")
    cats = tuple(dict.fromkeys(categorical_features))
    if label_attribute in cats:
        raise TrainingError(f"the label {label_attribute!r} cannot also be a categorical feature")
    rows, labels, seen = labelled_rows(attributes, label_attribute)
    if not seen:
        raise TrainingError(f"label attribute {label_attribute!r} not found")
    if not rows:
        raise TrainingError(f"no row has a value for the label attribute {label_attribute!r}")
    missing = missing_categorical(attributes, cats, "the training dataset")
    if missing:
        raise TrainingError(missing)
    return Xm, cats, rows, labels


def _training_targets(
    task_type: str, labels: list[str], label_attribute: str, rows: list[int]
) -> tuple[tuple[str, ...] | None, tuple[float, ...] | None, NDArray[Any]]:
    """``(classes, class_values, y)``: the classes (None for regression) and the targets."""
    if task_type != "classification":
        y = targets(labels, label_attribute, rows, TrainingError)
        if len(rows) < 2:
            raise TrainingError("regression needs at least two labelled rows")
        return None, None, y
    classes, class_values = classes_of(labels)
    if len(classes) < 2:
        raise TrainingError(
            f"classification needs at least two classes; every labelled row has {labels[0]!r}"
        )
    return classes, class_values, encode(classes, class_values, labels)


_T = TypeVar("_T")


def sample_rows(n: int, seed: int) -> NDArray[np.intp]:
    """Indices of the (at most :data:`SAMPLE_ROWS`) rows kept with a model, sorted, seeded."""
    if n <= SAMPLE_ROWS:
        return np.arange(n, dtype=np.intp)
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=SAMPLE_ROWS, replace=False)).astype(np.intp)


def _select(scored: list[tuple[str, _T, Metric]]) -> tuple[str, _T, Metric]:
    """The best (name, estimator, metric); the first candidate wins ties (the simpler model)."""
    best = scored[0]
    for entry in scored[1:]:
        if models.better(entry[2], best[2]):
            best = entry
    return best


def predict(model: TrainedModel, X: Any, attributes: Attributes) -> Prediction:
    """Predict every row; the metric covers the rows that carry the model's label attribute.

    Raises PredictionError on a wrong vector_dim, a categorical attribute absent from every row,
    a non-numeric regression label, or an empty dataset.
    """
    Xm = _matrix(X, attributes, PredictionError, "the prediction data")
    if Xm.shape[0] == 0:
        raise PredictionError("the prediction data has no rows")
    with models.one_thread():
        out, metric, count = _evaluate(
            model, Xm, attributes, PredictionError, "the prediction data"
        )
    if not model.classes:
        return Prediction(out.tolist(), metric, count, None)
    pred = out.argmax(axis=1)
    if model.class_values is not None:
        values = np.asarray(model.class_values, dtype=np.float64)[pred]
        return Prediction(values.tolist(), metric, count, None)
    return Prediction(pred.astype(np.float64).tolist(), metric, count, list(model.classes))
