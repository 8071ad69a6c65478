"""Optional persistence: data saved to data_dir when a server stops, loaded on start."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest

from vecml_async.emulator import Emulator, EmulatorSettings, serve, spawn
from vecml_async.emulator.persist import SNAPSHOT_NAME

KEY = "vml_test_key_a"


async def _post(client: httpx.AsyncClient, endpoint: str, **fields: object) -> httpx.Response:
    return await client.post(endpoint, json={"user_api_key": KEY, **fields})


async def test_data_survives_a_restart(tmp_path: Path) -> None:
    """Rows, attributes and jobs come back in a new emulator; unapplied uploads failed."""
    settings = EmulatorSettings(data_dir=tmp_path / "data", upload_delay=0.0)
    async with (
        serve(Emulator(settings)) as url,
        httpx.AsyncClient(base_url=url + "/", trust_env=False) as client,
    ):
        await _post(client, "create_project", project_name="p")
        spec = {"project_name": "p", "collection_name": "c"}
        await _post(client, "init", **spec, vector_type="dense", vector_dim=2)
        done = await _post(
            client,
            "add_data_batch",
            **spec,
            data=[[1, 2]],
            string_ids=["a"],
            attributes=[{"k": "v"}],
        )
    assert (tmp_path / "data" / SNAPSHOT_NAME).exists()
    again = Emulator(settings)
    ids, matrix, attrs = again.collection_data(KEY, "p", "c")
    assert ids == ["a"]
    np.testing.assert_array_equal(matrix, [[1, 2]])
    assert attrs == [{"k": "v"}]
    async with (
        serve(again) as url,
        httpx.AsyncClient(base_url=url + "/", trust_env=False) as client,
    ):
        status = await _post(client, "get_upload_data_status", job_id=done.json()["job_id"])
        assert status.json()["status"] == "finished"
        # Ids keep being unique after the restart.
        await _post(client, "add_data_batch", **spec, data=[[3, 4]], string_ids=["b"])
    assert Emulator(settings).collection_ids(KEY, "p", "c") == ["a", "b"]


async def test_waiting_upload_is_saved_as_failed(tmp_path: Path) -> None:
    """An upload still waiting when the server stops is saved as failed, its rows absent."""
    settings = EmulatorSettings(data_dir=tmp_path, upload_delay=60.0)
    async with (
        serve(Emulator(settings)) as url,
        httpx.AsyncClient(base_url=url + "/", trust_env=False) as client,
    ):
        await _post(client, "create_project", project_name="p")
        spec = {"project_name": "p", "collection_name": "c"}
        await _post(client, "init", **spec, vector_type="dense", vector_dim=1)
        await _post(client, "add_data_batch", **spec, data=[[1]])
    report = Emulator(settings).inspect(KEY)
    assert report["jobs"]["failed"] == 1
    assert report["projects"]["p"]["c"]["rows"] == 0


def test_unreadable_snapshot_and_bad_data_dir_are_refused(tmp_path: Path) -> None:
    """A corrupt snapshot is a ValueError at construction; data_dir must not be a file."""
    (tmp_path / SNAPSHOT_NAME).write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="snapshot"):
        Emulator(EmulatorSettings(data_dir=tmp_path))
    with pytest.raises(ValueError, match="not a directory"):
        EmulatorSettings(data_dir=tmp_path / SNAPSHOT_NAME)
    with pytest.raises(ValueError, match="no data_dir"):
        Emulator().save()


@pytest.mark.slow
async def test_spawned_server_saves_on_sigterm(tmp_path: Path) -> None:
    """A spawned emulator stopped with SIGTERM still writes its data_dir snapshot."""
    with spawn(data_dir=tmp_path) as url:
        async with httpx.AsyncClient(base_url=url + "/", trust_env=False) as client:
            assert (await _post(client, "create_project", project_name="kept")).status_code == 200
    assert list(Emulator(EmulatorSettings(data_dir=tmp_path)).inspect(KEY)["projects"]) == ["kept"]
