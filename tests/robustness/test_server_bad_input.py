"""Bad requests sent to the emulator over loopback with raw httpx: malformed JSON, wrong
types, oversize bodies (declared and streamed chunked), unknown jobs, other tenants' names,
and a seeded fuzz of every endpoint's body.

Each is answered with a clear error (the envelope, or the documented plain text), never a
500 or a dropped connection; a valid request right after succeeds; and nothing of one key is
visible to another.
"""

# ruff: noqa: E501  (the case table keeps one case per line)
from __future__ import annotations

import base64
import gzip
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

pytestmark = pytest.mark.integration

CAP = 1_000_000  # the emulator's max_body_bytes here, so oversize bodies stay cheap
P, C = "mine", "vectors"


@pytest.fixture
async def api(thread_emulator: Any, key: str, other_key: str) -> AsyncIterator[Any]:
    """An emulator with KEY's project/collection (4 rows, a trained model, a job) and an
    httpx client; OTHER_KEY has nothing."""
    emulator, url = thread_emulator(max_body_bytes=CAP)
    async with httpx.AsyncClient(base_url=url + "/", timeout=30, trust_env=False) as http:
        api = Api(emulator, http, key, other_key)
        await api.ok("create_project", project_name=P)
        await api.ok("init", project_name=P, collection_name=C, vector_type="dense", vector_dim=2)
        rows = [[float(i), float(i % 2)] for i in range(40)]
        labels = [{"label": str(i % 2)} for i in range(40)]
        answer = await api.ok(
            "add_data_batch", project_name=P, collection_name=C, data=rows, attributes=labels
        )
        api.job_id = answer["job_id"]
        train = await api.ok(
            "train_automl_model",
            project_name=P,
            collection_name=C,
            model_name="m",
            training_mode="high_speed",
            task_type="classification",
            label_attribute="label",
        )
        api.train_job_id = train["job_id"]
        yield api


class Api:
    def __init__(self, emulator: Any, http: httpx.AsyncClient, key: str, other: str) -> None:
        self.emulator, self.http, self.key, self.other = emulator, http, key, other
        self.job_id = ""
        self.train_job_id = ""
        self.serial = 0

    async def post(self, endpoint: str, body: Any, **kwargs: Any) -> httpx.Response:
        content = body if isinstance(body, bytes) else orjson.dumps(body)
        return await self.http.post(endpoint, content=content, **kwargs)

    async def ok(self, endpoint: str, **fields: Any) -> dict[str, Any]:
        response = await self.post(endpoint, {"user_api_key": self.key, **fields})
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        assert payload["success"] is True, payload
        return payload

    async def still_serving(self) -> None:
        """A valid request right after a bad one succeeds."""
        self.serial += 1
        await self.ok("create_project", project_name=f"after{self.serial}")


def _b64(content: bytes) -> str:
    return base64.b64encode(content).decode()


def _cases(key: str) -> list[tuple[str, str, Any, int, str]]:
    """(name, endpoint, body, expected status, text the message must contain)."""
    k = {"user_api_key": key}
    where = {**k, "project_name": P, "collection_name": C}
    # fmt: off
    return [
        ("truncated JSON", "create_project", b'{"user_api_key": "x", "proj', 400, "Malformed JSON"),
        ("empty body", "create_project", b"", 400, "Malformed JSON"),
        ("JSON array", "create_project", b"[1, 2]", 400, "JSON object"),
        ("JSON string", "init", b'"hello"', 400, "JSON object"),
        ("invalid UTF-8", "create_project", b'{"user_api_key": "\xff\xfe"}', 400, "Malformed JSON"),
        ("nesting 100k deep", "add_data_batch", b"[" * 100_000, 400, "Malformed JSON"),
        ("NaN literal", "add_data_batch", b'{"data": [[NaN, 1]]}', 400, "Malformed JSON"),
        ("number over double", "init", b'{"vector_dim": 1e999}', 400, "Malformed JSON"),
        ("key not a string", "create_project", {"user_api_key": 5, "project_name": "q"}, 401, "API key"),
        ("no key", "create_project", {"project_name": "q"}, 401, "API key"),
        ("empty key", "create_project", {"user_api_key": "", "project_name": "q"}, 401, "API key"),
        ("project_name a number", "create_project", {**k, "project_name": 5}, 400, "project_name"),
        ("project_name empty", "create_project", {**k, "project_name": ""}, 400, "project_name"),
        ("project_name illegal", "create_project", {**k, "project_name": "a b/c"}, 400, "project_name"),
        ("project_name 129 chars", "create_project", {**k, "project_name": "p" * 129}, 400, "project_name"),
        ("vector_dim a string", "init", {**where, "collection_name": "d", "vector_type": "dense", "vector_dim": "64"}, 400, "vector_dim"),
        ("vector_dim a bool", "init", {**where, "collection_name": "d", "vector_type": "dense", "vector_dim": True}, 400, "vector_dim"),
        ("vector_dim 10**30", "init", {**where, "collection_name": "d", "vector_type": "dense", "vector_dim": 10**18}, 400, "vector_dim"),
        ("unknown vector_type", "init", {**where, "collection_name": "d", "vector_type": "quantum", "vector_dim": 2}, 400, "vector_type"),
        ("data a string", "add_data_batch", {**where, "data": "1,2"}, 400, "data"),
        ("ragged rows", "add_data_batch", {**where, "data": [[1, 2], [3]]}, 400, ""),
        ("wrong dimension", "add_data_batch", {**where, "data": [[1, 2, 3]]}, 400, ""),
        ("float32 overflow", "add_data_batch", {**where, "data": [[1e39, 0]]}, 400, ""),
        ("null element", "add_data_batch", {**where, "data": [[None, 1]]}, 400, ""),
        ("string_ids not a list", "add_data_batch", {**where, "data": [[1, 2]], "string_ids": "a"}, 400, "string_ids"),
        ("string_ids too few", "add_data_batch", {**where, "data": [[1, 2], [3, 4]], "string_ids": ["a"]}, 400, ""),
        ("attribute value a number", "add_data_batch", {**where, "data": [[1, 2]], "attributes": [{"k": 1}]}, 400, "attributes"),
        ("attributes a string", "add_data_batch", {**where, "data": [[1, 2]], "attributes": "k=v"}, 400, "attributes"),
        ("unknown upload job", "get_upload_data_status", {**k, "job_id": "no_such_job"}, 404, "not found"),
        ("job_id a number", "get_upload_data_status", {**k, "job_id": 17}, 400, "job_id"),
        ("unknown training job", "get_automl_training_status", {**k, "job_id": "x_TrainJob"}, 404, "not found"),
        ("unknown model", "get_model_validation_metric", {**where, "model_name": "nope"}, 404, ""),
        ("upload bad base64", "upload", {**where, "file_data": "!!!not base64", "file_format": "csv"}, 400, "base64"),
        ("upload unknown format", "upload", {**where, "file_data": _b64(b"a\n1\n"), "file_format": "xml"}, 400, "file_format"),
        ("upload corrupt gzip", "upload", {**where, "file_data": _b64(b"\x1f\x8b\x08\x00garbage"), "file_format": "csv", "compression_type": "gzip"}, 400, ""),
        ("upload truncated gzip", "upload", {**where, "file_data": _b64(gzip.compress(b"a,b\n1,2\n" * 500)[:40]), "file_format": "csv", "compression_type": "gzip"}, 400, ""),
        ("train unknown task", "train_automl_model", {**where, "model_name": "m2", "training_mode": "balanced", "task_type": "clustering", "label_attribute": "label"}, 400, "task_type"),
        ("predict dataset and file", "automl_predict", {**where, "model_name": "m", "prediction_dataset": C, "file_data": _b64(b"a\n1\n"), "file_format": "csv"}, 400, ""),
        ("unknown endpoint", "drop_database", {**k}, 404, "Unknown endpoint"),
    ]
    # fmt: on


@pytest.mark.parametrize("index", range(len(_cases(""))))
async def test_bad_request_gets_a_clear_error_and_the_server_keeps_serving(
    api: Api, index: int
) -> None:
    """A malformed or ill-typed request gets a clear error envelope; the server keeps serving."""
    cases = _cases(api.key)
    name, endpoint, body, status, text = cases[index]
    response = await api.post(endpoint, body)
    assert response.status_code == status, f"{name}: {response.status_code} {response.text}"
    payload = response.json()
    assert payload["success"] is False, name
    assert text in payload["error_message"], f"{name}: {payload['error_message']!r}"
    await api.still_serving()


async def test_wrong_method_and_oversize_bodies_declared_or_chunked(api: Api) -> None:
    """GET is 405; bodies over the cap, declared or chunked, get the plain 413; serving goes on."""
    response = await api.http.get("create_project")
    assert response.status_code == 405
    await api.still_serving()

    big = orjson.dumps({"user_api_key": api.key, "project_name": "x", "pad": "y" * (2 * CAP)})
    response = await api.post("create_project", big)
    assert response.status_code == 413
    assert response.text == f"Request body exceeds {CAP} bytes"
    await api.still_serving()

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(big), 64 * 1024):
            yield big[start : start + 64 * 1024]

    response = await api.http.post("add_data_batch", content=chunks())
    assert response.request.headers.get("transfer-encoding") == "chunked"
    assert response.status_code == 413
    assert response.text == f"Request body exceeds {CAP} bytes"
    await api.still_serving()
    assert api.emulator.stats()["rejections"]["too_large"] == 2
    assert api.emulator.inspect(api.key)["projects"].keys() == {P, "after1", "after2", "after3"}


async def test_another_key_sees_and_changes_nothing_of_mine(api: Api) -> None:
    """Another key using my names gets 404 everywhere, sees and changes nothing of mine."""
    other = {"user_api_key": api.other}
    where = {**other, "project_name": P, "collection_name": C}
    attempts = [
        ("add_data_batch", {**where, "data": [[9, 9]], "string_ids": ["intruder"]}),
        ("add_data", {**where, "data": [9, 9]}),
        ("init", {**where, "collection_name": "x", "vector_type": "dense", "vector_dim": 2}),
        ("upload", {**where, "file_data": _b64(b"a,b\n1,2\n"), "file_format": "csv"}),
        ("get_upload_data_status", {**other, "job_id": api.job_id}),
        ("get_automl_training_status", {**other, "job_id": api.train_job_id}),
        ("get_model_validation_metric", {**where, "model_name": "m"}),
        ("list_automl_model_infos", where),
        ("automl_predict", {**where, "model_name": "m", "prediction_dataset": C}),
        (
            "train_automl_model",
            {
                **where,
                "model_name": "m3",
                "training_mode": "balanced",
                "task_type": "classification",
                "label_attribute": "label",
            },
        ),
        ("delete_automl_model", {**where, "model_name": "m"}),
        ("delete_project", {**other, "project_name": P}),
    ]
    mine_before = api.emulator.inspect(api.key)
    for endpoint, body in attempts:
        response = await api.post(endpoint, body)
        assert response.status_code == 404, f"{endpoint}: {response.status_code} {response.text}"
        message = response.json()["error_message"]
        if api.emulator.fingerprint(api.key) not in orjson.dumps(body).decode():
            # (a message may echo what the caller sent, e.g. a job id it knows)
            assert api.emulator.fingerprint(api.key) not in message, endpoint
    theirs = api.emulator.inspect(api.other)
    assert theirs["projects"] == {}
    assert theirs["id_writes"] == 0
    assert set(theirs["jobs"].values()) == {0}
    view = await api.http.post("_emulator/inspect", json={"user_api_key": api.other})
    text = view.text
    assert P not in text and api.emulator.fingerprint(api.key) not in text and api.key not in text
    mine_after = api.emulator.inspect(api.key)
    assert mine_after["projects"] == mine_before["projects"]
    assert "intruder" not in api.emulator.collection_ids(api.key, P, C)
    await api.still_serving()


_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**31,
    2**63 - 1,
    -(2**63),
    1.5,
    -0.0,
    1e308,
    "",
    "x",
    "a b",
    "é" * 3,
    "p" * 300,
    [],
    [None],
    [[]],
    [[1.0]],
    [[1, 2], [3]],
    [["a", "b"]],
    {},
    {"k": "v"},
    {"k": 1},
    [{"k": "v"}],
    [{"1": 2.0}],
    "1:0.5 2:0.25",
    {"indices": [0], "values": [1.0]},
    [[0, 1.0]],
    [[-1, 1.0]],
    "0:abc",
]


def _valid_bodies(api: Api) -> list[tuple[str, dict[str, Any]]]:
    where = {"project_name": P, "collection_name": C}
    model = {**where, "model_name": "m"}
    return [
        ("create_project", {"project_name": "fz", "application": "x"}),
        ("delete_project", {"project_name": "fz"}),
        ("init", {**where, "collection_name": "fz", "vector_type": "dense", "vector_dim": 2}),
        ("add_data", {**where, "data": [1.0, 2.0], "string_id": "fz", "attributes": {"a": "b"}}),
        (
            "add_data_batch",
            {**where, "data": [[1.0, 2.0]], "string_ids": ["fz"], "attributes": [{"label": "1"}]},
        ),
        (
            "upload",
            {
                **where,
                "file_data": _b64(b"a,b,label\n1,2,0\n"),
                "file_format": "csv",
                "has_field_names": True,
                "attribute_columns": ["label"],
                "label_attribute": "label",
                "string_id_column": "a",
                "vector_type": "dense",
                "vector_dim": 2,
                "compression_type": "gzip",
            },
        ),
        ("get_upload_data_status", {"job_id": api.job_id}),
        ("get_automl_training_status", {"job_id": api.train_job_id}),
        (
            "train_automl_model",
            {
                **model,
                "model_name": "fz",
                "training_mode": "high_speed",
                "task_type": "classification",
                "label_attribute": "label",
                "categorical_features": ["label"],
                "validation_dataset": C,
            },
        ),
        ("automl_predict", {**model, "prediction_dataset": C}),
        (
            "automl_predict",
            {
                **model,
                "file_data": _b64(b"a,b,label\n1,2,0\n"),
                "file_format": "csv",
                "has_field_names": True,
            },
        ),
        ("get_model_validation_metric", model),
        ("list_automl_model_infos", where),
        ("delete_automl_model", {**model, "model_name": "fz"}),
    ]


async def test_fuzzed_bodies_never_crash_the_server(
    api: Api, seed: int, caplog: pytest.LogCaptureFixture
) -> None:
    """600 seeded mutations of valid bodies get 2xx/4xx envelopes: no 500, drop or traceback."""
    rng = random.Random(seed)
    bodies = _valid_bodies(api)
    statuses: dict[int, int] = {}
    with caplog.at_level(logging.ERROR):
        for n in range(600):
            endpoint, valid = rng.choice(bodies)
            body = dict(valid)
            for _ in range(rng.randint(1, 3)):
                action = rng.random()
                if action < 0.7 and body:
                    body[rng.choice(sorted(body))] = rng.choice(_VALUES)
                elif action < 0.85 and body:
                    del body[rng.choice(sorted(body))]
                else:
                    body[rng.choice(["extra", "data", "string_ids", "file_data"])] = rng.choice(
                        _VALUES
                    )
            body["user_api_key"] = api.key
            why = f"seed={seed} request {n}: /{endpoint} {body!r:.300}"
            try:
                response = await api.post(endpoint, body)
            except httpx.HTTPError as err:
                pytest.fail(f"{why}: the connection failed: {err!r}")
            statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
            assert response.status_code in (200, 400, 404, 409), f"{why}: {response.text}"
            payload = response.json()
            assert isinstance(payload, dict) and isinstance(payload.get("success"), bool), why
            if not payload["success"]:
                assert payload["error_message"], why
    crashes = [r.getMessage() for r in caplog.records if r.name.startswith(("vecml", "uvicorn"))]
    assert not crashes, f"seed={seed}: {crashes}"
    print(f"\nFUZZ seed={seed} statuses={statuses}")
    await api.still_serving()
