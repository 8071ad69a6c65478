"""The AutoML endpoints over HTTP: training jobs, metrics, listing, prediction, deletion."""

from __future__ import annotations

import base64
import re
from typing import Any

import numpy as np
import pytest

P = {"project_name": "p", "collection_name": "c"}
METRIC_KEYS = {
    "accuracy",
    "micro_precision",
    "macro_precision",
    "micro_recall",
    "macro_recall",
    "micro_f1",
    "macro_f1",
    "auc",
}
TRAIN = {
    "model_name": "m",
    "training_mode": "high_speed",
    "task_type": "classification",
    "label_attribute": "label",
}


def linear_rows(n: int, seed: int) -> tuple[list[list[float]], list[dict[str, str]]]:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 4))
    labels = (X[:, 0] + X[:, 1] > 0).astype(int)
    return X.tolist(), [{"label": str(v), "group": "AB"[v]} for v in labels]


async def _with_data(api: Any, collection: str = "c", n: int = 120, seed: int = 0) -> None:
    await api.call("create_project", project_name="p")
    await api.ok(
        "init", project_name="p", collection_name=collection, vector_type="dense", vector_dim=4
    )
    data, attrs = linear_rows(n, seed)
    job = await api.ok(
        "add_data_batch", project_name="p", collection_name=collection, data=data, attributes=attrs
    )
    await api.wait_job(job["job_id"])


async def _train(api: Any, **overrides: Any) -> dict[str, Any]:
    job = await api.ok("train_automl_model", **P, **{**TRAIN, **overrides})
    return dict(await api.wait_job(job["job_id"], "get_automl_training_status", timeout=60))


async def test_train_predict_list_delete_cycle(api: Any) -> None:
    """A trained model reports metrics, is listed, predicts a dataset, and can be deleted."""
    await _with_data(api)
    job = await api.ok("train_automl_model", **P, **TRAIN)
    assert job["job_id"] == f"{api.emulator.fingerprint(api.key)}_p_c_m_TrainJob"
    status = await api.wait_job(job["job_id"], "get_automl_training_status", timeout=60)
    assert status["status"] == "finished", status
    assert (status["task_type"], status["model_name"], status["label_attribute"]) == (
        "classification",
        "m",
        "label",
    )
    assert set(status["validation_metric"]) == METRIC_KEYS
    metric = await api.ok("get_model_validation_metric", **P, model_name="m")
    assert metric["validation_metric"] == status["validation_metric"]
    infos = (await api.ok("list_automl_model_infos", **P))["model_infos"]
    assert len(infos) == 1
    assert infos[0][:4] == ["m", "classification", "high_speed", "label"]
    assert re.fullmatch(r"\d{4}/\d\d/\d\d, \d\d:\d\d", infos[0][4])
    await _with_data(api, "holdout", n=60, seed=1)
    result = await api.ok("automl_predict", **P, model_name="m", prediction_dataset="holdout")
    assert result["num_samples"] == 60
    assert len(result["predictions"]) == 60
    assert set(result["predictions"]) <= {0.0, 1.0}
    assert result["prediction_metric"]["accuracy"] >= 0.75
    await api.ok("delete_automl_model", **P, model_name="m")
    assert "does not exist" in await api.fail("delete_automl_model", 404, **P, model_name="m")
    assert "does not exist" in await api.fail(
        "get_model_validation_metric", 404, **P, model_name="m"
    )


async def test_predict_from_an_inline_csv_file(api: Any) -> None:
    """automl_predict accepts a base64 csv file; rows without the label are not counted."""
    await _with_data(api)
    await _train(api)
    rows = ["x1,x2,x3,x4,label", "1,1,0,0,1", "-1,-1,0,0,0", "2,2,0,0,"]
    file_data = base64.b64encode("\n".join(rows).encode()).decode()
    result = await api.ok(
        "automl_predict",
        **P,
        model_name="m",
        file_data=file_data,
        file_format="csv",
        has_field_names=True,
    )
    assert len(result["predictions"]) == 3
    assert result["num_samples"] == 2


async def test_duplicate_model_is_409_until_training_failed(api: Any) -> None:
    """A second model with the same name is 409; after a failed training it may be retrained."""
    await _with_data(api)
    failed = await _train(api, label_attribute="no_such_attribute")
    assert failed["status"] == "failed"
    assert failed["error"]
    assert "validation_metric" not in failed
    finished = await _train(api)
    assert finished["status"] == "finished"
    message = await api.fail("train_automl_model", 409, **P, **TRAIN)
    assert message == "Model m already exists in collection c"


@pytest.mark.parametrize(
    ("overrides", "fragment"),
    [
        ({"training_mode": "fastest"}, "training_mode"),
        ({"task_type": "clustering"}, "task_type"),
        ({"label_attribute": None}, "label_attribute"),
        ({"model_name": "bad name"}, "model_name"),
        ({"categorical_features": "group"}, "categorical_features"),
        ({"validation_dataset": "missing"}, "does not exist"),
    ],
)
async def test_training_requests_are_validated(
    api: Any, overrides: dict[str, Any], fragment: str
) -> None:
    """Bad training fields are refused before any job starts."""
    await _with_data(api)
    status = 404 if fragment == "does not exist" else 400
    message = await api.fail("train_automl_model", status, **P, **{**TRAIN, **overrides})
    assert fragment in message


async def test_auto_mode_follows_the_setting(start: Any) -> None:
    """training_mode='auto' (not in the documented list) is refused by default and accepted
    when the setting allows it."""
    strict = await start()
    await _with_data(strict)
    message = await strict.fail(
        "train_automl_model", 400, **P, **{**TRAIN, "training_mode": "auto"}
    )
    assert message.startswith("Unknown training_mode 'auto'")
    assert "high_accuracy" in message
    # Accepted when allowed; a training delay keeps the (slow, balanced) training from running.
    lenient = await start(training_delay=60.0, allow_auto_training_mode=True)
    await _with_data(lenient)
    job = await lenient.ok("train_automl_model", **P, **{**TRAIN, "training_mode": "auto"})
    status = await lenient.ok("get_automl_training_status", job_id=job["job_id"])
    assert status["status"] == "pending"


async def test_pending_training_and_unfinished_model(start: Any) -> None:
    """With training_delay the job is pending and the model cannot predict yet."""
    api = await start(training_delay=5.0)
    await _with_data(api)
    job = await api.ok("train_automl_model", **P, **TRAIN, categorical_features=["group"])
    status = await api.ok("get_automl_training_status", job_id=job["job_id"])
    assert status["status"] == "pending"
    assert "not finished" in await api.fail(
        "automl_predict", 400, **P, model_name="m", prediction_dataset="c"
    )
    [info] = (await api.ok("list_automl_model_infos", **P))["model_infos"]
    assert info[:4] == ["m", "classification", "high_speed", "label"]
    assert info[5] == "pending"
    assert "not found" in await api.fail(
        "get_automl_training_status", 404, key="vml_test_key_b", job_id=job["job_id"]
    )


async def test_predict_needs_exactly_one_source_and_matching_dims(api: Any) -> None:
    """Both or neither of prediction_dataset / file_data is 400; other dims are 400."""
    await _with_data(api)
    await _train(api)
    both = {"prediction_dataset": "c", "file_data": "eA==", "file_format": "csv"}
    assert "not both" in await api.fail("automl_predict", 400, **P, model_name="m", **both)
    await api.fail("automl_predict", 400, **P, model_name="m")
    await api.ok(
        "init", project_name="p", collection_name="wide", vector_type="dense", vector_dim=5
    )
    job = await api.ok(
        "add_data_batch", project_name="p", collection_name="wide", data=[[1, 2, 3, 4, 5]]
    )
    await api.wait_job(job["job_id"])
    message = await api.fail("automl_predict", 400, **P, model_name="m", prediction_dataset="wide")
    assert "vector_dim" in message


async def test_automl_endpoints_report_missing_things_as_404(api: Any) -> None:
    """Missing collections, models and training jobs are 404 envelopes on every endpoint."""
    await api.collection(dim=4)
    missing_model = {**P, "model_name": "ghost"}
    assert "does not exist" in await api.fail(
        "automl_predict", 404, **missing_model, prediction_dataset="c"
    )
    assert "does not exist" in await api.fail("get_model_validation_metric", 404, **missing_model)
    assert "does not exist" in await api.fail("delete_automl_model", 404, **missing_model)
    assert "does not exist" in await api.fail(
        "list_automl_model_infos", 404, project_name="p", collection_name="ghost"
    )
    assert "does not exist" in await api.fail(
        "train_automl_model", 404, **{**P, "collection_name": "ghost"}, **TRAIN
    )
    assert "not found" in await api.fail("get_automl_training_status", 404, job_id="nope")
    assert (await api.ok("list_automl_model_infos", **P))["model_infos"] == []
