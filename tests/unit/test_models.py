"""Request and response models: tolerant responses, strict requests, helpers."""

from __future__ import annotations

from datetime import timedelta

import pydantic
import pytest

from vecml_async import (
    APIResponse,
    ClassificationMetrics,
    InvalidInputError,
    ModelInfo,
    PredictResponse,
    TrainingStatus,
    UploadStatus,
    ValidationMetricResponse,
)
from vecml_async.models import (
    CreateProjectRequest,
    InitRequest,
    JobStartedResponse,
    ModelInfosResponse,
    TrainRequest,
    check_choice,
    check_name,
)

METRICS = {
    "accuracy": 0.5,
    "micro_precision": 0.5,
    "macro_precision": 0.5,
    "micro_recall": 0.5,
    "macro_recall": 0.5,
    "micro_f1": 0.5,
    "macro_f1": 0.5,
    "auc": 0.5,
}


# ----------------------------------------------------------------------------- responses


@pytest.mark.parametrize(
    ("model", "payload"),
    [
        (APIResponse, {"success": True}),
        (JobStartedResponse, {"success": True, "job_id": "j"}),
        (UploadStatus, {"success": True, "status": "pending"}),
        (TrainingStatus, {"success": True, "status": "in_progress", "task_type": "regression"}),
        (PredictResponse, {"success": True, "num_samples": 1, "predictions": [1.0]}),
        (ValidationMetricResponse, {"success": True, "validation_metric": 0.1}),
        (ModelInfosResponse, {"success": True, "model_infos": []}),
        (ClassificationMetrics, METRICS),
    ],
)
def test_responses_keep_unknown_fields(model, payload):
    """Every response model accepts fields it does not know and keeps them."""
    parsed = model.model_validate({**payload, "new_server_field": {"x": [1]}})
    assert parsed.model_extra == {"new_server_field": {"x": [1]}}


def test_metric_union():
    """A metric is the eight-key object for classification, or one float (MSE) for regression."""
    assert isinstance(
        ValidationMetricResponse(validation_metric=METRICS).validation_metric,
        ClassificationMetrics,
    )
    assert (
        ValidationMetricResponse.model_validate({"validation_metric": 2}).validation_metric == 2.0
    )
    with pytest.raises(pydantic.ValidationError):
        ValidationMetricResponse.model_validate({"validation_metric": {"accuracy": 0.5}})


def test_predict_defaults():
    """A prediction answer without metric or samples parses with empty defaults."""
    answer = PredictResponse.model_validate({"success": True})
    assert (answer.num_samples, answer.predictions, answer.prediction_metric) == (0, [], None)


@pytest.mark.parametrize(
    ("state", "finished", "failed", "done"),
    [
        ("pending", False, False, False),
        ("in_progress", False, False, False),
        ("finished", True, False, True),
        ("failed", False, True, True),
        ("queued", False, False, False),
        ("FINISHED", True, False, True),
        ("Failed", False, True, True),
        (" In_Progress ", False, False, False),
    ],
)
def test_status_flags(state, finished, failed, done):
    """is_finished / is_failed / is_done follow the status in any letter case; unknown
    statuses are not final."""
    status = UploadStatus(status=state)
    assert (status.is_finished, status.is_failed, status.is_done) == (finished, failed, done)


@pytest.mark.parametrize(
    ("state", "known"),
    [("pending", True), ("IN_PROGRESS", True), ("Finished", True), ("queued", False)],
)
def test_status_known(state, known):
    """is_known: one of the four documented statuses, whatever the letter case."""
    assert UploadStatus(status=state).is_known is known


@pytest.mark.parametrize("value", ["false", "true", 0, 1, None])
def test_success_must_be_a_json_boolean(value):
    """A model never reads "false", "true", 0, 1 or null as a boolean success flag."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        APIResponse.model_validate({"success": value})


@pytest.mark.parametrize(
    ("start_time", "expected"),
    [
        ("2025/01/15 14:30:25", "2025-01-15T14:30:25+00:00"),
        ("2025-01-15T14:30:25", None),
        ("", None),
        (None, None),
    ],
)
def test_started_at(start_time, expected):
    """start_time 'YYYY/MM/DD HH:MM:SS' parses as UTC; other forms give None, not an error."""
    started = TrainingStatus(status="pending", start_time=start_time).started_at
    assert (started.isoformat() if started else None) == expected


@pytest.mark.parametrize(
    ("duration", "expected"),
    [
        ("00:01:05", timedelta(seconds=65)),
        ("26:00:00", timedelta(hours=26)),
        ("1:2:3", timedelta(hours=1, minutes=2, seconds=3)),
        ("01:05", None),
        ("aa:bb:cc", None),
        ("-1:00:00", None),
        (None, None),
    ],
)
def test_elapsed(duration, expected):
    """duration 'HH:MM:SS' parses to a timedelta; other forms give None."""
    assert UploadStatus(status="finished", duration=duration).elapsed == expected


def test_model_info_forms():
    """ModelInfo parses the documented 5-list, a shorter list, a tuple and a dict."""
    full = ModelInfo.model_validate(["m", "classification", "balanced", "y", "2025/01/15, 14:30"])
    assert full.created_at is not None
    assert full.created_at.isoformat() == "2025-01-15T14:30:00+00:00"
    short = ModelInfo.model_validate(("m", "regression", "high_speed", "y"))
    assert short.create_time is None
    assert short.created_at is None
    as_dict = ModelInfo.model_validate(
        {"model_name": "m", "task_type": "t", "training_mode": "x", "label_attribute": "y"}
    )
    assert as_dict.model_name == "m"
    odd_time = ModelInfo.model_validate(["m", "t", "x", "y", "yesterday"])
    assert odd_time.created_at is None


def test_model_info_too_short_is_an_error():
    """A model entry missing required parts does not parse."""
    with pytest.raises(pydantic.ValidationError):
        ModelInfo.model_validate(["m", "classification"])


def test_responses_are_frozen():
    """Parsed answers are immutable values."""
    answer = UploadStatus(status="finished")
    with pytest.raises(pydantic.ValidationError):
        answer.status = "failed"  # type: ignore[misc]


# ----------------------------------------------------------------------------- requests


def test_requests_refuse_unknown_fields():
    """Request models refuse fields they do not define (typos do not go out silently)."""
    with pytest.raises(pydantic.ValidationError):
        CreateProjectRequest(project_name="p", aplication="x")  # type: ignore[call-arg]


def test_request_fields_omit_none():
    """fields() is the JSON body without None values."""
    request = InitRequest(project_name="p", collection_name="c", vector_type="sparse")
    assert request.fields() == {
        "project_name": "p",
        "collection_name": "c",
        "vector_type": "sparse",
    }
    train = TrainRequest(
        project_name="p",
        collection_name="c",
        model_name="m",
        training_mode="balanced",
        task_type="regression",
        label_attribute="y",
    )
    assert "categorical_features" not in train.fields()
    assert "validation_dataset" not in train.fields()


@pytest.mark.parametrize("name", ["a", "A-b_9", "x" * 128])
def test_check_name_accepts(name):
    """1 to 128 ASCII letters, digits, '_' and '-' pass unchanged."""
    assert check_name(name, "project_name") == name


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("", "must not be empty"),
        ("x" * 129, "129 characters"),
        ("a b", "' '"),
        ("a.b/c", "'./'"),
        ("naïve", "'ï'"),
        ("tab\t", "'\\t'"),
        (None, "must be a string"),
    ],
)
def test_check_name_refuses(name, fragment):
    """Bad names are refused with a message saying what is wrong (the offending characters)."""
    with pytest.raises(InvalidInputError) as info:
        check_name(name, "model_name")
    assert info.value.field == "model_name"
    assert fragment in str(info.value)


def test_check_choice():
    """check_choice passes a listed value and refuses others, listing the choices."""
    assert check_choice("a", ("a", "b"), "f") == "a"
    with pytest.raises(InvalidInputError, match="'a', 'b'") as info:
        check_choice("c", ("a", "b"), "f")
    assert info.value.field == "f"
    with pytest.raises(InvalidInputError):
        check_choice(None, ("a",), "f")
