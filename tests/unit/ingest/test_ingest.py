"""``AsyncVecML.ingest`` against a respx-mocked server: options and combinations refused
before anything is sent, stops by the progress callback, failed upload jobs, backpressure
and cancellation. (Exactly-once is proven against the emulator, in tests/ingest_matrix.)"""

from __future__ import annotations

import inspect
import itertools
from collections.abc import Iterator
from typing import Any

import anyio
import httpx
import numpy as np
import orjson
import pytest
import respx

from vecml_async import AsyncVecML, IngestError, InvalidInputError


class Recorder:
    """Answers add_data_batch with a job and keeps the ids of each body."""

    def __init__(self) -> None:
        self.bodies: list[list[str]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(orjson.loads(request.content)["string_ids"])
        return httpx.Response(200, json={"success": True, "job_id": f"job-{len(self.bodies)}"})


@pytest.fixture
def server(mock: respx.MockRouter) -> Recorder:
    recorder = Recorder()
    mock.post("/add_data_batch").mock(side_effect=recorder)
    mock.post("/init").mock(return_value=httpx.Response(200, json={"success": True}))
    return recorder


def vectors(n: int, dim: int = 8, seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def test_ingest_is_a_method_with_its_own_signature() -> None:
    """help(AsyncVecML.ingest) shows the method: self, the names, the data, keyword options."""
    parameters = list(inspect.signature(AsyncVecML.ingest).parameters.values())
    assert [p.name for p in parameters[:4]] == ["self", "project_name", "collection_name", "data"]
    assert all(p.kind is p.KEYWORD_ONLY for p in parameters[4:])
    assert "ids" in inspect.signature(AsyncVecML.ingest).parameters
    assert AsyncVecML.ingest.__doc__ and "IngestReport" in AsyncVecML.ingest.__doc__


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("concurrency", 0),
        ("concurrency", True),
        ("max_bytes", 0),
        ("max_bytes", 300_000_000),
        ("max_bytes", 10),
        ("max_rows", 0),
        ("max_rows", 2.5),
        ("batch_bytes", 0),
        ("batch_bytes", 10),
        ("batch_bytes", 1.5e6),
        ("batch_bytes", 199_000_000),
        ("batch_bytes", 65 * 1024 * 1024),
        ("max_memory", 1000),
        ("max_memory", True),
        ("on_invalid", "ignore"),
        ("max_consecutive_failures", 0),
        ("progress", "bars"),
        ("sparse_format", "csr"),
        ("job_timeout", 0),
        ("vector_dim", -1),
        ("ids", "abc"),
        ("ids", {"a", "b", "c"}),
        ("attributes", {"k": "v"}),
        ("attribute_columns", [1]),
        ("vector_columns", ["x"]),
        ("id_column", "id"),
        ("file_format", "csv"),
    ],
)
async def test_bad_options_are_refused_naming_the_option(
    server: Recorder, client: AsyncVecML, option: str, value: Any
) -> None:
    """Nonsensical options, and options the input cannot honour, raise InvalidInputError
    naming the option; nothing is sent."""
    with pytest.raises(InvalidInputError) as info:
        await client.ingest("p", "c", vectors(3), **{option: value})
    assert info.value.field == option
    assert server.bodies == []


@pytest.mark.parametrize(
    ("data", "options", "field"),
    [
        ([("r0", [1.0]), ("r1", [2.0])], {"ids": ["a", "b"]}, "ids"),
        ([("r0", [1.0], {"k": "v"})], {"attributes": [{"k": "w"}]}, "attributes"),
        (vectors(3), {"ids": ["a", "b"]}, "ids"),
        (vectors(3), {"ids": iter(["a", "b", "c", "d"])}, "ids"),
        (vectors(3), {"attributes": [{}] * 4}, "attributes"),
        (iter([[1.0], [2.0]]), {"ids": iter(["a", "b", "c"])}, "ids"),
        (iter([[1.0], [2.0]]), {"ids": ["a"]}, "ids"),
    ],
)
async def test_parallel_values_that_cannot_be_honoured_are_refused_before_sending(
    server: Recorder, client: AsyncVecML, data: Any, options: dict[str, Any], field: str
) -> None:
    """ids=/attributes= next to rows holding their own, or of the wrong length (checked
    before sending for inputs of known length, and before the rows concerned for streams)."""
    with pytest.raises(InvalidInputError) as info:
        await client.ingest("p", "c", data, **options)
    assert info.value.field == field
    assert server.bodies == []


async def test_parallel_ids_running_out_mid_stream_stop_before_the_rows_without_ids(
    server: Recorder, client: AsyncVecML
) -> None:
    """A stream whose parallel ids end early: the rows with ids land, the first chunk
    without is not sent, and the rest of the stream is unread (its size unknown)."""
    rows = ([float(i)] for i in range(60_000))
    ids = (f"i{k}" for k in range(20_000))
    with pytest.raises(IngestError) as info:
        await client.ingest("p", "c", rows, ids=ids, max_bytes=50_000)
    report = info.value.report
    sent = [i for body in server.bodies for i in body]
    assert sent == [f"i{k}" for k in range(len(sent))] and 0 < len(sent) <= 20_000
    assert report.stopped == "invalid input" and report.rows_unread is None
    assert report.stopped_at == len(sent) == report.rows_sent
    assert report.failures[0].rows == 0  # the rows from there on are unread, not failed
    assert isinstance(report.failures[0].exception, InvalidInputError)


async def test_an_input_without_rows_is_refused(server: Recorder, client: AsyncVecML) -> None:
    """Empty inputs of any kind are an input error, not an empty success."""
    for empty in ([], iter([]), np.zeros((0, 4), dtype=np.float32)):
        with pytest.raises(InvalidInputError, match="no rows") as info:
            await client.ingest("p", "c", empty)
        assert info.value.field == "data"
    assert server.bodies == []


async def test_known_collection_dimension_is_enforced(server: Recorder, client: AsyncVecML) -> None:
    """After init(vector_dim=8), rows of another dimension are refused before sending."""
    await client.init("p", "c8", vector_dim=8)
    with pytest.raises(InvalidInputError, match="8"):
        await client.ingest("p", "c8", vectors(10, dim=4))
    assert server.bodies == []


async def test_the_progress_callback_can_stop_and_the_unread_rows_are_read_again(
    server: Recorder, client: AsyncVecML
) -> None:
    """progress= is called per batch; returning False stops without raising; the rows not
    sent (unsent batches, unread rows) come back from failed_rows(), read again."""
    seen: list[int] = []

    async def progress(state: Any) -> bool:
        seen.append(state.rows_sent)
        return len(seen) < 3

    n = 30_000
    data = vectors(n)
    report = await client.ingest("p", "c", data, max_bytes=20_000, concurrency=1, progress=progress)
    assert report.stopped == "stopped by the progress callback" and not report.complete
    assert seen == sorted(seen) and len(seen) >= 3
    assert all(f.kind == "not_sent" for f in report.failures)
    unread = report.rows_unread
    assert unread is not None and unread > 0 and report.stopped_at == n - unread
    assert report.rows_total == n == report.rows_sent + report.failed_row_count + unread
    missing = report.failed_rows()
    sent = {i for body in server.bodies for i in body}
    assert {row[0] for row in missing} == {report.generated_id(i) for i in range(n)} - sent
    index = {report.generated_id(i): i for i in range(n)}
    for row_id, vector, attributes in missing:
        assert np.asarray(vector, dtype=np.float32).tobytes() == data[index[row_id]].tobytes()
        assert attributes == {}
    assert "rows unread" in report.summary()


async def test_a_failed_upload_job_reports_its_rows_and_failed_rows_reads_them_again(
    server: Recorder, client: AsyncVecML, mock: respx.MockRouter
) -> None:
    """wait=True polls every upload job; a failed job's rows become failures with ids, and
    failed_rows() reads those rows again from the input (their bytes were not kept)."""

    def status(request: httpx.Request) -> httpx.Response:
        failed = orjson.loads(request.content)["job_id"] == "job-2"
        body = {"success": True, "status": "failed" if failed else "finished"}
        return httpx.Response(200, json={**body, "error": "disk full"} if failed else body)

    mock.post("/get_upload_data_status").mock(side_effect=status)
    ids = [f"r{i}" for i in range(900)]
    data = vectors(900)
    with pytest.raises(IngestError) as info:
        await client.ingest("p", "c", data, ids=ids, max_bytes=20_000, wait=True)
    report = info.value.report
    (failure,) = report.failures
    assert failure.kind == "job" and failure.job_id == "job-2" and "disk full" in failure.error
    assert failure.row_ids == server.bodies[1]
    assert report.jobs_finished == report.batches_sent - 1
    assert report.rows_sent + report.failed_row_count == 900
    again = report.failed_rows()
    assert [row[0] for row in again] == server.bodies[1]
    first = ids.index(again[0][0])
    assert np.asarray(again[0][1], dtype=np.float32).tobytes() == data[first].tobytes()


async def test_backpressure_bounds_how_far_the_input_is_read_ahead(
    mock: respx.MockRouter, client: AsyncVecML
) -> None:
    """While the senders are blocked, the reader reads only a few batches ahead."""
    read = 0
    both_held = anyio.Event()
    calls = 0

    def rows() -> Iterator[tuple[str, list[float]]]:
        nonlocal read
        for i in itertools.count():
            read += 1
            yield f"r{i}", [float(i)] * 16

    async def blocked(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 2:
            both_held.set()
        await anyio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    mock.post("/add_data_batch").mock(side_effect=blocked)
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: client.ingest("p", "c", rows(), max_rows=100, concurrency=2))
        await both_held.wait()
        # Let the reader run until every task waits (the reader on the full stream).
        for _ in range(20):
            await anyio.wait_all_tasks_blocked()
        group.cancel_scope.cancel()
    assert calls == 2  # one request per sender, both held by the server
    # the reader stopped after one source chunk (about 1 MiB of rows), not the whole input
    assert read <= 5000


async def test_cancelling_an_ingest_stops_every_task_and_the_client_stays_usable(
    mock: respx.MockRouter, client: AsyncVecML
) -> None:
    """Cancelled while a request is in flight, the ingest leaves nothing running: no request
    starts afterwards, and the client still works."""
    started = anyio.Event()
    calls = 0

    async def held(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        started.set()
        await anyio.Event().wait()  # held until cancelled
        raise AssertionError("unreachable")

    mock.post("/add_data_batch").mock(side_effect=held)
    init = mock.post("/init").mock(return_value=httpx.Response(200, json={"success": True}))
    rows = ((f"r{i}", [1.0]) for i in range(10**9))
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: client.ingest("p", "c", rows, max_rows=10, concurrency=1))
        await started.wait()
        group.cancel_scope.cancel()
    assert calls == 1
    await client.init("p", "other", vector_dim=2)  # the client is usable, the pool intact
    assert init.call_count == 1 and calls == 1  # and no sender outlived the cancel


async def test_report_accounting_and_summary(server: Recorder, client: AsyncVecML) -> None:
    """rows_total = rows_sent + rows_skipped + failed + unread, and the summary says so."""
    report = await client.ingest("p", "c", vectors(100))
    assert report.rows_total == report.rows_sent + report.rows_skipped + report.failed_row_count
    assert report.rows_unread == 0 and report.stopped_at is None and report.complete
    assert "100 of 100 rows" in report.summary()


async def test_more_parallel_ids_than_file_rows_are_refused_before_the_last_chunk(
    server: Recorder, client: AsyncVecML, tmp_path: Any
) -> None:
    """Next to a file of unknown length, ids left over when it ends are refused before its
    last chunk is sent; that chunk's rows are unread, and their number is known."""
    path = tmp_path / "rows.csv"
    path.write_text("x\n" + "".join(f"{i}.5\n" for i in range(100)))
    ids = [f"i{k}" for k in range(101)]
    with pytest.raises(IngestError) as info:
        await client.ingest("p", "c", path, ids=ids, chunk_bytes=600, max_rows=5)
    report = info.value.report
    sent = [i for body in server.bodies for i in body]
    assert sent == ids[: len(sent)] and 0 < len(sent) < 100
    assert report.rows_unread == 100 - len(sent) and report.rows_total == 100
    assert info.value.__cause__ is not None and "more entries" in str(info.value.__cause__)


@pytest.mark.parametrize(
    ("named", "landed"),
    [(None, True), ('["r0"]', False), ('["r0","r1","zz"]', False)],
    ids=["all-of-its-ids", "some-of-them", "others-too"],
)
async def test_a_duplicate_refusal_after_an_ambiguous_attempt_counts_landed_only_when_exact(
    mock: respx.MockRouter, client: AsyncVecML, named: str | None, landed: bool
) -> None:
    """The retry of a batch whose connection dropped is refused as a duplicate: landed when
    the refusal names exactly the batch's ids; otherwise failed (the client cannot tell),
    without stopping the ingest."""
    attempts = 0

    def answer(request: httpx.Request) -> httpx.Response:
        nonlocal attempts
        attempts += 1
        ids = orjson.loads(request.content)["string_ids"]
        if attempts == 1:
            raise httpx.ReadError("connection dropped after the request was sent")
        if attempts == 2:
            listed = named or orjson.dumps(ids).decode()
            message = f"Duplicate string_ids already exist in the collection: {listed}"
            return httpx.Response(400, json={"success": False, "error_message": message})
        return httpx.Response(200, json={"success": True, "job_id": f"job-{attempts}"})

    mock.post("/add_data_batch").mock(side_effect=answer)
    report = await client.ingest(
        "p",
        "c",
        vectors(30),
        ids=[f"r{i}" for i in range(30)],
        max_rows=10,
        concurrency=1,
        raise_on_error=False,
    )
    assert report.stopped is None and attempts == 4  # the ingest went on
    if landed:
        assert report.complete and report.rows_sent == 30 and len(report.job_ids) == 2
    else:
        (failure,) = report.failures
        assert failure.kind == "send" and failure.row_ids == [f"r{i}" for i in range(10)]
        assert report.rows_sent == 20
