"""Sparse vectors: their JSON forms, and the checks of indices and values."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from vecml_async._ingest.sparse import check_sparse_row, encode_sparse_row
from vecml_async.errors import InvalidInputError


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        ("pairs", [[1, 0.5], [7, 2.0]]),
        ("dict", {"1": 0.5, "7": 2.0}),
        ("indices_values", {"indices": [1, 7], "values": [0.5, 2.0]}),
        ("libsvm", "1:0.5 7:2.0"),
    ],
)
def test_sparse_formats(fmt: str, expected: Any) -> None:
    """Each sparse JSON form carries 0-based sorted indices."""
    assert orjson.loads(encode_sparse_row([1, 7], [0.5, 2.0], sparse_format=fmt)) == expected


def test_sparse_rows_are_sorted_and_checked() -> None:
    """Sparse rows are sorted; out-of-range, repeated and non-finite entries are refused."""
    assert check_sparse_row([5, 1], [1.0, 2.0], dim=10, index=0, row_id="a") == (
        [1, 5],
        [2.0, 1.0],
    )
    for indices, values, message in [
        ([10], [1.0], "outside"),
        ([-1], [1.0], "outside"),
        ([2, 2], [1.0, 1.0], "twice"),
        ([1], [float("nan")], "NaN"),
        ([1, 2], [1.0], "indices"),
    ]:
        with pytest.raises(InvalidInputError, match=message):
            check_sparse_row(indices, values, dim=10, index=0, row_id="a")
