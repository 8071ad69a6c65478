"""Encoding rows once, and request bodies from the encoded rows (pure, no I/O).

Each column of an ``add_data_batch`` body (``string_ids``, ``data``, ``attributes``) is
encoded chunk by chunk with orjson into one buffer holding the row fragments joined by
commas, plus the offsets where each row starts and ends. Any run of consecutive rows of a
chunk is then a contiguous slice of that buffer, commas included, so a request body is
assembled from slices without encoding anything twice, and its exact length is known before
it is built. A dense numpy chunk is encoded in a single ``orjson.dumps`` call and its row
boundaries are found by scanning for ``]``.
"""

from __future__ import annotations

import math
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import accumulate
from typing import TYPE_CHECKING, Any, Final, cast

import orjson

from vecml_async._body import NUMPY_OPTION
from vecml_async.errors import InvalidInputError

if TYPE_CHECKING:
    import numpy.typing as npt

# Bytes a JSON array of finite numbers may contain; anything else (null from NaN/inf,
# true/false, quotes, braces) means a row is not a plain numeric vector.
_NUMERIC_BYTES: Final = b"0123456789.-+eE,"
# In a dict encoded by orjson whose values are all strings, every ``":`` is followed by a
# quote. A hit may be a false alarm (a key or value containing ``":``); it only sends the chunk
# down the exact path.
_NON_STRING_VALUE: Final = re.compile(rb'":[^"]')
#: Encoded bytes per row from which row ends are found with bytes.find instead of numpy.
_LONG_ROW: Final = 1024


@dataclass(frozen=True)
class Column:
    """Row fragments joined by commas in ``buf``.

    ``bounds`` has one entry per row plus one: row ``i`` is ``buf[bounds[i]:bounds[i + 1] - 1]``
    (the byte before ``bounds[i + 1]`` is the comma after it, or the closing bracket after the
    last row). So the bytes of rows ``i`` to ``j - 1`` with their commas are
    ``bounds[j] - bounds[i] - 1`` long, and cumulative sizes are differences of ``bounds``.
    """

    buf: bytes
    bounds: Sequence[int]

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def length(self, i: int) -> int:
        return self.bounds[i + 1] - self.bounds[i] - 1

    def span(self, first: int, stop: int) -> memoryview:
        """Rows ``first`` to ``stop - 1`` with the commas between them, without a copy."""
        return memoryview(self.buf)[self.bounds[first] : self.bounds[stop] - 1]

    def row(self, i: int) -> bytes:
        return self.buf[self.bounds[i] : self.bounds[i + 1] - 1]


def join_fragments(fragments: Sequence[bytes]) -> Column:
    """A column from separately encoded row fragments."""
    return Column(
        b",".join(fragments), list(accumulate((len(f) + 1 for f in fragments), initial=0))
    )


def _closing_bounds(buf: bytes, closer: int) -> Sequence[int]:
    """Bounds of the rows of a one-call encoding ``[row,row,...]`` whose rows each end with
    the byte ``closer`` and contain it nowhere else (checked by the caller)."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is optional
        ends = [m.end() for m in re.finditer(re.escape(bytes([closer])), buf)]
        return [1, *(e + 1 for e in ends)]
    closes = np.flatnonzero(np.frombuffer(buf, dtype=np.uint8) == closer)
    bounds = np.empty(len(closes) + 1, dtype=np.int64)
    bounds[0] = 1
    bounds[1:] = closes + 2
    return bounds  # type: ignore[return-value]


def _bounds_from_lengths(lengths: Sequence[int], extra: int, initial: int) -> Sequence[int]:
    """``initial``, then running sums of ``length + extra``."""
    try:
        import numpy as np
    except ImportError:  # pragma: no cover - numpy is optional
        return list(accumulate((n + extra for n in lengths), initial=initial))
    bounds = np.empty(len(lengths) + 1, dtype=np.int64)
    bounds[0] = initial
    np.cumsum(np.asarray(lengths, dtype=np.int64) + extra, out=bounds[1:])
    bounds[1:] += initial
    return bounds  # type: ignore[return-value]


@dataclass(frozen=True)
class EncodedRows:
    """A chunk of consecutive input rows, each column encoded once.

    Attributes:
        start: index of the chunk's first row in the whole input.
        ids: the rows' string ids.
        id_col: encoded ids.
        vec_col: encoded vectors.
        attr_col: encoded attribute objects, or ``None`` when no row of the chunk has any.
        dim: the vector dimension (dense), or ``None`` for sparse rows.
    """

    start: int
    ids: Sequence[str]
    id_col: Column
    vec_col: Column
    attr_col: Column | None
    dim: int | None

    def __len__(self) -> int:
        return len(self.ids)

    def digest(self, i: int) -> int:
        """A checksum of row ``i``'s id and vector as encoded (a checkpoint keeps it)."""
        return zlib.crc32(self.vec_col.row(i), zlib.crc32(self.id_col.row(i)))

    @property
    def nbytes(self) -> int:
        """Bytes held by the encoded buffers."""
        attr = len(self.attr_col.buf) if self.attr_col is not None else 0
        return len(self.id_col.buf) + len(self.vec_col.buf) + attr


# ----------------------------------------------------------------------------- ids


def encode_ids(ids: Sequence[object], start: int) -> tuple[list[str], Column]:
    """Validate string ids (non-empty str) and encode them."""
    values = list(ids)
    if set(map(type, values)) <= {str} and "" not in values:
        checked = cast("list[str]", values)
        # One orjson call. When no id needed escaping, each encodes to its UTF-8 bytes plus
        # two quotes, so the bounds follow from the lengths (checked on the total).
        buf = orjson.dumps(checked)
        lengths = list(map(len, checked))
        if len(buf) == sum(lengths) + 3 * len(checked) + 1 or not checked:
            return checked, Column(buf, _bounds_from_lengths(lengths, 3, 1))
        return checked, join_fragments([orjson.dumps(value) for value in checked])
    for offset, value in enumerate(values):
        if not isinstance(value, str):
            raise InvalidInputError(
                f"ids must be strings, got {type(value).__name__}",
                field="string_ids",
                index=start + offset,
            )
        if not value:
            raise InvalidInputError(
                "an id must not be empty", field="string_ids", index=start + offset
            )
    checked = [str(value) for value in values]  # str subclasses
    return checked, join_fragments([orjson.dumps(value) for value in checked])


# ----------------------------------------------------------------------------- attributes


def attribute_value(value: object, *, key: str, index: int, row_id: str | None) -> str | None:
    """The string form of one attribute value, or ``None`` to leave the attribute out.

    The rule: ``str`` as is; ``bool`` as ``"true"``/``"false"``; integers in decimal; finite
    floats in their shortest round-trip form (``1.5``, ``1.0``); numpy scalars like the Python
    value they hold; ``None`` leaves the attribute out. Anything else (and NaN or infinity) is
    refused, because VecML attribute values are strings.
    """
    if isinstance(value, str):
        return value
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    item = getattr(value, "item", None)  # numpy scalar -> Python scalar
    if item is not None and type(value).__module__ == "numpy":
        value = item()
        if isinstance(value, bool):
            return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInputError(
                f"attribute {key!r} is {value}; only finite numbers can be sent",
                field="attributes",
                index=index,
                row_id=row_id,
            )
        return repr(value)
    raise InvalidInputError(
        f"attribute {key!r} has a {type(value).__name__} value; use str, int, float or bool",
        field="attributes",
        index=index,
        row_id=row_id,
    )


def normalize_attributes(attrs: object, *, index: int, row_id: str | None) -> dict[str, str]:
    """One row's attributes as ``dict[str, str]`` (see :func:`attribute_value`)."""
    if attrs is None:
        return {}
    if not isinstance(attrs, Mapping):
        raise InvalidInputError(
            f"attributes must be a mapping, got {type(attrs).__name__}",
            field="attributes",
            index=index,
            row_id=row_id,
        )
    out: dict[str, str] = {}
    for key, value in attrs.items():
        if not isinstance(key, str) or not key:
            raise InvalidInputError(
                f"attribute names must be non-empty strings, got {key!r}",
                field="attributes",
                index=index,
                row_id=row_id,
            )
        text = attribute_value(value, key=key, index=index, row_id=row_id)
        if text is not None:
            out[key] = text
    return out


def encode_attributes(
    attrs: Sequence[object | None], ids: Sequence[str], start: int
) -> Column | None:
    """Encode per-row attribute mappings; ``None`` when no row has any attribute."""
    rows = [{} if a is None else a for a in attrs]
    if not any(rows):
        return None
    try:
        buf = orjson.dumps(rows)
    except (TypeError, orjson.JSONEncodeError):
        buf = b""
    # Fast path: one orjson call, when every row is a dict of strings (each row then holds
    # exactly one '{' and one '}', and every ':' after a key is followed by a quote).
    if (
        buf
        and b'"":' not in buf  # an empty attribute name (or a false alarm: exact path)
        and buf.count(b"{") == len(rows) == buf.count(b"}")
        and not _NON_STRING_VALUE.search(buf)
        and set(map(type, rows)) == {dict}
    ):
        return Column(buf, _closing_bounds(buf, 0x7D))
    # Exact path: some value is not a string (or a row is not a plain dict).
    fragments = [
        orjson.dumps(normalize_attributes(a, index=start + i, row_id=ids[i]))
        for i, a in enumerate(attrs)
    ]
    return join_fragments(fragments)


# ----------------------------------------------------------------------------- dense vectors


def _bad_element(row: object) -> str:
    """Why a row is not a flat list of finite numbers (slow path, errors only)."""
    if isinstance(row, (str, bytes, Mapping)) or not hasattr(row, "__iter__"):
        return f"a vector must be a sequence of numbers, got {type(row).__name__}"
    for position, element in enumerate(row):
        if isinstance(element, bool) or element is None:
            return f"element {position} is {element!r}, not a number"
        if isinstance(element, (str, bytes)):
            return f"element {position} is a {type(element).__name__}, not a number"
        try:
            number = float(element)
        except (TypeError, ValueError):
            return f"element {position} is a {type(element).__name__}, not a number"
        if not math.isfinite(number):
            return f"element {position} is {number}; JSON cannot carry NaN or infinity"
    return "the vector is not a flat sequence of numbers"


def encode_vector_list(
    rows: Sequence[object], ids: Sequence[str], start: int, dim: int | None
) -> tuple[Column, int]:
    """Encode dense vectors given as sequences (lists, tuples, 1-D arrays).

    Checks every row is a flat sequence of finite numbers of one dimension (``dim`` when known,
    else the first row's). Returns the column and the dimension.
    """
    fragments: list[bytes] = []
    for offset, row in enumerate(rows):
        try:
            fragment = orjson.dumps(row, option=NUMPY_OPTION)
        except (TypeError, orjson.JSONEncodeError):
            fragment = b""
        if not fragment.startswith(b"[") or fragment[1:-1].translate(None, _NUMERIC_BYTES):
            raise InvalidInputError(
                _bad_element(row), field="data", index=start + offset, row_id=ids[offset]
            )
        size = 0 if fragment == b"[]" else fragment.count(b",") + 1
        if dim is None:
            dim = size
        if size != dim or size == 0:
            raise InvalidInputError(
                f"vector has {size} values, expected {dim}"
                if size
                else "a vector must not be empty",
                field="data",
                index=start + offset,
                row_id=ids[offset],
            )
        fragments.append(fragment)
    return join_fragments(fragments), dim or 0


def check_matrix(
    block: npt.NDArray[Any],
    ids: Sequence[str],
    start: int,
    dim: int | None,
    *,
    check_finite: bool = True,
) -> npt.NDArray[Any]:
    """Validate a 2-D numeric array: shape, dtype, finiteness. Returns it C-contiguous."""
    import numpy as np

    if block.ndim != 2:
        raise InvalidInputError(
            f"a vector array must be 2-D, got {block.ndim}-D", field="data", index=start
        )
    kind = block.dtype.kind
    if kind not in "fiu":
        raise InvalidInputError(
            f"vectors must be numeric, got dtype {block.dtype}", field="data", index=start
        )
    if dim is not None and block.shape[1] != dim:
        raise InvalidInputError(
            f"vector has {block.shape[1]} values, expected {dim}",
            field="data",
            index=start,
            row_id=ids[0] if len(ids) else None,
        )
    if block.shape[1] == 0:
        raise InvalidInputError("a vector must not be empty", field="data", index=start)
    if kind == "f" and check_finite:
        finite = np.isfinite(block).all(axis=1)
        if not finite.all():
            bad = int(np.flatnonzero(~finite)[0])
            raise InvalidInputError(
                "vector contains NaN or infinity; JSON cannot carry them",
                field="data",
                index=start + bad,
                row_id=ids[bad],
            )
    if block.dtype == np.float16:
        block = block.astype(np.float32)
    if not block.dtype.isnative:
        block = block.astype(block.dtype.newbyteorder("="))
    return np.ascontiguousarray(block)


def encode_matrix(block: npt.NDArray[Any]) -> Column:
    """Encode a checked 2-D array in one orjson call; rows located by their closing ``]``
    (the outer array's own ``]`` is the last one and closes nothing)."""
    out = orjson.dumps(block, option=NUMPY_OPTION)
    if not len(block):
        return Column(out, [1])
    if len(out) // len(block) >= _LONG_ROW:
        # Long rows: a few memchr-speed finds beat scanning every byte with numpy.
        bounds, find, position = [1], out.find, 0
        for _ in range(len(block)):
            position = find(b"]", position + 1)
            bounds.append(position + 2)
        return Column(out, bounds)
    return Column(out, _closing_bounds(out, 0x5D)[:-1])
