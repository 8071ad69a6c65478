"""add_data / add_data_batch: validation, duplicate-id modes, sparse rows and upload jobs."""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pytest

P = {"project_name": "p", "collection_name": "c"}


async def test_add_data_batch_stores_rows_and_reports_the_job(api: Any) -> None:
    """A batch becomes an upload job; when finished the rows, ids and attributes are stored."""
    await api.collection(dim=3)
    data = [[1, 2, 3], [4.5, 5, 6]]
    attrs = [{"label": "1", "category": "A"}, {"label": "0"}]
    job = await api.ok("add_data_batch", **P, data=data, string_ids=["a", "b"], attributes=attrs)
    status = await api.wait_job(job["job_id"])
    assert status["status"] == "finished"
    assert status["num_rows"] == 2
    assert re.fullmatch(r"\d{4}/\d\d/\d\d \d\d:\d\d:\d\d", status["start_time"])
    assert re.fullmatch(r"\d\d:\d\d:\d\d", status["duration"])
    ids, matrix, stored_attrs = api.emulator.collection_data(api.key, "p", "c")
    assert ids == ["a", "b"]
    assert matrix.dtype == np.float32
    np.testing.assert_array_equal(matrix, data)
    assert stored_attrs == attrs


async def test_server_generates_ids_when_omitted(api: Any) -> None:
    """Without string_ids the server assigns unique ids to every row."""
    await api.collection(dim=2)
    for _ in range(2):
        await api.ok("add_data_batch", **P, data=[[1, 2], [3, 4]])
    ids = api.emulator.collection_ids(api.key, "p", "c")
    assert len(ids) == len(set(ids)) == 4


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"data": [[1, 2, 3], [1, 2]]}, "data[1] has 2 values"),
        ({"data": [[1, 2]]}, "vector_dim is 3"),
        ({"data": [[1, None, 3]]}, "got null"),
        ({"data": [[1, 2, 1e39]]}, "not a finite"),
        ({"data": [[1, 2, "3"]]}, "got string"),
        ({}, "Missing required field 'data'"),
        ({"data": [[1, 2, 3]], "string_ids": ["a", "b"]}, "'string_ids' has 2 entries"),
        ({"data": [[1, 2, 3]], "string_ids": [5]}, "string_ids[0]"),
        ({"data": [[1, 2, 3]], "string_ids": "a"}, "must be an array"),
        ({"data": [[1, 2, 3]], "attributes": [{"label": 1}]}, "attributes[0]['label']"),
        ({"data": [[1, 2, 3]], "attributes": [{"x": None}]}, "got null"),
        ({"data": [[1, 2, 3]], "attributes": ["label"]}, "attributes[0] must be an object"),
        ({"data": [[1, 2, 3]], "attributes": []}, "'attributes' has 0 entries"),
    ],
)
async def test_structural_errors_are_400_and_store_nothing(
    api: Any, fields: dict[str, Any], fragment: str
) -> None:
    """Ragged rows, wrong dims, non-finite values, bad ids or attributes: 400, nothing stored."""
    await api.collection(dim=3)
    message = await api.fail("add_data_batch", 400, **P, **fields)
    assert fragment in message
    assert api.emulator.collection_ids(api.key, "p", "c") == []


async def test_missing_collection_is_404(api: Any) -> None:
    """add_data_batch to a missing project or collection is 404."""
    assert "does not exist" in await api.fail("add_data_batch", 404, **P, data=[[1]])
    await api.ok("create_project", project_name="p")
    assert "does not exist" in await api.fail("add_data_batch", 404, **P, data=[[1]])


async def test_add_data_inserts_one_vector_as_a_job(api: Any) -> None:
    """add_data takes one vector, an optional string_id and attributes; returns a job."""
    await api.collection(dim=2)
    job = await api.ok("add_data", **P, data=[1, 2], string_id="one", attributes={"k": "v"})
    assert (await api.wait_job(job["job_id"]))["num_rows"] == 1
    ids, matrix, attrs = api.emulator.collection_data(api.key, "p", "c")
    assert ids == ["one"]
    assert matrix.tolist() == [[1.0, 2.0]]
    assert attrs == [{"k": "v"}]
    assert "data" in await api.fail("add_data", 400, **P)


async def test_overwrite_mode_upserts_and_counts(api: Any) -> None:
    """duplicate_ids='overwrite': a known id replaces its row, stored once, counted."""
    await api.collection(dim=2)
    await api.ok("add_data_batch", **P, data=[[1, 1], [2, 2]], string_ids=["a", "b"])
    await api.ok(
        "add_data_batch",
        **P,
        data=[[9, 9], [3, 3], [7, 7]],
        string_ids=["a", "c", "c"],
        attributes=[{"v": "new"}, {"v": "c1"}, {"v": "c2"}],
    )
    ids, matrix, attrs = api.emulator.collection_data(api.key, "p", "c")
    assert ids == ["a", "b", "c"]
    np.testing.assert_array_equal(matrix, [[9, 9], [2, 2], [7, 7]])
    assert attrs == [{"v": "new"}, {}, {"v": "c2"}]
    counters = api.emulator.collection_counters(api.key, "p", "c")
    assert (counters["rows"], counters["id_writes"], counters["overwrites"]) == (3, 5, 2)
    stats = api.emulator.stats()
    assert (stats["id_writes"], stats["overwrites"]) == (5, 2)


async def test_reject_mode_refuses_duplicates(start: Any) -> None:
    """duplicate_ids='reject': a repeated id in the batch or in the store is a 400 naming it."""
    api = await start(duplicate_ids="reject")
    await api.collection(dim=1)
    await api.ok("add_data_batch", **P, data=[[1]], string_ids=["a"])
    message = await api.fail("add_data_batch", 400, **P, data=[[1], [2]], string_ids=["b", "a"])
    assert "'a'" in message
    message = await api.fail("add_data_batch", 400, **P, data=[[1], [2]], string_ids=["x", "x"])
    assert "'x'" in message
    assert api.emulator.collection_ids(api.key, "p", "c") == ["a"]


async def test_reject_mode_sees_batches_waiting_to_apply(start: Any) -> None:
    """In reject mode an id waiting in an accepted (not yet applied) batch is a duplicate."""
    api = await start(duplicate_ids="reject", upload_delay=1.0)
    await api.collection(dim=1)
    first = await api.ok("add_data_batch", **P, data=[[1]], string_ids=["a"])
    await api.fail("add_data_batch", 400, **P, data=[[2]], string_ids=["a"])
    await api.wait_job(first["job_id"])
    assert api.emulator.collection_ids(api.key, "p", "c") == ["a"]


async def test_upload_job_lifecycle_with_delay(start: Any) -> None:
    """With upload_delay the job is in_progress and stores nothing until it applies."""
    api = await start(upload_delay=1.0)
    await api.collection(dim=1)
    job = await api.ok("add_data_batch", **P, data=[[1], [2]])
    status = await api.ok("get_upload_data_status", job_id=job["job_id"])
    assert status["status"] == "in_progress"
    assert api.emulator.collection_ids(api.key, "p", "c") == []
    assert (await api.wait_job(job["job_id"]))["status"] == "finished"
    assert len(api.emulator.collection_ids(api.key, "p", "c")) == 2


async def test_upload_job_fails_when_its_collection_is_deleted(start: Any) -> None:
    """A waiting upload whose project is deleted finishes as failed with the reason."""
    api = await start(upload_delay=1.0)
    await api.collection(dim=1)
    job = await api.ok("add_data_batch", **P, data=[[1]])
    await api.ok("delete_project", project_name="p")
    status = await api.wait_job(job["job_id"])
    assert status["status"] == "failed"
    assert "deleted" in status["error"]


async def test_unknown_or_foreign_job_is_404(api: Any) -> None:
    """get_upload_data_status of an unknown job, or another key's job, is 404 'not found'."""
    await api.collection(dim=1)
    job = await api.ok("add_data_batch", **P, data=[[1]])
    assert "not found" in await api.fail("get_upload_data_status", 404, job_id="nope")
    message = await api.fail(
        "get_upload_data_status", 404, key="vml_test_key_b", job_id=job["job_id"]
    )
    assert message == f"Job {job['job_id']} not found"
    assert "job_id" in await api.fail("get_upload_data_status", 400)


async def test_sparse_collection_accepts_every_encoding(api: Any) -> None:
    """A sparse collection stores [[i, v]], {"i": v}, {"indices","values"} and "i:v" rows."""
    await api.collection(dim=100, vector_type="sparse")
    data = [[[3, 1.5]], {"7": 2.0}, {"indices": [1, 99], "values": [1, 2]}, "0:4 50:5"]
    job = await api.ok("add_data_batch", **P, data=data, string_ids=list("abcd"))
    await api.wait_job(job["job_id"])
    ids, matrix, _ = api.emulator.collection_data(api.key, "p", "c")
    assert ids == list("abcd")
    assert matrix.shape == (4, 100)
    dense = matrix.toarray()
    assert dense[0, 3] == 1.5
    assert dense[1, 7] == 2.0
    assert (dense[2, 1], dense[2, 99]) == (1.0, 2.0)
    assert (dense[3, 0], dense[3, 50]) == (4.0, 5.0)
    assert "out of range" in await api.fail("add_data_batch", 400, **P, data=[[[100, 1.0]]])


async def test_sparse_overwrite_replaces_the_row(api: Any) -> None:
    """Overwriting a sparse row by id replaces its indices and values."""
    await api.collection(dim=10, vector_type="sparse")
    await api.ok("add_data_batch", **P, data=["1:1", "2:2"], string_ids=["a", "b"])
    await api.ok("add_data_batch", **P, data=["5:5"], string_ids=["a"])
    _, matrix, _ = api.emulator.collection_data(api.key, "p", "c")
    assert matrix.toarray()[0].tolist() == [0, 0, 0, 0, 0, 5, 0, 0, 0, 0]
