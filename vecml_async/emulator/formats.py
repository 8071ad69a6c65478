"""Parse the files sent to ``/upload`` and inline ``/automl_predict`` (conventions in the README).

Pure functions, no I/O. ``data`` is the already base64-decoded payload (see
:func:`decode_base64`). Every malformed input raises :class:`FileFormatError` whose text names the
line, record or column and the reason; the server answers it with a 400.

Conventions (also listed in the README):

* Text files are UTF-8 (a BOM is ignored); csv uses the comma and strict csv-module quoting (an
  unterminated or stray quote is an error).
* Blank lines are skipped in every text format. A file with no data rows is an error.
* Vectors are stored as float32: a value that is not finite, or overflows float32, is an error.
* csv without a header names its columns ``"0"``, ``"1"``, ... (attribute keys and selectors;
  a digit string selects by index too). With a header, a column named ``label_attribute`` is
  always an attribute, even when numeric, so a numeric label is never taken for a vector
  component. An empty id cell is an error. Attribute values are kept verbatim (not stripped).
* json: a whole-document array (or one object) is tried first, otherwise JSON lines.
  ``string_id`` may be a non-empty string or an integer; either every record has one or none
  does. Unknown record keys are ignored. A dense collection needs flat number lists; a sparse one
  needs one of the sparse encodings (a flat list is not accepted there).
* libsvm: a line whose first token holds ``:`` has no label (an unlabelled row); an index may
  appear once per line; the label is stored verbatim.
* binary: exactly ``8 + 4 * n * dim`` bytes with n, dim > 0.
* compression_type None, ``""`` or ``"none"`` means uncompressed.
* The returned ``vector_type`` is the kind of ``X``: ``"dense"`` (also for dense8Bit etc.) or
  ``"sparse"``. Dense-only formats (csv, binary) become CSR when a sparse type is requested;
  a sparse collection without ``vector_dim`` is 2**21 wide.
"""

from __future__ import annotations

import base64
import binascii
import gzip
import json
import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import csr_matrix

from vecml_async.emulator._formats_text import parse_csv, parse_libsvm
from vecml_async.emulator._vectors import (
    SPARSE_DEFAULT_DIM,
    FileFormatError,
    as_kind,
    dense_rows_to_array,
    sparse_rows_to_csr,
)
from vecml_async.models import FILE_FORMATS

__all__ = [
    "FILE_FORMATS",
    "SPARSE_DEFAULT_DIM",
    "FileFormatError",
    "ParsedFile",
    "decode_base64",
    "decompress",
    "dense_rows_to_array",
    "parse_file",
    "sparse_rows_to_csr",
]

_DENSE_TYPES = frozenset({"dense", "dense8Bit", "dense4Bit", "dense2Bit", "dense1Bit"})


@dataclass(frozen=True, eq=False)
class ParsedFile:
    """The rows of one file.

    ``ids`` is None when the format (or the file) carries no ids: the server generates them.
    ``X`` is float32, dense (n, dim) or CSR (n, dim). ``attributes`` has one dict per row.
    """

    ids: list[str] | None
    X: NDArray[np.float32] | csr_matrix
    attributes: list[dict[str, str]]
    vector_type: str

    @property
    def num_rows(self) -> int:
        """Number of rows (vectors) in the file."""
        return int(self.X.shape[0])


def decode_base64(text: str) -> bytes:
    """Decode standard base64 strictly (alphabet and padding checked).

    Whitespace is removed first, because MIME-style encoders break lines every 76 characters.
    Raises FileFormatError on anything else that is not base64.
    """
    if not isinstance(text, str):
        raise FileFormatError("file_data must be a base64 string")
    try:
        return base64.b64decode("".join(text.split()), validate=True)
    except (binascii.Error, ValueError) as e:
        raise FileFormatError(f"file_data is not valid base64: {e}") from None


def parse_file(
    data: bytes,
    *,
    file_format: str,
    has_field_names: bool = True,
    compression_type: str | None = None,
    vector_dim: int | None = None,
    vector_type: str = "dense",
    string_id_column: str | int | None = None,
    attribute_columns: Sequence[str | int] = (),
    label_attribute: str = "label",
) -> ParsedFile:
    """Parse one file into ids, vectors and attributes.

    ``vector_dim`` is the collection's dimension when it exists: dense rows must match it exactly
    (libsvm indices must not exceed it); None infers it from the file (sparse: 2**21).
    ``string_id_column`` / ``attribute_columns`` apply to csv only; ``label_attribute`` names the
    libsvm label attribute (and marks the csv column of that name as an attribute).
    """
    if vector_type in _DENSE_TYPES:
        kind = "dense"
    elif vector_type == "sparse":
        kind = "sparse"
    else:
        raise FileFormatError(f"unknown vector_type {vector_type!r}")
    if vector_dim is not None and (type(vector_dim) is not int or vector_dim < 1):
        raise FileFormatError(f"vector_dim must be a positive integer, got {vector_dim!r}")
    if file_format not in FILE_FORMATS:
        raise FileFormatError(
            f"unknown file_format {file_format!r} (expected one of {', '.join(FILE_FORMATS)})"
        )
    raw = decompress(data, compression_type)
    if not raw:
        raise FileFormatError("the file is empty")
    if file_format == "binary":
        return ParsedFile(None, *_parse_binary(raw, kind, vector_dim), vector_type=kind)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FileFormatError(f"the file is not UTF-8 text (byte {e.start})") from None
    if not text.strip():
        raise FileFormatError("the file is empty")
    if file_format == "csv":
        ids, X, attrs = parse_csv(
            text,
            has_field_names=has_field_names,
            string_id_column=string_id_column,
            attribute_columns=attribute_columns,
            label_attribute=label_attribute,
            kind=kind,
            vector_dim=vector_dim,
        )
        return ParsedFile(ids, X, attrs, kind)
    if file_format == "json":
        return _parse_json(text, kind, vector_dim)
    X, attrs = parse_libsvm(text, kind, vector_dim, label_attribute)
    return ParsedFile(None, X, attrs, kind)


def decompress(data: bytes, compression_type: str | None) -> bytes:
    if compression_type in (None, "", "none"):
        return data
    if compression_type != "gzip":
        raise FileFormatError(
            f"unsupported compression_type {compression_type!r} (only 'gzip' is supported)"
        )
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as e:
        raise FileFormatError(f"the file is not valid gzip data: {e}") from None


def _parse_binary(
    raw: bytes, kind: str, vector_dim: int | None
) -> tuple[NDArray[np.float32] | csr_matrix, list[dict[str, str]]]:
    if len(raw) < 8:
        raise FileFormatError(f"binary file has {len(raw)} bytes, shorter than its 8-byte header")
    n, dim = struct.unpack_from("<ii", raw)
    if n <= 0 or dim <= 0:
        raise FileFormatError(f"binary header has n={n}, dim={dim}; both must be positive")
    expected = 8 + 4 * n * dim
    if len(raw) != expected:
        raise FileFormatError(
            f"binary header says n={n}, dim={dim} ({expected} bytes) but the file has {len(raw)}"
        )
    X = np.frombuffer(raw, dtype="<f4", offset=8).reshape(n, dim).astype(np.float32)
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise FileFormatError(f"binary row {r} column {c}: value {X[r, c]!r} is not finite")
    return as_kind(X, kind, vector_dim), [{} for _ in range(n)]


def _json_records(text: str) -> list[tuple[str, object]]:
    """(name for error messages, record) pairs from a JSON array, one object or JSON lines."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        if text.lstrip().startswith("["):
            raise FileFormatError(
                f"invalid JSON at line {e.lineno} column {e.colno}: {e.msg}"
            ) from None
        records: list[tuple[str, object]] = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append((f"line {lineno}", json.loads(line)))
                except json.JSONDecodeError as e2:
                    raise FileFormatError(f"line {lineno}: invalid JSON: {e2.msg}") from None
        return records
    if isinstance(doc, list):
        return [(f"record at index {i}", r) for i, r in enumerate(doc)]
    return [("record", doc)]


def _attribute_value(v: object, where: str, key: str) -> str | None:
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return v
    if isinstance(v, int) or (isinstance(v, float) and np.isfinite(v)):
        return str(v)
    raise FileFormatError(f"{where}: attribute {key!r} must be a string, finite number or boolean")


def _parse_json(text: str, kind: str, vector_dim: int | None) -> ParsedFile:
    records = _json_records(text)
    if not records:
        raise FileFormatError("the JSON file holds no records")
    names = [name for name, _ in records]
    ids: list[str] = []
    vectors: list[object] = []
    attributes: list[dict[str, str]] = []
    for name, rec in records:
        if not isinstance(rec, dict):
            raise FileFormatError(f"{name}: each record must be a JSON object")
        if ("data" in rec) == ("vector" in rec):
            raise FileFormatError(f"{name}: a record needs exactly one of 'data' or 'vector'")
        vectors.append(rec["data"] if "data" in rec else rec["vector"])
        sid = rec.get("string_id")
        if sid is not None:
            if type(sid) is not str and type(sid) is not int:
                raise FileFormatError(f"{name}: string_id must be a string")
            if sid == "":
                raise FileFormatError(f"{name}: string_id is empty")
            if len(ids) != len(attributes):
                raise FileFormatError(f"{name}: has a string_id but earlier records do not")
            ids.append(str(sid))
        elif ids:
            raise FileFormatError(f"{name}: has no string_id but earlier records do")
        raw_attrs = rec.get("attributes")
        if raw_attrs is None:
            raw_attrs = {}
        if not isinstance(raw_attrs, dict):
            raise FileFormatError(f"{name}: 'attributes' must be an object")
        attrs: dict[str, str] = {}
        for key, value in raw_attrs.items():
            s = _attribute_value(value, name, key)
            if s is not None:
                attrs[key] = s
        attributes.append(attrs)
    if kind == "dense":
        X: NDArray[np.float32] | csr_matrix = dense_rows_to_array(
            vectors, vector_dim, names.__getitem__
        )
    else:
        X = sparse_rows_to_csr(vectors, vector_dim or SPARSE_DEFAULT_DIM, names.__getitem__)
    return ParsedFile(ids or None, X, attributes, kind)
