"""Four worker processes, one API key, one RedisBudget: the server sees one budget.

The emulator (a thread of this process, which only waits for the workers) limits the key
to 20 calls/s and stamps every request's arrival. Each worker is a separate Python process
(``budget_child.py``) ingesting its own rows; the workers start together on a signal.

* One ``RedisBudget(20)`` shared by the four: the busiest one-second window holds at most
  20 calls (at the emulator and at the clients' send times) and nothing is refused.
* The control, four private limiters at 20 each, is refused: the test can fail.
* A budget above the server's real limit converges: refusals stay few (one decrease per
  burst, for all workers) and every row lands.
"""

from __future__ import annotations

import asyncio
import bisect
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from vecml_async import AsyncVecML
from vecml_async.emulator import Emulator, EmulatorSettings, run_in_thread

pytestmark = [pytest.mark.integration, pytest.mark.slow]

CHILD = Path(__file__).with_name("budget_child.py")
KEY = "vml_scale-test-key-4f1e9a0c"
P, C = "scale", "shared"
WORKERS = 4
R = 20
DIM = 8
ROWS_PER_CALL = 40
CALLS_PER_WORKER = 25


def max_in_window(times: list[float], window: float = 1.0) -> int:
    times = sorted(times)
    return max(
        (bisect.bisect_left(times, t + window, lo=i) - i for i, t in enumerate(times)), default=0
    )


@pytest.fixture
def emulator(request: pytest.FixtureRequest) -> Iterator[tuple[Emulator, str]]:
    limit = getattr(request, "param", R)
    emu = Emulator(EmulatorSettings(rate_limit=limit))
    with run_in_thread(emu) as url:
        yield emu, url


async def _setup(url: str, redis_url: str | None, name: str) -> None:
    """Project and collection, made through the same budget as the workers."""
    budget: Any = float(R)
    if redis_url is not None:
        from vecml_async.budget import RedisBudget

        budget = RedisBudget(redis_url, R, name=name)
    async with AsyncVecML(KEY, base_url=url, rate_limit=budget) as client:
        await client.create_project(P)
        await client.init(P, C, vector_dim=DIM)
    if redis_url is not None:
        await budget.aclose()


def run_workers(url: str, redis_url: str | None, name: str) -> list[dict[str, Any]]:
    """Start the workers, let them go together, and collect what each reports."""
    rows = ROWS_PER_CALL * CALLS_PER_WORKER
    procs = []
    for k in range(WORKERS):
        spec = {
            "base_url": url,
            "key": KEY,
            "project": P,
            "collection": C,
            "start": k * rows,
            "rows": rows,
            "dim": DIM,
            "max_rows": ROWS_PER_CALL,
            "concurrency": 4,
            "rate": R,
            "redis": redis_url,
            "name": name,
        }
        procs.append(
            subprocess.Popen(
                [sys.executable, str(CHILD), json.dumps(spec)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                text=True,
            )
        )
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "READY"
        for proc in procs:
            assert proc.stdin is not None
            proc.stdin.write("GO\n")
            proc.stdin.close()
            proc.stdin = None  # communicate() below only reads
        outputs = [proc.communicate(timeout=120)[0] for proc in procs]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert all(proc.returncode == 0 for proc in procs), outputs
    return [json.loads(out.strip().splitlines()[-1]) for out in outputs]


def _figures(emu: Emulator, results: list[dict[str, Any]]) -> dict[str, Any]:
    stats = emu.stats(KEY)
    sent = [t for r in results for t in r["sent"]]
    return {
        "emulator_max_in_1s": stats["max_requests_in_1s"],
        "client_max_in_1s": max_in_window(sent),
        "refusals": stats["rejections"]["rate_limited"],
        "requests": sum(stats["requests"].values()),
        "rows_sent": sum(r["rows_sent"] for r in results),
        "failed": sum(r["failed"] for r in results),
        "seconds": round(max(r["elapsed"] for r in results), 2),
    }


def test_four_processes_share_one_redis_budget(emulator, redis_url):
    """One RedisBudget(20) for 4 processes: at most 20 calls in any second, none refused."""
    emu, url = emulator
    name = f"procs-{uuid.uuid4().hex[:8]}"
    asyncio.run(_setup(url, redis_url, name))
    figures = _figures(emu, run_workers(url, redis_url, name))
    print(f"\nSHARED {figures}")
    total = WORKERS * ROWS_PER_CALL * CALLS_PER_WORKER
    assert figures["rows_sent"] == total and figures["failed"] == 0, figures
    assert figures["refusals"] == 0, figures
    assert figures["client_max_in_1s"] <= R, figures
    assert figures["emulator_max_in_1s"] <= R, figures
    # The budget was used, not merely respected: the run kept close to R calls/s.
    assert figures["client_max_in_1s"] >= R - 2, figures
    ids = emu.collection_ids(KEY, P, C)
    assert len(ids) == len(set(ids)) == total


def test_control_four_private_limiters_are_refused(emulator):
    """The control: 4 private limiters at 20 calls/s each send more than the key's 20."""
    emu, url = emulator
    asyncio.run(_setup(url, None, "private"))
    figures = _figures(emu, run_workers(url, None, "private"))
    print(f"\nCONTROL {figures}")
    assert figures["client_max_in_1s"] > R, figures
    assert figures["refusals"] > 0, figures


@pytest.mark.parametrize("emulator", [10], indirect=True)
def test_budget_above_the_server_limit_converges(emulator, redis_url):
    """Server limit 10/s under a shared budget of 20: the shared rate comes down once per
    burst for all workers, refusals stay few, and every row lands."""
    emu, url = emulator
    name = f"over-{uuid.uuid4().hex[:8]}"
    asyncio.run(_setup(url, redis_url, name))
    figures = _figures(emu, run_workers(url, redis_url, name))
    print(f"\nOVER-LIMIT {figures}")
    total = WORKERS * ROWS_PER_CALL * CALLS_PER_WORKER
    assert figures["rows_sent"] == total and figures["failed"] == 0, figures
    assert 0 < figures["refusals"] <= 0.25 * WORKERS * CALLS_PER_WORKER, figures


def test_scale_out_example_runs_as_shipped(redis_url):
    """examples/scale_out.py: its workers share one budget; the emulator saw no refusal."""
    example = Path(__file__).resolve().parents[2] / "examples" / "scale_out.py"
    env = {k: v for k, v in os.environ.items() if not k.startswith("VECML_")}
    done = subprocess.run(
        [sys.executable, str(example), "--redis", redis_url, "--workers", "2", "--rows", "8000"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert "0 refused, 8,000 rows stored" in last, done.stdout
    busiest = int(last.split("busiest second ")[1].split()[0])
    assert busiest <= R, done.stdout
