"""Injected faults as a real httpx client sees them over loopback."""

from __future__ import annotations

import logging
import time
from typing import Any

import httpx
import pytest

from vecml_async.emulator import RATE_LIMIT_TEXT, FaultConfig

P = {"project_name": "p", "collection_name": "c"}


async def _faulty(start: Any, **settings: Any) -> Any:
    """An emulator whose faults hit add_data_batch only, with a collection ready."""
    config = FaultConfig(endpoints=frozenset({"add_data_batch"}), **settings.pop("faults"))
    api = await start(faults=config, **settings)
    await api.collection(dim=2)
    return api


async def test_drop_before_apply_closes_the_connection_and_stores_nothing(
    start: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """drop_before_apply: the client gets a protocol error, no job, no rows, no traceback log."""
    api = await _faulty(start, faults={"schedule": {1: "drop_before_apply"}})
    with caplog.at_level(logging.ERROR), pytest.raises(httpx.RemoteProtocolError):
        await api.call("add_data_batch", **P, data=[[1, 2]], string_ids=["a"])
    assert api.emulator.collection_ids(api.key, "p", "c") == []
    assert api.emulator.inspect(api.key)["jobs"]["finished"] == 0
    assert api.emulator.stats()["faults"] == {"drop_before_apply": 1}
    assert not [r for r in caplog.records if "ASGI" in r.getMessage()]
    # The next request (number 2) is served normally.
    await api.ok("add_data_batch", **P, data=[[1, 2]], string_ids=["a"])


async def test_drop_after_apply_has_stored_the_batch(start: Any) -> None:
    """drop_after_apply: the client sees a dropped connection, yet the rows were applied."""
    api = await _faulty(start, faults={"schedule": {1: "drop_after_apply"}})
    with pytest.raises(httpx.RemoteProtocolError):
        await api.call("add_data_batch", **P, data=[[1, 2]], string_ids=["a"])
    assert api.emulator.collection_ids(api.key, "p", "c") == ["a"]
    assert api.emulator.inspect(api.key)["jobs"]["finished"] == 1
    # A naive retry of the same ids overwrites instead of duplicating.
    await api.ok("add_data_batch", **P, data=[[1, 2]], string_ids=["a"])
    assert api.emulator.collection_counters(api.key, "p", "c")["overwrites"] == 1


async def test_drop_after_apply_with_delay_leaves_a_job_that_applies(start: Any) -> None:
    """With upload_delay, a dropped answer still leaves an upload job that applies later."""
    api = await _faulty(start, upload_delay=0.05, faults={"schedule": {1: "drop_after_apply"}})
    with pytest.raises(httpx.RemoteProtocolError):
        await api.call("add_data_batch", **P, data=[[1, 2], [3, 4]])
    await api.wait_until(lambda: len(api.emulator.collection_ids(api.key, "p", "c")) == 2)


@pytest.mark.parametrize(("kind", "status"), [("error_500", 500), ("error_503", 503)])
async def test_5xx_faults_send_the_envelope_and_store_nothing(
    start: Any, kind: str, status: int
) -> None:
    """error_500 / error_503 answer with that status and the error envelope; nothing stored."""
    api = await _faulty(start, faults={kind: 1.0})
    response = await api.call("add_data_batch", **P, data=[[1, 2]])
    assert response.status_code == status
    assert response.json()["success"] is False
    assert api.emulator.collection_ids(api.key, "p", "c") == []
    assert api.emulator.stats()["faults"] == {kind: 1}
    assert api.emulator.stats(api.key)["faults"] == {kind: 1}


async def test_latency_delays_the_answer(start: Any) -> None:
    """latency delays each eligible answer by at least that many seconds."""
    api = await _faulty(start, faults={"latency": 0.15})
    began = time.monotonic()
    await api.ok("add_data_batch", **P, data=[[1, 2]])
    assert time.monotonic() - began >= 0.15
    assert api.emulator.stats()["faults"] == {"latency": 1}


async def test_rate_limit_burst_answers_consecutive_requests(start: Any) -> None:
    """A burst answers rate_limit_burst_length consecutive requests with the rate-limit text."""
    api = await _faulty(
        start,
        faults={"rate_limit_burst_prob": 1.0, "rate_limit_burst_length": 3, "seed": 1},
    )
    for _ in range(3):
        response = await api.call("add_data_batch", **P, data=[[1, 2]])
        assert response.status_code == 400
        assert response.text == RATE_LIMIT_TEXT
    assert api.emulator.stats()["faults"] == {"rate_limit": 3}
    assert api.emulator.collection_ids(api.key, "p", "c") == []


async def test_faults_spare_other_endpoints_and_the_inspection_endpoint(start: Any) -> None:
    """Faults limited to add_data_batch leave init and /_emulator/inspect alone."""
    api = await _faulty(start, faults={"error_500": 1.0})
    await api.ok("init", **{**P, "collection_name": "d"}, vector_type="dense", vector_dim=2)
    response = await api.client.post("_emulator/inspect", json={"user_api_key": api.key})
    assert response.status_code == 200
    assert response.json()["faults"] == {}


async def test_same_seed_same_faults_over_http(start: Any) -> None:
    """Two emulators with the same seed inject the same faults for the same requests."""
    outcomes = []
    for _ in range(2):
        api = await _faulty(start, faults={"error_500": 0.3, "error_503": 0.3, "seed": 42})
        codes = [
            (await api.call("add_data_batch", **P, data=[[1, 2]])).status_code for _ in range(12)
        ]
        outcomes.append(codes)
    assert outcomes[0] == outcomes[1]
    assert {500, 503, 200} <= set(outcomes[0])
