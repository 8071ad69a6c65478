"""ingest(): batching, retries without duplicates, per-row failure accounting, stop rules,
invalid rows, progress, backpressure and cancellation, against a respx-mocked server."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import anyio
import httpx
import numpy as np
import orjson
import pytest
import respx

from vecml_async import AsyncVecML, IngestError, InvalidInputError
from vecml_async._ingest.report import IngestReport

OK = {"success": True}


class FakeServer:
    """Records every add_data_batch body; ``fault(n)`` may answer request n instead."""

    def __init__(self, fault: Callable[[int], httpx.Response | Exception | None] | None = None):
        self.bodies: list[dict[str, Any]] = []
        self.sizes: list[int] = []
        self.requests = 0
        self.fault = fault
        self.job_status: Callable[[str], str] = lambda job_id: "finished"

    def add_data_batch(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.fault is not None:
            outcome = self.fault(self.requests)
            if isinstance(outcome, Exception):
                raise outcome
            if outcome is not None:
                return outcome
        body = orjson.loads(request.content)
        assert int(request.headers["content-length"]) == len(request.content)
        self.bodies.append(body)
        self.sizes.append(len(request.content))
        return httpx.Response(200, json={"success": True, "job_id": f"job-{len(self.bodies)}"})

    def status(self, request: httpx.Request) -> httpx.Response:
        job_id = orjson.loads(request.content)["job_id"]
        status = self.job_status(job_id)
        body: dict[str, Any] = {"success": True, "status": status}
        if status == "failed":
            body["error"] = "disk full"
        return httpx.Response(200, json=body)

    @property
    def ids(self) -> list[str]:
        return [i for body in self.bodies for i in body["string_ids"]]


@pytest.fixture
def server(base_url: str) -> Iterator[FakeServer]:
    fake = FakeServer()
    with respx.mock(base_url=base_url, assert_all_called=False) as mock:
        mock.post("/add_data_batch").mock(side_effect=lambda r: fake.add_data_batch(r))
        mock.post("/get_upload_data_status").mock(side_effect=lambda r: fake.status(r))
        mock.post("/init").mock(return_value=httpx.Response(200, json=OK))
        yield fake


def vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


async def test_numpy_ingest_sends_every_row_once_in_order_under_the_byte_cap(
    server: FakeServer, client: AsyncVecML
) -> None:
    """Rows are cut by bytes, each body stays under max_bytes, ids and order survive."""
    ids = [f"r{i}" for i in range(3000)]
    attrs = [{"label": str(i % 3)} for i in range(3000)]
    report = await client.ingest(
        "p", "c", vectors(3000), ids=ids, attributes=attrs, max_bytes=50_000
    )
    assert report.complete and report.rows_sent == report.rows_total == 3000
    assert max(server.sizes) <= 50_000 and len(server.bodies) == report.batches_sent > 1
    assert sorted(server.ids, key=lambda s: int(s[1:])) == ids
    assert len(report.job_ids) == report.batches_sent
    sent = {i: a for b in server.bodies for i, a in zip(b["string_ids"], b["attributes"])}
    assert sent["r5"] == {"label": "2"}


async def test_generated_ids_are_unique_and_reported(
    server: FakeServer, client: AsyncVecML
) -> None:
    """Without ids, the client generates prefix+index ids before sending and reports them."""
    report = await client.ingest("p", "c", vectors(500), max_bytes=20_000)
    assert report.generated_ids
    assert sorted(server.ids) == sorted(report.generated_id(i) for i in range(500))


async def test_retries_resend_the_same_ids_and_report_counts(
    server: FakeServer, client: AsyncVecML
) -> None:
    """A 503 and a rate-limit answer are retried with the same body; counts are reported."""
    answers = {
        2: httpx.Response(503, text="busy"),
        4: httpx.Response(400, text="Request limit reached, please try again later"),
    }
    server.fault = answers.get
    ids = [f"r{i}" for i in range(1000)]
    report = await client.ingest("p", "c", vectors(1000), ids=ids, max_bytes=30_000, concurrency=1)
    assert report.complete
    assert report.retries == 2 and report.rate_limited == 1
    assert sorted(server.ids) == sorted(ids)  # each row exactly once on the server


async def test_exhausted_retries_fail_the_batch_with_its_ids_and_the_rest_goes_on(
    server: FakeServer, api_key: str, base_url: str
) -> None:
    """A batch whose retries run out is listed with its ids; other batches still land."""
    failing = {2, 3}  # first attempt and its one retry of the second batch
    server.fault = lambda n: httpx.Response(500, text="boom") if n in failing else None
    async with AsyncVecML(api_key, base_url=base_url, max_retries=1, rate_limit=None) as client:
        ids = [f"r{i}" for i in range(1200)]
        with pytest.raises(IngestError) as info:
            await client.ingest("p", "c", vectors(1200), ids=ids, max_bytes=30_000, concurrency=1)
    report = info.value.report
    assert report.stopped is None and len(report.failures) == 1
    failed = set(report.failed_ids)
    assert failed and failed.isdisjoint(server.ids)
    assert failed | set(server.ids) == set(ids)
    assert report.rows_total == report.rows_sent + report.failed_row_count
    assert "ServerError" in repr(info.value.__cause__.__class__)


async def test_failed_rows_feed_back_into_ingest(
    server: FakeServer, api_key: str, base_url: str
) -> None:
    """report.failed_rows() re-sends exactly the rows that did not land."""
    server.fault = lambda n: httpx.Response(502) if n == 1 else None
    async with AsyncVecML(api_key, base_url=base_url, max_retries=0, rate_limit=None) as client:
        ids = [f"r{i}" for i in range(600)]
        attrs = [{"k": str(i)} for i in range(600)]
        report = await client.ingest(
            "p",
            "c",
            vectors(600),
            ids=ids,
            attributes=attrs,
            max_bytes=20_000,
            concurrency=1,
            raise_on_error=False,
        )
        assert report.failures
        again = await client.ingest("p", "c", report.failed_rows())
    assert again.complete and again.rows_sent == report.failed_row_count
    assert sorted(server.ids) == sorted(ids)
    by_id = {i: a for b in server.bodies for i, a in zip(b["string_ids"], b["attributes"])}
    assert by_id["r1"] == {"k": "1"}


async def test_a_refusal_stops_the_ingest_and_accounts_for_every_row(
    server: FakeServer, client: AsyncVecML
) -> None:
    """A non-transient refusal (404 collection) stops reading; unsent batches are reported."""
    server.fault = lambda n: (
        httpx.Response(404, json={"success": False, "error_message": "Collection c does not exist"})
        if n >= 3
        else None
    )
    ids = [f"r{i}" for i in range(50_000)]
    with pytest.raises(IngestError) as info:
        await client.ingest("p", "c", vectors(50_000), ids=ids, max_bytes=20_000, concurrency=2)
    report = info.value.report
    assert report.stopped is not None and "NotFoundError" in report.stopped
    assert report.stopped_at is not None and report.rows_unread == 50_000 - report.stopped_at
    assert report.rows_total == report.rows_sent + report.failed_row_count + report.rows_unread
    assert set(report.failed_ids).isdisjoint(server.ids)
    assert {f.kind for f in report.failures} <= {"send", "not_sent"}


async def test_consecutive_transient_failures_stop_the_ingest(
    server: FakeServer, api_key: str, base_url: str
) -> None:
    """A server that keeps failing stops the ingest after max_consecutive_failures batches."""
    server.fault = lambda n: httpx.Response(500)
    async with AsyncVecML(api_key, base_url=base_url, max_retries=0, rate_limit=None) as client:
        with pytest.raises(IngestError) as info:
            await client.ingest(
                "p",
                "c",
                vectors(5000),
                max_bytes=20_000,
                concurrency=1,
                max_consecutive_failures=3,
            )
    report = info.value.report
    assert report.stopped == "3 batches in a row failed"
    assert server.requests == 3
    assert report.rows_sent == 0 and report.failed_row_count == report.rows_total


async def test_invalid_first_chunk_raises_before_anything_is_sent(
    server: FakeServer, client: AsyncVecML
) -> None:
    """A bad row found before any batch left raises InvalidInputError; nothing is sent."""
    rows = [[1.0, 2.0]] * 10 + [[1.0, float("nan")]] + [[1.0, 2.0]] * 10
    with pytest.raises(InvalidInputError, match="NaN") as info:
        await client.ingest("p", "c", rows, ids=[f"r{i}" for i in range(21)])
    assert info.value.index == 10 and info.value.row_id == "r10"
    assert server.requests == 0


async def test_numpy_input_is_checked_whole_before_sending(
    server: FakeServer, client: AsyncVecML
) -> None:
    """A NaN anywhere in an in-memory array is refused before the first request."""
    data = vectors(20_000)
    data[19_999, 3] = np.inf
    with pytest.raises(InvalidInputError) as info:
        await client.ingest("p", "c", data, max_bytes=20_000)
    assert info.value.index == 19_999 and server.requests == 0


async def test_invalid_row_mid_stream_keeps_the_rows_before_it(
    server: FakeServer, client: AsyncVecML
) -> None:
    """A bad row deep in a stream: rows before it are sent, the report names the bad row."""

    def rows() -> Iterator[tuple[str, list[float]]]:
        for i in range(40_000):
            yield f"r{i}", [1.0, float("nan") if i == 30_000 else 2.0]

    with pytest.raises(IngestError) as info:
        await client.ingest("p", "c", rows(), max_bytes=100_000)
    report = info.value.report
    assert report.stopped == "invalid input"
    assert set(server.ids) == {f"r{i}" for i in range(30_000)}
    (failure,) = report.failures
    assert failure.kind == "invalid" and failure.row_ids == ["r30000"]


async def test_skip_mode_skips_invalid_rows_and_sends_the_others(
    server: FakeServer, client: AsyncVecML
) -> None:
    """on_invalid='skip' reports each bad row and sends everything else."""
    rows = [(f"r{i}", [1.0, 2.0] if i % 100 != 50 else [1.0]) for i in range(1000)]
    report = await client.ingest("p", "c", rows, on_invalid="skip", raise_on_error=False)
    assert sorted(report.failed_ids) == sorted(f"r{i}" for i in range(50, 1000, 100))
    assert len(server.ids) == 1000 - 10 and report.rows_total == 1000


async def test_wait_true_awaits_jobs_and_counts_failed_jobs(
    server: FakeServer, client: AsyncVecML
) -> None:
    """wait=True polls every upload job; a failed job's rows become failures with ids."""
    server.job_status = lambda job_id: "failed" if job_id == "job-2" else "finished"
    ids = [f"r{i}" for i in range(900)]
    with pytest.raises(IngestError) as info:
        await client.ingest("p", "c", vectors(900), ids=ids, max_bytes=20_000, wait=True)
    report = info.value.report
    (failure,) = report.failures
    assert failure.kind == "job" and failure.job_id == "job-2" and "disk full" in failure.error
    assert failure.row_ids == server.bodies[1]["string_ids"]
    assert report.jobs_finished == report.batches_sent - 1
    assert report.rows_sent + report.failed_row_count == 900


async def test_progress_callback_sees_each_batch_and_can_stop(
    server: FakeServer, client: AsyncVecML
) -> None:
    """progress= is called per batch; returning False stops without raising."""
    seen: list[int] = []

    async def progress(state: Any) -> bool:
        seen.append(state.rows_sent)
        return len(seen) < 3

    report = await client.ingest(
        "p", "c", vectors(5000), max_bytes=20_000, concurrency=1, progress=progress
    )
    assert report.stopped == "stopped by the progress callback" and not report.complete
    assert seen == sorted(seen) and len(seen) >= 3
    assert report.rows_total == report.rows_sent + report.failed_row_count
    assert all(f.kind == "not_sent" for f in report.failures)


async def test_backpressure_bounds_how_far_the_input_is_read_ahead(
    base_url: str, api_key: str
) -> None:
    """While the senders are blocked, the producer reads only a few batches ahead."""
    read = 0
    gate = anyio.Event()

    def rows() -> Iterator[tuple[str, list[float]]]:
        nonlocal read
        for i in itertools.count():
            read += 1
            yield f"r{i}", [float(i)] * 16

    calls = 0

    async def blocked(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        await gate.wait()
        return httpx.Response(200, json={"success": True, "job_id": "j"})

    with respx.mock(base_url=base_url, assert_all_called=False) as mock:
        mock.post("/add_data_batch").mock(side_effect=blocked)
        async with AsyncVecML(api_key, base_url=base_url, rate_limit=None) as client:
            with anyio.move_on_after(0.5):
                await client.ingest("p", "c", rows(), max_rows=100, concurrency=2)
    assert calls == 2  # one request per sender, both held by the server
    # the producer stopped after one source chunk (about 1 MiB of rows), not the whole input
    assert read <= 5000


async def test_cancelling_an_ingest_leaves_no_task_running(
    server: FakeServer, client: AsyncVecML
) -> None:
    """Cancellation stops every sender and the producer; the client stays usable."""
    slow = anyio.Event()

    def fault(n: int) -> None:
        return None

    server.fault = fault
    with anyio.move_on_after(0.05):
        await client.ingest("p", "c", ((f"r{i}", [1.0]) for i in range(10**9)), max_rows=10)
    assert not slow.is_set()
    before = server.requests
    await anyio.sleep(0.05)
    assert server.requests == before  # nothing keeps sending after the cancel
    await client.init("p", "other", vector_dim=2)


async def test_iterator_async_iterator_and_dict_rows(
    server: FakeServer, client: AsyncVecML
) -> None:
    """Rows as tuples, dicts, and from async iterators all land with their attributes."""

    async def agen() -> AsyncIterator[dict[str, Any]]:
        for i in range(50):
            yield {"id": f"a{i}", "vector": [float(i), 0.0], "attributes": {"n": i}}

    await client.ingest("p", "c", agen())
    await client.ingest("p", "c", iter([("t0", [1.0, 2.0], {"x": "y"}), ("t1", [3.0, 4.0])]))
    assert len(server.ids) == 52
    last = server.bodies[-1]
    assert last["attributes"] == [{"x": "y"}, {}]
    assert server.bodies[0]["attributes"][3] == {"n": "3"}


async def test_streams_are_not_checked_for_duplicates_unless_asked(
    server: FakeServer, client: AsyncVecML
) -> None:
    """An iterator's ids are not kept in a set by default (memory stays bounded)."""
    report = await client.ingest("p", "c", iter([("a", [1.0]), ("a", [2.0])]))
    assert report.rows_sent == 2 and server.ids == ["a", "a"]


async def test_duplicate_ids_across_chunks_are_refused(
    server: FakeServer, client: AsyncVecML
) -> None:
    """The same id twice in one ingest is refused with its index."""
    rows = [(f"r{i % 30_000}", [1.0]) for i in range(31_000)]
    with pytest.raises(IngestError) as info:
        await client.ingest("p", "c", iter(rows), max_bytes=100_000, check_duplicate_ids=True)
    (failure,) = info.value.report.failures
    assert failure.row_ids == ["r0"] and failure.first_row == 30_000
    with pytest.raises(InvalidInputError, match="duplicate id") as first:
        await client.ingest("p", "c", [("a", [1.0]), ("a", [2.0])])
    assert first.value.index == 1


async def test_known_collection_dimension_is_enforced(
    server: FakeServer, client: AsyncVecML
) -> None:
    """After init(vector_dim=8), rows of another dimension are refused before sending."""
    await client.init("p", "c8", vector_dim=8)
    with pytest.raises(InvalidInputError, match="8"):
        await client.ingest("p", "c8", vectors(10, dim=4))
    assert server.requests == 0


async def test_report_accounting_invariant(server: FakeServer, client: AsyncVecML) -> None:
    """rows_total = rows_sent + rows_skipped + failed rows, and the summary says so."""
    report: IngestReport = await client.ingest("p", "c", vectors(100))
    assert report.rows_total == report.rows_sent + report.rows_skipped + report.failed_row_count
    assert "100 of 100 rows" in report.summary()


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("concurrency", 0),
        ("max_bytes", 0),
        ("max_bytes", 300_000_000),
        ("max_rows", 0),
        ("on_invalid", "ignore"),
        ("max_consecutive_failures", 0),
        ("progress", "bars"),
    ],
)
async def test_bad_options_are_refused(
    server: FakeServer, client: AsyncVecML, option: str, value: Any
) -> None:
    """Nonsensical ingest options raise InvalidInputError naming the option."""
    with pytest.raises(InvalidInputError) as info:
        await client.ingest("p", "c", vectors(3), **{option: value})
    assert info.value.field == option
    assert server.requests == 0


async def test_an_input_without_rows_is_refused(server: FakeServer, client: AsyncVecML) -> None:
    """Empty inputs of any kind are an input error, not an empty success."""
    for empty in ([], iter([]), np.zeros((0, 4), dtype=np.float32)):
        with pytest.raises(InvalidInputError, match="no rows") as info:
            await client.ingest("p", "c", empty)
        assert info.value.field == "data"
    assert server.requests == 0


async def test_sparse_rows_given_as_index_maps(server: FakeServer, client: AsyncVecML) -> None:
    """{index: value} items of a sparse ingest are vectors, not row dicts."""
    report = await client.ingest(
        "p", "c", [{3: 0.5, 1: 2.0}, {0: 1.0}], ids=["a", "b"], sparse=True
    )
    assert report.complete
    assert server.bodies[0]["data"] == [[[1, 2.0], [3, 0.5]], [[0, 1.0]]]
