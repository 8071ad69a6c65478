"""The vecml-async command against the emulator over loopback (in-process via CliRunner, and
one real subprocess for ``vecml-async emulator``)."""

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from typer.testing import CliRunner, Result

import vecml_async
from vecml_async.cli import app
from vecml_async.emulator import Emulator, EmulatorSettings, FaultConfig, run_in_thread

KEY = "vml_cli_integration_key"


@dataclass(frozen=True)
class Served:
    """An emulator served on a thread for synchronous CLI runs."""

    url: str
    emulator: Emulator

    def ids(self, project: str, collection: str) -> list[str]:
        return self.emulator.collection_ids(KEY, project, collection)


@pytest.fixture(autouse=True)
def _no_delays() -> Iterator[None]:
    """Retries and polls without waiting between attempts."""
    with vecml_async.testing_mode():
        yield


@pytest.fixture
def served(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    """An emulator (settings from the indirect parameter) with the CLI's env pointed at it."""
    emulator = Emulator(EmulatorSettings(**getattr(request, "param", {})))
    with run_in_thread(emulator) as url:
        monkeypatch.setenv("VECML_API_KEY", KEY)
        monkeypatch.setenv("VECML_BASE_URL", url)
        yield Served(url, emulator)


def run(*args: str, input: str | None = None) -> Result:
    """Invoke the command in-process."""
    return CliRunner().invoke(app, list(args), input=input)


def ok(*args: str) -> Result:
    """Invoke and require exit 0."""
    result = run(*args)
    assert result.exit_code == 0, (result.stdout, result.stderr, result.exception)
    return result


def one_error_line(result: Result) -> str:
    """The single ``error:`` line on stderr (status lines may come before it; no traceback
    anywhere)."""
    lines = [line for line in result.stderr.splitlines() if line.startswith("error")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.output
    return lines[0]


def write_csv(path: Path, rows: int, dim: int = 8, seed: int = 0) -> list[str]:
    """A CSV with id, f0..f{dim-1}, label, category; returns the ids."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((rows, dim))
    ids = [f"r{i:05d}" for i in range(rows)]
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", *(f"f{j}" for j in range(dim)), "label", "category"])
        for i, row_id in enumerate(ids):
            category = "ABC"[i % 3]
            label = int(vectors[i, :3].sum() + (category == "A") > 0)
            writer.writerow([row_id, *(f"{v:.5f}" for v in vectors[i]), label, category])
    return ids


# ----------------------------------------------------------------------------- demo


def test_demo_on_the_embedded_emulator_prints_json(monkeypatch: pytest.MonkeyPatch) -> None:
    """With no key and no URL, demo serves its own emulator and reports the whole workflow."""
    monkeypatch.delenv("VECML_API_KEY", raising=False)
    monkeypatch.delenv("VECML_BASE_URL", raising=False)
    result = ok("demo", "--rows", "3000", "--prediction-rows", "300", "--dim", "32", "--json")
    summary = json.loads(result.stdout)
    assert summary["emulator"] is True and summary["server"].startswith("embedded emulator")
    assert summary["rows"] == 3000 and summary["prediction_rows"] == 300
    assert summary["batches"] >= 1 and summary["rows_per_second"] > 0
    assert summary["validation_metric"]["accuracy"] > 0.8
    assert summary["num_predictions"] == 300
    assert [m["model_name"] for m in summary["models"]] == ["model1"]


def test_demo_against_a_given_server_prints_the_summary(served: Served) -> None:
    """With a key and a base URL, demo runs on that server and prints the summary tables on
    stdout, its step lines on stderr; off a terminal no line is wrapped mid-phrase."""
    result = ok("demo", "--rows", "2000", "--prediction-rows", "200", "--dim", "24")
    assert "Summary" in result.stdout and "Metrics" in result.stdout
    assert "✓" not in result.stdout and "✓" in result.stderr
    assert any("rows/s" in line and "jobs included)" in line for line in result.stdout.splitlines())
    assert "rows/s" in result.stdout and "model1" in result.stdout
    assert served.url in result.stdout
    assert len(served.ids("vecml_async_demo", "training_data")) == 2000
    assert KEY not in result.output


# ----------------------------------------------------------------------------- ingest


@pytest.mark.parametrize(
    "served",
    [{"faults": FaultConfig(schedule={3: "error_500"}, endpoints=frozenset({"add_data_batch"}))}],
    indirect=True,
)
def test_ingest_writes_failed_ids_then_resumes_from_the_checkpoint(
    served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch the server fails is listed in the failed-ids file of the working directory
    (exit 3); re-running with the checkpoint sends only those rows."""
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "rows.csv"
    ids = write_csv(data, 5000)
    checkpoint = tmp_path / "rows.ckpt"
    args = [
        "ingest", str(data), "-p", "p", "-c", "c", "--id-column", "id",
        "--attributes", "label,category", "--dim", "8", "--create", "--max-rows", "500",
        "--concurrency", "1", "--max-retries", "0", "--checkpoint", str(checkpoint),
    ]  # fmt: skip
    first = run(*args, "--json")
    assert first.exit_code == 3, first.output
    report = json.loads(first.stdout)
    assert report["rows_sent"] == 4500 and report["rows_failed"] == 500
    failed_file = Path(report["failed_ids_file"])
    assert failed_file == tmp_path / "rows.csv.failed-ids.txt"
    assert failed_file.read_text().split() == ids[1000:1500]
    assert "ids in" in one_error_line(first)

    second = run(*args, "--wait")
    assert second.exit_code == 0, second.output
    assert "500 of 5,000 rows sent" in second.stdout and "4,500 rows skipped" in second.stdout
    assert sorted(served.ids("p", "c")) == ids


def test_ingest_refused_by_the_server_exits_3_with_the_ids(served: Served, tmp_path: Path) -> None:
    """Ingesting into a missing project: one error line naming the refusal, exit 3, ids file."""
    data = tmp_path / "rows.csv"
    ids = write_csv(data, 300)
    failed = tmp_path / "failed.txt"
    result = run(
        "ingest", str(data), "-p", "nope", "-c", "c", "--id-column", "id",
        "--attributes", "label,category", "--failed-ids", str(failed),
    )  # fmt: skip
    assert result.exit_code == 3
    line = one_error_line(result)
    assert "does not exist" in line and str(failed) in line
    assert failed.read_text().split() == ids


@pytest.mark.parametrize("fmt", ["csv", "jsonl", "npy", "parquet"])
def test_ingest_reads_each_file_format(served: Served, tmp_path: Path, fmt: str) -> None:
    """CSV, JSON lines, .npy and Parquet files all land whole."""
    rng = np.random.default_rng(1)
    vectors = rng.standard_normal((250, 6)).astype(np.float32)
    ids = [f"x{i}" for i in range(250)]
    path = tmp_path / f"data.{fmt}"
    extra: list[str] = []
    if fmt == "csv":
        write_csv(path, 250, dim=6)
        extra = ["--id-column", "id", "--attributes", "label,category"]
    elif fmt == "jsonl":
        lines = (
            json.dumps({"id": i, "vector": v.tolist(), "attributes": {"label": "1"}})
            for i, v in zip(ids, vectors)
        )
        path.write_text("\n".join(lines) + "\n")
    elif fmt == "npy":
        np.save(path, vectors)
    else:
        pa = pytest.importorskip("pyarrow")
        import pyarrow.parquet as pq

        table = pa.table({"id": ids, **{f"f{j}": vectors[:, j] for j in range(6)}})
        pq.write_table(table, path)
        extra = ["--id-column", "id"]
    result = ok(
        "ingest", str(path), "-p", "p", "-c", fmt, "--dim", "6", "--create", "--wait", "--json",
        *extra,
    )  # fmt: skip
    report = json.loads(result.stdout)
    assert report["complete"] and report["rows_sent"] == 250
    assert report["jobs_finished"] == report["batches_sent"]
    assert len(served.ids("p", fmt)) == 250


# ----------------------------------------------------------------------------- jobs, AutoML


def test_ingest_then_job_status_and_wait(served: Served, tmp_path: Path) -> None:
    """Upload job ids printed by ``ingest --json`` can be checked and awaited by ``job``."""
    data = tmp_path / "rows.csv"
    write_csv(data, 400)
    ok("project", "create", "p")
    ok("collection", "init", "p", "c", "--dim", "8")
    report = json.loads(
        ok(
            "ingest", str(data), "-p", "p", "-c", "c", "--id-column", "id",
            "--attributes", "label,category", "--json",
        ).stdout
    )  # fmt: skip
    job_id = report["job_ids"][0]
    waited = ok("job", "wait", job_id, "--kind", "upload", "--timeout", "30")
    assert f"upload job {job_id}: finished" in waited.stdout
    status = json.loads(ok("job", "status", job_id, "--json").stdout)
    assert status["kind"] == "upload" and status["status"] == "finished"


def test_train_predict_and_models(served: Served, tmp_path: Path) -> None:
    """train --wait prints the validation metric; predict on a collection and on a file;
    model list, metric and delete."""
    data = tmp_path / "train.csv"
    write_csv(data, 600)
    ok(
        "ingest", str(data), "-p", "p", "-c", "train", "--id-column", "id",
        "--attributes", "label,category", "--dim", "8", "--create", "--wait",
    )  # fmt: skip
    trained = ok(
        "train", "p", "train", "m1", "--task-type", "classification", "--label", "label",
        "--categorical", "category", "--mode", "high_speed",
    )  # fmt: skip
    assert "model m1 trained" in trained.stdout and "accuracy=" in trained.stdout

    out = tmp_path / "predictions.txt"
    predicted = ok("predict", "p", "train", "m1", "--dataset", "train", "-o", str(out))
    assert "600 predictions" in predicted.stdout
    assert set(out.read_text().split()) <= {"0", "1"} and len(out.read_text().split()) == 600

    test_file = tmp_path / "test.csv"
    write_csv(test_file, 50, seed=5)
    answer = json.loads(
        ok("predict", "p", "train", "m1", "--file", str(test_file), "--json").stdout
    )
    assert len(answer["predictions"]) == 50

    listed = json.loads(ok("model", "list", "p", "train", "--json").stdout)
    assert [m["model_name"] for m in listed] == ["m1"]
    metric = json.loads(ok("model", "metric", "p", "train", "m1", "--json").stdout)
    assert 0 <= metric["validation_metric"]["accuracy"] <= 1
    ok("model", "delete", "p", "train", "m1", "--yes")
    assert json.loads(ok("model", "list", "p", "train", "--json").stdout) == []


def test_training_job_wait_resolves_from_its_id(served: Served, tmp_path: Path) -> None:
    """``train --no-wait`` prints the job id; ``job wait`` (kind inferred) prints the metric."""
    data = tmp_path / "rows.csv"
    write_csv(data, 300)
    ok(
        "ingest", str(data), "-p", "p", "-c", "c", "--id-column", "id",
        "--attributes", "label,category", "--dim", "8", "--create", "--wait",
    )  # fmt: skip
    started = json.loads(
        ok(
            "train", "p", "c", "m", "--task-type", "classification", "--label", "label",
            "--mode", "high_speed", "--no-wait", "--json",
        ).stdout
    )  # fmt: skip
    waited = ok("job", "wait", started["job_id"], "--timeout", "60")
    assert "training job" in waited.stdout and "finished" in waited.stdout
    assert "validation: accuracy=" in waited.stdout


@pytest.mark.parametrize("served", [{"training_delay": 600.0}], indirect=True)
def test_job_wait_past_its_deadline_exits_4(served: Served, tmp_path: Path) -> None:
    """A training job still pending at the deadline: one error line, exit 4."""
    data = tmp_path / "rows.csv"
    write_csv(data, 100)
    ok(
        "ingest", str(data), "-p", "p", "-c", "c", "--id-column", "id",
        "--attributes", "label,category", "--dim", "8", "--create", "--wait",
    )  # fmt: skip
    result = run(
        "train", "p", "c", "m", "--task-type", "classification", "--label", "label",
        "--timeout", "0.3",
    )  # fmt: skip
    assert result.exit_code == 4
    assert "still pending after 0.3 s" in one_error_line(result)


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize("served", [{"api_keys": frozenset({KEY})}], indirect=True)
def test_refusals_are_one_line_and_never_show_the_key(served: Served) -> None:
    """A refused key, an unknown job and a missing project each print one line, exit 1."""
    wrong = "vml_wrong_secret_value_42"
    refused = run("project", "create", "p", "--api-key", wrong)
    assert refused.exit_code == 1
    assert "HTTP 401" in one_error_line(refused) and wrong not in refused.output
    unknown = run("job", "status", "no-such-job")
    assert unknown.exit_code == 1 and "not found" in one_error_line(unknown)
    missing = run("project", "delete", "ghost", "--yes")
    assert missing.exit_code == 1 and "ghost" in one_error_line(missing)
    assert KEY not in refused.output + unknown.output + missing.output


def test_unreachable_server_is_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    """A closed port: one error line about the connection, exit 1."""
    with run_in_thread() as url:
        pass  # served, then stopped: the port is now closed
    monkeypatch.setenv("VECML_API_KEY", KEY)
    result = run("project", "create", "p", "--base-url", url)
    assert result.exit_code == 1
    assert "/create_project" in one_error_line(result)


# ----------------------------------------------------------------------------- emulator command


def _read_line(proc: subprocess.Popen[str], prefix: str, timeout: float) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if selector.select(deadline - time.monotonic()):
                line = proc.stdout.readline()
                assert line, f"the emulator exited with {proc.wait()}"
                if line.startswith(prefix):
                    return line[len(prefix) :].strip()
    raise AssertionError("no URL line in time")


def test_emulator_command_serves_until_interrupted() -> None:
    """``vecml-async emulator --port 0`` prints its URL, serves the API with the options
    passed through (rate limit), and stops cleanly on Ctrl-C."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECML_")}
    proc = subprocess.Popen(
        [sys.executable, "-m", "vecml_async.cli", "emulator", "--port", "0", "--rate-limit", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        url = _read_line(proc, "VECML_EMULATOR_URL ", 60)
        assert url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=url + "/", trust_env=False, timeout=10) as http:
            body: dict[str, Any] = {"user_api_key": KEY, "project_name": "p"}
            assert http.post("create_project", json=body).json() == {"success": True}
            limited = http.post("create_project", json={**body, "project_name": "q"})
            assert limited.status_code == 400 and "Request limit reached" in limited.text
        proc.send_signal(signal.SIGINT)
        # A graceful stop; newer uvicorn re-raises the signal afterwards, so 130 as for Ctrl-C.
        assert proc.wait(timeout=30) in (0, 130)
        assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        assert proc.stdout is not None and proc.stderr is not None
        proc.stdout.close()
        proc.stderr.close()
