"""The documented AutoML workflow through AsyncVecML, against the emulator over loopback."""

from __future__ import annotations

import gzip
from typing import Any

import numpy as np
import pytest

from vecml_async import (
    AsyncVecML,
    ClassificationMetrics,
    ConflictError,
    JobFailedError,
    NotFoundError,
)
from vecml_async.testing import EmulatorFixture


def seed_dataset(n: int, dim: int, seed: int) -> tuple[Any, list[str], list[dict[str, str]]]:
    """The seed script's data: label from the first 20 components and a category weight."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    categories = rng.choice(["A", "B", "C"], n)
    weight = np.select([categories == "A", categories == "B"], [1.0, -0.5], 0.0)
    labels = (vectors[:, :20].sum(axis=1) + weight > 0).astype(int)
    ids = [f"row_{i:05d}" for i in range(n)]
    attrs = [{"label": str(lab), "category": str(c)} for lab, c in zip(labels, categories)]
    return vectors, ids, attrs


async def test_seed_workflow_through_the_client(
    vecml_client: AsyncVecML, vecml_emulator: EmulatorFixture
) -> None:
    """Project, collections, ingest, upload jobs, training, prediction, listing, deletion."""
    client = vecml_client
    await client.delete_project("AutoML-Demo", missing_ok=True)
    await client.create_project("AutoML-Demo")
    await client.init("AutoML-Demo", "training_data", vector_dim=64)
    vectors, ids, attrs = seed_dataset(3000, 64, 2025)
    report = await client.ingest(
        "AutoML-Demo",
        "training_data",
        vectors,
        ids=ids,
        attributes=attrs,
        wait=True,
        max_bytes=200_000,
    )
    assert report.complete and report.batches_sent > 1
    assert report.jobs_finished == report.batches_sent
    stored = vecml_emulator.emulator.collection_ids(
        vecml_emulator.api_key, "AutoML-Demo", "training_data"
    )
    assert sorted(stored) == ids

    job = await client.train_automl_model(
        "AutoML-Demo",
        "training_data",
        "model1",
        training_mode="high_speed",
        task_type="classification",
        label_attribute="label",
        categorical_features=["category"],
    )
    status = await job.wait(timeout=120)
    assert status.status == "finished" and status.model_name == "model1"
    assert isinstance(status.validation_metric, ClassificationMetrics)
    assert status.validation_metric.accuracy > 0.8

    await client.init("AutoML-Demo", "prediction_data", vector_dim=64)
    p_vectors, p_ids, p_attrs = seed_dataset(200, 64, 2026)
    upload = await client.add_data_batch(
        "AutoML-Demo", "prediction_data", p_vectors, string_ids=p_ids, attributes=p_attrs
    )
    await upload
    result = await client.automl_predict(
        "AutoML-Demo", "training_data", "model1", prediction_dataset="prediction_data"
    )
    assert len(result.predictions) == 200 and result.num_samples == 200
    assert isinstance(result.prediction_metric, ClassificationMetrics)
    assert result.prediction_metric.accuracy > 0.8
    expected = [float(a["label"]) for a in p_attrs]
    agreement = np.mean(np.asarray(result.predictions) == np.asarray(expected))
    assert agreement == pytest.approx(result.prediction_metric.accuracy)

    metric = await client.get_model_validation_metric("AutoML-Demo", "training_data", "model1")
    assert metric.validation_metric == status.validation_metric
    (info,) = await client.list_automl_model_infos("AutoML-Demo", "training_data")
    assert (info.model_name, info.task_type, info.training_mode) == (
        "model1",
        "classification",
        "high_speed",
    )
    assert info.created_at is not None

    with pytest.raises(ConflictError):
        await client.train_automl_model(
            "AutoML-Demo",
            "training_data",
            "model1",
            task_type="classification",
            label_attribute="label",
        )
    await client.delete_automl_model("AutoML-Demo", "training_data", "model1")
    assert await client.list_automl_model_infos("AutoML-Demo", "training_data") == []
    await client.delete_project("AutoML-Demo")
    with pytest.raises(NotFoundError):
        await client.list_automl_model_infos("AutoML-Demo", "training_data")


async def test_upload_and_inline_prediction_files(vecml_client: AsyncVecML) -> None:
    """A gzip CSV upload creates a collection; a JSON file predicts inline with metrics."""
    client = vecml_client
    await client.create_project("files")
    vectors, ids, attrs = seed_dataset(600, 8, 7)
    lines = ["id,label," + ",".join(f"f{j}" for j in range(8))]
    for row_id, row, a in zip(ids, vectors, attrs):
        lines.append(f"{row_id},{a['label']}," + ",".join(repr(float(x)) for x in row))
    csv_gz = gzip.compress("\n".join(lines).encode())
    job = await client.upload(
        "files",
        "train",
        csv_gz,
        file_format="csv",
        string_id_column="id",
        attribute_columns=["label"],
    )
    status = await job
    assert status.is_finished
    training = await client.train_automl_model(
        "files",
        "train",
        "m",
        task_type="classification",
        label_attribute="label",
        training_mode="high_speed",
    )
    await training
    import orjson

    records = [
        {"string_id": i, "data": v.tolist(), "attributes": a}
        for i, v, a in zip(ids[:50], vectors[:50], attrs[:50])
    ]
    result = await client.automl_predict(
        "files", "train", "m", file=orjson.dumps(records), file_format="json"
    )
    assert len(result.predictions) == 50 and result.num_samples == 50
    assert isinstance(result.prediction_metric, ClassificationMetrics)


async def test_regression_and_a_failed_training_job(vecml_client: AsyncVecML) -> None:
    """Regression metrics are an MSE float; a job that fails raises JobFailedError."""
    client = vecml_client
    await client.create_project("reg")
    await client.init("reg", "c", vector_dim=4)
    rng = np.random.default_rng(3)
    x = rng.standard_normal((400, 4)).astype(np.float32)
    y = x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.01 * rng.standard_normal(400)
    await client.ingest("reg", "c", x, attributes=[{"y": float(v)} for v in y], wait=True)
    status = await (
        await client.train_automl_model(
            "reg",
            "c",
            "lin",
            task_type="regression",
            label_attribute="y",
            training_mode="high_speed",
        )
    )
    assert isinstance(status.validation_metric, float) and status.validation_metric < 0.1
    failing = await client.train_automl_model(
        "reg",
        "c",
        "nolabel",
        task_type="regression",
        label_attribute="missing",
        training_mode="high_speed",
    )
    with pytest.raises(JobFailedError, match="missing") as info:
        await failing
    assert info.value.job_id == failing.job_id
    rebuilt = client.training_job(failing.job_id)
    assert (await rebuilt.refresh()).is_failed
