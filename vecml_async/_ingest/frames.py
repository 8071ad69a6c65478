"""Columns: pandas DataFrames as sources, and the column plan CSV and Parquet files share.

``id_column`` gives the ids, ``attribute_columns`` the attributes, and ``vector_columns`` the
vector (default: every other column). A single vector column may hold whole vectors (lists
or arrays per cell); otherwise each vector column holds one number per row. Chunks are cut
from the frame as they are read, so only one chunk's vectors exist as an array at a time.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from vecml_async._ingest.chunks import CHUNK_BYTES, Item, RawChunk, Source, require, rows_per_chunk
from vecml_async._ingest.fingerprint import digest, memory_fingerprint, sample_indices
from vecml_async.errors import InvalidInputError


@dataclass(frozen=True)
class Columns:
    """Which columns of a frame or file hold what (names as given by the caller)."""

    vector_columns: tuple[str, ...] | None = None
    id_column: str | None = None
    attribute_columns: tuple[str, ...] = ()

    @property
    def given(self) -> bool:
        return bool(self.first_given())

    def first_given(self) -> str:
        """The name of the first column option given (``""``: none)."""
        if self.vector_columns is not None:
            return "vector_columns"
        if self.id_column is not None:
            return "id_column"
        return "attribute_columns" if self.attribute_columns else ""


@dataclass(frozen=True)
class ColumnPlan:
    """Positions of the id column, the attribute columns and the vector columns."""

    id_at: int | None
    attributes: tuple[tuple[str, int], ...]
    vectors: tuple[int, ...]


def column_plan(header: Sequence[str], columns: Columns) -> ColumnPlan:
    """The plan for a header; a named column that is missing is refused, naming the option."""
    position = {name: j for j, name in enumerate(header)}

    def find(name: str, option: str) -> int:
        if name not in position:
            raise InvalidInputError(f"no column {name!r} in the header", field=option)
        return position[name]

    id_at = find(columns.id_column, "id_column") if columns.id_column else None
    attrs = tuple((name, find(name, "attribute_columns")) for name in columns.attribute_columns)
    if columns.vector_columns is not None:
        vectors = tuple(find(name, "vector_columns") for name in columns.vector_columns)
    else:
        taken = {id_at, *(j for _, j in attrs)}
        vectors = tuple(j for j in range(len(header)) if j not in taken)
    if not vectors:
        raise InvalidInputError("no vector columns left", field="vector_columns")
    return ColumnPlan(id_at, attrs, vectors)


def drop_missing(record: dict[Any, Any]) -> dict[str, Any]:
    """Attributes of a frame row; missing values (None, NaN, NA) leave the attribute out."""
    out = {}
    for key, value in record.items():
        if value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if type(value).__name__ in ("NAType", "NaTType"):
            continue
        out[str(key)] = value
    return out


class FramePlan:
    """How one frame's columns become chunks (shared by DataFrames and Parquet batches)."""

    def __init__(self, frame: Any, columns: Columns) -> None:
        labels = list(frame.columns)  # matched by their text, used as they are
        plan = column_plan([str(c) for c in labels], columns)
        self.id_name = labels[plan.id_at] if plan.id_at is not None else None
        self.attr_names = [labels[j] for _, j in plan.attributes]
        self.vec_names = [labels[j] for j in plan.vectors]
        self.cells = len(self.vec_names) == 1 and frame[self.vec_names[0]].dtype == object
        if not self.cells:
            for name in self.vec_names:
                if frame[name].dtype.kind not in "fiu":
                    raise InvalidInputError(
                        f"column {name!r} is not numeric; list it in attribute_columns",
                        field="vector_columns",
                    )

    def dim(self, frame: Any) -> int | None:
        if not self.cells:
            return len(self.vec_names)
        first: Any = frame[self.vec_names[0]].iloc[0] if len(frame) else None
        return len(first) if hasattr(first, "__len__") else None

    def chunk(self, frame: Any, offset: int) -> RawChunk:
        """All rows of ``frame`` (a slice of the input) as the chunk starting at ``offset``."""
        if self.cells:
            np = require("numpy", "pandas")
            cells = frame[self.vec_names[0]].to_list()
            try:
                vectors = np.stack([np.asarray(c) for c in cells])
            except ValueError:
                raise InvalidInputError(
                    f"column {self.vec_names[0]!r} holds vectors of different lengths",
                    field="data",
                    index=offset,
                ) from None
        else:
            vectors = frame[self.vec_names].to_numpy()
        ids = frame[self.id_name].astype(str).to_list() if self.id_name is not None else None
        attrs = None
        if self.attr_names:
            attrs = [drop_missing(r) for r in frame[self.attr_names].to_dict("records")]
        return RawChunk(offset, vectors, ids, attrs)


def frame_items(
    frame: Any, plan: FramePlan, offset: int, start: int = 0, chunk_bytes: int = CHUNK_BYTES
) -> Iterator[Item]:
    """Chunks of ``frame``, whose first row is the input's row ``offset``, from ``start``."""
    step = rows_per_chunk(plan.dim(frame), chunk_bytes)
    for first in range(start, len(frame), step):
        yield plan.chunk(frame.iloc[first : first + step], offset + first)


class FrameSource(Source):
    """A pandas DataFrame (in memory, re-readable)."""

    def __init__(self, frame: Any, columns: Columns, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.frame = frame
        self.plan = FramePlan(frame, columns)
        self.rows = len(frame)
        self.length = self.rows
        self.own_ids = self.plan.id_name is not None
        self.own_attributes = bool(self.plan.attr_names)
        self.chunk_bytes = chunk_bytes

    def items(self, start: int = 0) -> Iterator[Item]:
        return frame_items(self.frame, self.plan, 0, start, self.chunk_bytes)

    def fingerprint(self) -> dict[str, Any]:
        sample = self.frame.iloc[sample_indices(self.rows)]
        text = sample.to_json(orient="values", double_precision=15, default_handler=repr)
        columns = [str(c) for c in self.frame.columns]
        return memory_fingerprint("frame", self.rows, digest([text.encode()]), columns=columns)

    def identity(self) -> bytes | None:
        pd = require("pandas", "pandas")
        try:
            hashes = pd.util.hash_pandas_object(self.frame, index=False).to_numpy()
        except TypeError:  # cells pandas cannot hash (lists of floats): no identity
            return None
        columns = ",".join(str(c) for c in self.frame.columns).encode()
        return digest([columns, hashes.tobytes()]).encode()
