"""Inputs of ingest: files (CSV, JSON lines, JSON, .npy, Parquet), frames, and their errors."""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
import respx

from vecml_async import AsyncVecML, InvalidInputError
from vecml_async._ingest.files import file_format_of


class Recorder:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.bodies.append(orjson.loads(request.content))
        return httpx.Response(200, json={"success": True, "job_id": "j"})

    def rows(self) -> list[tuple[str, list[float], dict[str, str]]]:
        out = []
        for body in self.bodies:
            attrs = body.get("attributes", [{}] * len(body["data"]))
            out.extend(zip(body["string_ids"], body["data"], attrs))
        return out


@pytest.fixture
def server(base_url: str) -> Iterator[Recorder]:
    recorder = Recorder()
    with respx.mock(base_url=base_url, assert_all_called=False) as mock:
        mock.post("/add_data_batch").mock(side_effect=recorder)
        yield recorder


def write_csv(path: Path, rows: int, gz: bool = False) -> None:
    lines = ["id,label,x0,x1,x2,color"]
    lines += [f"r{i},{i % 2},{i}.5,{-i},0.25,{'red' if i % 3 else ''}" for i in range(rows)]
    text = "\n".join(lines) + "\n"
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())


@pytest.mark.parametrize("gz", [False, True])
async def test_csv_columns_become_ids_attributes_and_vectors(
    server: Recorder, client: AsyncVecML, tmp_path: Path, gz: bool
) -> None:
    """id_column, attribute_columns and the remaining numeric columns; empty cells omitted."""
    path = tmp_path / ("data.csv.gz" if gz else "data.csv")
    write_csv(path, 3000, gz)
    report = await client.ingest(
        "p",
        "c",
        path,
        id_column="id",
        attribute_columns=["label", "color"],
        max_bytes=50_000,
    )
    assert report.rows_sent == 3000 and len(server.bodies) > 1
    rows = server.rows()
    assert rows[1] == ("r1", [1.5, -1.0, 0.25], {"label": "1", "color": "red"})
    assert rows[3] == ("r3", [3.5, -3.0, 0.25], {"label": "1"})


async def test_csv_errors_name_the_line(
    server: Recorder, client: AsyncVecML, tmp_path: Path
) -> None:
    """A non-numeric vector cell or a short line is refused with its line number."""
    path = tmp_path / "bad.csv"
    path.write_text("id,x\na,1\nb,oops\n")
    with pytest.raises(InvalidInputError, match="line 3"):
        await client.ingest("p", "c", path, id_column="id")
    path.write_text("id,x,y\na,1,2\nb,3\n")
    with pytest.raises(InvalidInputError, match="line 3 has 2 fields"):
        await client.ingest("p", "c", path, id_column="id")
    with pytest.raises(InvalidInputError, match="no column 'nope'"):
        await client.ingest("p", "c", path, id_column="nope")
    assert server.bodies == []


async def test_json_lines_and_json_arrays(
    server: Recorder, client: AsyncVecML, tmp_path: Path
) -> None:
    """JSON lines stream row dicts; a .json file holds an array of them."""
    records = [{"id": f"j{i}", "vector": [i, 1.0], "attributes": {"k": i}} for i in range(20)]
    (tmp_path / "a.jsonl").write_bytes(b"\n".join(orjson.dumps(r) for r in records) + b"\n\n")
    (tmp_path / "b.json").write_bytes(orjson.dumps(records))
    await client.ingest("p", "c", tmp_path / "a.jsonl")
    await client.ingest("p", "c2", tmp_path / "b.json")
    rows = server.rows()
    assert rows[0] == rows[20] == ("j0", [0, 1.0], {"k": "0"})
    (tmp_path / "bad.jsonl").write_text('{"id": "x", "vector": [1]}\n{oops\n')
    with pytest.raises(InvalidInputError, match="line 2 is not JSON"):
        await client.ingest("p", "c", tmp_path / "bad.jsonl")


async def test_npy_is_read_memory_mapped_in_chunks(
    server: Recorder, client: AsyncVecML, tmp_path: Path
) -> None:
    """A .npy file is ingested without loading it whole; ids can be passed alongside."""
    array = np.random.default_rng(0).standard_normal((5000, 16)).astype(np.float32)
    np.save(tmp_path / "v.npy", array)
    ids = [f"n{i}" for i in range(5000)]
    report = await client.ingest("p", "c", tmp_path / "v.npy", ids=ids, max_bytes=100_000)
    assert report.rows_sent == 5000
    rows = server.rows()
    assert [r[0] for r in rows] == ids
    np.testing.assert_array_equal(np.asarray([r[1] for r in rows], dtype=np.float32), array)


async def test_parquet_with_a_vector_list_column(
    server: Recorder, client: AsyncVecML, tmp_path: Path
) -> None:
    """Parquet rows with a list-valued vector column and attribute columns."""
    frame = pd.DataFrame(
        {
            "id": [f"q{i}" for i in range(100)],
            "emb": [[float(i), 2.0, 3.0] for i in range(100)],
            "label": [i % 2 for i in range(100)],
        }
    )
    frame.to_parquet(tmp_path / "d.parquet")
    await client.ingest(
        "p",
        "c",
        tmp_path / "d.parquet",
        id_column="id",
        vector_columns="emb",
        attribute_columns=["label"],
    )
    assert server.rows()[5] == ("q5", [5.0, 2.0, 3.0], {"label": "1"})


async def test_dataframe_numeric_columns_and_missing_attributes(
    server: Recorder, client: AsyncVecML
) -> None:
    """A frame's numeric columns are the vector; NaN attribute cells leave the attribute out."""
    frame = pd.DataFrame(
        {
            "id": ["a", "b"],
            "x": [1.0, 2.0],
            "y": [3.0, 4.0],
            "cat": ["u", None],
            "score": [0.5, float("nan")],
        }
    )
    await client.ingest("p", "c", frame, id_column="id", attribute_columns=["cat", "score"])
    assert server.rows() == [("a", [1.0, 3.0], {"cat": "u", "score": "0.5"}), ("b", [2.0, 4.0], {})]
    with pytest.raises(InvalidInputError, match="not numeric"):
        await client.ingest("p", "c", frame, id_column="id")


async def test_missing_extra_names_what_to_install(
    server: Recorder, client: AsyncVecML, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without pyarrow, a Parquet input says which extra installs it."""
    (tmp_path / "d.parquet").write_bytes(b"PAR1")
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
    with pytest.raises(ImportError, match=r"vecml-async\[parquet\]"):
        await client.ingest("p", "c", tmp_path / "d.parquet")


@pytest.mark.parametrize(
    ("name", "given", "expected"),
    [
        ("a.csv", None, ("csv", False)),
        ("a.CSV.gz", None, ("csv", True)),
        ("a.ndjson", None, ("jsonl", False)),
        ("a.txt", "csv", ("csv", False)),
    ],
)
def test_file_format_from_name_or_option(
    name: str, given: str | None, expected: tuple[str, bool]
) -> None:
    """The format comes from file_format= or the file name (.gz noted)."""
    assert file_format_of(name, given) == expected


async def test_unknown_formats_and_missing_files_are_refused(
    server: Recorder, client: AsyncVecML, tmp_path: Path
) -> None:
    """An unknown extension, an unknown format name and a missing file are input errors."""
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(InvalidInputError, match="file_format"):
        await client.ingest("p", "c", tmp_path / "a.txt")
    with pytest.raises(InvalidInputError, match="unknown file format"):
        await client.ingest("p", "c", tmp_path / "a.txt", file_format="xlsx")
    with pytest.raises(InvalidInputError, match="no such file"):
        await client.ingest("p", "c", tmp_path / "missing.csv")
    assert server.bodies == []


def _items(path: Path, **columns: Any) -> list[Any]:
    from vecml_async._ingest.files import open_file
    from vecml_async._ingest.frames import Columns

    return list(open_file(str(path), None, Columns(**columns), False, 1 << 20).items())


@pytest.mark.parametrize("gz", [False, True])
def test_csv_lines_that_do_not_parse_are_row_errors_with_their_line(
    tmp_path: Path, gz: bool
) -> None:
    """An empty cell, an extra field, a missing field or a non-number: one RowError each, at
    the row's index and line, with the id when it can be read; blank lines hold no row."""
    from vecml_async._ingest.chunks import RawChunk, RowError

    text = "id,x,y\na,1,2\nb,,2\n\nc,1,2,3\nd,1\ne,1,oops\nf,3,4\n"
    path = tmp_path / ("r.csv.gz" if gz else "r.csv")
    path.write_bytes(gzip.compress(text.encode()) if gz else text.encode())
    items = _items(path, id_column="id")
    errors = [(i.index, i.line, i.row_id) for i in items if isinstance(i, RowError)]
    assert errors == [(1, 3, "b"), (2, 5, "c"), (3, 6, "d"), (4, 7, "e")]
    messages = [i.message for i in items if isinstance(i, RowError)]
    assert "line 3: column 'x' is empty" in messages[0]
    assert "line 5 has 4 fields, the header 3" in messages[1]
    assert "'oops', not a number" in messages[3]
    chunks = [(i.start, i.ids) for i in items if isinstance(i, RawChunk)]
    assert chunks == [(0, ["a"]), (5, ["f"])]


def test_json_lines_that_are_not_json_are_row_errors_with_their_line(tmp_path: Path) -> None:
    """A JSON line that does not parse keeps its place; the lines around it are rows."""
    from vecml_async._ingest.chunks import RawChunk, RowError

    path = tmp_path / "r.jsonl"
    path.write_text('{"vector": [1]}\n{oops\n\n{"vector": [2]}\n')
    items = _items(path)
    assert [type(i).__name__ for i in items] == ["RawChunk", "RowError", "RawChunk"]
    bad = items[1]
    assert isinstance(bad, RowError) and (bad.index, bad.line) == (1, 2)
    assert isinstance(items[2], RawChunk) and items[2].start == 2


def test_a_file_fingerprint_changes_with_the_file(tmp_path: Path) -> None:
    """Path, size, time and end blocks: a rewritten file is another input."""
    import os

    from vecml_async._ingest.fingerprint import file_fingerprint

    path = tmp_path / "r.csv"
    path.write_text("x\n1\n")
    first = file_fingerprint(str(path), "csv")
    assert file_fingerprint(str(path), "csv") == first
    path.write_text("x\n2\n")
    os.utime(path, ns=(first["mtime_ns"], first["mtime_ns"]))  # same size and time
    changed = file_fingerprint(str(path), "csv")
    assert changed["head"] != first["head"] and changed["size"] == first["size"]
