"""Request-body parsing: JSON decoding, field checks and the add_data_batch hot path.

Every check raises :class:`RequestError`, which the app turns into the error envelope, so a
malformed body, a wrong type or a missing field is a clear 400 and never a crash.

The hot path (:func:`dense_matrix`) turns the ``data`` list decoded by orjson into a float32
matrix by packing each row with a precompiled :class:`struct.Struct` of ``dim`` floats and
viewing the joined bytes with numpy. That is several times cheaper than ``np.asarray`` on a
list of lists (measured in ``benchmarks/bench_emulator_parse.py``) and validates as it goes:
a ragged row, a null or a string makes ``pack`` fail, and only then does the slow diagnostic
walk run to name the offending element.
"""

from __future__ import annotations

import functools
import itertools
import math
import struct
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from vecml_async.emulator.store import Batch, SparseRow

__all__ = [
    "DEFAULT_ROW_RULES",
    "RequestError",
    "RowRules",
    "decode_body",
    "dense_matrix",
    "extract_batch",
    "parse_add_data_batch",
    "sparse_rows",
]


class RequestError(Exception):
    """A refused request: HTTP status, the envelope's message and a rejection reason."""

    def __init__(self, status: int, message: str, reason: str = "invalid") -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.reason = reason


def bad(message: str) -> RequestError:
    return RequestError(400, message, "invalid")


def decode_body(body: bytes | bytearray) -> dict[str, Any]:
    """Decode a request body that must be one JSON object."""
    try:
        obj = orjson.loads(body)
    except orjson.JSONDecodeError as err:
        raise bad(f"Malformed JSON body: {err}") from None
    if not isinstance(obj, dict):
        raise bad("The request body must be a JSON object")
    return obj


def _type_name(value: object) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "array"}.get(
        type(value), "object"
    )


def req_str(fields: dict[str, Any], key: str) -> str:
    """A required, non-empty string field."""
    value = fields.get(key)
    if value is None:
        raise bad(f"Missing required field '{key}'")
    if not isinstance(value, str):
        raise bad(f"Field '{key}' must be a string, got {_type_name(value)}")
    if not value:
        raise bad(f"Field '{key}' must not be empty")
    return value


def opt_str(fields: dict[str, Any], key: str) -> str | None:
    """An optional string field (absent or null gives ``None``)."""
    value = fields.get(key)
    if value is not None and not isinstance(value, str):
        raise bad(f"Field '{key}' must be a string, got {_type_name(value)}")
    return value


def opt_bool(fields: dict[str, Any], key: str, default: bool) -> bool:
    value = fields.get(key)
    if value is None:
        return default
    if not isinstance(value, bool):
        raise bad(f"Field '{key}' must be a boolean, got {_type_name(value)}")
    return value


def opt_int(fields: dict[str, Any], key: str) -> int | None:
    """An optional integer field; ``true`` is not an integer here."""
    value = fields.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"Field '{key}' must be an integer, got {_type_name(value)}")
    return value


def opt_str_list(fields: dict[str, Any], key: str) -> list[str] | None:
    value = fields.get(key)
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise bad(f"Field '{key}' must be an array of strings")
    return value


def _finite32(value: float) -> bool:
    """True when ``value`` is finite once stored as float32 (1e39 is not)."""
    try:
        (stored,) = struct.unpack("=f", struct.pack("=f", value))
    except (struct.error, OverflowError):
        return False
    return math.isfinite(stored)


@functools.lru_cache(maxsize=64)
def _row_packer(dim: int) -> Callable[..., bytes]:
    return struct.Struct(f"={dim}f").pack


def dense_matrix(data: object, dim: int) -> np.ndarray:
    """Turn ``data`` (a list of ``dim``-long number lists) into a float32 (n, dim) matrix.

    Raises :class:`RequestError` naming the first bad row or element: not a list, ragged,
    null, a string, a boolean, or a value that is not finite in float32.
    """
    if not isinstance(data, list):
        raise bad(f"Field 'data' must be an array of vectors, got {_type_name(data)}")
    if not data:
        raise bad("Field 'data' must hold at least one vector")
    try:
        raw = b"".join(itertools.starmap(_row_packer(dim), data))
    except (struct.error, TypeError, OverflowError):
        raise _explain_dense(data, dim) from None
    matrix = np.frombuffer(raw, np.float32).reshape(len(data), dim)
    if not np.isfinite(matrix).all():
        # Overflow to float32 infinity (e.g. 1e39) is the only way a JSON number gets here.
        raise _explain_dense(data, dim)
    # struct packs true/false as 1.0/0.0; only rows holding an exact 0 or 1 can hide one,
    # so the per-element type check runs on those rows alone.
    suspects = np.flatnonzero(((matrix == 0.0) | (matrix == 1.0)).any(axis=1))
    if len(suspects) and any(bool in set(map(type, data[i])) for i in suspects.tolist()):
        raise _explain_dense(data, dim)
    return matrix


def _explain_dense(data: list[Any], dim: int) -> RequestError:
    """The slow walk that names the first offending row or element."""
    for i, row in enumerate(data):
        if not isinstance(row, list):
            return bad(f"data[{i}] must be an array of {dim} numbers, got {_type_name(row)}")
        if len(row) != dim:
            return bad(f"data[{i}] has {len(row)} values but the collection's vector_dim is {dim}")
        for j, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                return bad(f"data[{i}][{j}] must be a number, got {_type_name(value)}")
            if not _finite32(value):
                return bad(f"data[{i}][{j}] is not a finite float32 value")
    return bad("Field 'data' is not a valid array of vectors")  # pragma: no cover


@dataclass(frozen=True)
class RowRules:
    """What a server accepts in the rows of a batch, where VecML does not document it.

    Attributes:
        sparse_formats: the JSON forms of a sparse vector accepted (names as in
            :data:`~vecml_async.emulator.settings.SPARSE_FORMATS`).
        index_base: the index of the first dimension of a sparse vector (0 or 1); indices
            are stored 0-based.
        attribute_types: the kinds of attribute value accepted (``string``, ``number``,
            ``boolean``); numbers and booleans are stored as text.
    """

    sparse_formats: tuple[str, ...] = ("pairs", "dict", "indices_values", "libsvm")
    index_base: int = 0
    attribute_types: tuple[str, ...] = ("string",)


DEFAULT_ROW_RULES = RowRules()


def _index(value: object, dim: int, where: str, base: int = 0) -> int:
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise bad(f"{where}: index must be a non-negative integer, got {value!r}")
    if not base <= value < dim + base:
        raise bad(f"{where}: index {value} is out of range for vector_dim {dim}")
    return value - base


def _value(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise bad(f"{where}: value must be a number, got {_type_name(value)}")
    if not _finite32(value):
        raise bad(f"{where}: value is not a finite float32 value")
    return float(value)


def _sparse_format(row: object) -> str | None:
    """The name of the JSON form ``row`` is written in, or ``None`` for none of them."""
    if isinstance(row, str):
        return "libsvm"
    if isinstance(row, dict):
        return "indices_values" if "indices" in row else "dict"
    if isinstance(row, list):
        return "pairs"
    return None


def _sparse_row(
    row: object, dim: int, where: str, rules: RowRules = DEFAULT_ROW_RULES
) -> SparseRow:
    """Accept [[i, v], ...], {"i": v}, {"indices": [...], "values": [...]} or "i:v i:v"
    (those of ``rules.sparse_formats``), indices counted from ``rules.index_base``."""
    form = _sparse_format(row)
    if form is not None and form not in rules.sparse_formats:
        accepted = ", ".join(rules.sparse_formats)
        raise bad(f"{where}: sparse vectors in the {form} form are not accepted (use {accepted})")
    pairs: list[tuple[object, object]]
    if isinstance(row, str):
        pairs = []
        for token in row.split():
            idx, sep, val = token.partition(":")
            try:
                pairs.append((idx, float(val)))
            except ValueError:
                raise bad(f"{where}: cannot read '{token}' as index:value") from None
            if not sep:
                raise bad(f"{where}: cannot read '{token}' as index:value")
    elif isinstance(row, dict) and "indices" in row:
        indices, values = row.get("indices"), row.get("values")
        if not isinstance(indices, list) or not isinstance(values, list) or len(row) != 2:
            raise bad(f"{where}: expected {{'indices': [...], 'values': [...]}}")
        if len(indices) != len(values):
            raise bad(f"{where}: 'indices' and 'values' differ in length")
        pairs = list(zip(indices, values))
    elif isinstance(row, dict):
        pairs = list(row.items())
    elif isinstance(row, list):
        if not all(isinstance(p, list) and len(p) == 2 for p in row):
            raise bad(f"{where}: a sparse vector as an array must hold [index, value] pairs")
        pairs = [(p[0], p[1]) for p in row]
    else:
        raise bad(f"{where}: not a sparse vector encoding ({_type_name(row)})")
    indices_list = [_index(i, dim, where, rules.index_base) for i, _ in pairs]
    values_list = [_value(v, where) for _, v in pairs]
    if len(set(indices_list)) != len(indices_list):
        raise bad(f"{where}: repeated index in a sparse vector")
    order = np.argsort(np.asarray(indices_list, np.int64), kind="stable")
    return (
        np.asarray(indices_list, np.int32)[order],
        np.asarray(values_list, np.float32)[order],
    )


def sparse_rows(data: object, dim: int, rules: RowRules = DEFAULT_ROW_RULES) -> list[SparseRow]:
    """Parse a list of sparse vectors in any accepted encoding (stored 0-based)."""
    if not isinstance(data, list):
        raise bad(f"Field 'data' must be an array of vectors, got {_type_name(data)}")
    if not data:
        raise bad("Field 'data' must hold at least one vector")
    return [_sparse_row(row, dim, f"data[{i}]", rules) for i, row in enumerate(data)]


def check_ids(ids: object, n: int) -> list[str]:
    """``string_ids``: an array of ``n`` non-empty strings."""
    if not isinstance(ids, list):
        raise bad(f"Field 'string_ids' must be an array of strings, got {_type_name(ids)}")
    if len(ids) != n:
        raise bad(f"'string_ids' has {len(ids)} entries but 'data' has {n} vectors")
    if not set(map(type, ids)) <= {str} or "" in ids:
        k = next(k for k, v in enumerate(ids) if not isinstance(v, str) or not v)
        raise bad(f"string_ids[{k}] must be a non-empty string")
    return ids


def _attribute_text(value: object, types: tuple[str, ...]) -> str | None:
    """An accepted number or boolean as stored text (``3``, ``0.5``, ``true``), else None."""
    if isinstance(value, bool):
        return ("true" if value else "false") if "boolean" in types else None
    if isinstance(value, int) and "number" in types:
        return str(value)
    if isinstance(value, float) and "number" in types and math.isfinite(value):
        return repr(value)
    return None


def check_attributes(
    attributes: object, n: int, types: tuple[str, ...] = ("string",)
) -> list[dict[str, str]]:
    """``attributes``: ``n`` objects whose values are strings, or numbers and booleans when
    ``types`` accepts them (stored as text); absent gives empty objects."""
    if attributes is None:
        return [{} for _ in range(n)]
    if not isinstance(attributes, list):
        raise bad(f"Field 'attributes' must be an array of objects, got {_type_name(attributes)}")
    if len(attributes) != n:
        raise bad(f"'attributes' has {len(attributes)} entries but 'data' has {n} vectors")
    if not set(map(type, attributes)) <= {dict}:
        k = next(k for k, a in enumerate(attributes) if not isinstance(a, dict))
        raise bad(f"attributes[{k}] must be an object, got {_type_name(attributes[k])}")
    values = itertools.chain.from_iterable(map(dict.values, attributes))
    if not set(map(type, values)) <= {str}:
        for k, attrs in enumerate(attributes):
            for name, value in list(attrs.items()):
                if isinstance(value, str):
                    continue
                text = _attribute_text(value, types)
                if text is None:
                    kinds = " or ".join(types)
                    raise bad(
                        f"attributes[{k}]['{name}'] must be a {kinds}, got {_type_name(value)}"
                    )
                attrs[name] = text
    return attributes


def extract_batch(
    fields: dict[str, Any],
    *,
    vector_type: str,
    dim: int,
    make_ids: Callable[[int], list[str]] | None = None,
    rules: RowRules = DEFAULT_ROW_RULES,
) -> Batch:
    """Validate ``data``, ``string_ids`` and ``attributes`` of an add_data_batch body.

    ``make_ids(n)`` supplies ids when ``string_ids`` is absent (default: ``"0".."n-1"``);
    ``rules`` says which sparse forms, index base and attribute types are accepted.
    """
    data = fields.get("data")
    if data is None:
        raise bad("Missing required field 'data'")
    if vector_type == "dense":
        matrix = dense_matrix(data, dim)
        dense: np.ndarray | None = matrix
        sparse = None
        n = len(matrix)
    else:
        dense, sparse = None, sparse_rows(data, dim, rules)
        n = len(sparse)
    raw_ids = fields.get("string_ids")
    if raw_ids is None:
        ids = make_ids(n) if make_ids is not None else [str(k) for k in range(n)]
    else:
        ids = check_ids(raw_ids, n)
    attributes = check_attributes(fields.get("attributes"), n, rules.attribute_types)
    return Batch(ids, attributes, dense, sparse)


def parse_add_data_batch(body: bytes, *, vector_type: str = "dense", vector_dim: int) -> Batch:
    """Body bytes to a :class:`Batch`, exactly as the server's add_data_batch does it."""
    fields = decode_body(body)
    return extract_batch(fields, vector_type=vector_type, dim=vector_dim)
