"""Train and predict on real datasets, next to a plain scikit-learn baseline on the same split.

Breast cancer (classification) and diabetes (regression) ship with scikit-learn, so nothing is
downloaded. Each dataset is split 75/25; both splits are ingested as collections whose rows
carry the label as an attribute; a model is trained on the first and predicts the second. The
service's test metrics are printed next to a scikit-learn model fitted on the same split.

Uses VecML when VECML_API_KEY is set, otherwise a local emulator:
``python examples/train_and_predict.py``
"""

from __future__ import annotations

import asyncio
import os
from typing import Any

import numpy as np
from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.metrics import accuracy_score, f1_score, mean_squared_error, roc_auc_score
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from vecml_async import AsyncVecML, ClassificationMetrics
from vecml_async.emulator import serve

PROJECT = "sklearn_datasets"


async def load(client: AsyncVecML, collection: str, X: Any, y: Any, label: str) -> None:
    """One collection: the features as vectors, the target as the ``label`` attribute."""
    await client.init(PROJECT, collection, vector_type="dense", vector_dim=X.shape[1])
    ids = [f"{collection}_{i}" for i in range(len(X))]
    attributes = [{label: str(value)} for value in y.tolist()]
    await client.ingest(PROJECT, collection, X, ids=ids, attributes=attributes, wait=True)


async def fit_and_predict(
    client: AsyncVecML, name: str, X: Any, y: Any, task_type: str, label: str
) -> tuple[Any, Any, tuple[Any, Any, Any, Any]]:
    """Ingest both splits, train on the first, predict the second.

    Returns the validation metric, the test metric and ``(X_train, X_test, y_train, y_test)``.
    """
    stratify = y if task_type == "classification" else None
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.25, random_state=0, stratify=stratify
    )
    await load(client, f"{name}_train", X_train, y_train, label)
    await load(client, f"{name}_test", X_test, y_test, label)
    job = await client.train_automl_model(
        PROJECT, f"{name}_train", f"{name}_model", training_mode="balanced",
        task_type=task_type, label_attribute=label,
    )  # fmt: skip
    status = await job
    answer = await client.automl_predict(
        PROJECT, f"{name}_train", f"{name}_model", prediction_dataset=f"{name}_test"
    )
    assert len(answer.predictions) == len(X_test)
    split = (X_train, X_test, y_train, y_test)
    return status.validation_metric, answer.prediction_metric, split


def row(name: str, *values: float | None) -> str:
    cells = "".join(f"{v:>14.4f}" if v is not None else f"{'-':>14}" for v in values)
    return f"  {name:<10}{cells}"


async def classification(client: AsyncVecML) -> None:
    X, y = load_breast_cancer(return_X_y=True)
    validation, test, (X_train, X_test, y_train, y_test) = await fit_and_predict(
        client, "breast_cancer", X, y, "classification", "label"
    )
    baseline = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    baseline.fit(X_train, y_train)
    predicted = baseline.predict(X_test)
    reference = {
        "accuracy": accuracy_score(y_test, predicted),
        "macro_f1": f1_score(y_test, predicted, average="macro"),
        "auc": roc_auc_score(y_test, baseline.predict_proba(X_test)[:, 1]),
    }
    assert isinstance(validation, ClassificationMetrics)
    assert isinstance(test, ClassificationMetrics)
    print(f"breast cancer: {len(X_train)} train / {len(X_test)} test rows, {X.shape[1]} features")
    print(f"  {'metric':<10}{'VecML valid.':>14}{'VecML test':>14}{'sklearn test':>14}")
    for key, value in reference.items():
        print(row(key, getattr(validation, key), getattr(test, key), float(value)))


async def regression(client: AsyncVecML) -> None:
    X, y = load_diabetes(return_X_y=True)
    validation, test, (X_train, X_test, y_train, y_test) = await fit_and_predict(
        client, "diabetes", X, y, "regression", "target"
    )
    baseline = Ridge(alpha=0.1).fit(X_train, y_train)
    mse = mean_squared_error(y_test, baseline.predict(X_test))
    assert isinstance(validation, float)
    assert isinstance(test, float)
    print(f"diabetes: {len(X_train)} train / {len(X_test)} test rows, {X.shape[1]} features")
    print(f"  {'metric':<10}{'VecML valid.':>14}{'VecML test':>14}{'sklearn test':>14}")
    print(row("MSE", validation, test, float(mse)))
    print(row("RMSE", *(float(np.sqrt(v)) for v in (validation, test, mse))))


async def workflow(client: AsyncVecML) -> None:
    await client.delete_project(PROJECT, missing_ok=True)
    await client.create_project(PROJECT)
    await classification(client)
    await regression(client)


async def main() -> None:
    if os.environ.get("VECML_API_KEY"):
        async with AsyncVecML() as client:
            await workflow(client)
    else:
        async with serve() as url, AsyncVecML("local-key", base_url=url) as client:
            await workflow(client)


if __name__ == "__main__":
    asyncio.run(main())
