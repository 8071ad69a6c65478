"""The demo workflow (vecml_async._demo): data generation, server choice, and a full run."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import numpy as np
import pytest

from vecml_async import AsyncVecML, InvalidInputError
from vecml_async._demo import (
    MAX_FLOATS,
    PREDICTION_COLLECTION,
    TRAINING_COLLECTION,
    DemoOptions,
    demo_client,
    generate_dataset,
    run_demo,
    run_workflow,
)
from vecml_async.emulator import run_in_thread, serve
from vecml_async.testing import EmulatorFixture


def test_generated_rows_follow_the_documented_rule() -> None:
    """label = 1 exactly when sum(v[:20]) + weight(category) > 0; ids and seed are stable."""
    data = generate_dataset(500, 32, "train", seed=7)
    again = generate_dataset(500, 32, "train", seed=7)
    assert data.vectors.dtype == np.float32 and data.vectors.shape == (500, 32)
    assert np.array_equal(data.vectors, again.vectors) and data.attributes == again.attributes
    assert data.ids[0] == "train_000000" and len(set(data.ids)) == 500
    weights = {"A": 1.0, "B": -0.5, "C": 0.0}
    for vector, attrs in zip(data.vectors, data.attributes):
        score = float(vector[:20].astype(np.float64).sum()) + weights[attrs["category"]]
        assert attrs["label"] == ("1" if score > 0 else "0")
    assert {a["category"] for a in data.attributes} == {"A", "B", "C"}


@pytest.mark.parametrize(
    "fields",
    [{"rows": 5}, {"dim": 0}, {"prediction_rows": 0}, {"concurrency": 0},
     {"rows": MAX_FLOATS // 64, "dim": 64}, {"training_mode": "fastest"}],
)  # fmt: skip
def test_options_are_checked_up_front(fields: dict[str, Any]) -> None:
    """Impossible or oversized demos are refused before anything starts."""
    with pytest.raises(InvalidInputError):
        DemoOptions(**fields)


async def test_a_base_url_without_a_key_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Pointing at a server without a key fails with a hint, before any request."""
    monkeypatch.delenv("VECML_API_KEY", raising=False)
    with pytest.raises(InvalidInputError, match="VECML_API_KEY"):
        async with demo_client(base_url="http://127.0.0.1:9/api"):
            pass


async def test_run_demo_serves_its_own_emulator(monkeypatch: pytest.MonkeyPatch) -> None:
    """No key, no URL: the embedded emulator runs the whole workflow; every step reports."""
    monkeypatch.delenv("VECML_API_KEY", raising=False)
    monkeypatch.delenv("VECML_BASE_URL", raising=False)
    steps: list[str] = []
    result = await run_demo(
        DemoOptions(rows=4000, dim=32, prediction_rows=400, cleanup=True),
        progress=False,
        on_step=lambda name, detail, seconds: steps.append(name),
    )
    assert steps == [
        "server", "project", "init", "generate", "ingest", "ingest_prediction", "train",
        "predict", "cleanup",
    ]  # fmt: skip
    assert result.emulator and result.server.startswith("embedded emulator at http://127.0.0.1:")
    assert result.rows == 4000 and result.prediction_rows == 400
    assert result.upload_jobs == result.batches + 1 and result.retries == 0
    assert isinstance(result.validation_metric, dict)
    assert result.validation_metric["accuracy"] > 0.8
    assert isinstance(result.prediction_metric, dict) and result.num_predictions == 400
    assert result.models[0]["model_name"] == "model1"
    assert result.total_seconds >= sum(result.steps.values()) - 0.01
    assert result.as_dict()["rows"] == 4000


async def test_workflow_against_a_given_server(vecml_emulator: EmulatorFixture) -> None:
    """run_workflow with any client: the collections hold every row, the model is listed,
    and a progress callback sees the training ingest."""
    seen: list[int] = []
    async with AsyncVecML(vecml_emulator.api_key, base_url=vecml_emulator.base_url) as client:
        result = await run_workflow(
            client,
            DemoOptions(rows=1500, dim=24, prediction_rows=100, project="demo_p"),
            progress=lambda state: seen.append(state.rows_sent),
        )
    emulator, key = vecml_emulator.emulator, vecml_emulator.api_key
    assert len(emulator.collection_ids(key, "demo_p", TRAINING_COLLECTION)) == 1500
    assert len(emulator.collection_ids(key, "demo_p", PREDICTION_COLLECTION)) == 100
    assert seen and seen[-1] == 1500
    assert result.training_mode == "high_speed" and result.num_samples == 100


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_serving_in_process_leaves_the_hosts_uvicorn_loggers_alone() -> None:
    """The embedded emulator (serve(), as the demo uses it, and run_in_thread) keeps the
    levels, handlers and propagation a host application gave uvicorn's shared loggers, and
    writes no access lines into the host's access log."""
    error, access = logging.getLogger("uvicorn.error"), logging.getLogger("uvicorn.access")
    saved = [(log, log.level, log.handlers[:], log.propagate) for log in (error, access)]
    host_access_log = _Records()
    error.setLevel(logging.DEBUG)
    access.setLevel(logging.INFO)
    access.addHandler(host_access_log)

    async def served_on_this_loop() -> None:
        async with serve() as url, AsyncVecML("k", base_url=url) as client:
            await client.create_project("p")

    try:
        asyncio.run(served_on_this_loop())
        with run_in_thread() as url:
            body = {"user_api_key": "k", "project_name": "p"}
            assert httpx.post(f"{url}/create_project", json=body, trust_env=False).is_success
        assert error.level == logging.DEBUG and access.level == logging.INFO
        assert access.handlers == [host_access_log] and access.propagate
        assert host_access_log.records == []
    finally:
        for log, level, handlers, propagate in saved:
            log.setLevel(level)
            log.handlers[:] = handlers
            log.propagate = propagate
