"""Files with lines that do not parse, ingested with ``on_invalid="skip"`` (property-based):
wherever the bad lines are and however the rows are cut into chunks and batches, every good
row lands with its id and vector, every bad line is reported at its row and line number, and
the report adds up to the file's rows."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecml_async import AsyncVecML
from vecml_async.emulator import Emulator, EmulatorSettings, run_in_thread

KEY = "vml_ingest_bad_lines_key"
_NAMES = itertools.count()
BAD_CSV = ("r,1.0,,2.0", "r,1,2,3,4", "r,1,oops,3", "r,1")
BAD_JSONL = ("{oops", '{"id": "r"', "[1, 2")


def _content(kind: str, n: int, bad: dict[int, int]) -> tuple[bytes, list[float]]:
    data = np.random.default_rng(n).standard_normal((n, 3)).astype(np.float32)
    lines = ["id,x0,x1,x2"] if kind.startswith("csv") else []
    for i, row in enumerate(data.tolist()):
        if i in bad:
            options = BAD_CSV if kind.startswith("csv") else BAD_JSONL
            lines.append(options[bad[i] % len(options)])
        elif kind.startswith("csv"):
            lines.append(f"r{i}," + ",".join(repr(x) for x in row))
        else:
            lines.append(orjson.dumps({"id": f"r{i}", "vector": row}).decode())
    text = ("\n".join(lines) + "\n").encode()
    return (gzip.compress(text) if kind.endswith(".gz") else text), data


@settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    kind=st.sampled_from(["csv", "csv.gz", "jsonl", "jsonl.gz"]),
    n=st.integers(5, 120),
    data=st.data(),
    chunk_bytes=st.integers(100, 3000),
    max_rows=st.integers(1, 30),
)
def test_bad_lines_are_skipped_in_place_wherever_they_are(
    tmp_path_factory: Any, kind: str, n: int, data: st.DataObject, chunk_bytes: int, max_rows: int
) -> None:
    """Skip mode: the good rows land, each bad line is one failure at its row and line."""
    bad = data.draw(
        st.dictionaries(st.integers(0, n - 1), st.integers(0, 9), max_size=max(1, n // 3)),
        label="bad rows",
    )
    content, vectors = _content(kind, n, bad)
    path = tmp_path_factory.mktemp("lines") / f"rows.{kind}"
    path.write_bytes(content)
    collection = f"bad{next(_NAMES)}"
    emulator = Emulator(EmulatorSettings())
    with run_in_thread(emulator) as url:
        report = anyio.run(_ingest, url, path, collection, chunk_bytes, max_rows)
    good = [i for i in range(n) if i not in bad]
    ids, matrix, _ = emulator.collection_data(KEY, "p", collection)
    assert sorted(ids) == sorted(f"r{i}" for i in good)
    position = {row_id: k for k, row_id in enumerate(ids)}
    order = [position[f"r{i}"] for i in good]
    assert np.asarray(matrix)[order].tobytes() == vectors[good].tobytes()
    invalid = [f for f in report.failures if f.kind == "invalid"]
    assert [f.first_row for f in invalid] == sorted(bad)
    header = 1 if kind.startswith("csv") else 0
    for failure in invalid:
        assert f"line {failure.first_row + 1 + header}" in failure.error
    assert report.rows_total == n == report.rows_sent + report.failed_row_count
    assert report.rows_unread == 0


async def _ingest(url: str, path: Path, collection: str, chunk_bytes: int, max_rows: int) -> Any:
    async with AsyncVecML(KEY, base_url=url, rate_limit=None) as client:
        await client.create_project("p", exist_ok=True)
        await client.init("p", collection, vector_dim=3)
        return await client.ingest(
            "p",
            collection,
            path,
            id_column="id" if path.name.startswith("rows.csv") else None,
            on_invalid="skip",
            raise_on_error=False,
            chunk_bytes=chunk_bytes,
            max_rows=max_rows,
        )
