"""The official AutoML workflow script, run unchanged against the emulator."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

import pytest

from vecml_async.emulator import Emulator, run_in_thread

pytestmark = pytest.mark.integration

SCRIPT = Path(__file__).parent / "data" / "seed_workflow.py"
KEY = "vml_seed_workflow_key"


def _prepared(base_url: str) -> str:
    """The script with only its API_KEY and BASE_URL lines replaced."""
    text = SCRIPT.read_text()
    for old, new in (
        ('API_KEY = "replace_this_with_your_api_key"', f"API_KEY = {KEY!r}"),
        ('BASE_URL = "https://aidb.vecml.com/api"', f"BASE_URL = {base_url!r}"),
    ):
        assert text.count(old) == 1
        text = text.replace(old, new)
    return text


def _response_after(stdout: str, endpoint: str) -> dict[str, object]:
    """The dict the script printed for its last call to ``endpoint``."""
    lines = stdout.splitlines()
    marks = [i for i, line in enumerate(lines) if line.startswith(f"Request to {endpoint}:")]
    assert marks, f"the script never called {endpoint}"
    payload = lines[marks[-1] + 1].removeprefix("Response: ")
    result = ast.literal_eval(payload)
    assert isinstance(result, dict)
    return result


@pytest.mark.slow
def test_seed_workflow_runs_unchanged_and_predicts_well(tmp_path: Path) -> None:
    """The documented script exits 0 and its predictions beat chance by far (linear labels)."""
    emulator = Emulator()
    with run_in_thread(emulator) as base_url:
        script = tmp_path / "workflow.py"
        script.write_text(_prepared(base_url))
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}
        done = subprocess.run(
            [sys.executable, str(script)],
            capture_output=True,
            text=True,
            timeout=240,
            cwd=tmp_path,
            env=env,
            check=False,
        )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    result = _response_after(done.stdout, "automl_predict")
    assert result["success"] is True
    assert result["num_samples"] == 100
    metric = result["prediction_metric"]
    assert isinstance(metric, dict)
    assert metric["accuracy"] >= 0.75, metric
    assert len(emulator.collection_ids(KEY, "AutoML-Demo", "training_data")) == 1000
    assert len(emulator.collection_ids(KEY, "AutoML-Demo", "prediction_data")) == 100
