"""Tests of the emulator's AutoML (vecml_async.emulator.automl): training modes, metrics, errors."""

from __future__ import annotations

import json
import math
from datetime import timezone
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp
from threadpoolctl import threadpool_info  # type: ignore[import-untyped]

from vecml_async.emulator import _automl_features, _automl_models
from vecml_async.emulator.automl import (
    CLASSIFICATION_METRIC_KEYS,
    PredictionError,
    TrainedModel,
    TrainingError,
    predict,
    train_model,
)

Rows = list[dict[str, str]]
WEIGHTS = {"A": 1.0, "B": -0.5, "C": 0.0}


def seed_like(n: int, seed: int, dim: int = 64) -> tuple[np.ndarray, Rows]:
    """The AutoML doc's example data: label 1 when sum(x[:20]) + category weight > 0."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, dim)).astype(np.float32)
    cats = rng.choice(list(WEIGHTS), size=n)
    score = X[:, :20].sum(axis=1) + np.array([WEIGHTS[c] for c in cats])
    rows = [
        {"label": "1" if s > 0 else "0", "category": str(c)}
        for s, c in zip(score, cats, strict=True)
    ]
    return X, rows


def train(X: Any, rows: Any, **kw: Any) -> TrainedModel:
    """train_model with the test defaults (classification, high_speed, label 'label')."""
    args: dict[str, Any] = {
        "model_name": "m",
        "task_type": "classification",
        "training_mode": "high_speed",
        "label_attribute": "label",
    }
    args.update(kw)
    return train_model(X, rows, **args)


def metric_dict(m: object) -> dict[str, float]:
    assert isinstance(m, dict)
    return m


@pytest.fixture(scope="module")
def seed_test() -> tuple[np.ndarray, Rows]:
    return seed_like(400, seed=2026)


@pytest.fixture(scope="module")
def by_mode() -> dict[str, TrainedModel]:
    X, rows = seed_like(300, seed=2025)
    return {
        mode: train(X, rows, training_mode=mode, categorical_features=["category"])
        for mode in ("high_speed", "balanced", "high_accuracy")
    }


@pytest.mark.parametrize(
    ("mode", "family", "floor"),
    [("high_speed", "linear", 0.85), ("balanced", "gbdt", 0.7), ("high_accuracy", "linear", 0.85)],
)
def test_modes_learn_the_doc_dataset(
    by_mode: dict[str, TrainedModel], seed_test: Any, mode: str, family: str, floor: float
) -> None:
    """Each mode beats chance by far on the doc's linear-boundary data; the search picks linear."""
    model = by_mode[mode]
    assert model.estimator_name.startswith(family)
    result = predict(model, *seed_test)
    assert metric_dict(result.metric)["accuracy"] >= floor
    assert metric_dict(model.validation_metric)["accuracy"] >= floor - 0.1
    assert result.num_samples == 400
    assert set(result.predictions) <= {0.0, 1.0}
    assert result.classes is None


def test_metrics_have_exactly_the_documented_keys(by_mode: dict[str, TrainedModel]) -> None:
    """Validation and prediction metrics carry the 8 keys, finite floats in [0, 1], JSON-safe."""
    X, rows = seed_like(50, seed=9)
    for model in by_mode.values():
        for metric in (model.validation_metric, predict(model, X, rows).metric):
            m = metric_dict(metric)
            assert tuple(m) == CLASSIFICATION_METRIC_KEYS
            assert all(type(v) is float and 0.0 <= v <= 1.0 for v in m.values())
            json.dumps(m, allow_nan=False)


def test_model_metadata(by_mode: dict[str, TrainedModel]) -> None:
    """The trained model records its names, features, dim and a UTC creation time."""
    model = by_mode["high_speed"]
    assert (model.model_name, model.task_type, model.training_mode) == (
        "m",
        "classification",
        "high_speed",
    )
    assert model.categorical_features == ("category",)
    assert model.vector_dim == 64
    assert model.created_at.tzinfo == timezone.utc
    assert model.num_training_rows == 300


def test_auto_is_balanced() -> None:
    """training_mode 'auto' trains the balanced model and keeps its own name."""
    X, rows = seed_like(120, seed=1)
    auto = train(X, rows, training_mode="auto")
    balanced = train(X, rows, training_mode="balanced")
    assert auto.training_mode == "auto"
    assert auto.estimator_name == balanced.estimator_name
    assert auto.validation_metric == balanced.validation_metric


def test_training_is_deterministic() -> None:
    """The same seed gives the same metric and the same predictions."""
    X, rows = seed_like(120, seed=4)
    a = train(X, rows, training_mode="balanced", seed=3)
    b = train(X, rows, training_mode="balanced", seed=3)
    assert a.validation_metric == b.validation_metric
    assert predict(a, X, rows).predictions == predict(b, X, rows).predictions


def test_high_accuracy_picks_trees_for_a_nonlinear_boundary() -> None:
    """On XOR-shaped data the search prefers gradient boosting over the linear model."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((240, 4)).astype(np.float32)
    rows = [{"label": str(int((a > 0) != (b > 0)))} for a, b in X[:, :2]]
    model = train(X, rows, training_mode="high_accuracy")
    assert model.estimator_name.startswith("gbdt")
    assert metric_dict(model.validation_metric)["accuracy"] >= 0.8


@pytest.mark.parametrize("mode", ["high_speed", "balanced", "high_accuracy"])
def test_regression_beats_the_mean(mode: str) -> None:
    """Every mode's MSE (validation and prediction) is well below the label variance."""
    rng = np.random.default_rng(6)
    X = rng.standard_normal((200, 8)).astype(np.float32)
    y = X[:, 0] * 2 + X[:, 1] - X[:, 2]
    rows = [{"price": repr(float(v))} for v in y]
    model = train(X, rows, task_type="regression", training_mode=mode, label_attribute="price")
    assert isinstance(model.validation_metric, float)
    assert model.validation_metric < 0.5 * float(np.var(y))
    result = predict(model, X, rows)
    assert isinstance(result.metric, float)
    assert result.metric < 0.5 * float(np.var(y))
    assert len(result.predictions) == 200
    assert result.classes is None


def test_categorical_feature_carries_the_signal() -> None:
    """When only the category decides the label, one-hot encoding it is what makes it learnable."""
    rng = np.random.default_rng(7)
    X = rng.standard_normal((240, 8)).astype(np.float32)
    cats = rng.choice(["red", "green", "blue"], size=240)
    rows = [{"label": "1" if c == "green" else "0", "colour": str(c)} for c in cats]
    with_cat = train(X, rows, categorical_features=["colour"])
    without = train(X, rows)
    assert metric_dict(with_cat.validation_metric)["accuracy"] == 1.0
    assert metric_dict(without.validation_metric)["accuracy"] < 0.8


def test_unlabelled_rows_are_left_out_of_training() -> None:
    """Rows whose label is missing, empty or blank are not trained on."""
    X, rows = seed_like(100, seed=8)
    rows[0] = {"category": "A"}
    rows[1] = {"label": "", "category": "A"}
    rows[2] = {"label": "   ", "category": "A"}
    model = train(X, rows)
    assert model.num_training_rows == 97


def test_labels_are_stripped_and_numeric_spellings_merge() -> None:
    """' 1', '1' and '1.0' are one class, predicted as the number 1.0."""
    X, rows = seed_like(80, seed=10)
    spellings = {"1": ["1", " 1", "1.0"], "0": ["0", "0.0"]}
    for i, r in enumerate(rows):
        options = spellings[r["label"]]
        r["label"] = options[i % len(options)]
    model = train(X, rows)
    assert model.class_values == (0.0, 1.0)
    assert set(predict(model, X, rows).predictions) <= {0.0, 1.0}


def test_numeric_labels_are_predicted_as_their_values() -> None:
    """Classes '3' and '10' (numeric) come back as 3.0 and 10.0, sorted numerically."""
    X, rows = seed_like(80, seed=11)
    for r in rows:
        r["label"] = "10" if r["label"] == "1" else "3"
    model = train(X, rows)
    result = predict(model, X, rows)
    assert model.class_values == (3.0, 10.0)
    assert set(result.predictions) == {3.0, 10.0}
    assert result.classes is None


def test_text_labels_are_predicted_as_sorted_indices() -> None:
    """Non-numeric classes come back as indices into the sorted labels, listed in classes."""
    rng = np.random.default_rng(12)
    X = rng.standard_normal((150, 6)).astype(np.float32)
    names = np.array(["dog", "cat", "eel"])
    rows = [{"label": str(names[i])} for i in X[:, :3].argmax(axis=1)]
    model = train(X, rows)
    result = predict(model, X, rows)
    assert result.classes == ["cat", "dog", "eel"]
    assert set(result.predictions) == {0.0, 1.0, 2.0}
    m = metric_dict(result.metric)
    assert m["accuracy"] > 0.8
    assert m["auc"] > 0.9  # one-vs-rest over three classes
    assert result.predictions[0] == float(result.classes.index(rows[0]["label"]))


def test_mixed_labels_are_text() -> None:
    """One non-numeric label makes every label a text class (sorted as strings)."""
    X, rows = seed_like(60, seed=13)
    for r in rows:
        r["label"] = "yes" if r["label"] == "1" else "2"
    model = train(X, rows)
    assert model.classes == ("2", "yes")
    assert model.class_values is None


def test_rare_class_uses_unstratified_folds() -> None:
    """A class with a single row still trains (plain KFold, one-class folds) without warnings."""
    X, rows = seed_like(60, seed=14)
    rows[0]["label"] = "rare"
    model = train(X, rows)
    assert model.classes == ("0", "1", "rare")
    assert tuple(metric_dict(model.validation_metric)) == CLASSIFICATION_METRIC_KEYS


def test_validation_dataset_gives_the_metric() -> None:
    """With a validation dataset the metric is measured on its labelled rows, not by CV."""
    X, rows = seed_like(200, seed=15)
    Xv, rows_v = seed_like(100, seed=16)
    flipped = [{**r, "label": "0" if r["label"] == "1" else "1"} for r in rows_v]
    flipped[0] = {"category": "A"}  # unlabelled rows are left out of the metric
    cv = train(X, rows, categorical_features=["category"])
    val = train(X, rows, categorical_features=["category"], validation=(Xv, flipped))
    assert metric_dict(cv.validation_metric)["accuracy"] > 0.7
    assert metric_dict(val.validation_metric)["accuracy"] < 0.3
    truth = predict(val, Xv[1:], rows_v[1:])
    assert math.isclose(
        metric_dict(truth.metric)["accuracy"], 1 - metric_dict(val.validation_metric)["accuracy"]
    )


def test_high_accuracy_selects_on_the_validation_dataset() -> None:
    """In the search, the validation dataset both chooses the candidate and scores it."""
    rng = np.random.default_rng(17)
    X = rng.standard_normal((300, 4)).astype(np.float32)
    rows = [{"label": str(int((a > 0) != (b > 0)))} for a, b in X[:, :2]]
    model = train(
        X[:200], rows[:200], training_mode="high_accuracy", validation=(X[200:], rows[200:])
    )
    assert model.estimator_name.startswith("gbdt")


def test_predict_counts_only_labelled_rows() -> None:
    """num_samples and the metric cover labelled rows; every row gets a prediction."""
    X, rows = seed_like(100, seed=18)
    model = train(X, rows, categorical_features=["category"])
    partial = [r if i % 4 == 0 else {"category": r["category"]} for i, r in enumerate(rows)]
    result = predict(model, X, partial)
    assert result.num_samples == 25
    assert len(result.predictions) == 100
    assert result.metric is not None
    unlabelled = predict(model, X, [{"category": r["category"]} for r in rows])
    assert (unlabelled.num_samples, unlabelled.metric) == (0, None)
    assert unlabelled.predictions == result.predictions


def test_predict_tolerates_missing_and_unknown_categories() -> None:
    """A row may lack the categorical value or carry an unseen one; it still gets a prediction."""
    X, rows = seed_like(100, seed=19)
    model = train(X, rows, categorical_features=["category"])
    odd = [{"category": "never-seen"}, {}, {"category": ""}, *rows[3:]]
    assert len(predict(model, X, odd).predictions) == 100


def test_unseen_labels_count_as_errors() -> None:
    """A prediction-time label the model never saw is scored as a wrong prediction."""
    X, rows = seed_like(100, seed=20)
    model = train(X, rows)
    base = metric_dict(predict(model, X, rows).metric)["accuracy"]
    odd = [{"label": "unknown"} if i < 10 else r for i, r in enumerate(rows)]
    worse = predict(model, X, odd)
    assert worse.num_samples == 100
    assert metric_dict(worse.metric)["accuracy"] <= base - 0.1 + 1e-9


def test_auc_falls_back_to_half_with_one_class() -> None:
    """AUC is undefined when the evaluated rows hold one class; it is reported as 0.5."""
    X, rows = seed_like(100, seed=21)
    model = train(X, rows)
    ones = [i for i, r in enumerate(rows) if r["label"] == "1"]
    result = predict(model, X[ones], [rows[i] for i in ones])
    assert metric_dict(result.metric)["auc"] == 0.5


def test_categorical_vocabulary_is_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the most frequent MAX_CATEGORIES values of a feature get a column."""
    monkeypatch.setattr(_automl_features, "MAX_CATEGORIES", 3)
    X, rows = seed_like(60, seed=22)
    for i, r in enumerate(rows):
        r["city"] = "big" if i % 2 else f"town{i % 7}"
    model = train(X, rows, categorical_features=["city"])
    assert model.features.categorical_width == 3
    assert "big" in model.features.categories[0][1]


def test_sparse_input_trains_linear_and_predicts_dense_too() -> None:
    """A CSR training matrix works for high_speed; the model also accepts the same rows dense."""
    rng = np.random.default_rng(23)
    dense = np.zeros((120, 1000), dtype=np.float32)
    dense[:, :30] = rng.standard_normal((120, 30))
    rows = [{"label": str(int(v > 0))} for v in dense[:, :5].sum(axis=1)]
    model = train(sp.csr_matrix(dense), rows)
    assert model.features.used_columns is not None
    assert model.features.used_columns.size == 30
    from_sparse = predict(model, sp.csr_matrix(dense), rows)
    from_dense = predict(model, dense, rows)
    assert from_sparse.predictions == from_dense.predictions
    assert metric_dict(model.validation_metric)["accuracy"] > 0.75


def test_wide_sparse_input_is_reduced_for_trees(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tree modes densify few used columns and project many through a seeded TruncatedSVD."""
    monkeypatch.setattr(_automl_features, "DENSE_MAX_COLUMNS", 8)
    monkeypatch.setattr(_automl_features, "SVD_COMPONENTS", 4)
    rng = np.random.default_rng(24)
    cols = np.concatenate([rng.choice(2**21, size=5, replace=False) for _ in range(80)])
    m = sp.csr_matrix(
        (rng.standard_normal(400).astype(np.float32), cols, np.arange(0, 401, 5)),
        shape=(80, 2**21),
    )
    rows = [{"label": str(int(rng.random() > 0.5))} for _ in range(80)]
    model = train(m, rows, training_mode="balanced")
    assert model.features.svd is not None
    assert len(predict(model, m, rows).predictions) == 80
    narrow = sp.csr_matrix(m[:, cols[:6]])  # six used columns: densified, no projection
    assert train(narrow, rows, training_mode="balanced").features.svd is None


TRAIN_ERRORS = [
    ({"task_type": "clustering"}, None, "unknown task_type 'clustering'"),
    ({"training_mode": "fast"}, None, "unknown training_mode 'fast'"),
    ({"label_attribute": "price"}, None, "label attribute 'price' not found"),
    ({}, [{"label": ""}] * 20, "no row has a value for the label attribute 'label'"),
    ({}, [{"label": "1"}] * 20, "at least two classes"),
    ({"task_type": "regression"}, [{"label": "abc"}] * 20, "label 'abc' of attribute 'label'"),
    ({"task_type": "regression"}, [{"label": "2"}] + [{}] * 19, "at least two labelled rows"),
    ({"categorical_features": ["label"]}, None, "cannot also be a categorical feature"),
    ({"categorical_features": ["colour"]}, None, "categorical attribute 'colour' is missing"),
    ({}, [{"label": "1"}] * 3, "20 vectors but 3 attribute rows"),
]


@pytest.mark.parametrize(("kwargs", "rows", "message"), TRAIN_ERRORS)
def test_training_errors(kwargs: dict[str, Any], rows: Rows | None, message: str) -> None:
    """Every refused training raises TrainingError with a message naming the problem."""
    X, default_rows = seed_like(20, seed=26)
    with pytest.raises(TrainingError, match=message):
        train(X, rows if rows is not None else default_rows, **kwargs)


def test_training_refuses_unusable_vectors() -> None:
    """NaN or zero-width training vectors are a TrainingError, not a crash inside scikit-learn."""
    X, rows = seed_like(20, seed=27)
    with pytest.raises(TrainingError, match="no components"):
        train(X[:, :0], rows)
    X[3, 3] = np.nan
    with pytest.raises(TrainingError, match="non-finite"):
        train(X, rows)


@pytest.mark.parametrize(
    ("dim", "rows_fn", "message"),
    [
        (32, None, "vector_dim 32, the training dataset 64"),
        (64, lambda r: [{"category": "A"}] * len(r), "no row of the validation dataset"),
        (64, lambda r: [{"label": x["label"]} for x in r], "'category' is missing from every row"),
    ],
)
def test_validation_dataset_errors(dim: int, rows_fn: Any, message: str) -> None:
    """A validation dataset of another dim, without labels or categoricals is refused."""
    X, rows = seed_like(40, seed=28)
    Xv, rows_v = seed_like(20, seed=29, dim=dim)
    rows_v = rows_fn(rows_v) if rows_fn else rows_v
    with pytest.raises(TrainingError, match=message):
        train(X, rows, categorical_features=["category"], validation=(Xv, rows_v))


def test_prediction_errors() -> None:
    """Wrong dim, a categorical absent everywhere, no rows, bad regression labels all refuse."""
    X, rows = seed_like(40, seed=30)
    model = train(X, rows, categorical_features=["category"])
    with pytest.raises(PredictionError, match="vector_dim 10, the model expects 64"):
        predict(model, X[:, :10], rows)
    with pytest.raises(PredictionError, match="'category' is missing from every row"):
        predict(model, X, [{"label": "1"}] * 40)
    with pytest.raises(PredictionError, match="no rows"):
        predict(model, X[:0], [])
    with pytest.raises(PredictionError, match="40 vectors but 1 attribute rows"):
        predict(model, X, rows[:1])
    reg = train(X, [{"y": str(i)} for i in range(40)], task_type="regression", label_attribute="y")
    with pytest.raises(PredictionError, match="label 'n/a' of attribute 'y'"):
        predict(reg, X, [{"y": "n/a"}] * 40)


def test_thread_limits_are_scoped() -> None:
    """Training runs on one BLAS/OpenMP thread; overlapping users restore the limits once, last."""

    def threads() -> dict[str, int]:
        return {i["user_api"]: i["num_threads"] for i in threadpool_info()}

    before = threads()
    with _automl_models.one_thread():
        with _automl_models.one_thread():
            assert set(threads().values()) == {1}
        assert set(threads().values()) == {1}  # the outer user still holds the limit
    assert threads() == before
