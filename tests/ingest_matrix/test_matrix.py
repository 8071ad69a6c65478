"""The differential matrix: every input kind x ids x attributes x (a clean run; injected
faults; a client process SIGKILLed mid-ingest and resumed from its checkpoint).

Each cell ingests its input into a collection of its own and checks, through the emulator's
inspection, that the stored ids, vectors (bit for bit, float32) and attributes are the
input's, and that sent + skipped + failed + unread is the input's row count. A cell whose
combination cannot be honoured checks the refusal names the option and nothing was stored.
Cells are small (40-160 rows) with tiny chunks and batches, so every cell crosses several of
each; the sizes are drawn per cell from ``INGEST_MATRIX_SEED`` (default 0), which a failing
cell's message repeats.

Crash cells run in children forked from a server with every import done (``forkserver.py``);
the child prints a line per landed batch and, past the batch count drawn for the cell,
stops in its progress callback until the parent SIGKILLs it: the kill always lands mid-ingest
with that many batches journaled, and never on a timer.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vecml_async import AsyncVecML, InvalidInputError, RetryPolicy
from vecml_async.emulator import Emulator, FaultConfig

pytestmark = pytest.mark.integration

HERE = Path(__file__).resolve().parent
P = "matrix"
SEED = int(os.environ.get("INGEST_MATRIX_SEED", "0"))
FAULTS = FaultConfig(
    seed=SEED,
    drop_before_apply=0.06,
    drop_after_apply=0.06,
    error_500=0.06,
    error_503=0.06,
    endpoints=frozenset({"add_data_batch"}),
)


def _load_cells() -> Any:
    import importlib.util

    spec = importlib.util.spec_from_file_location("matrix_cells", HERE / "cells.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up
    spec.loader.exec_module(module)
    return module


cells = _load_cells()
GRID = [(k, i, a) for k in cells.KINDS for i in cells.IDS for a in cells.ATTRIBUTES]


def _cell(scenario: str, kind: str, ids: str, attributes: str) -> Any:
    rng = random.Random(f"{SEED}/{scenario}/{kind}/{ids}/{attributes}")
    return cells.Cell.draw(kind, ids, attributes, rng)


async def _client(url: str, key: str, cell: Any, **options: Any) -> AsyncVecML:
    client = AsyncVecML(key, base_url=url, rate_limit=None, **options)
    await client.create_project(P, exist_ok=True)
    vector_type = "sparse" if cell.kind == "sparse" else "dense"
    await client.init(P, cell.collection, vector_type=vector_type, vector_dim=cells.DIM)
    return client


def _why(cell: Any, scenario: str) -> str:
    return f"{scenario} cell {cell.as_json()} (INGEST_MATRIX_SEED={SEED})"


def _check_stored(
    emulator: Emulator, key: str, cell: Any, prefix: str | None, why: str, *, once: bool
) -> None:
    """The collection holds exactly the cell's rows (``once``: each written once)."""
    ids, vectors, attributes = cells.expected(cell, prefix)
    got_ids, matrix, got_attrs = emulator.collection_data(key, P, cell.collection)
    if hasattr(matrix, "toarray"):
        matrix = matrix.toarray()
    assert len(got_ids) == len(set(got_ids)) == cell.rows, f"{why}: {len(got_ids)} stored"
    position = {row_id: k for k, row_id in enumerate(got_ids)}
    assert set(position) == set(ids), f"{why}: other ids stored"
    order = np.fromiter((position[i] for i in ids), np.int64, count=len(ids))
    assert np.asarray(matrix, np.float32)[order].tobytes() == vectors.tobytes(), why
    assert [got_attrs[k] for k in order] == attributes, why
    counters = emulator.collection_counters(key, P, cell.collection)
    assert counters["id_writes"] == cell.rows + counters["overwrites"], why
    if once:
        assert counters["overwrites"] == 0, f"{why}: {counters}"


def _check_report(report: Any, cell: Any, why: str) -> None:
    unread = report.rows_unread or 0
    total = report.rows_sent + report.rows_skipped + report.failed_row_count + unread
    assert report.complete and report.rows_total == total == cell.rows, f"{why}: {report}"


def _check_refused(
    error: InvalidInputError, emulator: Emulator, key: str, cell: Any, why: str
) -> None:
    assert error.field in cells.refusal(cell), f"{why}: refused naming {error.field!r}: {error}"
    assert emulator.collection_counters(key, P, cell.collection)["id_writes"] == 0, why


async def _run_in_process(
    emulator: Emulator, url: str, key: str, cell: Any, tmp: Path, scenario: str
) -> None:
    why = _why(cell, scenario)
    cells.prepare(cell, tmp)
    data, options = cells.build(cell, tmp)
    faulty = scenario == "faults"
    retry = RetryPolicy(max_retries=12 if faulty else 0)
    wait = random.Random(why).random() < 0.3
    async with await _client(url, key, cell, retry=retry) as client:
        if cells.refusal(cell):
            with pytest.raises(InvalidInputError) as info:
                await client.ingest(
                    P, cell.collection, data, sparse=cell.kind == "sparse", **options
                )
            _check_refused(info.value, emulator, key, cell, why)
            return
        report = await client.ingest(
            P, cell.collection, data, sparse=cell.kind == "sparse", wait=wait, **options
        )
    _check_report(report, cell, why)
    if wait:
        assert report.jobs_finished == len(report.job_ids), why
    _check_stored(emulator, key, cell, report.id_prefix, why, once=not faulty)


@pytest.mark.parametrize(("kind", "ids", "attributes"), GRID, ids=["-".join(c) for c in GRID])
async def test_clean_cell(
    emulators: Callable[..., tuple[Emulator, str]],
    key: str,
    tmp_path: Path,
    kind: str,
    ids: str,
    attributes: str,
) -> None:
    """A clean run: the collection holds the input, each row written once."""
    emulator, url = emulators()
    cell = _cell("clean", kind, ids, attributes)
    await _run_in_process(emulator, url, key, cell, tmp_path, "clean")


@pytest.mark.parametrize(("kind", "ids", "attributes"), GRID, ids=["-".join(c) for c in GRID])
async def test_faulty_cell(
    emulators: Callable[..., tuple[Emulator, str]],
    key: str,
    tmp_path: Path,
    kind: str,
    ids: str,
    attributes: str,
) -> None:
    """Through dropped connections (before and after the batch applied), 500 and 503
    answers: with enough retries the collection holds exactly the input."""
    emulator, url = emulators(faults=FAULTS)
    cell = _cell("faults", kind, ids, attributes)
    await _run_in_process(emulator, url, key, cell, tmp_path, "faults")


# ----------------------------------------------------------------------------- crashes


class ForkServer:
    """``forkserver.py``, started once: it forks a child per crash cell."""

    def __init__(self) -> None:
        env = dict(os.environ)
        root = str(HERE.parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = "1"  # no threads to fork
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "forkserver.py")],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        ready = self.proc.stdout.readline()
        assert ready.strip() == "READY", f"the fork server did not start: {ready!r}"

    def run(self, command: str, name: str, kill_after: int) -> tuple[str, int]:
        """Run one cell; SIGKILL its child once ``kill_after`` batches landed.

        Returns ``("killed", acks)``, or the child's last line kind (``DONE``/``ERROR``)
        with its text."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()
        pid, acks = None, 0
        for line in self._lines(name):
            what, _, rest = line.partition(" ")
            if what == "PID":
                pid = int(rest)
            elif what == "ACK":
                acks += 1
            else:
                return line, acks
            if pid is not None and acks >= kill_after:
                os.kill(pid, signal.SIGKILL)
                return "killed", acks
        raise AssertionError("the fork server stopped")

    def _lines(self, name: str) -> Iterator[str]:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            kind, _, rest = line.rstrip("\n").partition(" ")
            cell_name, _, text = rest.partition(" ")
            if cell_name == name:
                yield f"{kind} {text}"

    def close(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=60)
        self.proc.stdout.close()


@pytest.fixture(scope="module")
def fork_server() -> Iterator[ForkServer]:
    server = ForkServer()
    yield server
    server.close()


@pytest.mark.parametrize(("kind", "ids", "attributes"), GRID, ids=["-".join(c) for c in GRID])
async def test_crash_cell(
    emulators: Callable[..., tuple[Emulator, str]],
    fork_server: ForkServer,
    key: str,
    tmp_path: Path,
    kind: str,
    ids: str,
    attributes: str,
) -> None:
    """A child ingesting with a checkpoint is SIGKILLed after some batches landed; the same
    ingest resumed with the checkpoint completes, and the collection holds the input."""
    import orjson

    emulator, url = emulators()
    cell = _cell("crash", kind, ids, attributes)
    why = _why(cell, "crash")
    cells.prepare(cell, tmp_path)
    async with await _client(url, key, cell):
        pass
    checkpoint = tmp_path / f"{cell.collection}.ckpt"
    kill_after = random.Random(why).randint(1, 3)
    command = orjson.dumps(
        {
            "cell": cell.as_json(),
            "tmp": str(tmp_path),
            "url": url,
            "key": key,
            "checkpoint": str(checkpoint),
            "stop_after": kill_after,
        }
    ).decode()
    outcome, acks = fork_server.run(command, cell.name, kill_after)
    if cells.refusal(cell):
        assert outcome.startswith("ERROR InvalidInputError"), f"{why}: {outcome}"
        assert emulator.collection_counters(key, P, cell.collection)["id_writes"] == 0, why
        return
    assert outcome == "killed" and acks >= kill_after, f"{why}: {outcome}"
    data, options = cells.build(cell, tmp_path)
    async with AsyncVecML(key, base_url=url, rate_limit=None) as client:
        report = await client.ingest(
            P,
            cell.collection,
            data,
            vector_dim=cells.DIM,
            sparse=cell.kind == "sparse",
            checkpoint=checkpoint,
            **options,
        )
    _check_report(report, cell, why)
    assert report.rows_skipped > 0, f"{why}: nothing was skipped: {report}"
    _check_stored(emulator, key, cell, report.id_prefix, why, once=False)
