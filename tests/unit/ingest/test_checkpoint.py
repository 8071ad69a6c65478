"""Checkpointed ingests: the journal, resuming after a crash, and refusing a wrong input."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import respx

from vecml_async import AsyncVecML, InvalidInputError
from vecml_async._ingest.checkpoint import Checkpoint, contiguous_ranges


class Recorder:
    def __init__(self) -> None:
        self.ids: list[str] = []
        self.fail_after: int | None = None

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.fail_after is not None and len(self.ids) >= self.fail_after:
            return httpx.Response(404, json={"success": False, "error_message": "gone"})
        self.ids.extend(orjson.loads(request.content)["string_ids"])
        return httpx.Response(200, json={"success": True, "job_id": f"j{len(self.ids)}"})


@pytest.fixture
def server(base_url: str) -> Iterator[Recorder]:
    recorder = Recorder()
    with respx.mock(base_url=base_url, assert_all_called=False) as mock:
        mock.post("/add_data_batch").mock(side_effect=recorder)
        yield recorder


@pytest.fixture
async def client(api_key: str, base_url: str) -> AsyncIterator[AsyncVecML]:
    async with AsyncVecML(api_key, base_url=base_url, rate_limit=None, max_retries=0) as c:
        yield c


def data(n: int) -> Any:
    return np.arange(n * 4, dtype=np.float32).reshape(n, 4)


async def test_resume_sends_only_what_the_journal_lacks(
    server: Recorder, client: AsyncVecML, tmp_path: Path
) -> None:
    """An ingest stopped part-way resumes from its checkpoint: every id lands exactly once."""
    path = tmp_path / "ingest.ckpt"
    server.fail_after = 300
    first = await client.ingest(
        "p", "c", data(1000), max_rows=100, concurrency=1, checkpoint=path, raise_on_error=False
    )
    assert first.rows_sent == 300 and not first.complete
    server.fail_after = None
    second = await client.ingest("p", "c", data(1000), max_rows=100, checkpoint=path)
    assert second.complete and second.rows_skipped == 300 and second.rows_sent == 700
    # generated ids are the same in both runs: the prefix lives in the journal
    assert first.id_prefix == second.id_prefix
    assert sorted(server.ids) == sorted(second.generated_id(i) for i in range(1000))
    assert len(set(server.ids)) == 1000


async def test_a_line_cut_by_a_crash_is_ignored(
    server: Recorder, client: AsyncVecML, tmp_path: Path
) -> None:
    """A torn last line (killed mid-write) does not count: that batch is sent again."""
    path = tmp_path / "ingest.ckpt"
    ids = [f"r{i}" for i in range(500)]
    await client.ingest("p", "c", data(500), ids=ids, max_rows=100, checkpoint=path)
    lines = path.read_bytes().splitlines(keepends=True)
    path.write_bytes(b"".join(lines[:-1]) + lines[-1][:10])  # tear the last record
    server.ids.clear()
    again = await client.ingest("p", "c", data(500), ids=ids, max_rows=100, checkpoint=path)
    assert again.rows_skipped == 400 and server.ids == ids[400:]


async def test_a_different_input_is_refused(
    server: Recorder, client: AsyncVecML, tmp_path: Path
) -> None:
    """Resuming with other ids than the journal recorded is an error, not a silent skip."""
    path = tmp_path / "ingest.ckpt"
    await client.ingest(
        "p", "c", data(200), ids=[f"a{i}" for i in range(200)], max_rows=50, checkpoint=path
    )
    with pytest.raises(InvalidInputError, match="checkpoint") as info:
        await client.ingest(
            "p",
            "c",
            data(300),
            ids=[f"b{i}" for i in range(300)],
            max_rows=50,
            checkpoint=path,
        )
    assert info.value.field == "checkpoint"


async def test_a_checkpoint_belongs_to_one_collection(
    server: Recorder, client: AsyncVecML, tmp_path: Path
) -> None:
    """A journal written for one collection cannot drive an ingest into another."""
    path = tmp_path / "ingest.ckpt"
    await client.ingest("p", "c", data(10), checkpoint=path)
    with pytest.raises(InvalidInputError, match="p/c"):
        await client.ingest("p", "other", data(10), checkpoint=path)
    path.write_text('{"format": "something else"}\n')
    with pytest.raises(InvalidInputError, match="not a vecml-async checkpoint"):
        await client.ingest("p", "c", data(10), checkpoint=path)


async def test_journal_ranges_and_undo(tmp_path: Path) -> None:
    """Recorded ranges merge; an undo (failed job) makes its rows pending again."""
    journal = await Checkpoint.open(tmp_path / "j", "p", "c", "pre-")
    await journal.record([(0, 10)], "j1", ["a", "b"])
    await journal.record([(20, 30)], "j2", ["c", "d"])
    await journal.record([(10, 20)], "j3", ["e", "f"])
    assert journal.remaining(0, 40) == [(30, 40)]
    await journal.undo([(5, 15)], "j1")
    assert journal.remaining(0, 40) == [(5, 15), (30, 40)]
    reopened = await Checkpoint.open(tmp_path / "j", "p", "c", "other-")
    assert reopened.remaining(0, 40) == [(5, 15), (30, 40)]
    assert reopened.id_prefix == "pre-" and reopened.rows_done == 20


def test_contiguous_ranges() -> None:
    """Row indices collapse into [start, stop) runs."""
    assert contiguous_ranges([3, 4, 5, 9, 10, 12]) == [(3, 6), (9, 11), (12, 13)]
    assert contiguous_ranges([]) == []
