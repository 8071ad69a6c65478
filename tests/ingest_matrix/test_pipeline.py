"""``ingest()`` against the emulator over loopback: exactly-once through retries and
failures, the stop rules, invalid rows, and what the report says, each checked on what the
emulator stored and counted.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import numpy as np
import pytest

from vecml_async import AsyncVecML, IngestError, InvalidInputError
from vecml_async.emulator import Emulator, FaultConfig

pytestmark = pytest.mark.integration

P = "pipe"
BATCHES = frozenset({"add_data_batch"})


def vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


async def _client(url: str, key: str, collection: str, dim: int | None, **kw: Any) -> AsyncVecML:
    client = AsyncVecML(key, base_url=url, rate_limit=None, **kw)
    await client.create_project(P, exist_ok=True)
    if dim is not None:
        await client.init(P, collection, vector_dim=dim)
    else:
        await client.init(P, collection, vector_type="sparse")
    return client


def _stored(emulator: Emulator, key: str, collection: str) -> dict[str, tuple[Any, Any]]:
    ids, matrix, attributes = emulator.collection_data(key, P, collection)
    return {row_id: (matrix[k], attributes[k]) for k, row_id in enumerate(ids)}


def _batch_requests(emulator: Emulator, key: str) -> int:
    return int(emulator.stats(key)["requests"].get("add_data_batch", 0))


def _exactly(
    emulator: Emulator, key: str, collection: str, ids: list[str], data: Any, attrs: Any = None
) -> None:
    """The collection holds exactly these rows, each written once, bit for bit."""
    stored = _stored(emulator, key, collection)
    assert sorted(stored) == sorted(ids)
    for k, row_id in enumerate(ids):
        assert stored[row_id][0].tobytes() == data[k].tobytes(), row_id
        assert stored[row_id][1] == (attrs[k] if attrs is not None else {}), row_id
    counters = emulator.collection_counters(key, P, collection)
    assert counters["overwrites"] == 0 and counters["id_writes"] == len(ids)


async def test_rows_land_once_in_bodies_under_the_byte_cap(
    emulators: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """Bodies never exceed max_bytes (the emulator refuses anything bigger), ids, vectors and
    attributes land once, and every accepted batch has its job."""
    emulator, url = emulators(max_body_bytes=50_000)
    ids = [f"r{i}" for i in range(3000)]
    attrs = [{"label": str(i % 3)} for i in range(3000)]
    data = vectors(3000)
    async with await _client(url, key, "c", 8) as client:
        report = await client.ingest(
            P, "c", data, ids=ids, attributes=attrs, max_bytes=50_000, wait=True
        )
    assert report.complete and report.rows_sent == report.rows_total == 3000
    assert report.batches_sent == _batch_requests(emulator, key) > 1
    assert len(report.job_ids) == report.batches_sent == report.jobs_finished
    _exactly(emulator, key, "c", ids, data, attrs)


async def test_generated_ids_are_the_prefix_and_the_row_index(
    emulators: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """Without ids, prefix + row index ids are generated before sending, and reported."""
    emulator, url = emulators()
    data = vectors(500, seed=1)
    async with await _client(url, key, "c", 8) as client:
        report = await client.ingest(P, "c", data, max_bytes=20_000)
    assert report.generated_ids and report.id_prefix is not None
    _exactly(emulator, key, "c", [report.generated_id(i) for i in range(500)], data)


async def test_the_same_array_ingested_again_upserts_its_rows(
    emulators: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """Generated ids derive from the array's content and the collection: a second ingest of
    the same array overwrites its rows (no duplicates); another array gets other ids."""
    emulator, url = emulators()
    data = vectors(300, seed=2)
    async with await _client(url, key, "c", 8) as client:
        first = await client.ingest(P, "c", data)
        second = await client.ingest(P, "c", data.copy())
        other = await client.ingest(P, "c", vectors(300, seed=3))
    assert first.id_prefix == second.id_prefix != other.id_prefix
    counters = emulator.collection_counters(key, P, "c")
    assert (counters["rows"], counters["overwrites"]) == (600, 300)


async def test_retries_resend_the_same_rows_and_are_counted(
    private_emulator: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """A 503, a rate-limit answer and drops before and after apply are retried with the same
    ids: each row is stored once, and the report counts the retries."""
    schedule = {2: "error_503", 4: "rate_limit", 6: "drop_before_apply", 8: "drop_after_apply"}
    emulator, url = private_emulator(faults=FaultConfig(schedule=schedule, endpoints=BATCHES))
    ids = [f"r{i}" for i in range(1000)]
    data = vectors(1000, seed=4)
    async with await _client(url, key, "c", 8) as client:
        report = await client.ingest(P, "c", data, ids=ids, max_bytes=10_000, concurrency=1)
    assert report.complete and report.batches_sent >= 8
    assert report.rate_limited == 1 and report.retries >= 3
    stored = _stored(emulator, key, "c")
    assert sorted(stored) == sorted(ids)
    # The batch applied before its connection dropped was written twice, as itself.
    assert emulator.collection_counters(key, P, "c")["overwrites"] > 0


async def test_a_batch_whose_retries_run_out_fails_with_its_ids_and_the_rest_lands(
    private_emulator: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """The failed batch is listed with its ids, absent from the server; others land."""
    faults = FaultConfig(schedule={2: "error_500", 3: "error_500"}, endpoints=BATCHES)
    emulator, url = private_emulator(faults=faults)
    ids = [f"r{i}" for i in range(1200)]
    async with await _client(url, key, "c", 8, max_retries=1) as client:
        with pytest.raises(IngestError) as info:
            await client.ingest(P, "c", vectors(1200), ids=ids, max_bytes=30_000, concurrency=1)
    report = info.value.report
    assert report.stopped is None and len(report.failures) == 1
    stored = set(_stored(emulator, key, "c"))
    failed = set(report.failed_ids)
    assert failed and failed.isdisjoint(stored) and failed | stored == set(ids)
    assert report.rows_total == report.rows_sent + report.failed_row_count
    assert type(info.value.__cause__).__name__ == "ServerError"


async def test_failed_rows_resend_exactly_what_did_not_land(
    private_emulator: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """``ingest(report.failed_rows())`` sends the failed rows with their attributes."""
    faults = FaultConfig(schedule={1: "error_500"}, endpoints=BATCHES)
    emulator, url = private_emulator(faults=faults)
    ids = [f"r{i}" for i in range(600)]
    attrs = [{"k": str(i)} for i in range(600)]
    data = vectors(600, seed=5)
    async with await _client(url, key, "c", 8, max_retries=0) as client:
        report = await client.ingest(
            P, "c", data, ids=ids, attributes=attrs, max_bytes=20_000, raise_on_error=False
        )
        assert report.failures
        again = await client.ingest(P, "c", report.failed_rows())
    assert again.complete and again.rows_sent == report.failed_row_count
    _exactly(emulator, key, "c", ids, data, attrs)


async def test_a_refusal_stops_the_ingest_and_every_row_is_accounted_for(
    emulators: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """A non-transient refusal (the collection deleted mid-ingest: 404) stops reading and
    sending; sent, failed and unread rows add up to the input."""
    _, url = emulators()
    n = 50_000
    ids = [f"r{i}" for i in range(n)]
    async with await _client(url, key, "c", 8) as client:
        deleted = False

        async def delete_after_two(state: Any) -> None:
            nonlocal deleted
            if state.batches_sent == 2 and not deleted:
                deleted = True
                await client.call("delete_project", project_name=P)

        with pytest.raises(IngestError) as info:
            await client.ingest(
                P,
                "c",
                vectors(n),
                ids=ids,
                max_bytes=20_000,
                concurrency=1,
                progress=delete_after_two,
            )
    report = info.value.report
    assert report.stopped is not None and "NotFoundError" in report.stopped
    assert report.rows_unread is not None and report.rows_unread > 0
    assert report.rows_total == n
    assert n == report.rows_sent + report.failed_row_count + report.rows_unread
    assert {f.kind for f in report.failures} <= {"send", "not_sent"}
    assert len(report.failed_rows()) == report.failed_row_count + report.rows_unread


async def test_consecutive_transient_failures_stop_the_ingest(
    private_emulator: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """A server that keeps failing stops the ingest after max_consecutive_failures batches."""
    faults = FaultConfig(error_500=1.0, endpoints=BATCHES)
    emulator, url = private_emulator(faults=faults)
    async with await _client(url, key, "c", 8, max_retries=0) as client:
        with pytest.raises(IngestError) as info:
            await client.ingest(
                P, "c", vectors(5000), max_bytes=20_000, concurrency=1, max_consecutive_failures=3
            )
    report = info.value.report
    assert report.stopped == "3 batches in a row failed"
    assert _batch_requests(emulator, key) == 3
    assert report.rows_sent == 0
    assert report.failed_row_count + (report.rows_unread or 0) == report.rows_total == 5000


async def test_an_invalid_row_before_anything_was_sent_refuses_the_input(
    emulators: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """A bad row found before any batch left raises InvalidInputError; nothing is sent."""
    emulator, url = emulators()
    rows = [[1.0, 2.0]] * 10 + [[1.0, float("nan")]] + [[1.0, 2.0]] * 10
    array = vectors(20_000)
    array[19_999, 3] = np.inf
    async with await _client(url, key, "c", 2) as client:
        with pytest.raises(InvalidInputError, match="NaN") as info:
            await client.ingest(P, "c", rows, ids=[f"r{i}" for i in range(21)])
        assert info.value.index == 10 and info.value.row_id == "r10"
        with pytest.raises(InvalidInputError) as deep:
            await client.ingest(P, "c", array, vector_dim=8, max_bytes=20_000)
        assert deep.value.index == 19_999
    assert _batch_requests(emulator, key) == 0


async def test_an_invalid_row_mid_stream_keeps_the_rows_before_it(
    emulators: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """A bad row deep in a stream: rows before it land, the report names it, and the rows
    after it are unread (the stream's end is unknown)."""
    emulator, url = emulators()

    def rows() -> Iterator[tuple[str, list[float]]]:
        for i in range(40_000):
            yield f"r{i}", [1.0, float("nan") if i == 30_000 else 2.0]

    async with await _client(url, key, "c", 2) as client:
        with pytest.raises(IngestError) as info:
            await client.ingest(P, "c", rows(), max_bytes=100_000)
    report = info.value.report
    assert report.stopped == "invalid input"
    assert set(_stored(emulator, key, "c")) == {f"r{i}" for i in range(30_000)}
    (failure,) = report.failures
    assert failure.kind == "invalid" and failure.row_ids == ["r30000"]
    assert report.stopped_at == 30_001 and report.rows_unread is None


async def test_skip_mode_reports_each_invalid_row_and_sends_the_others(
    emulators: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """on_invalid='skip' reports each bad row and sends everything else."""
    emulator, url = emulators()
    rows = [(f"r{i}", [1.0, 2.0] if i % 100 != 50 else [1.0]) for i in range(1000)]
    async with await _client(url, key, "c", 2) as client:
        report = await client.ingest(P, "c", rows, on_invalid="skip", raise_on_error=False)
    bad = {f"r{i}" for i in range(50, 1000, 100)}
    assert set(report.failed_ids) == bad
    assert set(_stored(emulator, key, "c")) == {r[0] for r in rows} - bad
    assert report.rows_total == 1000 == report.rows_sent + report.failed_row_count


async def test_rows_as_tuples_dicts_and_from_async_iterators(
    emulators: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """Rows as tuples, dicts, and from async iterators land with their attributes."""
    emulator, url = emulators()

    async def agen() -> AsyncIterator[dict[str, Any]]:
        for i in range(50):
            yield {"id": f"a{i}", "vector": [float(i), 0.0], "attributes": {"n": i}}

    async with await _client(url, key, "c", 2) as client:
        await client.ingest(P, "c", agen())
        await client.ingest(P, "c", iter([("t0", [1.0, 2.0], {"x": "y"}), ("t1", [3.0, 4.0])]))
    stored = _stored(emulator, key, "c")
    assert len(stored) == 52
    assert stored["t0"][1] == {"x": "y"} and stored["t1"][1] == {}
    assert stored["a3"][1] == {"n": "3"} and stored["a3"][0].tolist() == [3.0, 0.0]


async def test_streams_are_checked_for_duplicate_ids_only_when_asked(
    emulators: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """An iterator's ids are not kept in a set by default (memory stays bounded); asked, a
    repeated id is refused with its index; in-memory inputs are always checked."""
    emulator, url = emulators()
    async with await _client(url, key, "c", 1) as client:
        report = await client.ingest(P, "c", iter([("a", [1.0]), ("a", [2.0])]))
        assert report.rows_sent == 2
        rows = [(f"r{i % 30_000}", [1.0]) for i in range(31_000)]
        with pytest.raises(IngestError) as info:
            await client.ingest(P, "c", iter(rows), max_bytes=100_000, check_duplicate_ids=True)
        with pytest.raises(InvalidInputError, match="duplicate id") as first:
            await client.ingest(P, "c", [("b", [1.0]), ("b", [2.0])])
    assert emulator.collection_counters(key, P, "c")["overwrites"] >= 1
    (failure,) = info.value.report.failures
    assert failure.row_ids == ["r0"] and failure.first_row == 30_000
    assert first.value.index == 1


async def test_sparse_rows_given_as_index_maps(
    emulators: Callable[..., tuple[Emulator, str]], key: str
) -> None:
    """{index: value} items of a sparse ingest are vectors, stored sorted by index."""
    emulator, url = emulators()
    async with await _client(url, key, "c", None) as client:
        report = await client.ingest(P, "c", [{3: 0.5, 1: 2.0}, {0: 1.0}], ids=["a", "b"])
    assert report.complete
    ids, matrix, _ = emulator.collection_data(key, P, "c")
    row = matrix[ids.index("a")]
    assert row.indices.tolist() == [1, 3] and row.data.tolist() == [2.0, 0.5]


async def test_a_checkpoint_of_a_stream_refuses_another_stream(
    emulators: Callable[..., tuple[Emulator, str]], key: str, tmp_path: Any
) -> None:
    """A stream has no fingerprint to check up front: the first and last rows of each
    recorded batch are compared with the stream as it is skipped, and another stream is
    refused, naming the checkpoint."""
    emulator, url = emulators()
    checkpoint = tmp_path / "stream.ckpt"

    def rows(seed: int) -> Iterator[list[float]]:
        yield from vectors(2000, seed=seed).tolist()

    async with await _client(url, key, "c", 8) as client:
        first = await client.ingest(
            P,
            "c",
            rows(1),
            max_rows=100,
            concurrency=1,
            checkpoint=checkpoint,
            progress=lambda state: state.batches_sent < 3,
        )
        with pytest.raises(InvalidInputError) as info:
            await client.ingest(P, "c", rows(2), max_rows=100, checkpoint=checkpoint)
        assert info.value.field == "checkpoint"
        resumed = await client.ingest(P, "c", rows(1), max_rows=100, checkpoint=checkpoint)
    assert resumed.complete and resumed.rows_skipped == first.rows_sent
    assert len(_stored(emulator, key, "c")) == 2000
