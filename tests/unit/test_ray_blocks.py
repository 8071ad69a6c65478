"""What the Ray Data sink does with a block and with its tasks' reports (no Ray cluster)."""

from __future__ import annotations

import pickle
import types

import numpy as np
import pytest

from vecml_async import BatchFailure, IngestError, IngestReport, InvalidInputError
from vecml_async._ingest.report import RowBytes
from vecml_async._ray_blocks import (
    block_ids,
    block_rows,
    block_vectors,
    derived_ids,
    merge_reports,
    portable_report,
)

pa = pytest.importorskip("pyarrow")


def _table(**columns: object) -> object:
    return pa.table(columns)


@pytest.mark.parametrize(
    "vectors",
    [
        pa.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], pa.list_(pa.float32())),
        pa.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], pa.large_list(pa.float64())),
        pa.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], pa.list_(pa.float32(), 2)),
    ],
    ids=["list", "large_list", "fixed_size_list"],
)
def test_vector_columns_become_a_matrix(vectors):
    """List, large list and fixed-size list columns all give a (rows, dim) array."""
    table = _table(vector=vectors)
    assert block_vectors(table, "vector").tolist() == [[1, 2], [3, 4], [5, 6]]


def test_vectors_of_a_sliced_block_start_at_the_slice():
    """A block that is a slice of a bigger array reads its own rows, not the first ones."""
    table = _table(vector=pa.array([[float(i), -float(i)] for i in range(10)]))
    assert block_vectors(table.slice(7, 2), "vector").tolist() == [[7, -7], [8, -8]]


@pytest.mark.parametrize(
    ("vectors", "match"),
    [([[1.0, 2.0], [3.0]], "different lengths"), ([[1.0], None], "no vector")],
    ids=["ragged", "null"],
)
def test_bad_vector_columns_are_refused(vectors, match):
    """Ragged or missing vectors are an InvalidInputError with the row's index."""
    with pytest.raises(InvalidInputError, match=match) as info:
        block_vectors(_table(vector=pa.array(vectors)), "vector")
    assert info.value.index == 1


def test_ids_from_a_column_are_text_and_missing_ones_refused():
    """Id column values are sent as text; a null id or an absent column is refused."""
    assert block_ids(_table(id=[7, 8]), "id", ()) == ["7", "8"]
    with pytest.raises(InvalidInputError, match="no id"):
        block_ids(_table(id=["a", None]), "id", ())
    with pytest.raises(InvalidInputError, match="no column 'doc'") as info:
        block_ids(_table(id=["a"]), "doc", ())
    assert info.value.field == "doc"


def test_derived_ids_depend_only_on_the_named_values():
    """The same values give the same id in any block or run; different values differ."""
    a = _table(path=["f1", "f1", "f2"], row=[0, 1, 0], other=[1.0, 2.0, 3.0])
    b = _table(row=[1, 0], path=["f1", "f2"], other=[9.0, 9.0])
    ids_a, ids_b = derived_ids(a, ("path", "row")), derived_ids(b, ("path", "row"))
    assert len(set(ids_a)) == 3
    assert ids_b == ids_a[1:]
    assert all(len(i) == 24 for i in ids_a)


def test_block_rows_from_pandas_with_attributes():
    """A pandas block gives vectors, ids and attributes (nulls left out)."""
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {"id": ["x", "y"], "vector": [np.ones(3), np.zeros(3)], "lang": ["en", None]}
    )
    vectors, ids, attrs = block_rows(
        frame, vector_column="vector", id_column="id", id_from=(), attribute_columns=("lang",)
    )
    assert vectors.shape == (2, 3) and ids == ["x", "y"]
    assert attrs == [{"lang": "en"}, {}]


def _report(**fields: object) -> IngestReport:
    return IngestReport("p", "c", **fields)  # type: ignore[arg-type]


def test_merge_adds_counts_joins_lists_and_keeps_the_first_stop():
    """Counts add up, job ids and failures are joined, the first stop reason is kept."""
    failure = BatchFailure("send", 3, ["r1"], 10, "boom")
    merged = merge_reports(
        "p",
        "c",
        [
            _report(rows_total=5, rows_sent=5, retries=1, job_ids=["j1"], elapsed=2.0),
            _report(rows_total=4, rows_sent=3, rate_limited=2, job_ids=["j2"], failures=[failure]),
            _report(stopped="callback"),
        ],
    )
    assert (merged.rows_total, merged.rows_sent, merged.retries, merged.rate_limited) == (
        9,
        8,
        1,
        2,
    )
    assert merged.job_ids == ["j1", "j2"] and merged.failed_ids == ["r1"]
    assert merged.stopped == "callback" and merged.elapsed == 2.0


def test_portable_report_drops_exception_objects_and_the_reader():
    """What travels back to the driver keeps the ids, the failed rows' bytes and the error
    text, not the exception objects or the means to read the block again."""
    rows = RowBytes(((0, 1),), b'"a"', b"[1.0,2.0]")
    failure = BatchFailure("send", 0, None, 0, "refused", ValueError("x"), encoded=rows)
    report = _report(failures=[failure])
    report.reread = lambda ranges, stop: iter(())
    slim = portable_report(report)
    assert slim.failures[0].exception is None and slim.reread is None
    assert report.failures[0].exception is not None  # the original is left as it was
    assert slim.failures[0].error == "refused" and slim.failed_ids == ["a"]
    back = pickle.loads(pickle.dumps(slim))
    assert back.failed_ids == ["a"] and back.failed_rows() == [("a", [1.0, 2.0], {})]


# ----------------------------------------------------------------------------- the sink


class _Budget:
    async def acquire(self) -> None:
        return None

    def on_rate_limited(self) -> None:
        return None

    def on_success(self) -> None:
        return None

    @property
    def current_rate(self) -> float | None:
        return 1.0


@pytest.fixture
def sink_module() -> types.ModuleType:
    pytest.importorskip("ray", reason="Ray is not installed (the [ray] extra)")
    import vecml_async.ray as module

    return module


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({}, "stay the same when Ray re-runs"),
        ({"id_column": "id", "id_from": "path"}, "not both"),
        ({"id_column": "id", "ids": ["a"]}, "sets ids from each block"),
        ({"id_column": "id", "checkpoint": "j.jsonl"}, "checkpoint journal"),
        ({"id_column": "id", "no_such_option": 1}, "no option 'no_such_option'"),
    ],
    ids=["no-ids", "both", "ids", "checkpoint", "unknown"],
)
def test_sink_refuses_bad_options_on_the_driver(sink_module, options, match):
    """Options that cannot work are refused before any task starts."""
    with pytest.raises(InvalidInputError, match=match):
        sink_module.VecMLDatasink("p", "c", budget=_Budget(), **options)


def test_sink_key_travels_but_is_never_shown(sink_module):
    """The key pickles with the sink (for the tasks) but no repr shows it."""
    sink = sink_module.VecMLDatasink(
        "p", "c", api_key="vml_secret_k3y", budget=_Budget(), id_column="id"
    )
    again = pickle.loads(pickle.dumps(sink))
    assert again._key.value == "vml_secret_k3y"
    assert "vml_secret_k3y" not in repr(sink) + repr(sink._key)


def test_sink_merges_reports_and_raises_on_failures(sink_module):
    """on_write_complete merges the tasks' reports; with failures it raises IngestError
    (the report stays on the sink), unless raise_on_error=False."""
    failure = BatchFailure("send", 0, ["a"], 0, "refused")
    result = types.SimpleNamespace(
        write_returns=[_report(rows_sent=2), _report(rows_sent=1, failures=[failure])]
    )
    sink = sink_module.VecMLDatasink("p", "c", budget=_Budget(), id_column="id")
    with pytest.raises(IngestError):
        sink.on_write_complete(result)
    assert sink.report.rows_sent == 3 and sink.report.failed_ids == ["a"]
    quiet = sink_module.VecMLDatasink(
        "p", "c", budget=_Budget(), id_column="id", raise_on_error=False
    )
    quiet.on_write_complete(result)
    assert quiet.report.rows_sent == 3


def test_sink_checks_columns_against_the_schema(sink_module):
    """A named column missing from the dataset's schema is refused at the start."""
    sink = sink_module.VecMLDatasink("p", "c", budget=_Budget(), id_from=("path", "row"))
    vector = ("vector", pa.list_(pa.float32()))
    sink.on_write_start(pa.schema([vector, ("path", pa.string()), ("row", pa.int64())]))
    with pytest.raises(InvalidInputError, match="no column 'row'"):
        sink.on_write_start(pa.schema([vector, ("path", pa.string())]))
