"""Row encoding: one orjson pass per chunk, exact row boundaries, and the input checks."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest

from vecml_async._body import encode_request
from vecml_async._ingest.encoding import (
    attribute_value,
    check_matrix,
    encode_attributes,
    encode_ids,
    encode_matrix,
    encode_vector_list,
    join_fragments,
)
from vecml_async.errors import InvalidInputError


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.int32, np.float16])
def test_matrix_rows_are_found_by_their_closing_bracket(dtype: Any) -> None:
    """Each row slice of a one-call encoding is that row's JSON array."""
    block = (np.arange(12).reshape(4, 3) * 1.5).astype(dtype)
    ids = ["a", "b", "c", "d"]
    col = encode_matrix(check_matrix(block, ids, 0, None))
    rows = [orjson.loads(col.row(i)) for i in range(4)]
    np.testing.assert_allclose(rows, block.astype(np.float64))
    assert orjson.loads(b"[" + bytes(col.span(1, 3)) + b"]") == rows[1:3]


def test_non_contiguous_and_big_endian_arrays_are_encoded() -> None:
    """Views and foreign byte orders are made contiguous and native before encoding."""
    base = np.arange(20, dtype=">f8").reshape(5, 4)
    block = check_matrix(base[:, ::2], ["a"] * 5, 0, None)
    col = encode_matrix(block)
    assert orjson.loads(col.row(4)) == [16.0, 18.0]


def test_float32_encodes_shorter_than_float64() -> None:
    """float32 arrays use their shortest repr, which makes smaller bodies."""
    x = np.random.default_rng(1).standard_normal((50, 8))
    f32 = encode_matrix(check_matrix(x.astype(np.float32), ["i"] * 50, 0, None))
    f64 = encode_matrix(check_matrix(x, ["i"] * 50, 0, None))
    assert len(f32.buf) < 0.75 * len(f64.buf)


@pytest.mark.parametrize(
    ("block", "message"),
    [
        (np.array([[1.0, np.nan]]), "NaN"),
        (np.array([[np.inf, 1.0]]), "NaN or infinity"),
        (np.array([["a", "b"]]), "numeric"),
        (np.array([[True, False]]), "numeric"),
        (np.zeros((2, 0)), "empty"),
        (np.zeros(3), "2-D"),
    ],
)
def test_matrix_checks_name_the_problem(block: Any, message: str) -> None:
    """Bad arrays are refused with the field and, for rows, the index and id."""
    with pytest.raises(InvalidInputError, match=message) as info:
        check_matrix(block, ["r0", "r1"], 10, None)
    assert info.value.field == "data"


def test_matrix_dimension_must_match_the_collection() -> None:
    """A known dimension is enforced."""
    with pytest.raises(InvalidInputError, match="expected 4"):
        check_matrix(np.zeros((1, 3)), ["a"], 0, 4)


@pytest.mark.parametrize(
    ("rows", "index", "message"),
    [
        ([[1.0, 2.0], [1.0]], 1, "expected 2"),
        ([[1.0, float("nan")]], 0, "NaN"),
        ([[1.0, None]], 0, "None"),
        ([[1.0, True]], 0, "True"),
        ([[1.0, "2"]], 0, "str"),
        ([[[1.0], [2.0]]], 0, "list"),
        ([[]], 0, "empty"),
        (["abc"], 0, "sequence"),
        ([{"a": 1}], 0, "sequence"),
    ],
)
def test_vector_list_checks_find_the_bad_row(rows: list[Any], index: int, message: str) -> None:
    """Ragged rows, NaN, None, bools, strings, nesting: refused with the row index and id."""
    ids = [f"id{i}" for i in range(len(rows))]
    with pytest.raises(InvalidInputError, match=message) as info:
        encode_vector_list(rows, ids, 100, None)
    assert info.value.index == 100 + index
    assert info.value.row_id == ids[index]


def test_vector_list_accepts_tuples_ints_numpy_rows_and_scalars() -> None:
    """Any flat sequence of finite numbers is a vector."""
    rows = [(1, 2), np.array([3.5, 4.0], dtype=np.float32), [np.float64(5.0), np.int64(6)]]
    col, dim = encode_vector_list(rows, ["a", "b", "c"], 0, None)
    assert dim == 2
    assert [orjson.loads(col.row(i)) for i in range(3)] == [[1, 2], [3.5, 4.0], [5.0, 6]]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("x", "x"),
        (True, "true"),
        (False, "false"),
        (3, "3"),
        (1.5, "1.5"),
        (1.0, "1.0"),
        (np.int64(7), "7"),
        (np.float32(0.5), "0.5"),
        (np.bool_(True), "true"),
        (None, None),
    ],
)
def test_attribute_values_follow_the_documented_rule(value: Any, expected: str | None) -> None:
    """str as is; bools lower-case; numbers in shortest round-trip form; None leaves it out."""
    assert attribute_value(value, key="k", index=0, row_id=None) == expected


@pytest.mark.parametrize("value", [[1], {"a": 1}, float("nan"), float("inf"), b"x", object()])
def test_other_attribute_values_are_refused(value: Any) -> None:
    """Lists, dicts, bytes, NaN and arbitrary objects cannot be attribute values."""
    with pytest.raises(InvalidInputError, match="attribute 'k'") as info:
        attribute_value(value, key="k", index=3, row_id="r")
    assert (info.value.field, info.value.index, info.value.row_id) == ("attributes", 3, "r")


def test_attributes_fast_path_and_exact_path_agree() -> None:
    """String-only rows skip normalisation; rows with numbers are normalised to strings."""
    strings = encode_attributes([{"a": "1"}, None, {"b": 'x":y'}], ["i", "j", "k"], 0)
    mixed = encode_attributes([{"a": 1}, None, {"b": 'x":y'}], ["i", "j", "k"], 0)
    assert strings is not None and mixed is not None
    assert [orjson.loads(strings.row(i)) for i in range(3)] == [{"a": "1"}, {}, {"b": 'x":y'}]
    assert [orjson.loads(mixed.row(i)) for i in range(3)] == [{"a": "1"}, {}, {"b": 'x":y'}]
    assert encode_attributes([None, {}], ["i", "j"], 0) is None


def test_attribute_names_must_be_non_empty_strings() -> None:
    """Keys that are not strings are refused with the row."""
    with pytest.raises(InvalidInputError, match="attribute names"):
        encode_attributes([{1: "a"}], ["i"], 0)


def test_ids_must_be_non_empty_strings() -> None:
    """Ids are strings; an empty one or a number is refused with its index."""
    with pytest.raises(InvalidInputError, match="empty") as info:
        encode_ids(["a", ""], 5)
    assert info.value.index == 6
    with pytest.raises(InvalidInputError, match="strings"):
        encode_ids(["a", 3], 0)


def test_join_fragments_offsets() -> None:
    """Offsets of joined fragments point at each fragment."""
    col = join_fragments([b'"a"', b'"bc"', b"[1]"])
    assert col.buf == b'"a","bc",[1]'
    assert [col.row(i) for i in range(3)] == [b'"a"', b'"bc"', b"[1]"]


def test_request_encoding_puts_the_key_first_and_accepts_numpy() -> None:
    """Small requests are one orjson call with the key added."""
    body = encode_request("k", {"data": np.array([1.5, 2.0], dtype=np.float32)})
    assert orjson.loads(body.to_bytes()) == {"user_api_key": "k", "data": [1.5, 2.0]}
    assert body.length == len(body.to_bytes())
