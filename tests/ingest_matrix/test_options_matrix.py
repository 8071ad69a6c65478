"""The pipeline's sizing options crossed with each other and with the ways calls are limited:
``max_memory`` x ``batch_bytes`` (adaptive or fixed) x ``concurrency`` x the client's rate
limit x ``wait`` x a server that limits calls below the client (so the client is refused) or
not at all. Every combination ends within a bound (no hang: the feed, the senders, the turns
and the job watcher always make progress) and stores every row exactly once, as the
emulator's own data and counters show."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from typing import Any

import anyio
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecml_async import AsyncVecML
from vecml_async.emulator import Emulator, EmulatorSettings, FaultConfig, run_in_thread

pytestmark = pytest.mark.integration

MIB = 1 << 20
#: Seconds one ingest of these sizes may take at the slowest rates drawn (about 3 s).
BOUND = 60.0
_KEYS = itertools.count()


@pytest.fixture(scope="module", params=[None, 25.0], ids=["server-unlimited", "server-25/s"])
def served(request: pytest.FixtureRequest) -> Iterator[tuple[Emulator, str]]:
    """One emulator per server limit, with upload jobs that take a moment."""
    settings_ = EmulatorSettings(
        rate_limit=request.param, upload_delay=0.02, faults=FaultConfig(latency=0.002)
    )
    emulator = Emulator(settings_)
    with run_in_thread(emulator) as url:
        yield emulator, url


options = st.fixed_dictionaries(
    {
        "max_memory": st.sampled_from([1 * MIB, 2 * MIB, 16 * MIB]),
        "batch_bytes": st.sampled_from([None, None, 24_000, 90_000]),
        "concurrency": st.integers(1, 5),
        "wait": st.booleans(),
    }
)


async def _ingest_once(url: str, key: str, rows: int, rate: float | None, **opts: Any) -> None:
    data = np.random.default_rng(rows).standard_normal((rows, 16)).astype(np.float32)
    ids = [f"r{i}" for i in range(rows)]
    async with AsyncVecML(key, base_url=url, rate_limit=rate) as client:
        await client.create_project("opts", exist_ok=True)
        await client.init("opts", "c", vector_dim=16)
        with anyio.fail_after(BOUND):
            report = await client.ingest("opts", "c", data, ids=ids, **opts)
            if not opts["wait"]:
                for job_id in report.job_ids:
                    await client.upload_job(job_id).wait()
    assert report.complete and report.rows_sent == rows


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.integers(300, 20_000),
    rate=st.sampled_from([None, 30.0, 100.0]),
    opts=options,
)
def test_every_combination_ends_and_stores_each_row_once(
    served: tuple[Emulator, str], rows: int, rate: float | None, opts: dict[str, Any]
) -> None:
    emulator, url = served
    key = f"vml_opts-{next(_KEYS)}"
    anyio.run(lambda: _ingest_once(url, key, rows, rate, **opts))
    stored = emulator.collection_ids(key, "opts", "c")
    assert sorted(stored) == sorted(f"r{i}" for i in range(rows))
    counters = emulator.collection_counters(key, "opts", "c")
    assert counters["id_writes"] == rows and counters["overwrites"] == 0
