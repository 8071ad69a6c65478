"""``ingest()`` fast by default, against the emulator over loopback: bodies that grow under
a call limit (and stay fixed when asked), the memory bound, job polls that overlap sending,
an unknown lower server limit, and bodies the server refuses as too large. Every claim that
rows landed is checked on what the emulator stored; nothing here times anything."""

from __future__ import annotations

import gc
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from vecml_async import AsyncVecML, IngestError, IngestProgress, RateLimitPolicy
from vecml_async._hooks import RequestEvent
from vecml_async._ingest.defaults import HELD_SHARE
from vecml_async._ingest.encoding import EncodedRows
from vecml_async._ingest.sizing import INITIAL_BYTES
from vecml_async.emulator import Emulator
from vecml_async.errors import RequestTooLargeError

pytestmark = pytest.mark.integration

P = "speed"
KIB, MIB = 1 << 10, 1 << 20


def rows(n: int, dim: int = 32) -> tuple[Any, list[str]]:
    data = np.random.default_rng(n).standard_normal((n, dim)).astype(np.float32)
    return data, [f"r{i}" for i in range(n)]


class Requests:
    """An ``on_request`` hook: the endpoint and body size of every attempt, in order."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, int]] = []

    def __call__(self, event: RequestEvent) -> None:
        self.seen.append((event.endpoint, event.body_bytes))

    def bodies(self) -> list[int]:
        return [size for endpoint, size in self.seen if endpoint == "add_data_batch"]


async def _client(url: str, key: str, collection: str, dim: int, **options: Any) -> AsyncVecML:
    client = AsyncVecML(key, base_url=url, **options)
    await client.create_project(P, exist_ok=True)
    await client.init(P, collection, vector_dim=dim)
    return client


def _landed_once(emulator: Emulator, key: str, collection: str, ids: list[str]) -> None:
    """Every row is stored, each written once (a refused body wrote nothing)."""
    assert sorted(emulator.collection_ids(key, P, collection)) == sorted(ids)
    counters = emulator.collection_counters(key, P, collection)
    assert counters["overwrites"] == 0 and counters["id_writes"] == len(ids)


async def test_bodies_grow_while_calls_wait_for_the_rate_limiter(
    emulators: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """Under a client limit of 4 calls/s, 1 MiB bodies wait for their tokens: the next ones
    are several times bigger, and every row lands once."""
    emulator, url = emulators()
    data, ids = rows(60_000)
    hook = Requests()
    async with await _client(
        url, key, "grow", 32, rate_limit=RateLimitPolicy(4.0), on_request=hook
    ) as client:
        report = await client.ingest(P, "grow", data, ids=ids)
    assert report.complete
    assert report.target_history[0] == INITIAL_BYTES and max(report.target_history) > 2 * MIB
    assert max(hook.bodies()) > 2 * MIB
    _landed_once(emulator, key, "grow", ids)


async def test_a_fixed_size_stays_fixed_under_the_same_limit(
    emulators: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """batch_bytes= cuts every body at that size, however long the calls wait: each body is
    under it and all but the last fill it to within a row."""
    emulator, url = emulators()
    data, ids = rows(8_000)
    hook = Requests()
    async with await _client(
        url, key, "fixed", 32, rate_limit=RateLimitPolicy(20.0), on_request=hook
    ) as client:
        report = await client.ingest(P, "fixed", data, ids=ids, batch_bytes=256 * KIB)
    bodies = hook.bodies()
    assert report.target_history == [256 * KIB]
    assert len(bodies) == report.batches_sent > 4
    assert all(size <= 256 * KIB for size in bodies)
    row = 1 * KIB  # one encoded row of dim 32 with its id and commas is well under this
    assert all(size > 256 * KIB - row for size in sorted(bodies)[1:])
    _landed_once(emulator, key, "fixed", ids)


async def test_the_memory_bound_holds_for_the_encoded_rows_in_flight(
    emulators: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """With max_memory=4 MiB the pipeline holds at most half of it in encoded rows (its own
    accounting), and no more encoded rows than that are alive at any batch (a sender waiting
    for its next turn keeps nothing of the batch it sent)."""
    emulator, url = emulators()
    data, ids = rows(40_000)
    budget = 4 * MIB
    held = int(budget * HELD_SHARE)
    chunk = 128 * KIB
    alive: list[int] = []

    def count(state: IngestProgress) -> None:
        chunks = [o for o in gc.get_objects() if isinstance(o, EncodedRows)]
        alive.append(sum(c.nbytes for c in chunks))

    async with await _client(url, key, "mem", 32, rate_limit=None) as client:
        report = await client.ingest(
            P, "mem", data, ids=ids, max_memory=budget, chunk_bytes=chunk, progress=count
        )
    assert report.complete and report.batches_sent > 10
    assert 0 < report.peak_memory <= held
    assert alive and max(alive) <= held + 2 * chunk, (max(alive), held)
    _landed_once(emulator, key, "mem", ids)


async def test_upload_jobs_are_polled_while_batches_still_go_out(
    private_emulator: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """wait=True: jobs (which take a while on this server) are polled before the last batch
    is sent, the progress shows the waiting phase with its job counts, and every job is seen
    finished."""
    emulator, url = private_emulator(upload_delay=0.05)
    data, ids = rows(6_000)
    hook = Requests()
    states: list[IngestProgress] = []
    async with await _client(url, key, "wait", 32, rate_limit=None, on_request=hook) as client:
        report = await client.ingest(
            P,
            "wait",
            data,
            ids=ids,
            batch_bytes=64 * KIB,
            concurrency=2,
            wait=True,
            progress=states.append,
        )
    order = [endpoint for endpoint, _ in hook.seen]
    last_send = len(order) - 1 - order[::-1].index("add_data_batch")
    assert "get_upload_data_status" in order[:last_send]
    assert report.complete and report.jobs_finished == report.batches_sent > 10
    final = states[-1]
    assert final.waiting and final.jobs_finished == final.jobs_total == report.batches_sent
    assert any(not s.waiting and s.jobs_finished for s in states)  # seen while sending
    assert report.waited_after_send >= 0.0
    _landed_once(emulator, key, "wait", ids)


async def test_an_unknown_lower_server_limit_converges_with_every_row_landed(
    private_emulator: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """The server allows 2 calls/s, the client's default ceiling is 10: refusals slow the
    client down and make its bodies bigger; they are backpressure, not failures, and every
    row lands once."""
    emulator, url = private_emulator(rate_limit=2.0)
    data, ids = rows(40_000)
    async with await _client(url, key, "slow", 32) as client:
        report = await client.ingest(P, "slow", data, ids=ids)
    assert report.complete and not report.failures
    assert report.rate_limited > 0
    assert emulator.stats(key)["rejections"]["rate_limited"] == report.rate_limited
    assert max(report.target_history) > INITIAL_BYTES
    _landed_once(emulator, key, "slow", ids)


async def test_a_body_refused_as_too_large_is_cut_smaller_and_sent_again(
    private_emulator: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """The server caps bodies at 300 kB, under the client's first size: the refused bodies
    are cut again smaller; nothing fails, every row lands once."""
    emulator, url = private_emulator(max_body_bytes=300_000)
    data, ids = rows(12_000)
    async with await _client(url, key, "cap", 32, rate_limit=None) as client:
        report = await client.ingest(P, "cap", data, ids=ids)
    assert report.complete and not report.failures
    # Refused before its key is read: counted for the server, not for the key.
    assert emulator.stats()["rejections"]["too_large"] >= 1
    assert report.target_history[-1] <= 300_000
    _landed_once(emulator, key, "cap", ids)


async def test_a_fixed_size_the_server_refuses_stops_the_ingest(
    private_emulator: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """batch_bytes= over the server's cap is the caller's choice: the refusal stops the
    ingest, and every row is accounted for (failed or not sent)."""
    _, url = private_emulator(max_body_bytes=300_000)
    data, ids = rows(3_000)
    async with await _client(url, key, "capfixed", 32, rate_limit=None) as client:
        with pytest.raises(IngestError) as info:
            await client.ingest(P, "capfixed", data, ids=ids, batch_bytes=400_000)
    report = info.value.report
    assert isinstance(report.failures[0].exception, RequestTooLargeError)
    assert report.rows_sent + report.failed_row_count + (report.rows_unread or 0) == 3_000
