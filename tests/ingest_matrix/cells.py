"""Cells of the differential matrix: an input kind x how ids come x how attributes come.

``Cell`` is plain data (JSON-able, so a forked child can run the same cell); :func:`prepare`
writes a cell's files (once, in the parent: a checkpoint remembers a file's mtime), and
:func:`build` gives the ``data`` and ``ingest`` options of a cell, or the fields one of which
the refusal must name. :func:`expected` is what the emulator must hold afterwards.

Ids: ``generated`` (none given), ``parallel`` (``ids=``), ``own`` (an id column or ids in the
rows), ``both`` (parallel and own: refused). Attributes likewise, with ``none`` instead of
``generated``. Where an input kind cannot hold its own ids or attributes (arrays, lists of
vectors, sparse matrices, ``.npy``; tuples without ids), ``own`` is asked for the only way
there is, column options, and the cell expects the refusal naming them.
"""

from __future__ import annotations

import gzip
import random
from collections.abc import AsyncIterator, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import orjson

DIM = 4
KINDS = (
    "array",
    "vectors",
    "tuples",
    "dicts",
    "async-dicts",
    "frame",
    "sparse",
    "csv",
    "csv.gz",
    "jsonl",
    "jsonl.gz",
    "json",
    "json.gz",
    "npy",
    "parquet",
)
IDS = ("generated", "parallel", "own", "both")
ATTRIBUTES = ("none", "parallel", "own", "both")
#: Kinds whose rows can hold their own ids / attributes.
OWN_IDS = {"tuples", "dicts", "async-dicts", "frame", "csv", "csv.gz", "jsonl", "jsonl.gz"}
OWN_IDS |= {"json", "json.gz", "parquet"}
OWN_ATTRIBUTES = OWN_IDS
COLUMNAR = {"frame", "csv", "csv.gz", "parquet"}


@dataclass(frozen=True)
class Cell:
    """One cell, with the sizes drawn for it (rows, chunk, batch limits, concurrency)."""

    kind: str
    ids: str
    attributes: str
    rows: int
    chunk_bytes: int
    max_rows: int
    max_bytes: int
    concurrency: int
    seed: int

    @property
    def name(self) -> str:
        return f"{self.kind}-{self.ids}-{self.attributes}"

    @property
    def collection(self) -> str:
        return "m" + "".join(c if c.isalnum() else "_" for c in self.name)

    def as_json(self) -> str:
        return orjson.dumps(asdict(self)).decode()

    @classmethod
    def from_json(cls, text: str | bytes) -> Cell:
        return cls(**orjson.loads(text))

    @classmethod
    def draw(cls, kind: str, ids: str, attributes: str, rng: random.Random) -> Cell:
        rows = rng.randint(40, 160)
        return cls(
            kind,
            ids,
            attributes,
            rows,
            chunk_bytes=rng.randint(200, 1500),  # 2 to 15 rows a chunk
            max_rows=rng.randint(3, rows // 4),
            max_bytes=rng.randint(700, 3000),
            concurrency=rng.randint(1, 3),
            seed=rng.randrange(2**31),
        )


def refusal(cell: Cell) -> set[str]:
    """The fields one of which the cell's refusal names (empty: the cell must succeed)."""
    fields: set[str] = set()
    if cell.ids == "both":
        fields |= {"ids", "id_column"}
    if cell.attributes == "both":
        fields |= {"attributes", "attribute_columns"}
    if cell.ids == "own" and cell.kind not in OWN_IDS:
        fields.add("id_column")
    if cell.attributes == "own" and not _own_attributes_possible(cell):
        fields.add("attribute_columns")
    return fields


def _own_attributes_possible(cell: Cell) -> bool:
    # A tuple row starts with its id: without ids in the rows, tuples carry no attributes.
    tuples_without_ids = cell.kind == "tuples" and cell.ids not in ("own", "both")
    return cell.kind in OWN_ATTRIBUTES and not tuples_without_ids


# ----------------------------------------------------------------------------- content


def vectors(cell: Cell) -> np.ndarray[Any, Any]:
    rng = np.random.default_rng(cell.seed)
    data = rng.standard_normal((cell.rows, DIM)).astype(np.float32)
    data[data == 0] = 1.0  # a sparse matrix would drop zeros
    return data


def own_ids(cell: Cell) -> list[str]:
    return [f"own-{cell.seed}-{i}" for i in range(cell.rows)]


def parallel_ids(cell: Cell) -> list[str]:
    return [f"par-{cell.seed}-{i}" for i in range(cell.rows)]


def attributes(cell: Cell) -> list[dict[str, str]]:
    """Per-row attributes; every seventh row has none (an empty cell, a missing key)."""
    return [{} if i % 7 == 0 else {"label": f"a{(i * 3) % 5}"} for i in range(cell.rows)]


def expected(cell: Cell, prefix: str | None) -> tuple[list[str], Any, list[dict[str, str]]]:
    """The ids, vectors and attributes the collection must hold after the cell."""
    if cell.ids == "parallel":
        ids = parallel_ids(cell)
    elif cell.ids == "own":
        ids = own_ids(cell)
    else:
        assert prefix is not None
        ids = [f"{prefix}{i}" for i in range(cell.rows)]
    attrs = attributes(cell) if cell.attributes != "none" else [{} for _ in range(cell.rows)]
    return ids, vectors(cell), attrs


# ----------------------------------------------------------------------------- inputs


def _path(cell: Cell, tmp: Path) -> Path:
    suffix = {"parquet": "parquet", "npy": "npy"}.get(cell.kind, cell.kind)
    return tmp / f"{cell.collection}.{suffix}"


def _row_dicts(cell: Cell, with_ids: bool, with_attrs: bool) -> list[dict[str, Any]]:
    out = []
    for i, vector in enumerate(vectors(cell).tolist()):
        row: dict[str, Any] = {"vector": vector}
        if with_ids:
            row["id"] = own_ids(cell)[i]
        if with_attrs and attributes(cell)[i]:
            row["attributes"] = attributes(cell)[i]
        out.append(row)
    return out


def _text(cell: Cell, with_ids: bool, with_attrs: bool) -> bytes:
    base = cell.kind.removesuffix(".gz")
    if base == "csv":
        header = (["id"] if with_ids else []) + [f"x{j}" for j in range(DIM)]
        header += ["label"] if with_attrs else []
        lines = [",".join(header)]
        for i, vector in enumerate(vectors(cell).tolist()):
            cells = ([own_ids(cell)[i]] if with_ids else []) + [repr(x) for x in vector]
            cells += [attributes(cell)[i].get("label", "")] if with_attrs else []
            lines.append(",".join(cells))
        return ("\n".join(lines) + "\n").encode()
    rows = _row_dicts(cell, with_ids, with_attrs)
    if base == "jsonl":
        return b"".join(orjson.dumps(row) + b"\n" for row in rows)
    return orjson.dumps(rows)


def _frame(cell: Cell, with_ids: bool, with_attrs: bool) -> Any:
    import pandas as pd

    data = vectors(cell)
    columns: dict[str, Any] = {}
    if with_ids:
        columns["id"] = own_ids(cell)
    columns |= {f"x{j}": data[:, j] for j in range(DIM)}
    if with_attrs:
        columns["label"] = [a.get("label") for a in attributes(cell)]
    return pd.DataFrame(columns)


def prepare(cell: Cell, tmp: Path) -> None:
    """Write the cell's file, if it reads one."""
    with_ids = cell.ids in ("own", "both")
    with_attrs = cell.attributes in ("own", "both")
    path = _path(cell, tmp)
    if cell.kind == "npy":
        np.save(path, vectors(cell))
    elif cell.kind == "parquet":
        _frame(cell, with_ids, with_attrs).to_parquet(path)
    elif cell.kind in ("csv", "csv.gz", "jsonl", "jsonl.gz", "json", "json.gz"):
        content = _text(cell, with_ids, with_attrs)
        path.write_bytes(gzip.compress(content) if cell.kind.endswith(".gz") else content)


def build(cell: Cell, tmp: Path) -> tuple[Any, dict[str, Any]]:
    """``(data, ingest options)`` of the cell (its file written by :func:`prepare`)."""
    with_ids = cell.ids in ("own", "both")
    with_attrs = cell.attributes in ("own", "both")
    options: dict[str, Any] = {
        "chunk_bytes": cell.chunk_bytes,
        "max_rows": cell.max_rows,
        "max_bytes": cell.max_bytes,
        "concurrency": cell.concurrency,
    }
    if cell.ids in ("parallel", "both"):
        options["ids"] = parallel_ids(cell)
    if cell.attributes in ("parallel", "both"):
        options["attributes"] = attributes(cell)
    if cell.kind in COLUMNAR:
        if with_ids:
            options["id_column"] = "id"
        if with_attrs:
            options["attribute_columns"] = ["label"]
    else:
        if with_ids and cell.kind not in OWN_IDS:
            options["id_column"] = "id"
        if with_attrs and not _own_attributes_possible(cell):
            options["attribute_columns"] = ["label"]
    return _data(cell, tmp, with_ids, with_attrs), options


def _data(cell: Cell, tmp: Path, with_ids: bool, with_attrs: bool) -> Any:
    data = vectors(cell)
    if cell.kind == "array":
        return data
    if cell.kind == "vectors":
        return data.tolist()
    if cell.kind == "sparse":
        import scipy.sparse

        return scipy.sparse.csr_matrix(data)
    if cell.kind == "frame":
        return _frame(cell, with_ids, with_attrs)
    if cell.kind == "tuples":
        return _tuples(cell, with_ids, with_attrs)
    if cell.kind == "dicts":
        return iter(_row_dicts(cell, with_ids, with_attrs))
    if cell.kind == "async-dicts":
        return _async_rows(_row_dicts(cell, with_ids, with_attrs))
    return _path(cell, tmp)


def _tuples(cell: Cell, with_ids: bool, with_attrs: bool) -> Iterator[Any]:
    """Tuple rows when they have ids; bare vectors otherwise (a tuple starts with its id)."""
    for i, vector in enumerate(vectors(cell).tolist()):
        if not with_ids:
            yield vector
        elif with_attrs:
            yield own_ids(cell)[i], vector, attributes(cell)[i]
        else:
            yield own_ids(cell)[i], vector


async def _async_rows(rows: list[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    for row in rows:
        yield row
