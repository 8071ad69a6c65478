"""Tests of the emulator's file parsing (vecml_async.emulator.formats): every format and failure."""

from __future__ import annotations

import base64
import csv
import gzip
import io
import json
import struct
from typing import Any

import numpy as np
import pytest
import scipy.sparse as sp

from vecml_async.emulator.formats import (
    SPARSE_DEFAULT_DIM,
    FileFormatError,
    decode_base64,
    dense_rows_to_array,
    parse_file,
    sparse_rows_to_csr,
)

VECTORS = np.array([[0.5, -1.0, 2.0], [3.25, 0.0, -4.5]], dtype=np.float32)


def csv_bytes(rows: list[list[Any]]) -> bytes:
    """Write rows with the csv module, as a client would."""
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode()


def as_csr(X: object) -> Any:
    """X, checked to be a CSR matrix (scipy is untyped for mypy, so this also narrows)."""
    assert isinstance(X, sp.csr_matrix)
    return X


def binary_bytes(X: np.ndarray) -> bytes:
    """The binary layout: int32 n, int32 dim, then row-major float32 (little-endian)."""
    return struct.pack("<ii", *X.shape) + X.astype("<f4").tobytes()


# --- base64 and compression ---------------------------------------------------------------


def test_base64_round_trip_tolerates_line_breaks() -> None:
    """Standard base64 decodes, also when broken into MIME lines."""
    payload = bytes(range(256)) * 3
    assert decode_base64(base64.b64encode(payload).decode()) == payload
    assert decode_base64(base64.encodebytes(payload).decode()) == payload


@pytest.mark.parametrize("text", ["abc", "ab$d", "YWJj\u00e9", "YW=Jj"])
def test_corrupt_base64_is_refused(text: str) -> None:
    """Bad padding, foreign characters and misplaced '=' are FileFormatErrors."""
    with pytest.raises(FileFormatError, match="not valid base64"):
        decode_base64(text)


def test_base64_needs_a_string() -> None:
    """A non-string file_data is refused."""
    with pytest.raises(FileFormatError, match="must be a base64 string"):
        decode_base64(b"YWJj")  # type: ignore[arg-type]


def test_gzip_file_is_decompressed() -> None:
    """compression_type 'gzip' decompresses before parsing."""
    data = gzip.compress(csv_bytes([["a", "b", "c"], *VECTORS.tolist()]))
    parsed = parse_file(data, file_format="csv", compression_type="gzip")
    np.testing.assert_array_equal(parsed.X, VECTORS)


@pytest.mark.parametrize(
    ("data", "compression", "message"),
    [
        (b"not gzip at all", "gzip", "not valid gzip"),
        (gzip.compress(b"a,b\n1,2\n")[:-6], "gzip", "not valid gzip"),
        (b"a,b\n1,2\n", "zip", "unsupported compression_type 'zip'"),
    ],
)
def test_bad_compression_is_refused(data: bytes, compression: str, message: str) -> None:
    """Corrupt or truncated gzip and unknown compression types are FileFormatErrors."""
    with pytest.raises(FileFormatError, match=message):
        parse_file(data, file_format="csv", compression_type=compression)


# --- csv ------------------------------------------------------------------------------------


def test_csv_with_header_ids_and_attributes() -> None:
    """Header names select the id and attribute columns; numeric columns form the vector."""
    data = csv_bytes(
        [
            ["id", "x0", "colour", "x1", "label", "x2", "size"],
            ["r1", 0.5, "red", -1.0, 1, 2.0, "big"],
            ["r2", 3.25, "", 0.0, 0, -4.5, "1, quoted"],
        ]
    )
    parsed = parse_file(data, file_format="csv", string_id_column="id", attribute_columns=["size"])
    assert parsed.ids == ["r1", "r2"]
    np.testing.assert_array_equal(parsed.X, VECTORS)
    assert parsed.X.dtype == np.float32
    # 'label' is an attribute by name although numeric; 'colour' because it is text;
    # the empty cell leaves the attribute out.
    assert parsed.attributes == [
        {"size": "big", "label": "1", "colour": "red"},
        {"size": "1, quoted", "label": "0"},
    ]
    assert (parsed.vector_type, parsed.num_rows) == ("dense", 2)


def test_csv_without_header_uses_indices() -> None:
    """Without a header, selectors are 0-based indices and attribute keys are the index."""
    data = csv_bytes([["a", 0.5, -1.0, 2.0, "x"], ["b", 3.25, 0.0, -4.5, "y"]])
    parsed = parse_file(
        data, file_format="csv", has_field_names=False, string_id_column=0, attribute_columns=["4"]
    )
    assert parsed.ids == ["a", "b"]
    np.testing.assert_array_equal(parsed.X, VECTORS)
    assert parsed.attributes == [{"4": "x"}, {"4": "y"}]


def test_csv_skips_blank_lines_and_a_bom() -> None:
    """Blank lines are ignored and a UTF-8 BOM does not leak into the first header name."""
    data = "\ufeffa,b,c\n\n0.5,-1,2\n\n3.25,0,-4.5\n\n".encode()
    parsed = parse_file(data, file_format="csv", attribute_columns=["a"])
    assert parsed.attributes[0] == {"a": "0.5"}


def test_csv_into_a_sparse_collection() -> None:
    """A csv for a sparse collection becomes CSR of the collection's width."""
    parsed = parse_file(
        csv_bytes([["a", "b", "c"], *VECTORS.tolist()]),
        file_format="csv",
        vector_type="sparse",
        vector_dim=10,
    )
    X = as_csr(parsed.X)
    assert X.shape == (2, 10)
    assert X.nnz == 5  # the explicit 0.0 is not stored
    np.testing.assert_array_equal(X.toarray()[:, :3], VECTORS)
    assert parsed.vector_type == "sparse"


def test_quantised_dense_types_parse_as_dense() -> None:
    """dense8Bit and friends are stored dense; vector_type reports 'dense'."""
    parsed = parse_file(b"a\n1\n", file_format="csv", vector_type="dense8Bit")
    assert parsed.vector_type == "dense"


def test_big_csv_parses() -> None:
    """A 5000-row csv parses in one pass (numbers converted column-wise), values exact."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5000, 16)).astype(np.float32)
    rows = [[f"id{i}", *map(repr, map(float, row)), "A"] for i, row in enumerate(X)]
    data = csv_bytes([["id", *[f"f{j}" for j in range(16)], "cat"], *rows])
    parsed = parse_file(data, file_format="csv", string_id_column="id", vector_dim=16)
    np.testing.assert_array_equal(parsed.X, X)
    assert parsed.attributes[-1] == {"cat": "A"}


CSV_ERRORS = [
    (b"a,b\n1,2\n3\n", {}, "csv line 3 has 1 fields, expected 2"),
    (b"a,b\n1,inf\n", {}, "csv line 2 column 'b': value 'inf' is not finite"),
    (b"a,b\n1,1e39\n", {}, "csv line 2 column 'b'"),
    (
        b"a,b\n1,x\n",
        {"vector_dim": 2},
        r"1 numeric vector columns but vector_dim is 2.*'b' \(line 2",
    ),
    (b"a,b\n1,2\n", {"vector_dim": 3}, "2 numeric vector columns but vector_dim is 3"),
    (b"a,b\n", {}, "no data rows"),
    (b"a,b\nx,y\n", {}, "no numeric columns"),
    (b"id,a\n,1\n", {"string_id_column": "id"}, "csv line 2: the string id is empty"),
    (b"a,b\n1,2\n", {"string_id_column": "nope"}, "column 'nope' is not in the csv header"),
    (b"a,b\n1,2\n", {"attribute_columns": [5]}, "column index 5 is out of range"),
    (b"1,2\n", {"has_field_names": False, "attribute_columns": ["b"]}, "without a header row"),
    (b"a,b\n1,2\n", {"string_id_column": "a", "attribute_columns": ["a"]}, "both the id column"),
    (b"a,a,b\nx,y,1\n", {}, "'a' is empty or repeated"),
    (b"a,b\n1,2\n", {"attribute_columns": "a"}, "must be a list"),
    (b"a,b\n1,\xff\n", {}, r"not UTF-8 text \(byte 6\)"),
    (b'a,b\n1,"2\n', {}, "csv line"),
    (b"a,b\n1,2\n", {"vector_type": "dense", "vector_dim": 0}, "vector_dim must be a positive"),
]


@pytest.mark.parametrize(("data", "kwargs", "message"), CSV_ERRORS)
def test_csv_errors(data: bytes, kwargs: dict[str, Any], message: str) -> None:
    """Malformed csv files are refused with the line, column and reason."""
    with pytest.raises(FileFormatError, match=message):
        parse_file(data, file_format="csv", **kwargs)


# --- json -----------------------------------------------------------------------------------


def test_json_array_of_records() -> None:
    """A JSON array of records gives ids, vectors and stringified attributes."""
    records = [
        {"string_id": "a", "data": [0.5, -1, 2], "attributes": {"n": 3, "f": 1.5, "b": True}},
        {"string_id": 7, "vector": [3.25, 0, -4.5], "attributes": {"b": False, "gone": None}},
    ]
    parsed = parse_file(json.dumps(records).encode(), file_format="json")
    assert parsed.ids == ["a", "7"]
    np.testing.assert_array_equal(parsed.X, VECTORS)
    assert parsed.attributes == [{"n": "3", "f": "1.5", "b": "true"}, {"b": "false"}]


def test_json_lines_and_a_single_object() -> None:
    """JSON lines (blank lines allowed) and a lone pretty-printed object both parse."""
    lines = "\n".join(json.dumps({"data": row}) for row in VECTORS.tolist()) + "\n\n"
    parsed = parse_file(lines.encode(), file_format="json")
    assert parsed.ids is None
    np.testing.assert_array_equal(parsed.X, VECTORS)
    one = parse_file(json.dumps({"data": [1, 2]}, indent=2).encode(), file_format="json")
    assert one.attributes == [{}]


def test_json_sparse_records_in_every_encoding() -> None:
    """For a sparse collection each record may use any of the four sparse encodings."""
    records = [
        {"data": [[0, 1.0], [5, 2.0]]},
        {"data": {"3": 4.0}},
        {"data": {"indices": [1, 2], "values": [0.5, 0.25]}},
        {"vector": "7:1.5 6:-1"},
        {"data": []},
    ]
    parsed = parse_file(json.dumps(records).encode(), file_format="json", vector_type="sparse")
    assert parsed.X.shape == (5, SPARSE_DEFAULT_DIM)
    assert parsed.X[0, 5] == 2.0
    assert parsed.X[3, 6] == -1.0
    assert parsed.X[4].nnz == 0


JSON_ERRORS = [
    (b'[{"data": [1]},', {}, "invalid JSON at line 1"),
    (b'{"data": [1]}\n{"data": [2]\n', {}, "line 2: invalid JSON"),
    (b"[]", {}, "holds no records"),
    (b"[[1, 2]]", {}, "record at index 0: each record must be a JSON object"),
    (b'[{"attributes": {}}]', {}, "exactly one of 'data' or 'vector'"),
    (b'[{"data": [1], "vector": [1]}]', {}, "exactly one of 'data' or 'vector'"),
    (b'[{"data": [1]}, {"data": [1], "string_id": "b"}]', {}, "earlier records do not"),
    (b'[{"data": [1], "string_id": "a"}, {"data": [1]}]', {}, "no string_id"),
    (b'[{"data": [1], "string_id": [1]}]', {}, "string_id must be a string"),
    (b'[{"data": [1], "attributes": [1]}]', {}, "'attributes' must be an object"),
    (b'[{"data": [1], "attributes": {"a": [1]}}]', {}, "attribute 'a' must be a string"),
    (b'[{"data": [1, 2]}, {"data": [1]}]', {}, "record at index 1: vector has 1 values"),
    (b'[{"data": [1, true]}]', {}, "vector element True is not a number"),
    (b'[{"data": [1, "2"]}]', {}, "vector element '2' is not a number"),
    (b'[{"data": [1e400]}]', {}, "value inf is not finite"),
    (b'[{"data": [1, 1%s]}]' % (b"0" * 400), {}, "too large to be a float"),
    (b'[{"data": [1], "string_id": ""}]', {}, "record at index 0: string_id is empty"),
    (b'[{"data": [1, NaN]}]', {}, "record at index 0: value nan is not finite"),
    (b'[{"data": 5}]', {}, "must be a list of numbers"),
    (b'[{"data": [1, 2]}]', {"vector_dim": 3}, "vector has 2 values, expected 3"),
    (b'{"data": [[9, 1]]}', {"vector_type": "sparse", "vector_dim": 4}, "index 9 is out of range"),
]


@pytest.mark.parametrize(("data", "kwargs", "message"), JSON_ERRORS)
def test_json_errors(data: bytes, kwargs: dict[str, Any], message: str) -> None:
    """Malformed JSON files are refused naming the record or line and the reason."""
    with pytest.raises(FileFormatError, match=message):
        parse_file(data, file_format="json", **kwargs)


# --- libsvm ---------------------------------------------------------------------------------

LIBSVM = b"1 1:0.5 2:-1 3:2\n\n0 3:-4.5 1:3.25\n4:1\n"


def test_libsvm_dense() -> None:
    """1-based indices fill a dense matrix; the label lands in label_attribute; ids are None."""
    parsed = parse_file(LIBSVM, file_format="libsvm", vector_dim=5, label_attribute="y")
    assert parsed.ids is None
    assert isinstance(parsed.X, np.ndarray)
    assert parsed.X.shape == (3, 5)
    np.testing.assert_array_equal(parsed.X[:2, :3], VECTORS)
    assert parsed.X[2, 3] == 1.0
    # The last line starts with index:value, so it has no label.
    assert parsed.attributes == [{"y": "1"}, {"y": "0"}, {}]


def test_libsvm_dense_width_defaults_to_the_largest_index() -> None:
    """Without vector_dim a dense libsvm matrix is as wide as its largest index."""
    assert parse_file(LIBSVM, file_format="libsvm").X.shape == (3, 4)


def test_libsvm_sparse() -> None:
    """Sparse libsvm gives CSR with 0-based columns, 2**21 wide unless vector_dim says otherwise."""
    parsed = parse_file(LIBSVM, file_format="libsvm", vector_type="sparse")
    X = as_csr(parsed.X)
    assert X.shape == (3, SPARSE_DEFAULT_DIM)
    np.testing.assert_array_equal(X[:2, :3].toarray(), VECTORS)
    assert list(X[1].indices) == [0, 2]  # sorted, explicit 0 dropped
    narrow = parse_file(LIBSVM, file_format="libsvm", vector_type="sparse", vector_dim=4)
    assert narrow.X.shape == (3, 4)


LIBSVM_ERRORS = [
    (b"1 0:1\n", {"vector_dim": 4}, "libsvm line 1: index 0 is out of range"),
    (b"1 1:1\n0 5:1\n", {"vector_dim": 4}, "libsvm line 2: index 5 is out of range"),
    (b"1 1:1\n0 9:1\n", {"vector_dim": 4, "vector_type": "sparse"}, "index 9 is out of range"),
    (b"1 1:1 bad\n", {}, "libsvm line 1: token 'bad' is not index:value"),
    (b"1 1:\n", {}, "token '1:' is not index:value"),
    (b"1 1:1\n1 x:1\n", {}, "libsvm line 2: 'x' is not an integer index"),
    (b"1 1.5:1\n", {}, "'1.5' is not an integer index"),
    (b"1 1:1\n1 2:abc\n", {}, "libsvm line 2: 'abc' is not a number"),
    (b"1 2:1 2:3\n", {}, "libsvm line 1: index 2 appears more than once"),
    (b"1 2:inf\n", {}, "libsvm line 1: value inf is not finite"),
    (b"1\n0\n", {}, "no index:value pairs"),
]


@pytest.mark.parametrize(("data", "kwargs", "message"), LIBSVM_ERRORS)
def test_libsvm_errors(data: bytes, kwargs: dict[str, Any], message: str) -> None:
    """Malformed libsvm lines are refused naming the line and the reason."""
    with pytest.raises(FileFormatError, match=message):
        parse_file(data, file_format="libsvm", **kwargs)


# --- binary ---------------------------------------------------------------------------------


def test_binary_round_trip() -> None:
    """The int32 n, int32 dim, float32 layout parses to the same matrix, no ids or attributes."""
    parsed = parse_file(binary_bytes(VECTORS), file_format="binary", vector_dim=3)
    np.testing.assert_array_equal(parsed.X, VECTORS)
    assert parsed.ids is None
    assert parsed.attributes == [{}, {}]


def test_binary_gzip_into_sparse() -> None:
    """A gzipped binary file also loads into a sparse collection (as CSR)."""
    data = gzip.compress(binary_bytes(VECTORS))
    parsed = parse_file(data, file_format="binary", compression_type="gzip", vector_type="sparse")
    X = as_csr(parsed.X)
    assert X.shape == (2, SPARSE_DEFAULT_DIM)
    np.testing.assert_array_equal(X[:, :3].toarray(), VECTORS)


BINARY_ERRORS = [
    (b"\x01\x00\x00", {}, "shorter than its 8-byte header"),
    (struct.pack("<ii", 0, 3), {}, "n=0, dim=3; both must be positive"),
    (struct.pack("<ii", 2, -1), {}, "both must be positive"),
    (binary_bytes(VECTORS)[:-4], {}, r"n=2, dim=3 \(32 bytes\) but the file has 28"),
    (binary_bytes(VECTORS) + b"\0", {}, "but the file has 33"),
    (binary_bytes(np.array([[1.0, np.nan]], dtype=np.float32)), {}, "row 0 column 1"),
    (binary_bytes(VECTORS), {"vector_dim": 4}, "3 values but vector_dim is 4"),
    (binary_bytes(VECTORS), {"vector_dim": 2, "vector_type": "sparse"}, "sparse vector_dim is 2"),
]


@pytest.mark.parametrize(("data", "kwargs", "message"), BINARY_ERRORS)
def test_binary_errors(data: bytes, kwargs: dict[str, Any], message: str) -> None:
    """Truncated, oversized, non-finite or wrongly sized binary files are refused."""
    with pytest.raises(FileFormatError, match=message):
        parse_file(data, file_format="binary", **kwargs)


# --- shared checks --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("file_format", "data"),
    [(f, d) for f in ("csv", "json", "libsvm") for d in (b"", b"  \n\n")] + [("binary", b"")],
)
def test_empty_files_are_refused(file_format: str, data: bytes) -> None:
    """An empty (or, for text formats, blank) file is a FileFormatError in every format."""
    with pytest.raises(FileFormatError, match="empty"):
        parse_file(data, file_format=file_format)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"file_format": "parquet"}, "unknown file_format 'parquet'"),
        ({"file_format": "csv", "vector_type": "dense9Bit"}, "unknown vector_type 'dense9Bit'"),
        ({"file_format": "csv", "vector_dim": True}, "vector_dim must be a positive integer"),
    ],
)
def test_bad_parameters_are_refused(kwargs: dict[str, Any], message: str) -> None:
    """Unknown formats, vector types and non-integer dims are refused before parsing."""
    with pytest.raises(FileFormatError, match=message):
        parse_file(b"a\n1\n", **kwargs)


# --- the add_data_batch helpers -------------------------------------------------------------


def test_sparse_rows_in_every_encoding() -> None:
    """All four wire encodings give the same CSR row (0-based, sorted, zeros dropped)."""
    encodings = [
        [[4, 2.5], [1, -1], [2, 0]],
        {"4": 2.5, "1": -1, "2": 0.0},
        {"indices": [4, 1], "values": [2.5, -1]},
        "4:2.5 1:-1",
    ]
    m = sparse_rows_to_csr(encodings, 6)
    assert m.shape == (4, 6)
    assert m.dtype == np.float32
    for row in range(4):
        assert list(m[row].indices) == [1, 4]
        assert list(m[row].data) == [-1.0, 2.5]


SPARSE_ERRORS = [
    ([[[6, 1.0]]], "row index 0: index 6 is out of range"),
    ([[], [[-1, 1.0]]], "row index 1: index -1 is out of range"),
    ([[[1.0, 1.0]]], "index 1.0 is not an integer"),
    ([[[True, 1.0]]], "index True is not an integer"),
    ([[[1, "x"]]], "value 'x' is not a number"),
    ([[[1, float("inf")]]], "value inf is not finite"),
    ([[[1, 1e39]]], "overflows float32"),
    ([[[10**30, 1.0]]], "too large"),
    ([[[1, 1.0], [1, 2.0]]], "index 1 appears more than once"),
    ([[[1, 1.0, 2]]], r"element \[1, 1.0, 2\] is not an \[index, value\] pair"),
    ([3.5], "a sparse vector must be"),
    ([{"indices": [1, 2], "values": [1.0]}], "same length"),
    ([{"a": 1.0}], "key 'a' is not a non-negative integer index"),
    ([{"-1": 1.0}], "key '-1'"),
    (["1:2 3"], "token '3' is not index:value"),
    (["1:x"], "token '1:x'"),
]


@pytest.mark.parametrize(("rows", "message"), SPARSE_ERRORS)
def test_sparse_row_errors(rows: list[object], message: str) -> None:
    """Each malformed sparse row is refused naming the row and the reason."""
    with pytest.raises(FileFormatError, match=message):
        sparse_rows_to_csr(rows, 6)


def test_dense_rows_helper() -> None:
    """Dense rows stack to float32; the width is vector_dim or the first row's length."""
    X = dense_rows_to_array([[1, 2.5], [3, 4]], None)
    assert X.dtype == np.float32
    assert X.shape == (2, 2)
    with pytest.raises(FileFormatError, match="row index 0: empty vector"):
        dense_rows_to_array([[]], None)
    with pytest.raises(FileFormatError, match="no vectors"):
        dense_rows_to_array([], 2)
