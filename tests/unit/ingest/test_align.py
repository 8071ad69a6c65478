"""Parallel ids and attributes: sliced by absolute offset for sequences, consumed in step for
iterators, and every mismatch refused naming the field."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from vecml_async._ingest.align import Aligner
from vecml_async._ingest.chunks import RawChunk
from vecml_async.errors import InvalidInputError


def chunk(start: int, n: int, **own: Any) -> RawChunk:
    return RawChunk(start, [[float(i)] for i in range(start, start + n)], **own)


def _ids(raw: RawChunk) -> list[str]:
    assert raw.ids is not None
    return [str(i) for i in raw.ids]


@pytest.mark.parametrize(
    "ids",
    [
        [f"i{k}" for k in range(10)],
        tuple(f"i{k}" for k in range(10)),
        np.array([f"i{k}" for k in range(10)]),
        pd.Series([f"i{k}" for k in range(10)], index=range(100, 110)),
    ],
)
def test_sequences_are_sliced_by_absolute_offset(ids: Any) -> None:
    """Chunk [start, stop) gets entries start..stop-1, whatever came before (a skipped row,
    a chunk read again)."""
    aligner = Aligner(ids, None, 10)
    assert _ids(aligner.apply(chunk(3, 4))) == ["i3", "i4", "i5", "i6"]
    assert _ids(aligner.apply(chunk(0, 2))) == ["i0", "i1"]
    assert aligner.rereadable


def test_iterators_are_consumed_in_step_and_rows_that_failed_take_their_entry() -> None:
    """Next to a stream, an iterator gives each chunk its entries; skipped rows (a row that
    did not parse) consume theirs; entries left over at the end are refused."""
    aligner = Aligner((f"i{k}" for k in range(7)), iter([{"n": str(k)} for k in range(7)]), None)
    assert not aligner.rereadable
    first = aligner.apply(chunk(0, 2))
    assert list(first.ids or []) == ["i0", "i1"]
    later = aligner.apply(chunk(3, 3))  # row 2 failed to parse
    assert list(later.ids or []) == ["i3", "i4", "i5"]
    assert list(later.attributes or []) == [{"n": "3"}, {"n": "4"}, {"n": "5"}]
    with pytest.raises(InvalidInputError, match="more entries") as info:
        aligner.finish(6)
    assert info.value.field == "ids" and info.value.index == 6


def test_too_few_entries_are_refused_at_the_chunk_that_finds_none() -> None:
    """The chunk that runs out is refused (before it is sent), naming the field and row."""
    aligner = Aligner(None, iter([{}] * 3), None)
    aligner.apply(chunk(0, 2))
    with pytest.raises(InvalidInputError) as info:
        aligner.apply(chunk(2, 2))
    assert (info.value.field, info.value.index) == ("attributes", 3)


def test_a_known_length_is_checked_before_anything_is_read() -> None:
    """Next to an input of known length, a wrong length (even of an iterator) is refused."""
    with pytest.raises(InvalidInputError, match="9 entries for the input's 10 rows"):
        Aligner(["x"] * 9, None, 10)
    with pytest.raises(InvalidInputError, match="11 entries") as info:
        Aligner(None, iter([{}] * 50), 10)
    assert info.value.field == "attributes"
    assert Aligner(iter(["x"] * 10), None, 10).rereadable  # read into a list


def test_parallel_values_next_to_the_inputs_own_are_refused() -> None:
    """Rows that carry ids (or attributes) cannot take parallel ones as well."""
    aligner = Aligner(["a"], [{}], 1)
    with pytest.raises(InvalidInputError) as info:
        aligner.apply(chunk(0, 1, ids=["own"]))
    assert info.value.field == "ids"
    with pytest.raises(InvalidInputError) as attrs:
        Aligner(None, [{}], 1).check_source(False, True)
    assert attrs.value.field == "attributes"
    assert Aligner(None, None, None).apply(chunk(0, 1, ids=["own"])).ids == ["own"]


@pytest.mark.parametrize("value", ["abc", b"abc", {"a": 1}, {"a", "b"}, 5])
def test_values_that_are_not_one_entry_per_row_are_refused(value: Any) -> None:
    with pytest.raises(InvalidInputError) as info:
        Aligner(value, None, 3)
    assert info.value.field == "ids"
