"""The chunk encoder: generated ids, the dimension, duplicate ids, sparse rows, and the
same bodies without numpy."""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson
import pytest
import scipy.sparse as sp

from vecml_async._ingest.chunks import RawChunk
from vecml_async._ingest.encoder import ChunkEncoder
from vecml_async.errors import InvalidInputError


def test_chunk_encoder_generates_ids_learns_dim_and_refuses_duplicates() -> None:
    """Generated ids are prefix + row index; the dim of the first chunk binds later ones."""
    encoder = ChunkEncoder("p-")
    first = encoder.encode(RawChunk(0, np.zeros((2, 3))))
    assert list(first.ids) == ["p-0", "p-1"] and encoder.dim == 3 and encoder.generated
    with pytest.raises(InvalidInputError, match="expected 3"):
        encoder.encode(RawChunk(2, [[1.0, 2.0]]))
    encoder = ChunkEncoder("x-")
    encoder.encode(RawChunk(0, [[1.0]], ["a"]))
    with pytest.raises(InvalidInputError, match="duplicate id") as info:
        encoder.encode(RawChunk(1, [[1.0], [2.0]], ["b", "a"]))
    assert info.value.index == 2 and info.value.row_id == "a"
    # the refused chunk did not poison the set of seen ids
    encoder.encode(RawChunk(1, [[1.0]], ["b"]))


def test_chunk_encoder_encodes_scipy_and_mapping_sparse_rows() -> None:
    """CSR matrices and {index: value} rows become sparse JSON vectors."""
    encoder = ChunkEncoder("x-", sparse_dim=100)
    matrix = sp.csr_matrix(np.array([[0, 1.5, 0], [2.0, 0, 3.0]]))
    chunk = encoder.encode(RawChunk(0, matrix, ["a", "b"], sparse=True))
    assert [orjson.loads(chunk.vec_col.row(i)) for i in range(2)] == [
        [[1, 1.5]],
        [[0, 2.0], [2, 3.0]],
    ]
    chunk = encoder.encode(RawChunk(2, [{3: 1.0}, ([9, 4], [2.0, 1.0])], ["c", "d"], sparse=True))
    assert orjson.loads(chunk.vec_col.row(1)) == [[4, 1.0], [9, 2.0]]


def test_encoding_and_batching_work_without_numpy(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lists of vectors need no numpy: the pure-Python bounds give the same bodies."""
    import sys

    from vecml_async._ingest.batching import Batch, Batcher, Envelope

    rows = [[1.0, 2.0], [3.5, 4.0], [5.0, 6.0]]
    ids = ["a", "b", "c"]
    attrs: list[Any] = [{"k": "v"}, None, {"k": "w"}]
    envelope = Envelope.create("key", "p", "c")

    def bodies() -> list[bytes]:
        chunk = ChunkEncoder("x-").encode(RawChunk(0, rows, ids, attrs))
        batcher = Batcher(envelope, max_rows=2, max_bytes=10**6)
        items = [*batcher.add(chunk), batcher.flush()]
        assert all(isinstance(x, Batch) for x in items)
        return [x.body(envelope).to_bytes() for x in items if isinstance(x, Batch)]

    with_numpy = bodies()
    monkeypatch.setitem(sys.modules, "numpy", None)  # any import of numpy now fails
    assert bodies() == with_numpy
    assert orjson.loads(with_numpy[0])["attributes"] == [{"k": "v"}, {}]
