"""A Ray Data job writes 200k rows from Parquet files through VecMLDatasink.

``ray.init(num_cpus=4)`` locally; the emulator is a process of its own (so that Ray's driver
threads do not delay its arrival stamps), limits the key to 20 calls/s, and saves its data
to a directory when it stops, for inspection. Four write tasks share one ``RayBudget(20)``:
the emulator's busiest second holds at most 20 calls and refuses none, every id is stored
exactly once, and the merged report accounts for every row. A write task that kills its own
worker process mid-block is re-run by Ray, and still every row is stored once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vecml_async import AsyncVecML
from vecml_async.emulator import Emulator, EmulatorSettings, inspect_remote, spawn

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    # Ray's own modules warn about their deprecations on import and at shutdown.
    pytest.mark.filterwarnings("ignore::DeprecationWarning"),
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
]

ray = pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra)")
pq = pytest.importorskip("pyarrow.parquet")

from vecml_async.ray import RayBudget, VecMLDatasink  # noqa: E402

KEY = "vml_ray-test-key-77c2d90b13"
P = "rayjob"
R = 20
DIM = 8
FILES = 8
ROWS_PER_FILE = 25_000
ROWS = FILES * ROWS_PER_FILE
ROWS_PER_CALL = 2_000


class DieOnce:
    """A budget that kills its own worker process at its ``after``-th acquire, the first
    time any task gets there (a marker file says it happened), then passes through."""

    def __init__(self, inner: Any, after: int, marker: str) -> None:
        self.inner, self.after, self.marker = inner, after, marker
        self.count = 0

    async def acquire(self) -> None:
        self.count += 1
        if self.count == self.after and self._first_to_get_here():
            os._exit(17)  # the worker dies mid-block; Ray re-runs the task
        await self.inner.acquire()

    def _first_to_get_here(self) -> bool:
        try:
            Path(self.marker).touch(exist_ok=False)
        except FileExistsError:
            return False
        return True

    def on_rate_limited(self) -> None:
        self.inner.on_rate_limited()

    def on_success(self) -> None:
        self.inner.on_success()

    @property
    def current_rate(self) -> float | None:
        return self.inner.current_rate


@pytest.fixture(scope="module")
def parquet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 Parquet files of 25k rows: id, vector (list of 8 floats), label, row-in-file."""
    import pyarrow as pa

    root = tmp_path_factory.mktemp("parquet")
    rng = np.random.default_rng(3)
    for f in range(FILES):
        values = rng.random(ROWS_PER_FILE * DIM, dtype=np.float32)
        offsets = np.arange(0, (ROWS_PER_FILE + 1) * DIM, DIM, dtype=np.int32)
        start = f * ROWS_PER_FILE
        table = pa.table(
            {
                "id": [f"r{i}" for i in range(start, start + ROWS_PER_FILE)],
                "vector": pa.ListArray.from_arrays(pa.array(offsets), pa.array(values)),
                "label": [("a", "b", "c")[i % 3] for i in range(ROWS_PER_FILE)],
                "row": np.arange(ROWS_PER_FILE),
            }
        )
        pq.write_table(table, root / f"part-{f}.parquet", row_group_size=ROWS_PER_FILE)
    return root


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    ray.init(
        num_cpus=4,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": {"RAY_USAGE_STATS_ENABLED": "0"}},
    )
    # DieOnce lives in this test module, which Ray's workers cannot import: send it by value.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        yield
    finally:
        ray.shutdown()


class SpawnedEmulator:
    """An emulator process (``spawn``): its own core and GIL, so that its arrival stamps are
    not delayed by Ray's driver threads. Counters come over HTTP while it runs; the stored
    rows from its ``data_dir``, saved when it stops."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self._stack = contextlib.ExitStack()
        self.url = self._stack.enter_context(spawn(rate_limit=R, data_dir=data_dir))

    def stats(self) -> dict[str, Any]:
        return inspect_remote(self.url, KEY)

    def stop(self) -> Emulator:
        """Stop the process; an Emulator holding what it stored, for inspection."""
        self._stack.close()
        return Emulator(EmulatorSettings(data_dir=self.data_dir))


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[SpawnedEmulator]:
    spawned = SpawnedEmulator(tmp_path / "emulator-data")
    try:
        yield spawned
    finally:
        spawned.stop()


def read_parquet(root: Path, **options: Any) -> Any:
    """The files as a dataset of one block per file, so that four write tasks run at once
    (Ray may read small files into a single block)."""
    return ray.data.read_parquet(str(root), **options).repartition(FILES)


def _setup(url: str, collection: str, budget: RayBudget) -> None:
    async def main() -> None:
        async with AsyncVecML(KEY, base_url=url, rate_limit=budget) as client:
            await client.create_project(P)
            await client.init(P, collection, vector_dim=DIM)

    asyncio.run(main())


def test_ray_job_stores_every_id_once_under_one_budget(ray_cluster, parquet_dir, emulator):
    """4 write tasks under RayBudget(20): at most 20 calls in any second at the emulator,
    none refused, every id stored once with its attributes, one complete merged report."""
    url = emulator.url
    # Four workers and Ray's own processes share 2 cores: a call may start up to ~50 ms after
    # its slot when the machine is busy. The margin leaves room for 100 ms (R stays 20).
    budget = RayBudget(R, name=f"budget-{uuid.uuid4().hex[:8]}", margin=0.1)
    _setup(url, "byid", budget)
    sink = VecMLDatasink(
        P,
        "byid",
        api_key=KEY,
        base_url=url,
        budget=budget,
        id_column="id",
        attribute_columns=("label",),
        max_rows=ROWS_PER_CALL,
    )
    read_parquet(parquet_dir).write_datasink(sink, concurrency=4)
    stats = emulator.stats()
    report = sink.report
    figures = {
        "emulator_max_in_1s": stats["max_requests_in_1s"],
        "refusals": stats["rejections"]["rate_limited"],
        "batches": report.batches_sent if report else None,
        "seconds": round(report.elapsed, 1) if report else None,
    }
    print(f"\nRAY {figures}")
    assert figures["emulator_max_in_1s"] <= R, figures
    assert figures["refusals"] == 0, figures
    ids, _, attributes = emulator.stop().collection_data(KEY, P, "byid")
    assert len(ids) == ROWS and set(ids) == {f"r{i}" for i in range(ROWS)}
    by_id = dict(zip(ids, attributes))
    assert by_id["r4"] == {"label": "b"} and by_id[f"r{ROWS - 1}"]["label"] in "abc"
    assert report is not None and report.complete, report
    assert report.rows_sent == report.rows_total == ROWS
    # Each block is cut into calls of at most ROWS_PER_CALL rows.
    assert len(report.job_ids) == report.batches_sent >= ROWS // ROWS_PER_CALL
    assert report.rate_limited == 0 and not report.failed_ids


def test_write_task_killed_mid_block_is_rerun_without_duplicates(
    ray_cluster, parquet_dir, emulator, tmp_path
):
    """A task whose worker dies after a few batches is re-run by Ray: ids derived from
    (path, row) are the same on the re-run, so the server replaces the rows it had."""
    url = emulator.url
    budget = RayBudget(R, name=f"budget-{uuid.uuid4().hex[:8]}")
    _setup(url, "derived", budget)
    marker = tmp_path / "died"
    sink = VecMLDatasink(
        P,
        "derived",
        api_key=KEY,
        base_url=url,
        budget=DieOnce(budget, after=8, marker=str(marker)),
        id_from=("path", "row"),
        max_rows=ROWS_PER_CALL,
    )
    read_parquet(parquet_dir, include_paths=True).write_datasink(sink, concurrency=4)
    assert marker.exists()  # a worker did die
    stored = emulator.stop()
    counters = stored.collection_counters(KEY, P, "derived")
    ids = stored.collection_ids(KEY, P, "derived")
    print(f"\nRAY-KILL {counters}")
    assert len(ids) == len(set(ids)) == ROWS
    # The dead attempt's first batches had landed: the re-run replaced them.
    assert counters["overwrites"] >= ROWS_PER_CALL
    report = sink.report
    assert report is not None and report.complete
    assert report.rows_sent == ROWS  # the dead attempt's report is gone; the re-run's counts


def test_sink_refuses_to_start_without_stable_ids():
    """No id_column and no id_from: a clear error before any task runs."""
    from vecml_async import InvalidInputError

    with pytest.raises(InvalidInputError, match="stay the same when Ray re-runs"):
        VecMLDatasink(P, "c", api_key=KEY, base_url="http://127.0.0.1:1/api")
