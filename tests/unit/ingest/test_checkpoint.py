"""Checkpointed ingests: the journal, resuming after a crash, and refusing a wrong input."""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pytest
import respx

from vecml_async import AsyncVecML, InvalidInputError
from vecml_async._ingest.checkpoint import Checkpoint


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
    stream = {"kind": "stream"}
    journal = await Checkpoint.open(tmp_path / "j", "p", "c", fingerprint=stream, id_prefix="pre-")
    await journal.record([(0, 10)], "j1", ("a", "b"), (1, 2))
    await journal.record([(20, 30)], "j2", ("c", "d"), (3, 4))
    await journal.record([(10, 20)], "j3", ("e", "f"), (5, 6))
    assert journal.remaining(0, 40) == [(30, 40)]
    await journal.undo([(5, 15)], "j1")
    assert journal.remaining(0, 40) == [(5, 15), (30, 40)]
    reopened = await Checkpoint.open(
        tmp_path / "j", "p", "c", fingerprint=stream, id_prefix="other-"
    )
    assert reopened.remaining(0, 40) == [(5, 15), (30, 40)]
    assert reopened.id_prefix == "pre-" and reopened.rows_done == 20
    assert reopened.checks_in(0, 40) == [
        (0, 1, "a"),
        (9, 2, "b"),
        (10, 5, "e"),
        (19, 6, "f"),
        (20, 3, "c"),
        (29, 4, "d"),
    ]


def _lines(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


def _write(path: Path, records: list[dict[str, Any]]) -> None:
    path.write_bytes(b"".join(orjson.dumps(r) + b"\n" for r in records))


def _with_crc(record: dict[str, Any]) -> dict[str, Any]:
    content = {k: v for k, v in record.items() if k != "crc"}
    return {**content, "crc": zlib.crc32(orjson.dumps(content, option=orjson.OPT_SORT_KEYS))}


@pytest.mark.parametrize(
    ("damage", "why"),
    [
        ({"ranges": [[0, 10]]}, "recorded before"),  # overlaps the first record
        ({"ranges": [[50, 40]]}, "impossible range"),
        ({"ranges": [[-5, 3]]}, "impossible range"),
        ({"ranges": [[90, 120]]}, "impossible range"),  # beyond the input's 100 rows
        ({"ranges": []}, "no row ranges"),
        ({"ranges": [[60, 70]], "undo": True}, "never recorded"),
    ],
)
async def test_impossible_records_are_refused(
    tmp_path: Path, damage: dict[str, Any], why: str
) -> None:
    """A record with a valid checksum that cannot be true is refused, never trusted."""
    path = tmp_path / "j"
    memory = {"kind": "memory", "rows": 100}
    journal = await Checkpoint.open(path, "p", "c", fingerprint=memory, id_prefix="x-", length=100)
    await journal.record([(0, 10)], "j1", ("a", "b"), (1, 2))
    lines = _lines(path)
    _write(path, [*lines, _with_crc({"job": "j9", **damage})])
    with pytest.raises(InvalidInputError, match=why) as info:
        await Checkpoint.open(path, "p", "c", fingerprint=memory, id_prefix="x-", length=100)
    assert info.value.field == "checkpoint"


async def test_a_changed_digit_fails_the_line_checksum(tmp_path: Path) -> None:
    """Any change to a complete line (here one digit of a range) fails its CRC."""
    path = tmp_path / "j"
    stream = {"kind": "stream"}
    journal = await Checkpoint.open(path, "p", "c", fingerprint=stream, id_prefix="x-")
    await journal.record([(0, 10)], "j1", ("a", "b"), (1, 2))
    path.write_bytes(path.read_bytes().replace(b"[[0,10]]", b"[[0,19]]"))
    with pytest.raises(InvalidInputError, match="checksum"):
        await Checkpoint.open(path, "p", "c", fingerprint=stream, id_prefix="x-")


async def test_the_header_names_what_differs_in_the_input(tmp_path: Path) -> None:
    """A fingerprint that differs in any key is refused, and the message says which."""
    path = tmp_path / "j"
    first = {"kind": "file", "path": "/d/x.csv", "size": 10, "mtime_ns": 1, "head": "a"}
    await Checkpoint.open(path, "p", "c", fingerprint=first, id_prefix="x-")
    with pytest.raises(InvalidInputError, match="size") as info:
        await Checkpoint.open(path, "p", "c", fingerprint={**first, "size": 20}, id_prefix="x-")
    assert info.value.field == "checkpoint"
