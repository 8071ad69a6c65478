"""An interrupted probe still deletes its scratch project: a task cancelled mid-probe, and
the command stopped with SIGINT."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest

from vecml_async import AsyncVecML, RequestEvent
from vecml_async.emulator import Emulator, EmulatorSettings, run_in_thread, serve
from vecml_async.probe import probe

pytestmark = pytest.mark.integration

KEY = "vml_probe_interrupted_key"


@pytest.mark.parametrize("after", [3, 14, 25, 40])
async def test_a_probe_cancelled_mid_way_deletes_what_it_made(after: int) -> None:
    """Cancelled at the n-th request (the scratch project made; a name project made and not
    yet deleted; data sent; trainings running): the cancellation propagates, and the key
    owns no project afterwards."""
    emulator = Emulator(EmulatorSettings(training_delay=30))
    seen: list[RequestEvent] = []
    async with serve(emulator) as url:
        with anyio.CancelScope() as scope:

            def count(event: RequestEvent) -> None:
                seen.append(event)
                if len(seen) == after:
                    scope.cancel()

            async with AsyncVecML(KEY, base_url=url, rate_limit=None, on_request=count) as c:
                await probe(c)
        assert scope.cancelled_caught
        assert len(seen) > after  # the cleanup's requests came after the cancellation
        assert seen[-1].endpoint == "delete_project"
        assert emulator.inspect(KEY)["projects"] == {}


def _read_until(proc: subprocess.Popen[str], needle: str, timeout: float = 60) -> list[str]:
    """stderr lines up to the one holding ``needle``."""
    assert proc.stderr is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stderr, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(deadline - time.monotonic()):
                line = proc.stderr.readline()
                assert line, f"the command ended early ({proc.wait()}): {lines}"
                lines.append(line)
                if needle in line:
                    return lines
    raise AssertionError(f"no {needle!r} on stderr in time: {lines}")


def test_ctrl_c_stops_the_command_and_deletes_the_scratch_project(tmp_path: Path) -> None:
    """SIGINT while the probe waits on its trainings: exit 130, nothing on stdout, stderr says
    the scratch project was deleted, and the emulator holds no project of the key."""
    emulator = Emulator(EmulatorSettings(training_delay=30))
    with run_in_thread(emulator) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VECML_")}
        env.update(VECML_API_KEY=KEY, VECML_BASE_URL=url)
        proc = subprocess.Popen(
            [sys.executable, "-m", "vecml_async.cli", "probe", "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=tmp_path,
        )
        try:
            _read_until(proc, "name rules")
            assert emulator.inspect(KEY)["projects"] != {}
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
        assert proc.returncode == 130, err
        assert out == ""
        assert "interrupted: the probe's scratch project was deleted" in err
        assert "Traceback" not in err
        assert emulator.inspect(KEY)["projects"] == {}


def test_a_refused_key_is_one_error_line() -> None:
    """A key the server refuses: the scratch project is not made, the command prints the
    refusal as one line (exit 1), nothing on stdout, no key."""
    emulator = Emulator(EmulatorSettings(api_keys=frozenset({"another-key"})))
    with run_in_thread(emulator) as url:
        env = {k: v for k, v in os.environ.items() if not k.startswith("VECML_")}
        env.update(VECML_API_KEY=KEY, VECML_BASE_URL=url)
        done = subprocess.run(
            [sys.executable, "-m", "vecml_async.cli", "probe"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stdout == ""
    assert (
        done.stderr.strip().splitlines()[-1].startswith("error: /create_project failed (HTTP 401)")
    )
    assert KEY not in done.stderr
