"""Every example runs as shipped against the emulator; the FastAPI app stays responsive while
it ingests 100k rows in the background."""

from __future__ import annotations

import contextlib
import csv
import importlib.util
import os
import re
import statistics
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import anyio
import httpx
import numpy as np
import pytest

from vecml_async.emulator import run_in_thread

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
KEY = "vml_examples_key"


def run_example(name: str, *args: str, timeout: float = 120) -> str:
    """Run ``examples/<name>`` as a user would (no VECML_* variables); return its stdout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECML_")}
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name), *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"-?\d+\.\d+", line)]


def test_quickstart() -> None:
    """quickstart.py runs the documented workflow and prints both metrics."""
    out = run_example("quickstart.py")
    assert "validation metric: accuracy=" in out
    assert "100 predictions; metric: accuracy=" in out


def test_observed_automl_flow() -> None:
    """observed_automl.py uploads features, attaches labels, trains and ranks the features:
    Fare and Sex (what survival depends on) come first."""
    out = run_example("observed_automl.py")
    assert "validation metric: accuracy=" in out
    ranked = [line.split()[1].rstrip(":") for line in out.splitlines()
              if line.startswith("importance ")]  # fmt: skip
    assert set(ranked) == {"vector[0]", "vector[1]", "vector[2]", "Sex"}
    assert set(ranked[:2]) == {"vector[1]", "Sex"}


def test_train_and_predict_next_to_scikit_learn() -> None:
    """train_and_predict.py prints the service's metrics next to a baseline, and they agree
    roughly (same split, reasonable models)."""
    out = run_example("train_and_predict.py")
    lines = out.splitlines()
    assert any(line.startswith("breast cancer: 426 train / 143 test") for line in lines)
    accuracy = next(numbers(line) for line in lines if line.strip().startswith("accuracy"))
    assert all(0.85 < value <= 1.0 for value in accuracy)
    mse = next(numbers(line) for line in lines if line.strip().startswith("MSE"))
    assert all(1000 < value < 8000 for value in mse)  # diabetes: target variance ~5900


def test_ingest_large_file_interrupts_and_resumes() -> None:
    """ingest_large_file.py stops its first pass part way and the second finishes the file,
    skipping what the checkpoint recorded."""
    out = run_example("ingest_large_file.py", "--rows", "30000", "--dim", "16")
    first = next(line for line in out.splitlines() if line.startswith("first pass"))
    second = next(line for line in out.splitlines() if line.startswith("second pass"))
    assert "stopped by the progress callback" in first
    assert "complete" in second and "rows skipped (already in the checkpoint)" in second
    assert "rows sent by both passes: 30,000" in out


def test_ingest_large_file_with_a_given_file(tmp_path: Path) -> None:
    """Given a FILE, ingest_large_file.py ingests it in one uninterrupted pass."""
    data = tmp_path / "mine.csv"
    with data.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "a", "b", "label"])
        writer.writerows([f"k{i}", i, -i, i % 2] for i in range(500))
    out = run_example("ingest_large_file.py", str(data))
    assert "500 of 500 rows sent" in out and "complete" in out
    assert "second pass" not in out


# ----------------------------------------------------------------------------- FastAPI


@pytest.fixture(scope="module")
def fastapi_example() -> ModuleType:
    """examples/fastapi_app.py, imported from its path."""
    pytest.importorskip("fastapi")
    spec = importlib.util.spec_from_file_location(
        "fastapi_app_example", EXAMPLES / "fastapi_app.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve their annotations through it
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def threaded_emulator() -> Iterator[str]:
    """An emulator on its own thread and event loop, standing in for a remote server."""
    with run_in_thread() as url:
        yield url


@contextlib.asynccontextmanager
async def asgi_client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    """The app's lifespan, and an HTTP client that calls it in-process."""
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app), base_url="http://app") as http,
    ):
        yield http


async def wait_for(http: httpx.AsyncClient, url: str, done: Any, timeout: float = 60) -> Any:
    """Poll ``url`` until ``done(json)`` holds (with a deadline)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = await http.get(url)
        assert answer.status_code == 200, answer.text
        if done(answer.json()):
            return answer.json()
        assert time.monotonic() < deadline, answer.json()
        await anyio.sleep(0.02)


def write_rows(path: Path, rows: int, dim: int) -> None:
    rng = np.random.default_rng(3)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", *(f"v{j}" for j in range(dim)), "label"])
        for start in range(0, rows, 10_000):
            block = rng.standard_normal((min(10_000, rows - start), dim)).round(4).tolist()
            writer.writerows(
                [f"r{start + i}", *values, int(values[0] > 0)] for i, values in enumerate(block)
            )


async def test_fastapi_app_stays_responsive_while_it_ingests(
    fastapi_example: ModuleType, threaded_emulator: str, tmp_path: Path
) -> None:
    """While a 100k-row file ingests in the background, /health answers with p99 < 250 ms;
    the finished ingest lists its upload jobs, whose status is read back from the id alone."""
    data = tmp_path / "rows.csv"
    write_rows(data, 100_000, 16)
    app = fastapi_example.create_app(api_key=KEY, base_url=threaded_emulator)
    async with asgi_client(app) as http:
        started = await http.put(
            "/projects/p/collections/c/data",
            params={"dim": 16, "id_column": "id", "attributes": "label"},
            content=data.read_bytes(),
        )
        assert started.status_code == 202, started.text
        status_url = started.json()["status"]
        latencies: list[float] = []
        state: dict[str, Any] = {"state": "running"}
        deadline = time.monotonic() + 120
        while state["state"] == "running":
            for _ in range(10):
                before = time.perf_counter()
                assert (await http.get("/health")).status_code == 200
                latencies.append(time.perf_counter() - before)
                # Probe rate, not synchronisation: an in-process ASGI call never suspends, so
                # without a pause the probing task alone would own the event loop.
                await anyio.sleep(0.005)
            state = (await http.get(status_url)).json()
            assert time.monotonic() < deadline, state
        assert state["state"] == "finished", state
        assert state["rows_sent"] == 100_000 and state["job_ids"]
        p99 = statistics.quantiles(latencies, n=100)[98]
        print(f"/health during ingest: {len(latencies)} calls, p99 {p99 * 1000:.1f} ms")
        assert len(latencies) >= 50
        assert p99 < 0.25
        job = await http.get(f"/jobs/upload/{state['job_ids'][-1]}")
        assert job.status_code == 200 and job.json()["kind"] == "upload"


async def test_fastapi_app_trains_and_reports_jobs_by_id(
    fastapi_example: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With no key the app serves its own emulator; upload, training and job status by id
    work end to end, and unknown ids are 404."""
    monkeypatch.delenv("VECML_API_KEY", raising=False)
    data = tmp_path / "rows.csv"
    write_rows(data, 600, 8)
    app = fastapi_example.create_app()
    async with asgi_client(app) as http:
        assert (await http.get("/health")).json() == {"status": "ok"}
        started = await http.put(
            "/projects/p/collections/c/data",
            params={"dim": 8, "id_column": "id", "attributes": "label"},
            content=data.read_bytes(),
        )
        state = await wait_for(http, started.json()["status"], lambda s: s["state"] != "running")
        assert state["state"] == "finished" and state["rows_sent"] == 600
        for job_id in state["job_ids"]:
            await wait_for(http, f"/jobs/upload/{job_id}", lambda s: s["status"] == "finished")
        trained = await http.post(
            "/projects/p/collections/c/models",
            json={"model_name": "m", "task_type": "classification", "label_attribute": "label",
                  "training_mode": "high_speed"},
        )  # fmt: skip
        assert trained.status_code == 202, trained.text
        final = await wait_for(
            http, trained.json()["status"], lambda s: s["status"] in ("finished", "failed")
        )
        assert final["status"] == "finished" and final["validation_metric"]["accuracy"] > 0.8
        assert (await http.get("/jobs/upload/no-such-job")).status_code == 404
        assert (await http.get("/ingests/nope")).status_code == 404


README = Path(__file__).resolve().parents[2] / "README.md"


def readme_file(first_line: str) -> str:
    """The README's python block that starts with ``first_line`` (e.g. ``# conftest.py``)."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    found = [block for block in blocks if block.startswith(first_line + "\n")]
    assert len(found) == 1, f"no single README block starting with {first_line!r}"
    return found[0]


def test_readme_pytest_example_runs_as_printed(tmp_path: Path) -> None:
    """The README's conftest.py and test_app.py, copied as printed into a fresh project with
    its own minimal pytest config (pytest-asyncio in its default strict mode, no asyncio_mode
    setting), pass."""
    (tmp_path / "conftest.py").write_text(readme_file("# conftest.py"), encoding="utf-8")
    (tmp_path / "test_app.py").write_text(readme_file("# test_app.py"), encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("VECML_", "PYTEST_", "PYTHONPATH"))
    }
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
