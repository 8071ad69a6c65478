"""The source contract, for every input kind: items cover the input's rows in order at their
absolute offsets, a row that does not parse keeps its place, and reading again from any row
gives the same rows from there (property-based)."""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import anyio
import numpy as np
import orjson
import pandas as pd
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecml_async._ingest.chunks import RawChunk, RowError, RowParser, Source
from vecml_async._ingest.frames import Columns
from vecml_async._ingest.inputs import ReadOptions, open_source
from vecml_async.errors import InvalidInputError

SMALL = ReadOptions(chunk_bytes=300)  # a few rows per chunk: every input crosses chunks


def _rows_of(item: RawChunk) -> list[tuple[int, Any, Any, Any]]:
    vectors = item.vectors
    if hasattr(vectors, "toarray"):
        vectors = vectors.toarray()
    out = []
    for k in range(len(item)):
        vector = [float(x) for x in vectors[k]]
        row_id = item.ids[k] if item.ids is not None else None
        attrs = item.attributes[k] if item.attributes is not None else None
        out.append((item.start + k, vector, row_id, attrs))
    return out


def _read(source: Source, start: int = 0) -> list[tuple[int, Any, Any, Any]]:
    rows: list[tuple[int, Any, Any, Any]] = []
    position = start
    for item in source.items(start):
        first = item.index if isinstance(item, RowError) else item.start
        assert first == position, "items must follow each other without gaps"
        if isinstance(item, RowError):
            rows.append((item.index, "error", item.line, None))
        else:
            rows.extend(_rows_of(item))
        position = item.stop
    return rows


def _matrix(n: int, dim: int = 3) -> np.ndarray[Any, Any]:
    return np.arange(n * dim, dtype=np.float32).reshape(n, dim) / 4


def _inputs(n: int, tmp: Path) -> dict[str, Callable[[], Any]]:
    m = _matrix(n)
    frame = pd.DataFrame({"id": [f"f{i}" for i in range(n)], "x": m[:, 0], "y": m[:, 1]})
    csv = "id,x,y,z\n" + "".join(f"c{i},{r[0]},{r[1]},{r[2]}\n" for i, r in enumerate(m))
    jsonl = b"".join(
        orjson.dumps({"id": f"j{i}", "vector": r.tolist()}) + b"\n" for i, r in enumerate(m)
    )
    (tmp / "r.csv").write_text(csv)
    (tmp / "r.csv.gz").write_bytes(gzip.compress(csv.encode()))
    (tmp / "r.jsonl").write_bytes(jsonl)
    (tmp / "r.json").write_bytes(orjson.dumps([{"vector": r.tolist()} for r in m]))
    np.save(tmp / "r.npy", m)
    frame.to_parquet(tmp / "r.parquet")
    return {
        "array": lambda: m,
        "sparse": lambda: sp.csr_matrix(m),
        "vectors": lambda: m.tolist(),
        "tuples": lambda: [(f"t{i}", r.tolist(), {"k": str(i)}) for i, r in enumerate(m)],
        "dicts": lambda: [{"vector": r.tolist()} for r in m],
        "frame": lambda: frame,
        "csv": lambda: tmp / "r.csv",
        "csv.gz": lambda: tmp / "r.csv.gz",
        "jsonl": lambda: tmp / "r.jsonl",
        "json": lambda: tmp / "r.json",
        "npy": lambda: tmp / "r.npy",
        "parquet": lambda: tmp / "r.parquet",
    }


def _options(kind: str) -> ReadOptions:
    if kind in ("csv", "csv.gz", "frame", "parquet"):
        return ReadOptions(columns=Columns(id_column="id"), chunk_bytes=300)
    return ReadOptions(sparse=kind == "sparse", chunk_bytes=300)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(n=st.integers(1, 40), data=st.data())
def test_every_kind_reads_its_rows_at_their_offsets_and_again_from_any_row(
    tmp_path_factory: pytest.TempPathFactory, n: int, data: st.DataObject
) -> None:
    """Row k of any input is item row k; reading from row s gives rows s.. exactly."""
    tmp = tmp_path_factory.mktemp("inputs")
    expected = _matrix(n).tolist()
    for kind, make in _inputs(n, tmp).items():
        source = open_source(make(), _options(kind))
        rows = _read(source)
        assert [r[0] for r in rows] == list(range(n)), kind
        assert [r[1] for r in rows] == [v[: len(r[1])] for v, r in zip(expected, rows)], kind
        if source.length is not None:
            assert source.length == n, kind
        start = data.draw(st.integers(0, n), label=f"start ({kind})")
        assert source.rereadable, kind
        assert _read(source, start) == rows[start:], kind


def test_iterators_are_read_once_and_async_iterables_on_the_loop() -> None:
    """A generator is a one-shot source of unknown length; an async generator is read with
    aitems() only."""
    gen = open_source((r for r in _matrix(10).tolist()), SMALL)
    assert not gen.rereadable and gen.length is None
    assert [r[0] for r in _read(gen)] == list(range(10))

    async def rows() -> AsyncIterator[list[float]]:
        for r in _matrix(10).tolist():
            yield r

    source = open_source(rows(), SMALL)

    async def collect() -> list[int]:
        return [row[0] for item in [i async for i in source.aitems()] for row in _rows_of(item)]  # type: ignore[arg-type]

    assert anyio.run(collect) == list(range(10))
    with pytest.raises(RuntimeError):
        list(source.items())


def test_rows_that_break_the_id_rule_are_row_errors_in_place() -> None:
    """The first row decides whether rows carry ids; a row breaking it, or a dict without a
    vector, is a RowError at its index, and the rows around it go on."""
    parser = RowParser(sparse=False)
    rows = [("a", [1.0]), ("b", [2.0]), [3.0], {"id": "d"}, ("e", [5.0])]
    items = list(parser.parse(10, rows))
    kinds = [
        (
            type(i).__name__,
            i.start if isinstance(i, RawChunk) else i.index,
            len(i) if isinstance(i, RawChunk) else 1,
        )
        for i in items
    ]
    assert kinds == [
        ("RawChunk", 10, 2),
        ("RowError", 12, 1),
        ("RowError", 13, 1),
        ("RawChunk", 14, 1),
    ]
    assert "no id" in items[1].message and "vector" in items[2].message  # type: ignore[union-attr]
    assert items[-1].ids == ["e"]  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("data", "options", "field"),
    [
        (_matrix(2), ReadOptions(columns=Columns(id_column="id")), "id_column"),
        ([[1.0]], ReadOptions(columns=Columns(attribute_columns=("a",))), "attribute_columns"),
        (_matrix(2), ReadOptions(file_format="csv"), "file_format"),
        (5, ReadOptions(), "data"),
        (np.ones((2, 2, 2)), ReadOptions(), "data"),
    ],
)
def test_inputs_refuse_options_they_cannot_honour(
    data: Any, options: ReadOptions, field: str
) -> None:
    """Column options without columns, file_format without a file: refused, never ignored."""
    with pytest.raises(InvalidInputError) as info:
        open_source(data, options)
    assert info.value.field == field


def test_in_memory_fingerprints_follow_the_content() -> None:
    """Same content, same fingerprint and identity; one changed value changes both."""
    m = _matrix(100)
    changed = m.copy()
    changed[50, 1] += 1
    a, b, c = (open_source(x, SMALL) for x in (m, m.copy(), changed))
    assert a.fingerprint() == b.fingerprint() and a.identity() == b.identity()
    assert a.identity() != c.identity()
    assert open_source(m[:99], SMALL).fingerprint() != a.fingerprint()
    assert open_source(m.tolist(), SMALL).identity() is None  # lists: too costly to hash
