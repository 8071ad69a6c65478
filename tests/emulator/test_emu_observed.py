"""The AutoML endpoints VecML does not document but real clients call (upload_automl_X,
attach_automl_label, get_feature_importance), the model listing and the settings that make
the emulator strict or lenient."""

from __future__ import annotations

import base64
from typing import Any

import numpy as np
import pytest

from vecml_async.emulator import EmulatorSettings, FaultConfig, automl, formats, handlers
from vecml_async.emulator import automl_handlers as automl_api
from vecml_async.models import (
    ALL_TRAINING_MODES,
    FILE_FORMATS,
    PREDICT_FILE_FORMATS,
    TASK_TYPES,
    TRAINING_MODES,
    VECTOR_TYPES,
)

P = {"project_name": "p", "collection_name": "c"}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def titanic_like(n: int, seed: int = 0) -> tuple[bytes, bytes, list[int]]:
    """A features csv (numeric Age, Fare, Noise; text Sex) and its one-column label csv."""
    rng = np.random.default_rng(seed)
    lines = ["Age,Fare,Noise,Sex"]
    labels = []
    for _ in range(n):
        age, fare, noise = rng.uniform(1, 80), rng.uniform(5, 100), rng.standard_normal()
        sex = "male" if rng.random() < 0.5 else "female"
        labels.append(int(fare > 50))  # the label depends on Fare only
        lines.append(f"{age:.1f},{fare:.2f},{noise:.3f},{sex}")
    features = ("\n".join(lines) + "\n").encode()
    label_csv = ("Survived\n" + "".join(f"{v}\n" for v in labels)).encode()
    return features, label_csv, labels


async def _upload_x(api: Any, features: bytes) -> None:
    await api.ok("create_project", project_name="p", application="autoML")
    job = await api.ok(
        "upload_automl_X",
        **P,
        X=b64(features),
        file_format="csv",
        has_field_names=True,
        vector_type="dense",
        categorical_features=["Sex"],
    )
    assert (await api.wait_job(job["job_id"]))["status"] == "finished"


async def test_upload_x_attach_label_train_and_importance(api: Any) -> None:
    """The observed flow: features, then labels by row order (a job polled with the training
    status endpoint), then training; feature importance names the feature the label depends
    on first, and lists the vector components and the categorical attribute."""
    features, label_csv, labels = titanic_like(200)
    await _upload_x(api, features)
    _, matrix, attrs = api.emulator.collection_data(api.key, "p", "c")
    assert matrix.shape == (200, 3) and attrs[0].keys() == {"Sex"}
    attached = await api.ok(
        "attach_automl_label",
        **P,
        file_data=b64(label_csv),
        file_format="csv",
        has_field_names=True,
        attribute_name="Survived",
    )
    status = await api.wait_job(attached["job_id"], "get_automl_training_status")
    assert status["status"] == "finished" and status["label_attribute"] == "Survived"
    _, _, attrs = api.emulator.collection_data(api.key, "p", "c")
    assert [int(a["Survived"]) for a in attrs] == labels
    job = await api.ok(
        "train_automl_model",
        **P,
        model_name="m",
        training_mode="high_speed",
        task_type="classification",
        label_attribute="Survived",
        categorical_features=["Sex"],
    )
    await api.wait_job(job["job_id"], "get_automl_training_status", timeout=60)
    answer = await api.ok("get_feature_importance", **P, model_name="m")
    ranked = answer["feature_importance"]
    assert {f["feature"] for f in ranked} == {"vector[0]", "vector[1]", "vector[2]", "Sex"}
    assert ranked[0]["feature"] == "vector[1]"  # Fare
    assert sum(f["importance"] for f in ranked) == pytest.approx(1.0)
    assert all(f["importance"] >= 0 for f in ranked)


async def test_attach_label_refusals(api: Any) -> None:
    """A label count that is not the row count fails the job (nothing changed); a missing
    attribute_name is 400 and says which field it is; two columns are 400."""
    features, _, _ = titanic_like(10)
    await _upload_x(api, features)
    short = await api.ok(
        "attach_automl_label", **P, file_data=b64(b"y\n1\n0\n"), file_format="csv",
        has_field_names=True, attribute_name="y",
    )  # fmt: skip
    status = await api.ok("get_automl_training_status", job_id=short["job_id"])
    assert status["status"] == "failed" and "2 labels for the 10 rows" in status["error"]
    _, _, attrs = api.emulator.collection_data(api.key, "p", "c")
    assert all("y" not in a for a in attrs)
    message = await api.fail(
        "attach_automl_label", 400, **P, file_data=b64(b"y\n1\n"), file_format="csv",
        has_field_names=True, label="y",
    )  # fmt: skip
    assert "attribute_name, not label" in message
    message = await api.fail(
        "attach_automl_label", 400, **P, file_data=b64(b"y,z\n1,2\n"), file_format="csv",
        has_field_names=True, attribute_name="y",
    )  # fmt: skip
    assert "one expected" in message


async def test_feature_importance_needs_a_trained_model(start: Any) -> None:
    """A model still pending is 400; an unknown model 404."""
    api = await start(training_delay=60.0)
    features, label_csv, _ = titanic_like(40)
    await _upload_x(api, features)
    await api.ok(
        "attach_automl_label", **P, file_data=b64(label_csv), file_format="csv",
        has_field_names=True, attribute_name="Survived",
    )  # fmt: skip
    await api.ok(
        "train_automl_model", **P, model_name="m", training_mode="high_speed",
        task_type="classification", label_attribute="Survived",
    )  # fmt: skip
    assert "not finished" in await api.fail("get_feature_importance", 400, **P, model_name="m")
    await api.fail("get_feature_importance", 404, **P, model_name="other")


async def test_observed_endpoints_can_be_turned_off(start: Any) -> None:
    """observed_endpoints=False: the three endpoints are unknown (404)."""
    api = await start(observed_endpoints=False)
    for endpoint in ("upload_automl_X", "attach_automl_label", "get_feature_importance"):
        message = await api.fail(endpoint, 404, **P)
        assert message == f"Unknown endpoint /{endpoint}"


async def test_listing_shows_every_model_with_a_status_until_trained(start: Any) -> None:
    """list_automl_model_infos lists all models, as documented: a trained one as the
    documented five elements, one not trained yet with its status as a sixth."""
    api = await start()
    features, label_csv, _ = titanic_like(60)
    await _upload_x(api, features)
    await api.ok(
        "attach_automl_label", **P, file_data=b64(label_csv), file_format="csv",
        has_field_names=True, attribute_name="Survived",
    )  # fmt: skip
    train = {"training_mode": "high_speed", "task_type": "classification",
             "label_attribute": "Survived"}  # fmt: skip
    done = await api.ok("train_automl_model", **P, model_name="done", **train)
    await api.wait_job(done["job_id"], "get_automl_training_status", timeout=60)
    failed = await api.ok(
        "train_automl_model", **P, model_name="bad", **{**train, "label_attribute": "nope"}
    )
    await api.wait_job(failed["job_id"], "get_automl_training_status", timeout=60)
    infos = {i[0]: i for i in (await api.ok("list_automl_model_infos", **P))["model_infos"]}
    assert len(infos["done"]) == 5 and infos["done"][1:4] == ["classification", "high_speed",
                                                                "Survived"]  # fmt: skip
    assert len(infos["bad"]) == 6 and infos["bad"][5] == "failed"


def test_faults_may_be_a_dict() -> None:
    """EmulatorSettings(faults={...}) builds the FaultConfig from the dict."""
    settings = EmulatorSettings(faults={"error_500": 0.25, "schedule": {2: "error_503"}})
    assert settings.faults == FaultConfig(error_500=0.25, schedule={2: "error_503"})
    with pytest.raises(TypeError):
        EmulatorSettings(faults={"no_such_fault": 1.0})


def test_emulator_lists_are_the_client_literal_types() -> None:
    """The emulator checks requests against the same lists the client types come from."""
    assert handlers.VECTOR_TYPES is VECTOR_TYPES
    assert formats.FILE_FORMATS is FILE_FORMATS
    assert automl_api.PREDICT_FILE_FORMATS is PREDICT_FILE_FORMATS
    assert automl_api.TRAINING_MODES is TRAINING_MODES
    assert automl.TRAINING_MODES is ALL_TRAINING_MODES and automl.TASK_TYPES is TASK_TYPES


def test_strict_by_default() -> None:
    """The default settings follow the document: no 'auto', has_field_names required."""
    settings = EmulatorSettings()
    assert settings.allow_auto_training_mode is False
    assert settings.allow_missing_has_field_names is False
    assert settings.observed_endpoints is True
