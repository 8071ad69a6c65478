"""Ways an ingest used to lose or corrupt rows while its report said ``complete``: one test
each, run against the emulator over loopback, checking what the emulator stored.
"""

from __future__ import annotations

import gc
import gzip
import tracemalloc
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pandas as pd
import pytest

from vecml_async import AsyncVecML, InvalidInputError
from vecml_async.emulator import Emulator, FaultConfig

pytestmark = pytest.mark.integration

P = "regress"
BATCHES = frozenset({"add_data_batch"})


async def _client(url: str, key: str, collection: str, dim: int, **options: Any) -> AsyncVecML:
    client = AsyncVecML(key, base_url=url, rate_limit=None, **options)
    await client.create_project(P, exist_ok=True)
    await client.init(P, collection, vector_dim=dim)
    return client


def _vectors(n: int, dim: int, seed: int = 0) -> np.ndarray[Any, Any]:
    return np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)


def _stored(emulator: Emulator, key: str, collection: str) -> dict[str, tuple[Any, Any]]:
    ids, matrix, attributes = emulator.collection_data(key, P, collection)
    assert len(ids) == len(set(ids))
    return {row_id: (matrix[k], attributes[k]) for k, row_id in enumerate(ids)}


def _assert_stored(
    emulator: Emulator,
    key: str,
    collection: str,
    ids: list[str],
    vectors: np.ndarray[Any, Any],
    attributes: list[dict[str, str]] | None = None,
) -> None:
    stored = _stored(emulator, key, collection)
    assert sorted(stored) == sorted(ids), (
        f"{len(stored)} stored for {len(ids)} rows; {len(set(stored) - set(ids))} unexpected ids"
    )
    for k, row_id in enumerate(ids):
        vector, attrs = stored[row_id]
        assert vector.tobytes() == vectors[k].tobytes(), row_id
        assert attrs == (attributes[k] if attributes is not None else {}), row_id


async def test_parquet_with_parallel_ids_stores_every_row_under_its_own_id(
    emulators: Callable[..., tuple[Emulator, str]],
    key: str,
    fresh_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    """Parquet + ``ids=`` + ``attributes=``: each record batch takes the ids and attributes
    at its own offset in the file (they used to restart at 0 for every record batch)."""
    emulator, url = emulators()
    collection = fresh_name("pq")
    n, dim = 20_000, 8
    vectors = _vectors(n, dim)
    path = tmp_path / "rows.parquet"
    pd.DataFrame({f"x{j}": vectors[:, j] for j in range(dim)}).to_parquet(path)
    ids = [f"pq-{i}" for i in range(n)]
    attributes = [{"n": str(i)} for i in range(n)]
    async with await _client(url, key, collection, dim) as client:
        report = await client.ingest(P, collection, path, ids=ids, attributes=attributes)
    assert report.complete and report.rows_sent == n
    _assert_stored(emulator, key, collection, ids, vectors, attributes)


def _write_text_input(kind: str, path: Path, vectors: np.ndarray[Any, Any]) -> Any:
    """``vectors`` as a file (or an async iterator) of rows without ids or attributes."""
    rows = [{"vector": [float(x) for x in row]} for row in vectors]
    if kind.startswith("csv"):
        header = ",".join(f"x{j}" for j in range(vectors.shape[1]))
        lines = [header, *(",".join(repr(float(x)) for x in row) for row in vectors)]
        content = ("\n".join(lines) + "\n").encode()
    elif kind.startswith("jsonl"):
        content = b"".join(orjson.dumps(row) + b"\n" for row in rows)
    elif kind == "json":
        content = orjson.dumps(rows)
    else:

        async def stream() -> AsyncIterator[dict[str, Any]]:
            for row in rows:
                yield row

        return stream()
    target = path.with_suffix("." + kind)
    target.write_bytes(gzip.compress(content) if kind.endswith(".gz") else content)
    return target


@pytest.mark.parametrize("kind", ["csv", "csv.gz", "jsonl", "jsonl.gz", "json", "async-dicts"])
async def test_parallel_ids_and_attributes_are_applied_to_every_input_kind(
    emulators: Callable[..., tuple[Emulator, str]],
    key: str,
    fresh_name: Callable[[str], str],
    tmp_path: Path,
    kind: str,
) -> None:
    """``ids=`` and ``attributes=`` next to a file or an async iterator are the rows' ids and
    attributes (they used to be ignored, and generated ids sent instead)."""
    emulator, url = emulators()
    collection = fresh_name("txt")
    n, dim = 3_000, 4
    vectors = _vectors(n, dim, seed=1)
    data = _write_text_input(kind, tmp_path / "rows", vectors)
    ids = [f"{kind}-{i}" for i in range(n)]
    attributes = [{"k": str(i % 7)} for i in range(n)]
    async with await _client(url, key, collection, dim) as client:
        report = await client.ingest(
            P, collection, data, ids=ids, attributes=attributes, max_bytes=40_000
        )
    assert report.complete and report.rows_sent == n
    _assert_stored(emulator, key, collection, ids, vectors, attributes)


async def test_an_ingest_stopped_early_reports_the_unread_rows_and_failed_rows_resends_them(
    private_emulator: Callable[..., tuple[Emulator, str]],
    key: str,
    fresh_name: Callable[[str], str],
) -> None:
    """Stopped by ``max_consecutive_failures``: the rows never read are in the report, and
    ``ingest(report.failed_rows())`` sends exactly what is missing (they were in neither)."""
    faults = FaultConfig(schedule={3: "error_500", 4: "error_500"}, endpoints=BATCHES)
    emulator, url = private_emulator(faults=faults)
    collection = fresh_name("stop")
    n, dim = 40_000, 4
    vectors = _vectors(n, dim, seed=2)
    ids = [f"s{i}" for i in range(n)]
    async with await _client(url, key, collection, dim, max_retries=0) as client:
        report = await client.ingest(
            P,
            collection,
            vectors,
            ids=ids,
            max_rows=500,
            concurrency=1,
            max_consecutive_failures=2,
            raise_on_error=False,
        )
        assert report.stopped is not None
        stored = set(_stored(emulator, key, collection))
        missing = set(ids) - stored
        assert missing == set(report.failed_ids) | {r[0] for r in report.failed_rows()}
        again = await client.ingest(P, collection, report.failed_rows())
    assert again.complete and again.rows_sent == len(missing)
    _assert_stored(emulator, key, collection, ids, vectors)


async def test_skip_mode_skips_csv_lines_that_do_not_parse_and_sends_the_rest(
    emulators: Callable[..., tuple[Emulator, str]],
    key: str,
    fresh_name: Callable[[str], str],
    tmp_path: Path,
) -> None:
    """``on_invalid="skip"``: an empty cell, an extra field or a non-number on a CSV line is
    reported with its line number; every other row lands (nothing did, before)."""
    emulator, url = emulators()
    collection = fresh_name("skip")
    n, dim = 400, 3
    vectors = _vectors(n, dim, seed=3)
    lines = ["id,x0,x1,x2"]
    lines += [f"r{i}," + ",".join(repr(float(x)) for x in row) for i, row in enumerate(vectors)]
    bad = {5: "r5,1.0,,2.0", 90: "r90,1,2,3,4", 250: "r250,1,oops,3"}
    for row, text in bad.items():
        lines[row + 1] = text
    path = tmp_path / "rows.csv"
    path.write_text("\n".join(lines) + "\n")
    async with await _client(url, key, collection, dim) as client:
        report = await client.ingest(
            P, collection, path, id_column="id", on_invalid="skip", raise_on_error=False
        )
    good = [i for i in range(n) if i not in bad]
    _assert_stored(emulator, key, collection, [f"r{i}" for i in good], vectors[good])
    assert report.rows_total == n and report.rows_sent == len(good)
    invalid = [f for f in report.failures if f.kind == "invalid"]
    assert [f.first_row for f in invalid] == sorted(bad)
    for failure, row in zip(invalid, sorted(bad)):
        assert f"line {row + 2}" in failure.error


def _csv(path: Path, vectors: np.ndarray[Any, Any]) -> Path:
    header = ",".join(f"x{j}" for j in range(vectors.shape[1]))
    body = "\n".join(",".join(repr(float(x)) for x in row) for row in vectors)
    path.write_text(f"{header}\n{body}\n")
    return path


@pytest.mark.parametrize("change", ["another-file", "twice-as-long", "flipped-digit"])
async def test_a_checkpoint_refuses_an_input_or_a_record_it_was_not_written_for(
    emulators: Callable[..., tuple[Emulator, str]],
    key: str,
    fresh_name: Callable[[str], str],
    tmp_path: Path,
    change: str,
) -> None:
    """A checkpoint of a file without ids, resumed with another file of the same length, with
    the file twice as long, or after one digit of a range record changed: refused, naming
    the checkpoint (each used to skip rows silently)."""
    emulator, url = emulators()
    collection = fresh_name("ckpt")
    dim = 4
    vectors = _vectors(1_000, dim, seed=4)
    path = _csv(tmp_path / "rows.csv", vectors)
    checkpoint = tmp_path / "rows.ckpt"
    async with await _client(url, key, collection, dim) as client:
        first = await client.ingest(
            P,
            collection,
            path,
            max_rows=100,
            concurrency=1,
            checkpoint=checkpoint,
            progress=lambda state: state.batches_sent < 3,
        )
        assert first.stopped is not None
        if change == "another-file":
            _csv(path, _vectors(1_000, dim, seed=5))
        elif change == "twice-as-long":
            _csv(path, np.concatenate([vectors, vectors]))
        else:
            lines = checkpoint.read_bytes().split(b"\n")
            assert b"[[0,100]]" in lines[1], lines[1]
            lines[1] = lines[1].replace(b"[[0,100]]", b"[[0,900]]")
            checkpoint.write_bytes(b"\n".join(lines))
        with pytest.raises(InvalidInputError) as info:
            await client.ingest(P, collection, path, max_rows=100, checkpoint=checkpoint)
    assert info.value.field == "checkpoint"
    assert len(emulator.collection_ids(key, P, collection)) == first.rows_sent


async def test_failures_hold_only_the_failed_rows_bytes(
    private_emulator: Callable[..., tuple[Emulator, str]],
    key: str,
    fresh_name: Callable[[str], str],
) -> None:
    """With every other batch failing, the report holds at most 1.2x the encoded bytes of
    the failed rows (it used to keep every encoded chunk a failed batch touched alive)."""
    faults = FaultConfig(schedule=dict.fromkeys(range(2, 400, 2), "error_500"), endpoints=BATCHES)
    _, url = private_emulator(faults=faults)
    collection = fresh_name("mem")
    n, dim = 12_000, 128
    vectors = _vectors(n, dim, seed=6)
    ids = [f"m{i}" for i in range(n)]
    async with await _client(url, key, collection, dim, max_retries=0) as client:
        tracemalloc.start()
        try:
            report: Any = await client.ingest(
                P,
                collection,
                vectors,
                ids=ids,
                max_bytes=64 * 1024,
                concurrency=1,
                max_consecutive_failures=10**6,
                raise_on_error=False,
            )
            failed = report.failed_ids  # before measuring: this list outlives the report
            gc.collect()
            held = tracemalloc.get_traced_memory()[0]
            del report
            gc.collect()
            retained = held - tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    position = {row_id: k for k, row_id in enumerate(ids)}
    numpy = orjson.OPT_SERIALIZE_NUMPY
    encoded = sum(
        len(orjson.dumps(i)) + len(orjson.dumps(vectors[position[i]], option=numpy)) for i in failed
    )
    assert len(failed) > n // 3
    assert retained <= 1.2 * encoded, f"the report held {retained:,} bytes for {encoded:,}"


async def test_a_retried_batch_that_landed_is_not_a_conflict_on_a_reject_duplicates_server(
    private_emulator: Callable[..., tuple[Emulator, str]],
    key: str,
    fresh_name: Callable[[str], str],
) -> None:
    """Against ``duplicate_ids="reject"``, the retry of a batch applied before its connection
    dropped is refused as a duplicate of exactly its own ids: it counts as landed (the ingest
    used to abort with a ConflictError)."""
    faults = FaultConfig(schedule={2: "drop_after_apply"}, endpoints=BATCHES)
    emulator, url = private_emulator(duplicate_ids="reject", faults=faults)
    collection = fresh_name("rej")
    n, dim = 2_000, 4
    vectors = _vectors(n, dim, seed=7)
    ids = [f"d{i}" for i in range(n)]
    async with await _client(url, key, collection, dim) as client:
        report = await client.ingest(P, collection, vectors, ids=ids, max_rows=200, concurrency=1)
    assert report.complete and report.rows_sent == n
    _assert_stored(emulator, key, collection, ids, vectors)
