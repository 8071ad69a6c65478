"""The batcher: exact body sizes, order, every row in exactly one batch, every batch but the
last full (property-based)."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from vecml_async._ingest.batching import Batch, Batcher, Envelope, OversizeRow
from vecml_async._ingest.encoding import (
    EncodedRows,
    check_matrix,
    encode_attributes,
    encode_ids,
    encode_matrix,
    encode_vector_list,
)

KEY = "vml_batching-key"
ENVELOPE = Envelope.create(KEY, "proj", "coll")

ids_strategy = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=12
)
attr_strategy = st.one_of(
    st.none(),
    st.dictionaries(
        st.text(min_size=1, max_size=5),
        st.one_of(st.text(max_size=8), st.integers(-5, 5), st.booleans()),
        max_size=3,
    ),
)


def pack(
    chunks: list[EncodedRows], envelope: Envelope, *, max_rows: int, max_bytes: int
) -> list[Batch | OversizeRow]:
    """Every batch of ``chunks`` (and rows that can never fit), in order."""
    batcher = Batcher(envelope, max_rows=max_rows, max_bytes=max_bytes)
    out: list[Batch | OversizeRow] = [item for chunk in chunks for item in batcher.add(chunk)]
    last = batcher.flush()
    return [*out, last] if last is not None else out


def make_chunk(
    start: int,
    vectors: Any,
    ids: list[str],
    attrs: list[Any] | None,
) -> EncodedRows:
    checked_ids, id_col = encode_ids(ids, start)
    if isinstance(vectors, np.ndarray):
        block = check_matrix(vectors, checked_ids, start, None)
        vec_col, dim = encode_matrix(block), block.shape[1]
    else:
        vec_col, dim = encode_vector_list(vectors, checked_ids, start, None)
    attr_col = encode_attributes(attrs, checked_ids, start) if attrs else None
    return EncodedRows(start, checked_ids, id_col, vec_col, attr_col, dim)


@st.composite
def chunk_lists(draw: st.DrawFn) -> list[tuple[list[str], Any, list[Any] | None]]:
    dim = draw(st.integers(1, 6))
    n_chunks = draw(st.integers(1, 4))
    out = []
    used: set[str] = set()
    for _ in range(n_chunks):
        n = draw(st.integers(1, 12))
        ids = draw(st.lists(ids_strategy, min_size=n, max_size=n, unique=True))
        ids = [i for i in ids if i not in used] or [f"fallback-{len(used)}"]
        used.update(ids)
        n = len(ids)
        as_numpy = draw(st.booleans())
        floats = st.floats(-1e6, 1e6, allow_nan=False, width=32)
        values = draw(
            st.lists(st.lists(floats, min_size=dim, max_size=dim), min_size=n, max_size=n)
        )
        vectors: Any = np.asarray(values, dtype=np.float32) if as_numpy else values
        attrs = draw(st.one_of(st.none(), st.lists(attr_strategy, min_size=n, max_size=n)))
        out.append((ids, vectors, attrs))
    return out


def build_chunks(spec: list[tuple[list[str], Any, list[Any] | None]]) -> list[EncodedRows]:
    chunks, start = [], 0
    for ids, vectors, attrs in spec:
        chunks.append(make_chunk(start, vectors, ids, attrs))
        start += len(ids)
    return chunks


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=chunk_lists(), max_rows=st.integers(1, 20), slack=st.integers(0, 400))
def test_batches_respect_caps_keep_order_and_cover_every_row_once(
    spec: list[tuple[list[str], Any, list[Any] | None]], max_rows: int, slack: int
) -> None:
    """Every body is at most max_bytes, is exactly what the batch says it is, rows keep their
    order, and each row lands in exactly one batch (or is reported as oversize)."""
    chunks = build_chunks(spec)
    max_bytes = ENVELOPE.fixed(True) + 40 + slack
    items = pack(chunks, ENVELOPE, max_rows=max_rows, max_bytes=max_bytes)
    seen_ids: list[str] = []
    for item in items:
        if isinstance(item, OversizeRow):
            seen_ids.append(item.row_id)
            continue
        body = item.body(ENVELOPE).to_bytes()
        assert len(body) == item.length
        assert len(body) <= max_bytes or item.rows == 1
        assert item.rows <= max_rows
        decoded = orjson.loads(body)
        assert decoded["user_api_key"] == KEY
        assert decoded["string_ids"] == item.ids()
        assert len(decoded["data"]) == item.rows
        if item.has_attributes:
            assert len(decoded["attributes"]) == item.rows
        else:
            assert "attributes" not in decoded
        seen_ids.extend(decoded["string_ids"])
    expected = [i for ids, _, _ in spec for i in ids if i]
    all_ids = [i for c in chunks for i in c.ids]
    assert seen_ids == all_ids == expected


def _grown_body(batch: Batch, chunk: EncodedRows, i: int) -> bytes:
    """The body of ``batch`` with row ``i`` of ``chunk`` appended (a body the batcher could
    have made), written again from the rows' own encoded fragments: an oracle independent of
    the batcher's arithmetic that writes every number exactly as the body does."""
    rows = [(s.chunk, j) for s in batch.segments for j in range(s.first, s.stop)]
    rows.append((chunk, i))
    body: dict[str, Any] = {
        "user_api_key": KEY,
        "project_name": "proj",
        "collection_name": "coll",
        "string_ids": [c.ids[j] for c, j in rows],
        "data": [orjson.Fragment(c.vec_col.row(j)) for c, j in rows],
    }
    # A chunk with attributes puts the attributes field in any body holding its rows.
    if any(c.attr_col is not None for c, _ in rows):
        body["attributes"] = [
            orjson.Fragment(c.attr_col.row(j)) if c.attr_col is not None else {} for c, j in rows
        ]
    return orjson.dumps(body)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=chunk_lists(), max_rows=st.integers(1, 20), slack=st.integers(0, 400))
def test_every_batch_but_the_last_is_full(
    spec: list[tuple[list[str], Any, list[Any] | None]], max_rows: int, slack: int
) -> None:
    """A batch is cut only when the next row would not fit: adding it would exceed max_rows
    or make a body over max_bytes (measured by writing that body again, independently)."""
    chunks = build_chunks(spec)
    max_bytes = ENVELOPE.fixed(True) + 40 + slack
    rows = [(chunk, i) for chunk in chunks for i in range(len(chunk))]
    items = pack(chunks, ENVELOPE, max_rows=max_rows, max_bytes=max_bytes)
    position = 0
    for n, item in enumerate(items):
        if isinstance(item, OversizeRow):
            position += 1
            continue
        position += item.rows
        if n == len(items) - 1 or position == len(rows):
            continue
        if item.rows == max_rows:
            continue
        grown = _grown_body(item, *rows[position])
        assert len(grown) > max_bytes, (
            f"batch {n} has {item.rows} rows and {item.length} bytes; the next row fits "
            f"({len(grown)} <= {max_bytes})"
        )


@settings(max_examples=60, deadline=None)
@given(spec=chunk_lists())
def test_bodies_decode_to_the_original_rows(
    spec: list[tuple[list[str], Any, list[Any] | None]],
) -> None:
    """Vectors and attributes survive encoding and batching byte-for-byte in meaning."""
    chunks = build_chunks(spec)
    items = pack(chunks, ENVELOPE, max_rows=7, max_bytes=10**6)
    vectors: list[list[float]] = []
    attrs: list[dict[str, str]] = []
    for item in items:
        assert isinstance(item, Batch)
        decoded = orjson.loads(item.body(ENVELOPE).to_bytes())
        vectors.extend(decoded["data"])
        attrs.extend(decoded.get("attributes", [{}] * item.rows))
    expected_vectors = [row for _, vecs, _ in spec for row in np.asarray(vecs, dtype=np.float32)]
    # float32 arrays are written in their shortest float32 form: equal once read as float32
    np.testing.assert_array_equal(
        np.asarray(vectors, dtype=np.float32), np.asarray(expected_vectors, dtype=np.float32)
    )
    expected_attrs = []
    for ids, _, rows in spec:
        for row in rows or [None] * len(ids):
            expected_attrs.append(
                {
                    k: ("true" if v is True else "false" if v is False else str(v))
                    for k, v in (row or {}).items()
                }
            )
    assert attrs == expected_attrs


def test_a_row_over_the_hard_cap_is_reported_and_rows_before_it_still_go() -> None:
    """One row that cannot fit is an OversizeRow naming its id; its neighbours are batched."""
    big = [[1.0] * 400]
    small = [[1.0] * 4]
    chunks = [
        make_chunk(0, small, ["a"], None),
        make_chunk(1, big, ["huge"], None),
        make_chunk(2, small, ["b"], None),
    ]
    batcher = Batcher(ENVELOPE, max_rows=10, max_bytes=300, hard_max_bytes=600)
    items = [x for c in chunks for x in batcher.add(c)]
    last = batcher.flush()
    assert last is not None
    items.append(last)
    kinds = [(type(x).__name__, x.ids() if isinstance(x, Batch) else x.row_id) for x in items]
    assert kinds == [("Batch", ["a"]), ("OversizeRow", "huge"), ("Batch", ["b"])]


def test_a_row_over_the_target_but_under_the_hard_cap_goes_alone() -> None:
    """max_bytes is a target: a bigger row is sent alone as long as the hard cap allows."""
    attrs = [{"k": "v"}, {"k": "x" * 300}, {"k": "v"}]
    chunk = make_chunk(0, [[1.0, 2.0], [5.0, 6.0], [3.0, 4.0]], ["a", "big", "c"], attrs)
    items = [*Batcher(ENVELOPE, max_rows=10, max_bytes=250, hard_max_bytes=2000).add(chunk)]
    assert [x.ids() for x in items if isinstance(x, Batch)] == [["a"], ["big"]]
    assert all(isinstance(x, Batch) for x in items)


def test_rows_trigger_cuts_before_bytes_when_smaller() -> None:
    """max_rows alone cuts batches when bytes allow more."""
    vectors = np.zeros((10, 3), dtype=np.float32)
    chunk = make_chunk(0, vectors, [str(i) for i in range(10)], None)
    items = pack([chunk], ENVELOPE, max_rows=4, max_bytes=10**6)
    assert [x.rows for x in items if isinstance(x, Batch)] == [4, 4, 2]


def test_attribute_free_rows_send_empty_objects_next_to_rows_with_attributes() -> None:
    """A batch mixing chunks with and without attributes sends {} for the rows without."""
    a = make_chunk(0, [[1.0]], ["a"], None)
    b = make_chunk(1, [[2.0]], ["b"], [{"label": "1"}])
    (batch,) = pack([a, b], ENVELOPE, max_rows=10, max_bytes=10**6)
    assert isinstance(batch, Batch)
    decoded = orjson.loads(batch.body(ENVELOPE).to_bytes())
    assert decoded["attributes"] == [{}, {"label": "1"}]


def test_batcher_refuses_settings_that_cannot_work() -> None:
    """Nonsensical limits are refused at construction."""
    with pytest.raises(ValueError, match="max_rows"):
        Batcher(ENVELOPE, max_rows=0, max_bytes=10**6)
    with pytest.raises(ValueError, match="hard_max_bytes"):
        Batcher(ENVELOPE, max_rows=1, max_bytes=10**6, hard_max_bytes=10)
    with pytest.raises(ValueError, match="too small"):
        Batcher(ENVELOPE, max_rows=1, max_bytes=10)
