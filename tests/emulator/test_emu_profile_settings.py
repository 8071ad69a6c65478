"""The settings a server profile needs: duplicate ids ignored, the rate-limit answer's status
and Retry-After, attribute types, sparse forms and index base, the categorical field, the
model listing's shape; and ``EmulatorSettings.from_profile``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from vecml_async.emulator import EmulatorSettings
from vecml_async.emulator.command import build_parser, settings_from_args
from vecml_async.emulator.settings import DEFAULT_NAME_PATTERN
from vecml_async.probe import NameRules, ServerProfile

P = {"project_name": "p", "collection_name": "c"}


async def _rows(api: Any) -> tuple[list[str], list[dict[str, str]]]:
    ids, _, attributes = api.emulator.collection_data(api.key, "p", "c")
    return ids, attributes


async def test_ignore_keeps_the_stored_row_and_drops_the_new_one(start: Any) -> None:
    """duplicate_ids="ignore": a batch repeating a stored id is accepted, the old row stays."""
    api = await start(duplicate_ids="ignore")
    await api.collection(dim=2)
    first = await api.ok(
        "add_data_batch", **P, data=[[1, 1]], string_ids=["a"], attributes=[{"v": "old"}]
    )
    again = await api.ok(
        "add_data_batch",
        **P,
        data=[[2, 2], [3, 3]],
        string_ids=["a", "b"],
        attributes=[{"v": "new"}, {"v": "b"}],
    )
    for job in (first, again):
        assert (await api.wait_job(job["job_id"]))["status"] == "finished"
    assert await _rows(api) == (["a", "b"], [{"v": "old"}, {"v": "b"}])


async def test_ignore_decides_when_the_batches_apply(start: Any) -> None:
    """Two waiting batches with one id: the one applied first is kept."""
    api = await start(duplicate_ids="ignore", upload_delay=0.05)
    await api.collection(dim=2)
    jobs = [
        await api.ok(
            "add_data_batch", **P, data=[[k, k]], string_ids=["x"], attributes=[{"k": str(k)}]
        )
        for k in (1, 2)
    ]
    for job in jobs:
        await api.wait_job(job["job_id"])
    assert await _rows(api) == (["x"], [{"k": "1"}])


@pytest.mark.parametrize(
    ("mode", "expected"),
    [("overwrite", [{"k": "2"}]), ("ignore", [{"k": "1"}]), ("reject", None)],
)
async def test_an_id_repeated_within_a_batch(start: Any, mode: str, expected: Any) -> None:
    """duplicate_ids_in_batch: the last row wins, the first row wins, or the batch is 400."""
    api = await start(duplicate_ids="overwrite", duplicate_ids_in_batch=mode)
    await api.collection(dim=2)
    body = {
        "data": [[1, 1], [2, 2]],
        "string_ids": ["w", "w"],
        "attributes": [{"k": "1"}, {"k": "2"}],
    }
    if expected is None:
        assert "Duplicate string_id 'w'" in await api.fail("add_data_batch", 400, **P, **body)
        return
    await api.wait_job((await api.ok("add_data_batch", **P, **body))["job_id"])
    assert await _rows(api) == (["w"], expected)


async def test_rate_limit_answer_takes_its_status_and_retry_after(start: Any) -> None:
    """rate_limit_status and rate_limit_retry_after shape the refusal; the text stays."""
    api = await start(rate_limit=1, rate_limit_status=429, rate_limit_retry_after=2)
    await api.call("create_project", project_name="p")
    refused = await api.call("create_project", project_name="q")
    assert refused.status_code == 429
    assert refused.headers["retry-after"] == "2"
    assert refused.text == "Request limit reached, please try again later"


async def test_rate_limit_answer_has_no_retry_after_by_default(start: Any) -> None:
    """The documented answer: 400 and no Retry-After."""
    api = await start(rate_limit=1, rate_limit_body="json")
    await api.call("create_project", project_name="p")
    refused = await api.call("create_project", project_name="q")
    assert refused.status_code == 400
    assert "retry-after" not in refused.headers
    assert refused.json()["error_message"].startswith("Request limit reached")


async def test_numbers_and_booleans_are_stored_as_text_when_accepted(start: Any) -> None:
    """attribute_types with number and boolean: values stored as 3, 0.5, true."""
    api = await start(attribute_types=("string", "number", "boolean"))
    await api.collection(dim=2)
    attrs = [{"n": 3, "f": 0.5, "b": True, "s": "x"}]
    await api.wait_job(
        (await api.ok("add_data_batch", **P, data=[[1, 1]], attributes=attrs))["job_id"]
    )
    _, stored = await _rows(api)
    assert stored == [{"n": "3", "f": "0.5", "b": "true", "s": "x"}]


async def test_a_type_not_accepted_is_refused(start: Any) -> None:
    """attribute_types without boolean: a boolean value is a 400 naming it."""
    api = await start(attribute_types=("string", "number"))
    await api.collection(dim=2)
    message = await api.fail("add_data_batch", 400, **P, data=[[1, 1]], attributes=[{"b": False}])
    assert "attributes[0]['b'] must be a string or number, got boolean" in message


async def test_sparse_forms_not_accepted_are_refused(start: Any) -> None:
    """sparse_formats: only the listed JSON forms of a sparse vector are accepted."""
    api = await start(sparse_formats=("dict",))
    await api.collection(vector_type="sparse", dim=8)
    await api.ok("add_data_batch", **P, data=[{"1": 0.5}])
    message = await api.fail("add_data_batch", 400, **P, data=[[[1, 0.5]]])
    assert "pairs form are not accepted" in message
    await api.fail("add_data_batch", 400, **P, data=["1:0.5"])


async def test_index_base_one_shifts_the_stored_indices(start: Any) -> None:
    """sparse_index_base=1: indices 1..dim are accepted and stored 0-based; 0 is refused."""
    api = await start(sparse_index_base=1)
    await api.collection(vector_type="sparse", dim=4)
    await api.fail("add_data_batch", 400, **P, data=[[[0, 1.0]]])
    job = await api.ok("add_data_batch", **P, data=[[[1, 1.0], [4, 2.0]]], string_ids=["s"])
    await api.wait_job(job["job_id"])
    _, matrix, _ = api.emulator.collection_data(api.key, "p", "c")
    assert matrix.toarray().tolist() == [[1.0, 0.0, 0.0, 2.0]]


async def _train(api: Any, model: str, **fields: Any) -> dict[str, Any]:
    body = {"model_name": model, "training_mode": "high_speed", "task_type": "classification"}
    started = await api.ok("train_automl_model", **P, label_attribute="label", **body, **fields)
    return await api.wait_job(started["job_id"], "get_automl_training_status", timeout=120)


@pytest.mark.parametrize(
    ("honoured", "documented_fails", "alias_fails"),
    [
        ("both", True, True),
        ("categorical_features", True, False),
        ("train_categorical_features", False, True),
        ("neither", False, False),
    ],
)
async def test_categorical_features_field(
    start: Any, honoured: str, documented_fails: bool, alias_fails: bool
) -> None:
    """A categorical feature missing from every row fails training only where the field
    naming it is honoured."""
    api = await start(categorical_features_field=honoured)
    await api.collection(dim=2)
    rows = [[float(k % 2), float(k)] for k in range(12)]
    attrs = [{"label": str(k % 2)} for k in range(12)]
    await api.wait_job((await api.ok("add_data_batch", **P, data=rows, attributes=attrs))["job_id"])
    documented = await _train(api, "m1", categorical_features=["absent"])
    alias = await _train(api, "m2", train_categorical_features=["absent"])
    assert (documented["status"] == "failed") is documented_fails
    assert (alias["status"] == "failed") is alias_fails


async def test_model_infos_as_objects(start: Any) -> None:
    """model_infos_shape="dict": each entry names its fields."""
    api = await start(model_infos_shape="dict", training_delay=60)
    await api.collection(dim=2)
    await api.ok(
        "add_data_batch", **P, data=[[1, 1], [0, 0]], attributes=[{"label": "1"}, {"label": "0"}]
    )
    body = {"model_name": "m", "training_mode": "balanced", "task_type": "classification"}
    await api.ok("train_automl_model", **P, label_attribute="label", **body)
    infos = (await api.ok("list_automl_model_infos", **P))["model_infos"]
    assert len(infos) == 1
    assert infos[0]["model_name"] == "m"
    assert infos[0]["training_mode"] == "balanced"
    assert infos[0]["status"] == "pending"


def _profile(**fields: Any) -> ServerProfile:
    return ServerProfile(**fields)


def test_from_profile_maps_every_answer() -> None:
    """Each determined answer becomes the matching setting."""
    profile = _profile(
        error_status="ok",
        duplicate_ids="ignore",
        duplicate_ids_in_batch="reject",
        attribute_types=("string", "number"),
        sparse_encodings=("dict",),
        sparse_index_base=1,
        accepts_auto_training_mode=True,
        categorical_features_field="categorical_features",
        model_infos_shape="dict",
        rate_limit_status=429,
        rate_limit_body="json",
        rate_limit_retry_after=1.0,
        calls_per_second=4.6,
        max_body_bytes=209_715_200,
        oversize_status=400,
    )
    s = EmulatorSettings.from_profile(profile, upload_delay=0.5)
    assert (s.error_status, s.duplicate_ids, s.duplicate_ids_in_batch) == ("ok", "ignore", "reject")
    assert s.attribute_types == ("string", "number")
    assert (s.sparse_formats, s.sparse_index_base) == (("dict",), 1)
    assert s.allow_auto_training_mode is True
    assert s.categorical_features_field == "categorical_features"
    assert s.model_infos_shape == "dict"
    assert (s.rate_limit, s.rate_limit_burst, s.rate_limit_body) == (4.6, 5, "json")
    assert (s.rate_limit_status, s.rate_limit_retry_after) == (429, 1.0)
    assert (s.max_body_bytes, s.oversize_status) == (209_715_200, 400)
    assert s.upload_delay == 0.5


def test_statuses_the_emulator_cannot_send_keep_the_default() -> None:
    """A rate-limit or oversize answer seen with HTTP 200 keeps the emulator's status."""
    s = EmulatorSettings.from_profile({"rate_limit_status": 200, "oversize_status": 200})
    assert (s.rate_limit_status, s.oversize_status) == (400, 413)


def test_an_empty_profile_gives_the_defaults() -> None:
    """Nothing determined: the default (documented) emulator."""
    assert EmulatorSettings.from_profile(ServerProfile()) == EmulatorSettings()


@pytest.mark.parametrize(
    ("rules", "accepted", "refused"),
    [
        ({}, ["a-b", "a" * 128], ["a" * 129, "ñame"]),
        ({"unicode": True}, ["ñame", "a-b"], ["a b"]),
        ({"hyphen": False}, ["a_b"], ["a-b"]),
        ({"length_129": True}, ["a" * 129], ["a" * 256]),
        ({"length_128": False}, ["a" * 127], ["a" * 128]),
    ],
)
def test_names_become_one_pattern(
    rules: dict[str, bool], accepted: list[str], refused: list[str]
) -> None:
    """The name rule follows the accepted and refused names; a trait refused anywhere is
    refused."""
    names = {"project": NameRules(**rules), "model": NameRules(hyphen=True)}
    settings = EmulatorSettings.from_profile(ServerProfile(names=names))
    assert all(settings.name_ok(name) for name in accepted)
    assert not any(settings.name_ok(name) for name in refused)


def test_default_names_keep_the_default_pattern() -> None:
    """The documented rule probed as such gives the default pattern, unchanged."""
    rules = NameRules(hyphen=True, length_128=True, length_129=False, unicode=False)
    settings = EmulatorSettings.from_profile(ServerProfile(names={"collection": rules}))
    assert settings.name_pattern == DEFAULT_NAME_PATTERN


def test_from_profile_reads_a_file_and_a_mapping(tmp_path: Path) -> None:
    """A path to the JSON a probe printed, or a plain mapping, are profiles too."""
    path = tmp_path / "server.json"
    path.write_text(ServerProfile(duplicate_ids="reject").to_json())
    assert EmulatorSettings.from_profile(path).duplicate_ids == "reject"
    assert EmulatorSettings.from_profile({"oversize_status": 400}).oversize_status == 400


def test_command_line_profile_and_options(tmp_path: Path) -> None:
    """--profile sets what the profile knows; an option given explicitly wins."""
    path = tmp_path / "server.json"
    path.write_text(json.dumps({"duplicate_ids": "ignore", "error_status": "ok"}))
    args = build_parser().parse_args(["--profile", str(path), "--error-status", "http"])
    settings = settings_from_args(args, {})
    assert settings.duplicate_ids == "ignore"
    assert settings.error_status == "ok"  # "http" is the default: the profile's answer stays
    args = build_parser().parse_args(["--profile", str(path), "--duplicate-ids", "reject"])
    assert settings_from_args(args, {}).duplicate_ids == "reject"


def test_a_profile_from_a_newer_library_is_refused() -> None:
    """profile_version above this library's: a clear error, not a half-read profile."""
    with pytest.raises(ValueError, match="newer vecml-async"):
        EmulatorSettings.from_profile({"profile_version": 99})
