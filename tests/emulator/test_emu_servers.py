"""serve(), run_in_thread() and spawn() start, answer and stop cleanly on loopback."""

from __future__ import annotations

import asyncio
import signal
import socket
import threading
from urllib.parse import urlsplit

import httpx
import pytest

from vecml_async.emulator import (
    Emulator,
    EmulatorSettings,
    ainspect_remote,
    inspect_remote,
    main,
    run_in_thread,
    serve,
    spawn,
)
from vecml_async.emulator.server import bind_loopback

KEY = "vml_test_key_a"


def _port_closed(base_url: str) -> bool:
    parts = urlsplit(base_url)
    with socket.socket() as probe:
        return probe.connect_ex((parts.hostname or "", parts.port or 0)) != 0


async def test_serve_leaves_no_task_socket_or_signal_handler_behind() -> None:
    """serve() keeps the host's SIGINT handler, and on exit closes its port and tasks."""
    sigint = signal.getsignal(signal.SIGINT)
    tasks_before = asyncio.all_tasks()
    async with serve(upload_delay=5.0) as base_url:
        assert base_url.startswith("http://127.0.0.1:")
        assert base_url.endswith("/api")
        assert signal.getsignal(signal.SIGINT) is sigint
        async with httpx.AsyncClient(base_url=base_url + "/", trust_env=False) as client:
            body = {"user_api_key": KEY, "project_name": "p"}
            assert (await client.post("create_project", json=body)).status_code == 200
            body |= {"collection_name": "c", "vector_type": "dense", "vector_dim": 1}
            await client.post("init", json=body)
            # An upload still waiting when the server stops must not leak a timer.
            await client.post("add_data_batch", json=body | {"data": [[1.0]]})
    assert signal.getsignal(signal.SIGINT) is sigint
    assert asyncio.all_tasks() == tasks_before
    assert _port_closed(base_url)


async def test_serve_reuses_an_emulator_and_its_data() -> None:
    """An Emulator passed to serve() keeps its data across two serving sessions."""
    emulator = Emulator(EmulatorSettings())
    for expected in (200, 409):
        async with (
            serve(emulator) as base_url,
            httpx.AsyncClient(base_url=base_url + "/", trust_env=False) as client,
        ):
            response = await client.post(
                "create_project", json={"user_api_key": KEY, "project_name": "p"}
            )
            assert response.status_code == expected


async def test_serve_refuses_non_loopback_and_mixed_arguments() -> None:
    """Only loopback hosts are served; an Emulator plus settings keywords is a TypeError."""
    with pytest.raises(ValueError, match="loopback"):
        async with serve(host="0.0.0.0"):
            pass
    with pytest.raises(TypeError):
        async with serve(Emulator(), rate_limit=1):
            pass
    with pytest.raises(ValueError, match="loopback"):
        bind_loopback("192.0.2.1")


def test_run_in_thread_serves_sync_code_and_stops() -> None:
    """run_in_thread() serves blocking clients and joins its thread on exit."""
    emulator = Emulator()
    with run_in_thread(emulator) as base_url:
        response = httpx.post(
            base_url + "/create_project",
            json={"user_api_key": KEY, "project_name": "p"},
            trust_env=False,
        )
        assert response.status_code == 200
        assert inspect_remote(base_url, KEY)["requests"] == {"create_project": 1}
    assert not [t for t in threading.enumerate() if t.name == "vecml-emulator"]
    assert _port_closed(base_url)
    assert emulator.stats()["requests"] == {"create_project": 1}


def test_run_in_thread_reports_startup_failure() -> None:
    """A server that cannot start raises in the caller instead of hanging."""
    with pytest.raises(ValueError, match="loopback"), run_in_thread(host="10.0.0.1"):
        pass


@pytest.mark.slow
async def test_spawn_runs_a_child_process_with_settings() -> None:
    """spawn() starts python -m vecml_async.emulator with the settings and stops it on exit."""
    settings = {"rate_limit": 0.2, "rate_limit_burst": 1, "rate_limit_body": "json"}
    with spawn(api_keys=frozenset({KEY}), **settings) as base_url:
        async with httpx.AsyncClient(base_url=base_url + "/", trust_env=False) as client:
            stranger = {"user_api_key": "vml_not_allowed", "project_name": "p"}
            assert (await client.post("create_project", json=stranger)).status_code == 401
            body = {"user_api_key": KEY, "project_name": "p"}
            assert (await client.post("create_project", json=body)).status_code == 200
            limited = await client.post("create_project", json=body)
            assert limited.status_code == 400
            assert limited.json()["error_message"].startswith("Request limit reached")
        report = await ainspect_remote(base_url, KEY)
        assert report["rejections"]["rate_limited"] == 1
    assert _port_closed(base_url)


def test_main_refuses_bad_options(capsys: pytest.CaptureFixture[str]) -> None:
    """The command line exits with status 2 on a non-loopback host or bad settings."""
    for argv in (["--host", "0.0.0.0"], ["--rate-limit", "-1"], ["--fault-schedule", "x"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 2
    assert "loopback" in capsys.readouterr().err
