"""The vecml-async command run as a user runs it: a real process, real pipes, real SIGINT,
against an emulator served on loopback. Exit codes, what goes to stdout and to stderr, and
the resume command it prints (run as printed)."""

from __future__ import annotations

import csv
import json
import os
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from vecml_async.emulator import Emulator, EmulatorSettings, run_in_thread

KEY = "vml_cli_process_key"
BIN = Path(sys.executable).parent


@pytest.fixture
def served(request: pytest.FixtureRequest) -> Iterator[tuple[str, Emulator]]:
    """An emulator on a loopback port (settings from the indirect parameter)."""
    emulator = Emulator(EmulatorSettings(**getattr(request, "param", {})))
    with run_in_thread(emulator) as url:
        yield url, emulator


def env_for(url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECML_")}
    env.update(VECML_API_KEY=KEY, VECML_BASE_URL=url, PATH=f"{BIN}{os.pathsep}{env['PATH']}")
    return env


def start(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "vecml_async.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=cwd,
    )


def wait_for(condition: object, timeout: float = 60.0) -> None:
    """Poll ``condition()`` until true (a deadline, not a fixed sleep)."""
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.02)


def read_stderr_line(proc: subprocess.Popen[str], needle: str, timeout: float = 60) -> str:
    """Read stderr lines until one contains ``needle``; return it."""
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stderr, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(deadline - time.monotonic()):
                line = proc.stderr.readline()
                assert line, f"the command exited with {proc.wait()}"
                if needle in line:
                    return line.strip()
    raise AssertionError(f"no {needle!r} line in time")


def finish(proc: subprocess.Popen[str], timeout: float = 60) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


def write_rows(path: Path, rows: int, dim: int = 8) -> list[str]:
    rng = np.random.default_rng(3)
    ids = [f"r{i:05d}" for i in range(rows)]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", *(f"f{j}" for j in range(dim)), "label"])
        for i, row_id in enumerate(ids):
            writer.writerow([row_id, *(f"{v:.4f}" for v in rng.standard_normal(dim)), i % 2])
    return ids


INGEST = ["-p", "p", "-c", "c", "--id-column", "id", "--attributes", "label", "--dim", "8",
          "--create", "--max-rows", "50", "--concurrency", "1", "--rate-limit", "10"]  # fmt: skip


def test_ctrl_c_during_ingest_prints_the_resume_command_that_completes_it(
    served: tuple[str, Emulator], tmp_path: Path
) -> None:
    """SIGINT mid-ingest: exit 130, nothing on stdout, stderr says how many rows landed,
    where the checkpoint is and the exact command to resume. Running that command as printed
    sends the rest: the emulator then holds every row exactly once."""
    url, emulator = served
    ids = write_rows(tmp_path / "rows.csv", 1500)
    args = ["ingest", "rows.csv", *INGEST, "--checkpoint", "rows.ckpt"]
    proc = start(args, env_for(url), tmp_path)

    def some_rows() -> bool:
        try:
            return len(emulator.collection_ids(KEY, "p", "c")) >= 100
        except LookupError:
            return False

    wait_for(some_rows)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130, err
    assert out == ""
    assert "Traceback" not in err
    landed = [line for line in err.splitlines() if line.startswith("interrupted:")]
    assert len(landed) == 1 and "rows sent and accepted by the server" in landed[0]
    assert "checkpoint: rows.ckpt" in err.splitlines()
    [resume] = [line for line in err.splitlines() if line.startswith("resume with: ")]
    command = resume.removeprefix("resume with: ")
    assert command == "vecml-async " + " ".join(args)
    assert len(emulator.collection_ids(KEY, "p", "c")) < len(ids)

    done = subprocess.run(
        command, shell=True, cwd=tmp_path, env=env_for(url), capture_output=True, text=True,
        timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    stored = emulator.collection_ids(KEY, "p", "c")
    assert sorted(stored) == ids and len(stored) == len(set(stored))
    assert "rows skipped" in done.stdout


def test_ctrl_c_without_a_checkpoint_says_there_is_none(
    served: tuple[str, Emulator], tmp_path: Path
) -> None:
    """Without --checkpoint, Ctrl-C says so and how to make the next run resumable; the key
    passed with --api-key is never printed."""
    url, emulator = served
    write_rows(tmp_path / "rows.csv", 1500)
    proc = start(["ingest", "rows.csv", *INGEST, "--api-key", KEY], env_for(url), tmp_path)
    wait_for(lambda: emulator.stats()["requests"].get("add_data_batch", 0) >= 2)
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130 and out == ""
    assert "no checkpoint" in err and "--checkpoint FILE" in err
    assert KEY not in err


@pytest.mark.parametrize("served", [{"training_delay": 600.0}], indirect=True)
def test_train_prints_the_job_id_first_and_ctrl_c_says_how_to_wait(
    served: tuple[str, Emulator], tmp_path: Path
) -> None:
    """train prints the job id on stderr as soon as it has it, then a status line; SIGINT
    leaves the id on screen with the command that waits for it again (exit 130, stdout
    empty). That command, run as printed (with a short deadline), polls the same job."""
    url, _ = served
    write_rows(tmp_path / "rows.csv", 200)
    env = env_for(url)
    loaded = subprocess.run(
        [sys.executable, "-m", "vecml_async.cli", "ingest", "rows.csv", *INGEST, "--wait"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    proc = start(
        ["train", "p", "c", "m", "--task-type", "classification", "--label", "label"],
        env,
        tmp_path,
    )
    started = read_stderr_line(proc, "training job ")
    job_id = started.split()[2]
    assert started == f"training job {job_id} started"
    read_stderr_line(proc, f"training job {job_id}: pending")
    proc.send_signal(signal.SIGINT)
    code, out, err = finish(proc)
    assert code == 130 and out == ""
    assert f"wait for it again with: vecml-async job wait {job_id}" in err
    again = subprocess.run(
        f"vecml-async job wait {job_id} --timeout 0.5", shell=True, cwd=tmp_path, env=env,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert again.returncode == 4 and "still pending" in again.stderr


def test_job_wait_json_keeps_stdout_clean(served: tuple[str, Emulator], tmp_path: Path) -> None:
    """job wait --json through a pipe: stdout is exactly one JSON document; the job id and
    status lines are on stderr, each whole (no wrapping)."""
    url, _ = served
    write_rows(tmp_path / "rows.csv", 120)
    env = env_for(url)
    loaded = subprocess.run(
        [sys.executable, "-m", "vecml_async.cli", "ingest", "rows.csv", *INGEST, "--json"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert loaded.returncode == 0, loaded.stderr
    job_id = json.loads(loaded.stdout)["job_ids"][0]
    code, out, err = finish(start(["job", "wait", job_id, "--json"], env, tmp_path))
    assert code == 0, err
    assert json.loads(out)["status"] == "finished"
    lines = err.splitlines()
    assert lines[0] == f"upload job {job_id}"
    assert lines[-1].startswith(f"upload job {job_id}: finished, ")


def test_emulator_stops_within_two_seconds_while_training(tmp_path: Path) -> None:
    """vecml-async emulator: Ctrl-C while a long training job runs stops it within 2 s (in
    one process, the training thread could hold off the signal handler for seconds under
    load; the command's own process sees Ctrl-C at once and ends the server in time)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECML_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vecml_async.cli", "emulator", "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = ""
        while not url:
            line = proc.stdout.readline()
            assert line, "the emulator exited"
            url = line.removeprefix("VECML_EMULATOR_URL ").strip() if "URL" in line else ""
        body = {"user_api_key": KEY, "project_name": "p", "collection_name": "c"}
        rng = np.random.default_rng(0)
        X = rng.standard_normal((20_000, 64))
        with httpx.Client(base_url=url + "/", timeout=120, trust_env=False) as http:
            http.post("create_project", json=body)
            http.post("init", json={**body, "vector_type": "dense", "vector_dim": 64})
            attrs = [{"label": str(int(x[0] > 0))} for x in X]
            http.post("add_data_batch", json={**body, "data": X.tolist(), "attributes": attrs})
            train = {**body, "model_name": "m", "training_mode": "high_accuracy",
                     "task_type": "classification", "label_attribute": "label"}  # fmt: skip
            job_id = http.post("train_automl_model", json=train).json()["job_id"]
            status = {"user_api_key": KEY, "job_id": job_id}

            def training() -> bool:
                answer = http.post("get_automl_training_status", json=status).json()
                assert answer["status"] in ("pending", "in_progress"), answer
                return bool(answer["status"] == "in_progress")

            wait_for(training)
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=30)
        assert time.monotonic() - sent < 2.0
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.communicate()
