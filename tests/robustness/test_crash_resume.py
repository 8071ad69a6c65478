"""Crash and resume: a client process ingesting with ``checkpoint=`` is SIGKILLed at a random
point; the re-run with the same checkpoint completes and every id is stored exactly once.

The emulator runs in this process (``run_in_thread``) and outlives the killed clients. The
test synchronises on the child's ``ACK`` lines (printed after the checkpoint line of an
accepted batch is fsynced), never on time.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vecml_async import AsyncVecML
from vecml_async.emulator import FaultConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow]

P = "robust"
ROWS, DIM, MAX_ROWS, CONCURRENCY = 60_000, 32, 400, 4


def _run_child(
    ingest_child: Any, env: dict[str, str], spec: dict[str, Any], kill_after: int | None
) -> tuple[int, dict[str, Any] | None]:
    """Run the child; SIGKILL it once it has printed ``kill_after`` ACK lines (``None``: let
    it finish). Returns the ACKs read and the child's final report (``None`` when killed)."""
    proc = subprocess.Popen(
        [sys.executable, str(ingest_child.PATH), json.dumps(spec)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdout is not None
    acks, done = 0, None
    try:
        for line in proc.stdout:
            if line.startswith("ACK "):
                acks += 1
                if kill_after is not None and acks >= kill_after:
                    proc.send_signal(signal.SIGKILL)
                    break
            elif line.startswith("DONE "):
                done = json.loads(line[5:])
    finally:
        code = proc.wait(timeout=120)
        proc.stdout.close()
    if kill_after is not None and done is None:
        assert code == -signal.SIGKILL, f"the child exited with {code} before the kill"
    else:
        assert code == 0, f"the child failed with status {code}"
    return acks, done


def _checkpoint_records(path: Path) -> list[dict[str, Any]]:
    lines = path.read_bytes().split(b"\n")
    return [json.loads(line) for line in lines[1:] if line.strip()]


@pytest.mark.parametrize(
    ("explicit_ids", "kills"), [(True, 2), (False, 1)], ids=["explicit-ids", "generated-ids"]
)
async def test_sigkilled_ingest_resumes_and_stores_every_id_exactly_once(
    thread_emulator: Any,
    ingest_child: Any,
    child_env: dict[str, str],
    key: str,
    seed: int,
    tmp_path: Path,
    explicit_ids: bool,
    kills: int,
) -> None:
    """An ingest SIGKILLed after N acknowledged batches resumes from its checkpoint; ids once."""
    faults = FaultConfig(
        seed=seed, latency=0.002, latency_jitter=0.01, endpoints=frozenset({"add_data_batch"})
    )
    emulator, url = thread_emulator(faults=faults)
    collection = f"crash{int(explicit_ids)}"
    async with AsyncVecML(key, base_url=url) as client:
        await client.create_project(P, exist_ok=True)
        await client.init(P, collection, vector_dim=DIM)
    checkpoint = tmp_path / "ingest.ckpt"
    spec = {
        "url": url,
        "key": key,
        "project": P,
        "collection": collection,
        "checkpoint": str(checkpoint),
        "rows": ROWS,
        "dim": DIM,
        "seed": seed,
        "max_rows": MAX_ROWS,
        "explicit_ids": explicit_ids,
        "concurrency": CONCURRENCY,
    }
    rng = random.Random(seed)
    batches = ROWS // MAX_ROWS
    recorded = 0
    for attempt in range(kills):
        kill_after = rng.randint(1, batches // (kills + 1))
        acks, done = _run_child(ingest_child, child_env, spec, kill_after)
        why = f"seed={seed} kill {attempt + 1} after {kill_after} ACKs"
        assert done is None, f"{why}: the child finished before the kill"
        records = _checkpoint_records(checkpoint)
        assert len(records) >= recorded + acks, f"{why}: an acknowledged batch is not recorded"
        recorded = len(records)
        stored = emulator.collection_counters(key, P, collection)["rows"]
        assert stored >= sum(b - a for r in records for a, b in r["ranges"]), why

    _, done = _run_child(ingest_child, child_env, spec, None)
    why = f"seed={seed}: {done}"
    assert done is not None and done["complete"], why
    assert done["rows_total"] == ROWS, why
    assert done["rows_skipped"] + done["rows_sent"] == ROWS, why
    assert done["rows_skipped"] >= recorded * MAX_ROWS, why

    if explicit_ids:
        _, expected = ingest_child.make_rows(ROWS, DIM, seed, True)
    else:
        header = json.loads(checkpoint.read_bytes().split(b"\n", 1)[0])
        assert done["id_prefix"] == header["id_prefix"], f"{why}: the resumed run changed ids"
        expected = [f"{header['id_prefix']}{i}" for i in range(ROWS)]
    ids, matrix, _ = emulator.collection_data(key, P, collection)
    assert len(ids) == len(set(ids)) == ROWS, f"{why}: {len(ids)} stored"
    assert set(ids) == set(expected), f"{why}: ids lost or invented"
    vectors, _ = ingest_child.make_rows(ROWS, DIM, seed, True)
    position = {row_id: k for k, row_id in enumerate(ids)}
    order = np.fromiter((position[i] for i in expected), np.int64, count=ROWS)
    assert np.array_equal(matrix[order], vectors), f"{why}: a stored vector differs"
    counters = emulator.collection_counters(key, P, collection)
    assert counters["id_writes"] == ROWS + counters["overwrites"], why
    # Only batches in flight at a kill (accepted, not yet recorded) are sent twice.
    in_flight = kills * (CONCURRENCY + 1) * MAX_ROWS
    assert counters["overwrites"] <= in_flight, f"{why}: {counters}"
    print(f"\nCRASH seed={seed} kills={kills} recorded={recorded} {done} {counters}")


@pytest.mark.parametrize("torn", ["record", "header"])
async def test_a_torn_checkpoint_line_does_not_swallow_the_next_record(
    thread_emulator: Any, key: str, seed: int, tmp_path: Path, torn: str
) -> None:
    """Half a line left by a crash (record or header) does not swallow the next run's line."""
    emulator, url = thread_emulator()
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((2_000, 8)).astype(np.float32)
    ids = [f"t{i}" for i in range(len(vectors))]
    checkpoint = tmp_path / "torn.ckpt"
    stop_after = int(rng.integers(1, 10))
    options: dict[str, Any] = {"ids": ids, "max_rows": 100, "concurrency": 1}

    def stop(state: Any) -> bool:
        return state.batches_sent < stop_after

    async with AsyncVecML(key, base_url=url, rate_limit=None) as client:
        await client.create_project(P)
        await client.init(P, "torn", vector_dim=8)
        if torn == "record":
            first = await client.ingest(
                P, "torn", vectors, checkpoint=checkpoint, progress=stop, **options
            )
            assert first.stopped, f"seed={seed}"
            with checkpoint.open("ab") as handle:  # the crash: a record cut short
                handle.write(b'{"ranges":[[1900,20')
        else:
            checkpoint.write_bytes(b'{"format":"vecml-async-checkp')
        second = await client.ingest(P, "torn", vectors, checkpoint=checkpoint, **options)
        assert second.complete, f"seed={seed}: {second.summary()}"
        third = await client.ingest(P, "torn", vectors, checkpoint=checkpoint, **options)
    why = f"seed={seed}: third run {third.summary()}"
    assert third.rows_skipped == len(vectors), why
    assert third.rows_sent == 0, why
    assert len(emulator.collection_ids(key, P, "torn")) == len(vectors)
