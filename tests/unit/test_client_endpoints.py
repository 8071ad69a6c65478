"""Each endpoint method: the exact JSON body it sends and the typed answer it returns."""

from __future__ import annotations

import base64
import gzip
import json
import struct
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import respx

from vecml_async import (
    APIResponse,
    AsyncVecML,
    ClassificationMetrics,
    ConflictError,
    FeatureImportance,
    InvalidInputError,
    ModelInfo,
    NotFoundError,
    PredictResponse,
    TrainingJob,
    TrainingStatus,
    UploadJob,
    UploadStatus,
    ValidationMetricResponse,
)

METRICS = {
    "accuracy": 0.9,
    "micro_precision": 0.91,
    "macro_precision": 0.89,
    "micro_recall": 0.9,
    "macro_recall": 0.88,
    "micro_f1": 0.9,
    "macro_f1": 0.885,
    "auc": 0.95,
}
CSV = b"id,f1,f2,label\na,1.0,2.0,x\nb,3.0,4.0,y\n"
# One TLS context for the module: building one per httpx client costs ~0.1 s a test.


def ok(**fields: Any) -> httpx.Response:
    return httpx.Response(200, json={"success": True, **fields})


def sent(route: respx.Route) -> dict[str, Any]:
    """The JSON body of the route's last request."""
    body: dict[str, Any] = json.loads(route.calls.last.request.content)
    return body


# ----------------------------------------------------------------------------- projects


async def test_create_project_body_and_answer(client, mock, api_key):
    """create_project sends key, name and the default application, and parses the answer."""
    route = mock.post("/create_project").mock(return_value=ok(extra_field=[1, 2]))
    answer = await client.create_project("AutoML-Demo")
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "AutoML-Demo",
        "application": "Machine Learning",
    }
    assert isinstance(answer, APIResponse)
    assert answer.success is True
    assert answer.model_extra == {"extra_field": [1, 2]}


async def test_create_project_custom_application(client, mock):
    """The application field is sent as given."""
    route = mock.post("/create_project").mock(return_value=ok())
    await client.create_project("p", application="autoML")
    assert sent(route)["application"] == "autoML"


async def test_create_project_conflict_raises(client, mock):
    """An existing project is a ConflictError unless exist_ok."""
    mock.post("/create_project").respond(
        409, json={"success": False, "error_message": "Project p already exists"}
    )
    with pytest.raises(ConflictError, match="already exists"):
        await client.create_project("p")


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(409, json={"success": False, "error_message": "Project p already exists"}),
        httpx.Response(200, json={"success": False, "error_message": "Project p already exists"}),
    ],
    ids=["http-409", "200-envelope"],
)
async def test_create_project_exist_ok(client, mock, response):
    """With exist_ok an existing project (409 or a 200 refusal) is a success that says the
    project existed."""
    mock.post("/create_project").mock(return_value=response)
    answer = await client.create_project("p", exist_ok=True)
    assert answer.success is True
    assert answer.existed is True
    assert answer.error_message is None


async def test_create_project_new_says_it_did_not_exist(client, mock):
    """A project that was created reads existed=False."""
    mock.post("/create_project").mock(return_value=ok())
    answer = await client.create_project("p", exist_ok=True)
    assert answer.success is True and answer.existed is False


async def test_create_project_exist_ok_other_errors_still_raise(client, mock):
    """exist_ok only forgives 'already exists', not e.g. a missing resource."""
    mock.post("/create_project").respond(404, json={"success": False, "error_message": "nope"})
    with pytest.raises(NotFoundError):
        await client.create_project("p", exist_ok=True)


async def test_delete_project_body(client, mock, api_key):
    """delete_project sends key and name only."""
    route = mock.post("/delete_project").mock(return_value=ok())
    answer = await client.delete_project("p")
    assert sent(route) == {"user_api_key": api_key, "project_name": "p"}
    assert answer.success is True and answer.existed is True


async def test_delete_project_missing(client, mock):
    """A missing project is NotFoundError, or with missing_ok a success saying it was not
    there."""
    mock.post("/delete_project").respond(
        404, json={"success": False, "error_message": "Project p does not exist"}
    )
    with pytest.raises(NotFoundError):
        await client.delete_project("p")
    answer = await client.delete_project("p", missing_ok=True)
    assert answer.success is True
    assert answer.existed is False
    assert answer.error_message is None


async def test_delete_project_forgets_known_dimensions(client, mock):
    """After delete_project, a dimension learnt from init() no longer constrains the data."""
    mock.post("/init").mock(return_value=ok())
    mock.post("/delete_project").mock(return_value=ok())
    batch = mock.post("/add_data_batch").mock(return_value=ok(job_id="j"))
    await client.init("p", "c", vector_dim=3)
    await client.delete_project("p")
    await client.add_data_batch("p", "c", [[1.0, 2.0]])
    assert sent(batch)["data"] == [[1.0, 2.0]]


# ----------------------------------------------------------------------------- init


async def test_init_dense_body(client, mock, api_key):
    """init sends vector_type and vector_dim."""
    route = mock.post("/init").mock(return_value=ok())
    answer = await client.init("p", "training_data", vector_dim=64)
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "training_data",
        "vector_type": "dense",
        "vector_dim": 64,
    }
    assert answer.success is True
    assert client.collection_dim("p", "training_data") == 64


async def test_init_sparse_without_dim(client, mock, api_key):
    """A sparse collection may omit vector_dim: the field is left out."""
    route = mock.post("/init").mock(return_value=ok())
    await client.init("p", "c", vector_type="sparse")
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "vector_type": "sparse",
    }


async def test_init_dense_needs_dim(client, mock):
    """A dense collection without vector_dim is refused before sending."""
    route = mock.post("/init").mock(return_value=ok())
    with pytest.raises(InvalidInputError) as info:
        await client.init("p", "c")
    assert info.value.field == "vector_dim"
    assert route.call_count == 0


async def test_init_exist_ok(client, mock):
    """An existing collection raises ConflictError, or with exist_ok is a success saying it
    existed."""
    mock.post("/init").respond(
        409, json={"success": False, "error_message": "Collection c already exists in project p"}
    )
    with pytest.raises(ConflictError):
        await client.init("p", "c", vector_dim=4)
    answer = await client.init("p", "c", vector_dim=4, exist_ok=True)
    assert answer.success is True and answer.existed is True
    assert client.collection_dim("p", "c") == 4


# ----------------------------------------------------------------------------- add_data


async def test_add_data_body_and_job(client, mock, api_key):
    """add_data sends one vector, its id and stringified attributes; returns the upload job."""
    route = mock.post("/add_data").mock(return_value=ok(job_id="up-1"))
    job = await client.add_data(
        "p", "c", [1.0, 2.5, -3.0], string_id="row-1", attributes={"a": "x", "n": 3, "b": True}
    )
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "data": [1.0, 2.5, -3.0],
        "string_id": "row-1",
        "attributes": {"a": "x", "n": "3", "b": "true"},
    }
    assert isinstance(job, UploadJob)
    assert job.job_id == "up-1"


async def test_add_data_minimal_and_synchronous(client, mock, api_key):
    """Without an id the client generates one (so a retry replaces the row); no attributes
    field; no job_id in the answer -> None."""
    route = mock.post("/add_data").mock(return_value=ok())
    job = await client.add_data("p", "c", np.array([0.5, 1.5], dtype=np.float32))
    body = sent(route)
    generated = body.pop("string_id")
    assert generated.startswith("vx-")
    assert body == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "data": [0.5, 1.5],
    }
    assert job is None


async def test_add_data_generated_id_is_on_the_job(client, mock):
    """The id the client generated for add_data is reported on the returned job."""
    route = mock.post("/add_data").mock(return_value=ok(job_id="j1"))
    job = await client.add_data("p", "c", [1.0])
    assert job is not None
    assert job.string_ids == [sent(route)["string_id"]]


# ----------------------------------------------------------------------------- add_data_batch


async def test_add_data_batch_lists_with_ids_and_attributes(client, mock, api_key):
    """Lists, ids and attributes go out as string_ids/data/attributes, attribute values as str."""
    route = mock.post("/add_data_batch").mock(return_value=ok(job_id="job-7"))
    job = await client.add_data_batch(
        "p",
        "c",
        [[1.0, 2.0], [3, 4.5]],
        string_ids=["a", "b"],
        attributes=[{"label": "1", "score": 0.25, "flag": False}, None],
    )
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "string_ids": ["a", "b"],
        "data": [[1.0, 2.0], [3, 4.5]],
        "attributes": [{"label": "1", "score": "0.25", "flag": "false"}, {}],
    }
    assert isinstance(job, UploadJob)
    assert job.job_id == "job-7"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
async def test_add_data_batch_numpy(client, mock, dtype):
    """A numpy array (float32 or float64) is sent with the values it holds."""
    route = mock.post("/add_data_batch").mock(return_value=ok(job_id="j"))
    data = np.array([[0.1, 0.25, -1.0], [2.0, 3.5, 1e-3]], dtype=dtype)
    await client.add_data_batch("p", "c", data, string_ids=["x", "y"])
    body = sent(route)
    assert body["string_ids"] == ["x", "y"]
    sent_data = np.array(body["data"], dtype=dtype)
    np.testing.assert_array_equal(sent_data, data)


async def test_add_data_batch_ids_from_arrays(client, mock):
    """string_ids may be a numpy array of strings (e.g. a DataFrame column's values)."""
    route = mock.post("/add_data_batch").mock(return_value=ok(job_id="j"))
    await client.add_data_batch("p", "c", np.ones((2, 2)), string_ids=np.array(["a", "b"]))
    assert sent(route)["string_ids"] == ["a", "b"]


async def test_add_data_batch_float32_is_shortest_repr(client, mock):
    """float32 values are written in float32 shortest form (0.1, not 0.10000000149...)."""
    route = mock.post("/add_data_batch").mock(return_value=ok(job_id="j"))
    await client.add_data_batch("p", "c", np.array([[0.1, 0.2]], dtype=np.float32))
    assert b"[[0.1,0.2]]" in route.calls.last.request.content


async def test_add_data_batch_generates_ids_when_none_are_given(client, mock, api_key):
    """Without string_ids the client generates unique ids, sends them (a retry then replaces
    the rows instead of duplicating them) and reports them on the job; no attributes field."""
    route = mock.post("/add_data_batch").mock(return_value=ok(job_id="j"))
    job = await client.add_data_batch("p", "c", [[1.0], [2.0], [3.0]])
    body = sent(route)
    ids = body.pop("string_ids")
    assert len(set(ids)) == 3
    assert job.string_ids == ids
    assert body == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "data": [[1.0], [2.0], [3.0]],
    }


async def test_add_data_batch_sparse_collection(client, mock):
    """Rows of a collection created sparse are sent as sorted [index, value] pairs."""
    mock.post("/init").mock(return_value=ok())
    route = mock.post("/add_data_batch").mock(return_value=ok(job_id="j"))
    await client.init("p", "s", vector_type="sparse")
    await client.add_data_batch("p", "s", [{7: 1.5, 2: 0.5}, {0: 1.0}], string_ids=["a", "b"])
    assert sent(route)["data"] == [[[2, 0.5], [7, 1.5]], [[0, 1.0]]]


async def test_add_data_batch_answer_without_job_id_is_api_error(client, mock):
    """A success answer that lacks job_id is reported as an APIError, not a pydantic error."""
    from vecml_async import APIError

    mock.post("/add_data_batch").mock(return_value=ok())
    with pytest.raises(APIError, match="job_id"):
        await client.add_data_batch("p", "c", [[1.0]])


# ----------------------------------------------------------------------------- upload


async def test_upload_csv_path(client, mock, api_key, tmp_path: Path):
    """A .csv path: base64 content, format from the name, has_field_names defaults to true."""
    path = tmp_path / "train.csv"
    path.write_bytes(CSV)
    route = mock.post("/upload").mock(return_value=ok(job_id="up-9"))
    job = await client.upload("p", "c", path)
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "file_data": base64.b64encode(CSV).decode(),
        "file_format": "csv",
        "has_field_names": True,
    }
    assert isinstance(job, UploadJob)
    assert job.job_id == "up-9"


async def test_upload_gzip_detected_from_content(client, mock, tmp_path: Path):
    """A gzip file (.csv.gz) is sent compressed, with compression_type 'gzip'."""
    compressed = gzip.compress(CSV)
    path = tmp_path / "train.csv.gz"
    path.write_bytes(compressed)
    route = mock.post("/upload").mock(return_value=ok(job_id="j"))
    await client.upload("p", "c", str(path), has_field_names=False)
    body = sent(route)
    assert body["file_format"] == "csv"
    assert body["compression_type"] == "gzip"
    assert body["has_field_names"] is False
    assert base64.b64decode(body["file_data"]) == compressed


async def test_upload_bytes_json_with_options(client, mock, api_key):
    """Bytes need file_format; json sends no has_field_names; column options and extra_body
    pass through."""
    content = b'[{"string_id": "a", "data": [1, 2], "attributes": {"k": "v"}}]'
    route = mock.post("/upload").mock(return_value=ok(job_id="j"))
    await client.upload(
        "p",
        "c",
        content,
        file_format="json",
        vector_type="dense",
        vector_dim=2,
        string_id_column="id",
        attribute_columns=["k", 3],
        label_attribute="label",
        extra_body={"custom_flag": True},
    )
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "file_data": base64.b64encode(content).decode(),
        "file_format": "json",
        "vector_type": "dense",
        "vector_dim": 2,
        "string_id_column": "id",
        "attribute_columns": ["k", 3],
        "label_attribute": "label",
        "custom_flag": True,
    }


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("data.bin", struct.pack("<ii", 2, 2) + struct.pack("<4f", 1, 2, 3, 4), "binary"),
        ("data.libsvm", b"1 1:0.5 3:1.5\n0 2:1\n", "libsvm"),
        ("data.svm", b"1 1:0.5\n", "libsvm"),
        ("data.jsonl", b'{"data": [1, 2]}\n{"data": [3, 4]}\n', "json"),
    ],
)
async def test_upload_format_from_extension(client, mock, tmp_path: Path, name, content, fmt):
    """The file format follows the extension; non-csv formats carry no has_field_names."""
    path = tmp_path / name
    path.write_bytes(content)
    route = mock.post("/upload").mock(return_value=ok(job_id="j"))
    await client.upload("p", "c", path)
    body = sent(route)
    assert body["file_format"] == fmt
    assert "has_field_names" not in body
    assert base64.b64decode(body["file_data"]) == content


# ----------------------------------------------------------------------------- job status


async def test_get_upload_data_status(client, mock, api_key):
    """The status request carries key and job_id; the answer parses, unknown fields kept."""
    route = mock.post("/get_upload_data_status").mock(
        return_value=ok(
            status="finished",
            start_time="2025/01/15 14:30:25",
            duration="00:01:05",
            num_rows=1000,
        )
    )
    status = await client.get_upload_data_status("job-1")
    assert sent(route) == {"user_api_key": api_key, "job_id": "job-1"}
    assert isinstance(status, UploadStatus)
    assert status.status == "finished"
    assert status.is_finished and status.is_done and not status.is_failed
    assert status.started_at is not None
    assert status.started_at.isoformat() == "2025-01-15T14:30:25+00:00"
    assert status.elapsed is not None
    assert status.elapsed.total_seconds() == 65
    assert status.model_extra == {"num_rows": 1000}


async def test_get_automl_training_status_classification(client, mock, api_key):
    """A finished classification job carries the eight metrics as ClassificationMetrics."""
    route = mock.post("/get_automl_training_status").mock(
        return_value=ok(
            task_type="classification",
            model_name="m",
            label_attribute="label",
            status="finished",
            start_time="2025/01/15 14:30:25",
            duration="00:00:12",
            validation_metric=METRICS,
        )
    )
    status = await client.get_automl_training_status("t-1")
    assert sent(route) == {"user_api_key": api_key, "job_id": "t-1"}
    assert isinstance(status, TrainingStatus)
    assert isinstance(status.validation_metric, ClassificationMetrics)
    assert status.validation_metric.auc == 0.95
    assert status.validation_metric.macro_f1 == 0.885
    assert status.model_name == "m"
    assert status.task_type == "classification"


async def test_get_automl_training_status_regression_and_failed(client, mock):
    """A regression metric is one float; a failed job carries its error text (no raise)."""
    mock.post("/get_automl_training_status").mock(
        side_effect=[
            ok(task_type="regression", status="finished", validation_metric=0.125),
            ok(task_type="regression", status="failed", error="Training failed"),
        ]
    )
    finished = await client.get_automl_training_status("t")
    assert finished.validation_metric == 0.125
    assert isinstance(finished.validation_metric, float)
    failed = await client.get_automl_training_status("t")
    assert failed.is_failed
    assert failed.error == "Training failed"
    assert failed.validation_metric is None


# ----------------------------------------------------------------------------- training


async def test_train_automl_model_defaults(client, mock, api_key):
    """Defaults: training_mode 'balanced'; no categorical_features/validation_dataset fields."""
    job_id = "user123_MLProject_customer_data_m1_TrainJob"
    route = mock.post("/train_automl_model").mock(return_value=ok(job_id=job_id))
    job = await client.train_automl_model(
        "p", "c", "m1", task_type="classification", label_attribute="label"
    )
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "model_name": "m1",
        "training_mode": "balanced",
        "task_type": "classification",
        "label_attribute": "label",
    }
    assert isinstance(job, TrainingJob)
    assert job.job_id == job_id


async def test_train_automl_model_all_fields(client, mock, api_key):
    """categorical_features and validation_dataset are sent under their documented names."""
    route = mock.post("/train_automl_model").mock(return_value=ok(job_id="t"))
    await client.train_automl_model(
        "p",
        "c",
        "m1",
        task_type="regression",
        label_attribute="y",
        training_mode="high_accuracy",
        categorical_features=("category", "city"),
        validation_dataset="val_data",
    )
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "model_name": "m1",
        "training_mode": "high_accuracy",
        "task_type": "regression",
        "label_attribute": "y",
        "categorical_features": ["category", "city"],
        "validation_dataset": "val_data",
    }


async def test_train_auto_mode_refused_by_default(client, mock):
    """training_mode 'auto' is refused unless the client allows it."""
    route = mock.post("/train_automl_model").mock(return_value=ok(job_id="t"))
    with pytest.raises(InvalidInputError) as info:
        await client.train_automl_model(
            "p", "c", "m", task_type="classification", label_attribute="l", training_mode="auto"
        )
    assert info.value.field == "training_mode"
    assert route.call_count == 0


async def test_train_auto_mode_allowed_when_configured(api_key, base_url, mock):
    """With allow_auto_training_mode=True, 'auto' is sent as is."""
    route = mock.post("/train_automl_model").mock(return_value=ok(job_id="t"))
    async with AsyncVecML(
        api_key, base_url=base_url, rate_limit=None, allow_auto_training_mode=True
    ) as client:
        await client.train_automl_model(
            "p", "c", "m", task_type="classification", label_attribute="l", training_mode="auto"
        )
    assert sent(route)["training_mode"] == "auto"


# ----------------------------------------------------------------------------- predict


async def test_automl_predict_on_collection(client, mock, api_key):
    """prediction_dataset: the names only; classification answer parsed, extras kept."""
    route = mock.post("/automl_predict").mock(
        return_value=ok(
            num_samples=2, predictions=[0, 1.0, 2], prediction_metric=METRICS, classes=["a"]
        )
    )
    answer = await client.automl_predict("p", "train", "m", prediction_dataset="pred_data")
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "train",
        "model_name": "m",
        "prediction_dataset": "pred_data",
    }
    assert isinstance(answer, PredictResponse)
    assert answer.num_samples == 2
    assert answer.predictions == [0, 1, 2]
    assert isinstance(answer.prediction_metric, ClassificationMetrics)
    assert answer.model_extra == {"classes": ["a"]}


async def test_automl_predict_inline_csv_bytes(client, mock, api_key):
    """An inline csv file: base64 data, format, has_field_names true; regression float metric."""
    route = mock.post("/automl_predict").mock(
        return_value=ok(num_samples=2, predictions=[1.5, 2.5], prediction_metric=0.04)
    )
    answer = await client.automl_predict("p", "c", "m", file=CSV, file_format="csv")
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "model_name": "m",
        "file_data": base64.b64encode(CSV).decode(),
        "file_format": "csv",
        "has_field_names": True,
    }
    assert answer.prediction_metric == 0.04


@pytest.mark.parametrize(
    ("name", "content", "fmt"),
    [
        ("p.json", b'[{"data": [1, 2]}]', "json"),
        ("p.libsvm", b"1 1:0.5 2:1\n", "libsvm"),
    ],
)
async def test_automl_predict_inline_path(client, mock, tmp_path: Path, name, content, fmt):
    """json and libsvm files: format from the name, no has_field_names."""
    path = tmp_path / name
    path.write_bytes(content)
    route = mock.post("/automl_predict").mock(
        return_value=ok(num_samples=0, predictions=[1], prediction_metric=None)
    )
    answer = await client.automl_predict("p", "c", "m", file=path)
    body = sent(route)
    assert body["file_format"] == fmt
    assert "has_field_names" not in body
    assert "compression_type" not in body
    assert answer.prediction_metric is None


async def test_automl_predict_inline_gzip(client, mock):
    """A gzip inline file is sent with compression_type 'gzip'."""
    compressed = gzip.compress(CSV)
    route = mock.post("/automl_predict").mock(return_value=ok(num_samples=0, predictions=[]))
    await client.automl_predict("p", "c", "m", file=compressed, file_format="csv")
    body = sent(route)
    assert body["compression_type"] == "gzip"
    assert base64.b64decode(body["file_data"]) == compressed


@pytest.mark.parametrize("both", [True, False], ids=["both", "neither"])
async def test_automl_predict_needs_exactly_one_source(client, mock, both):
    """Both or neither of prediction_dataset and file is refused before sending."""
    route = mock.post("/automl_predict").mock(return_value=ok())
    kwargs: dict[str, Any] = (
        {"prediction_dataset": "d", "file": CSV, "file_format": "csv"} if both else {}
    )
    with pytest.raises(InvalidInputError) as info:
        await client.automl_predict("p", "c", "m", **kwargs)
    assert info.value.field == "prediction_dataset"
    assert route.call_count == 0


# ----------------------------------------------------------------------------- models


async def test_delete_automl_model(client, mock, api_key):
    """delete_automl_model sends the three names."""
    route = mock.post("/delete_automl_model").mock(return_value=ok())
    answer = await client.delete_automl_model("p", "c", "m")
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "model_name": "m",
    }
    assert answer.success is True


@pytest.mark.parametrize("metric", [METRICS, 0.5], ids=["classification", "regression"])
async def test_get_model_validation_metric(client, mock, api_key, metric):
    """The metric parses as ClassificationMetrics or a float MSE."""
    route = mock.post("/get_model_validation_metric").mock(
        return_value=ok(validation_metric=metric)
    )
    answer = await client.get_model_validation_metric("p", "c", "m")
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "model_name": "m",
    }
    assert isinstance(answer, ValidationMetricResponse)
    if isinstance(metric, dict):
        assert answer.validation_metric == ClassificationMetrics(**metric)
    else:
        assert answer.validation_metric == 0.5


async def test_list_automl_model_infos_positional_and_dicts(client, mock, api_key):
    """model_infos entries parse from the documented lists and from dicts alike."""
    route = mock.post("/list_automl_model_infos").mock(
        return_value=ok(
            model_infos=[
                ["m1", "classification", "high_speed", "category", "2025/01/15, 14:30"],
                {
                    "model_name": "m2",
                    "task_type": "regression",
                    "training_mode": "balanced",
                    "label_attribute": "y",
                    "create_time": "2025/02/01, 09:05",
                    "owner": "x",
                },
            ]
        )
    )
    infos = await client.list_automl_model_infos("p", "c")
    assert sent(route) == {"user_api_key": api_key, "project_name": "p", "collection_name": "c"}
    assert [type(i) for i in infos] == [ModelInfo, ModelInfo]
    assert (infos[0].model_name, infos[0].task_type, infos[0].training_mode) == (
        "m1",
        "classification",
        "high_speed",
    )
    assert infos[0].label_attribute == "category"
    assert infos[0].created_at is not None
    assert infos[0].created_at.isoformat() == "2025-01-15T14:30:00+00:00"
    assert infos[1].model_name == "m2"
    assert infos[1].label_attribute == "y"
    assert infos[1].model_extra == {"owner": "x"}


async def test_list_automl_model_infos_empty(client, mock):
    """No models: an empty list."""
    mock.post("/list_automl_model_infos").mock(return_value=ok(model_infos=[]))
    assert await client.list_automl_model_infos("p", "c") == []


async def test_list_automl_model_infos_status_of_untrained_models(client, mock):
    """A sixth element (or a status key) is the status of a model not trained yet."""
    mock.post("/list_automl_model_infos").mock(
        return_value=ok(
            model_infos=[
                ["m1", "classification", "high_speed", "y", "2025/01/15, 14:30"],
                ["m2", "classification", "balanced", "y", "2025/01/15, 14:31", "in_progress"],
                {"model_name": "m3", "task_type": "regression", "training_mode": "balanced",
                 "label_attribute": "y", "status": "failed"},
            ]
        )
    )  # fmt: skip
    infos = await client.list_automl_model_infos("p", "c")
    assert [i.status for i in infos] == [None, "in_progress", "failed"]
    assert [i.is_trained for i in infos] == [True, False, False]


# ----------------------------------------------------------------------------- observed


async def test_upload_automl_x_body(client, mock, api_key):
    """upload_automl_x sends the file as X with the observed fields; returns its job."""
    route = mock.post("/upload_automl_X").mock(return_value=ok(job_id="u1"))
    job = await client.upload_automl_x(
        "p", "c", CSV, file_format="csv", categorical_features=["label"]
    )
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "X": base64.b64encode(CSV).decode(),
        "file_format": "csv",
        "has_field_names": True,
        "vector_type": "dense",
        "categorical_features": ["label"],
    }
    assert isinstance(job, UploadJob) and job.job_id == "u1"


async def test_upload_automl_x_without_a_job_id(client, mock):
    """An answer without a job id gives None (whether the endpoint returns one is unknown)."""
    mock.post("/upload_automl_X").mock(return_value=ok())
    assert await client.upload_automl_x("p", "c", CSV, file_format="csv") is None


async def test_attach_automl_label_from_a_list(client, mock, api_key):
    """A list of labels is sent as a one-column CSV under attribute_name; the job is polled
    with the training status endpoint, as observed."""
    route = mock.post("/attach_automl_label").mock(return_value=ok(job_id="l1"))
    job = await client.attach_automl_label("p", "c", [1, 0, True, 2.5], attribute_name="Survived")
    body = sent(route)
    assert base64.b64decode(body.pop("file_data")) == b"Survived\n1\n0\ntrue\n2.5\n"
    assert body == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "file_format": "csv",
        "has_field_names": True,
        "attribute_name": "Survived",
    }
    assert isinstance(job, TrainingJob) and job.job_id == "l1"


async def test_attach_automl_label_from_a_file(client, mock, tmp_path: Path):
    """A label file is sent as it is."""
    path = tmp_path / "y.csv"
    path.write_bytes(b"Survived\n0\n1\n")
    route = mock.post("/attach_automl_label").mock(return_value=ok(job_id="l1"))
    await client.attach_automl_label("p", "c", path, attribute_name="Survived")
    assert base64.b64decode(sent(route)["file_data"]) == b"Survived\n0\n1\n"


@pytest.mark.parametrize("labels", [[], "Survived", {"a": 1}])
async def test_attach_automl_label_refuses_no_labels(client, mock, labels):
    """An empty list, a bare name or a mapping is not a label source."""
    route = mock.post("/attach_automl_label").mock(return_value=ok(job_id="l1"))
    with pytest.raises(InvalidInputError):
        await client.attach_automl_label("p", "c", labels, attribute_name="Survived")
    assert route.call_count == 0


async def test_get_feature_importance(client, mock, api_key):
    """get_feature_importance sends the model's names and parses a list or a mapping."""
    route = mock.post("/get_feature_importance").mock(
        side_effect=[
            ok(feature_importance=[{"feature": "Age", "importance": 0.4}]),
            ok(feature_importance={"Fare": 0.6}),
        ]
    )
    first = await client.get_feature_importance("p", "c", "m")
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "model_name": "m",
    }
    assert [(f.feature, f.importance) for f in first] == [("Age", 0.4)]
    second = await client.get_feature_importance("p", "c", "m")
    assert isinstance(second[0], FeatureImportance) and second[0].feature == "Fare"


def test_observed_endpoints_say_so():
    """The methods of endpoints VecML does not document say it in their docstrings."""
    for name in ("upload_automl_x", "attach_automl_label", "get_feature_importance"):
        doc = getattr(AsyncVecML, name).__doc__ or ""
        assert "OBSERVED, NOT DOCUMENTED" in doc, name


# ----------------------------------------------------------------------------- call


async def test_call_escape_hatch(client, mock, api_key):
    """call() posts the fields plus the key to any endpoint and returns the JSON answer."""
    route = mock.post("/get_feature_importance").mock(
        return_value=ok(feature_importance=[{"feature": "a", "importance": 0.5}])
    )
    answer = await client.call(
        "get_feature_importance", project_name="p", collection_name="c", model_name="m"
    )
    assert sent(route) == {
        "user_api_key": api_key,
        "project_name": "p",
        "collection_name": "c",
        "model_name": "m",
    }
    assert answer == {
        "success": True,
        "feature_importance": [{"feature": "a", "importance": 0.5}],
    }


@pytest.mark.parametrize("endpoint", ["", "a/b", "../init", "init?x=1", "ïnit"])
async def test_call_refuses_bad_endpoint_names(client, mock, endpoint):
    """call() refuses endpoint names that are not plain identifiers, before sending."""
    route = mock.route().mock(return_value=ok())
    with pytest.raises(InvalidInputError) as info:
        await client.call(endpoint)
    assert info.value.field == "endpoint"
    assert route.call_count == 0
