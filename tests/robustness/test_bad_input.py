"""Bad input across the public API: every case raises the documented typed error before any
request is sent (respx records every call; none may happen), naming the field at fault.

The table covers the constructor, every endpoint method, ``ingest()`` (in-memory inputs,
options, checkpoints, and the file readers: CSV, JSON lines, JSON, .npy, Parquet, gzip) and
the ``/upload`` and ``automl_predict(file=...)`` payload checks. Rows over the request cap
are built for real (a ~198 MB attribute, a 150 MB file) in a separate test.
"""

# ruff: noqa: E501  (the case table keeps one case per line)
from __future__ import annotations

import gzip
import math
import struct
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
import respx

from vecml_async import (
    AsyncVecML,
    ClientClosedError,
    IngestError,
    InvalidInputError,
    VecMLError,
)

BASE = "http://vecml.robustness.test/api"
KEY = "vml_bad_input_key_5e1f0c"
P, C = "p", "c"  # "c" is a dense collection of dim 4 created with init() in the fixture
GZ_CSV = gzip.compress(b"a,b,label\n1,2,x\n3,4,y\n" * 200)
GZ_ROWS = gzip.compress(b"a,b,c,d\n" + b"1,2,3,4\n" * 5000)

Call = Callable[[AsyncVecML, Path], Awaitable[Any]]


@dataclass(frozen=True)
class Case:
    name: str
    call: Call
    field: str | None  # None: an error without a field (ClientClosedError)
    error: type[Exception] = InvalidInputError


def _file(tmp: Path, name: str, content: bytes) -> Path:
    path = tmp / name
    path.write_bytes(content)
    return path


def _train(**overrides: Any) -> Call:
    fields: dict[str, Any] = {"task_type": "classification", "label_attribute": "label"}
    fields.update(overrides)
    names = [fields.pop(n, d) for n, d in (("project", P), ("collection", C), ("model", "m"))]
    return lambda c, t: c.train_automl_model(*names, **fields)


def _adb(data: Any, **options: Any) -> Call:
    return lambda c, t: c.add_data_batch(P, C, data, **options)


def _ingest(data: Any, **options: Any) -> Call:
    return lambda c, t: c.ingest(P, C, data, **options)


def _ingest_file(name: str, content: bytes, **options: Any) -> Call:
    return lambda c, t: c.ingest(P, C, _file(t, name, content), **options)


def _upload(content: Any, **options: Any) -> Call:
    return lambda c, t: c.upload(P, C, content, **options)


def _predict(**options: Any) -> Call:
    return lambda c, t: c.automl_predict(P, C, "m", **options)


def _construct(**options: Any) -> Call:
    async def call(c: AsyncVecML, t: Path) -> None:
        AsyncVecML(**options)

    return call


async def _closed(c: AsyncVecML, t: Path) -> None:
    other = AsyncVecML(KEY, base_url=BASE)
    await other.aclose()
    await other.create_project("p2")


async def _checkpoint_of_other_input(c: AsyncVecML, t: Path) -> None:
    path = t / "other.ckpt"
    path.write_bytes(
        b'{"format":"vecml-async-checkpoint","version":1,"project":"p","collection":"c",'
        b'"id_prefix":"x-"}\n{"ranges":[[0,2]],"job":"j","ids":["a0","a1"]}\n'
    )
    vectors = np.ones((4, 4), np.float32)
    await c.ingest(P, C, vectors, ids=["b0", "b1", "b2", "b3"], checkpoint=path)


def _numpy_nan_deep() -> Any:
    array = np.ones((150_000, 4), np.float32)
    array[149_999, 2] = np.nan
    return array


RAGGED = [[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0]]
FOUR = [[1.0, 2.0, 3.0, 4.0], [5.0, 6.0, 7.0, 8.0]]
BIN_BAD = struct.pack("<ii", 3, 4) + b"\0" * 4 * 11  # header says 12 floats, holds 11

# fmt: off
CASES = [
    # --- the constructor
    Case("empty api key", _construct(api_key="", base_url=BASE), "api_key"),
    Case("non-http base url", _construct(api_key=KEY, base_url="ftp://host/api"), "base_url"),
    # --- names: illegal, over-long, wrong type, empty
    Case("project name with a space", lambda c, t: c.create_project("my project"), "project_name"),
    Case("project name 129 chars", lambda c, t: c.create_project("p" * 129), "project_name"),
    Case("project name not a str", lambda c, t: c.create_project(42), "project_name"),
    Case("application not a str", lambda c, t: c.create_project("ok", application=5), "application"),
    Case("empty project name to delete", lambda c, t: c.delete_project(""), "project_name"),
    Case("collection name with /", lambda c, t: c.init(P, "a/b", vector_dim=4), "collection_name"),
    Case("non-ascii collection", lambda c, t: c.init(P, "vecteurs-é", vector_dim=4), "collection_name"),
    # --- init: enums and dimensions
    Case("dense init without dim", lambda c, t: c.init(P, "d"), "vector_dim"),
    Case("unknown vector_type", lambda c, t: c.init(P, "d", vector_type="quantum", vector_dim=4), "vector_type"),
    Case("zero vector_dim", lambda c, t: c.init(P, "d", vector_dim=0), "vector_dim"),
    Case("negative vector_dim", lambda c, t: c.init(P, "d", vector_dim=-3), "vector_dim"),
    Case("vector_dim as a str", lambda c, t: c.init(P, "d", vector_dim="64"), "vector_dim"),
    Case("vector_dim as a bool", lambda c, t: c.init(P, "d", vector_dim=True), "vector_dim"),
    # --- training
    Case("unknown training_mode", _train(training_mode="turbo"), "training_mode"),
    Case("unknown task_type", _train(task_type="clustering"), "task_type"),
    Case("model name with !", _train(model="m!"), "model_name"),
    Case("model name 129 chars", _train(model="m" * 129), "model_name"),
    Case("empty label_attribute", _train(label_attribute=""), "label_attribute"),
    Case("categorical_features as a str", _train(categorical_features="colour"), "categorical_features"),
    Case("illegal validation_dataset", _train(validation_dataset="a b"), "validation_dataset"),
    # --- automl_predict
    Case("predict with dataset and file", _predict(prediction_dataset="c", file=b"a\n1\n"), "prediction_dataset"),
    Case("predict with neither", _predict(), "prediction_dataset"),
    Case("predict dataset illegal name", _predict(prediction_dataset="x y"), "prediction_dataset"),
    Case("predict binary file", _predict(file=b"\1\0\0\0", file_format="binary"), "file_format"),
    Case("predict corrupt gzip", _predict(file=GZ_CSV[:10] + b"garbage!" * 8, file_format="csv"), "file_data"),
    Case("predict missing file", lambda c, t: c.automl_predict(P, C, "m", file=t / "nope.csv"), "file"),
    Case("predict unknown suffix", lambda c, t: c.automl_predict(P, C, "m", file=_file(t, "x.dat", b"1")), "file_format"),
    # --- upload
    Case("upload unknown format", _upload(b"<xml/>", file_format="xml"), "file_format"),
    Case("upload truncated gzip", _upload(GZ_CSV[: len(GZ_CSV) // 2], file_format="csv"), "file_data"),
    Case("upload gzip sent as plain", _upload(GZ_CSV, file_format="csv", compression_type=None), "compression_type"),
    Case("upload unknown compression", _upload(b"a\n1\n", file_format="csv", compression_type="bz2"), "compression_type"),
    Case("upload plain data said gzip", _upload(b"a\n1\n", file_format="csv", compression_type="gzip"), "compression_type"),
    Case("upload binary header mismatch", _upload(BIN_BAD, file_format="binary"), "file_data"),
    Case("upload empty file", _upload(b"  \n", file_format="csv"), "file_data"),
    Case("upload bad libsvm line", _upload(b"1 3=0.5\n", file_format="libsvm"), "file_data"),
    Case("upload json not an array", _upload(b"hello", file_format="json"), "file_data"),
    Case("upload csv not utf-8", _upload(b"a,b\n\xff\xfe\xfd,1\n" * 10, file_format="csv"), "file_data"),
    Case("upload file not bytes or path", _upload(12345, file_format="csv"), "file"),
    Case("upload illegal collection", lambda c, t: c.upload(P, "a b", b"a\n1\n", file_format="csv"), "collection_name"),
    # --- add_data_batch / add_data
    Case("ragged rows", _adb(RAGGED), "data"),
    Case("NaN in a list", _adb([[1.0, math.nan, 3.0, 4.0]]), "data"),
    Case("inf in an array", _adb(np.array([[1, 2, np.inf, 4]], np.float32)), "data"),
    Case("None element", _adb([[1.0, None, 3.0, 4.0]]), "data"),
    Case("str element", _adb([[1.0, "2", 3.0, 4.0]]), "data"),
    Case("bool element", _adb([[1.0, True, 3.0, 4.0]]), "data"),
    Case("3-D array", _adb(np.ones((2, 2, 4), np.float32)), "data"),
    Case("object array", _adb(np.array([["a", "b", "c", "d"]], dtype=object)), "data"),
    Case("wrong dim for the collection", _adb([[1.0, 2.0, 3.0]]), "data"),
    Case("empty data", _adb([]), "data"),
    Case("duplicate ids", _adb(FOUR, string_ids=["a", "a"]), "string_ids"),
    Case("ids length mismatch", _adb(FOUR, string_ids=["a"]), "string_ids"),
    Case("attributes length mismatch", _adb(FOUR, attributes=[{"k": "v"}]), "attributes"),
    Case("int id", _adb(FOUR, string_ids=["a", 7]), "string_ids"),
    Case("empty id", _adb(FOUR, string_ids=["a", ""]), "string_ids"),
    Case("ids as a set", _adb(FOUR, string_ids={"a", "b"}), "string_ids"),
    Case("attribute value an object", _adb(FOUR, attributes=[{"k": object()}, {}]), "attributes"),
    Case("attribute value NaN", _adb(FOUR, attributes=[{"k": math.nan}, {}]), "attributes"),
    Case("attribute name not a str", _adb(FOUR, attributes=[{1: "v"}, {}]), "attributes"),
    Case("attributes not a mapping", _adb(FOUR, attributes=["k=v", "k=w"]), "attributes"),
    Case("sparse index out of range", _adb([{5: 1.0}], sparse=True, vector_dim=4), "data"),
    Case("sparse negative index", _adb([{-1: 1.0}], sparse=True, vector_dim=4), "data"),
    Case("add_data vector a str", lambda c, t: c.add_data(P, C, "1,2,3,4"), "data"),
    # --- jobs and the escape hatch
    Case("empty job id", lambda c, t: c.get_upload_data_status(""), "job_id"),
    Case("job id not a str", lambda c, t: c.get_automl_training_status(5), "job_id"),
    Case("rebuild job from empty id", lambda c, t: _sync(c.upload_job, ""), "job_id"),
    Case("endpoint with a slash", lambda c, t: c.call("../admin"), "endpoint"),
    # --- ingest: inputs and options
    Case("ingest empty list", _ingest([]), "data"),
    Case("ingest NaN in row 149,999", _ingest(_numpy_nan_deep()), "data"),
    Case("ingest wrong dim array", _ingest(np.ones((3, 5), np.float32)), "data"),
    Case("ingest wrong dim list", _ingest([[1.0, 2.0]]), "data"),
    Case("ingest ragged list", _ingest(RAGGED), "data"),
    Case("ingest duplicate ids", _ingest(np.ones((3, 4)), ids=["a", "b", "a"]), "string_ids"),
    Case("ingest ids length mismatch", _ingest(np.ones((3, 4)), ids=["a"]), "ids"),
    Case("ingest attributes mismatch", _ingest(np.ones((3, 4)), attributes=[{}]), "attributes"),
    Case("ingest iterator plus too few ids", _ingest(iter(FOUR), ids=["a"]), "ids"),
    Case("ingest rows with ids plus ids", _ingest([("r0", FOUR[0])], ids=["a"]), "ids"),
    Case("ingest id_column plus ids", _ingest(FOUR, id_column="id", ids=["a", "b"]), "ids"),
    Case("ingest columns of an array", _ingest(np.ones((2, 4)), vector_columns=["x"]), "vector_columns"),
    Case("ingest an int", _ingest(5), "data"),
    Case("ingest illegal project", lambda c, t: c.ingest("a b", C, FOUR), "project_name"),
    Case("ingest concurrency 0", _ingest(FOUR, concurrency=0), "concurrency"),
    Case("ingest max_bytes over the cap", _ingest(FOUR, max_bytes=10**9), "max_bytes"),
    Case("ingest max_rows 0", _ingest(FOUR, max_rows=0), "max_rows"),
    Case("ingest unknown on_invalid", _ingest(FOUR, on_invalid="ignore"), "on_invalid"),
    Case("ingest max_consecutive_failures 0", _ingest(FOUR, max_consecutive_failures=0), "max_consecutive_failures"),
    Case("ingest unknown sparse_format", _ingest([{0: 1.0}], ids=["a"], sparse=True, sparse_format="csr"), "sparse_format"),
    Case("ingest checkpoint of another input", _checkpoint_of_other_input, "checkpoint"),
    Case("ingest file that is no checkpoint", lambda c, t: c.ingest(P, C, FOUR, checkpoint=_file(t, "x.ckpt", b'{"a":1}\n')), "checkpoint"),
    # --- ingest: files
    Case("ingest missing file", lambda c, t: c.ingest(P, C, str(t / "none.csv")), "data"),
    Case("ingest unknown suffix", _ingest_file("rows.txt", b"1,2,3,4\n"), "file_format"),
    Case("ingest unknown file_format", _ingest_file("rows.csv", b"a\n1\n", file_format="xml"), "file_format"),
    Case("ingest empty csv", _ingest_file("rows.csv", b""), "data"),
    Case("ingest csv ragged line", _ingest_file("rows.csv", b"a,b,c,d\n1,2,3,4\n1,2,3\n"), "data"),
    Case("ingest csv text in a vector", _ingest_file("rows.csv", b"a,b,c,d\n1,2,x,4\n"), "data"),
    Case("ingest csv unknown id_column", _ingest_file("rows.csv", b"a,b,c,d\n1,2,3,4\n", id_column="id"), "id_column"),
    Case("ingest jsonl bad line", _ingest_file("rows.jsonl", b'{"id":"a","vector":[1,2,3,4]}\n{oops\n'), "data"),
    Case("ingest json not an array", _ingest_file("rows.json", b'{"id":"a"}'), "data"),
    Case("ingest json invalid", _ingest_file("rows.json", b"[1, 2"), "data"),
    Case("ingest corrupt npy", _ingest_file("rows.npy", b"\x93NUMPY garbage"), "data"),
    Case("ingest gzipped npy", _ingest_file("rows.npy.gz", gzip.compress(b"x")), "data"),
    Case("ingest truncated csv.gz", _ingest_file("rows.csv.gz", GZ_ROWS[: len(GZ_ROWS) // 2]), "data"),
    Case("ingest csv.gz that is not gzip", _ingest_file("rows.csv.gz", b"a,b,c,d\n1,2,3,4\n"), "data"),
    Case("ingest csv not utf-8", _ingest_file("rows.csv", b"a,b,c,d\n1,2,3,4\n\xff\xfe,1,2,3\n"), "data"),
    Case("ingest corrupt parquet", _ingest_file("rows.parquet", b"PAR1 not really"), "data"),
    # --- a closed client
    Case("closed client", _closed, None, ClientClosedError),
]
# fmt: on


def _sync(function: Callable[..., Any], *args: Any) -> Any:
    async def call() -> Any:
        return function(*args)

    return call()


@pytest.fixture
async def mock() -> AsyncIterator[respx.MockRouter]:
    """Every request to BASE is recorded and answered with a success."""
    with respx.mock(base_url=BASE, assert_all_called=False, assert_all_mocked=True) as router:
        router.route().mock(
            return_value=httpx.Response(200, json={"success": True, "job_id": "job-1"})
        )
        yield router


@pytest.fixture
async def client(mock: respx.MockRouter, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """A client that knows collection p/c (dense, dim 4)."""
    monkeypatch.delenv("VECML_API_KEY", raising=False)
    monkeypatch.delenv("VECML_BASE_URL", raising=False)
    async with AsyncVecML(KEY, base_url=BASE, rate_limit=None) as c:
        await c.init(P, C, vector_dim=4)
        yield c


def test_the_table_has_enough_cases() -> None:
    """The cross-API table holds at least 25 cases, each with a distinct name."""
    assert len(CASES) >= 25
    assert len({case.name for case in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_bad_input_is_refused_before_anything_is_sent(
    client: AsyncVecML, mock: respx.MockRouter, tmp_path: Path, case: Case
) -> None:
    """The case raises its documented error, naming the field, and sends no request."""
    sent_before = len(mock.calls)
    with pytest.raises(VecMLError) as caught:
        await case.call(client, tmp_path)
    error = caught.value
    sent = [call.request.url.path for call in mock.calls[sent_before:]]
    assert not sent, f"{case.name}: requests were sent before the refusal: {sent}"
    assert isinstance(error, case.error), f"{case.name}: {type(error).__name__}: {error}"
    if case.field is None:
        assert "closed" in str(error)
        return
    assert error.field == case.field, f"{case.name}: field {error.field!r}: {error}"  # type: ignore[attr-defined]
    assert str(error).startswith(case.field), f"{case.name}: {error}"


@pytest.mark.slow
async def test_rows_and_files_over_the_request_cap_are_refused_before_sending(
    client: AsyncVecML, mock: respx.MockRouter
) -> None:
    """Rows (~198 MB attribute) and files (150 MB) over the cap are refused unsent, counted once."""
    problems: list[str] = []
    huge = "x" * 198_000_000
    row = [1.0, 2.0, 3.0, 4.0]
    try:
        sent_before = len(mock.calls)
        try:
            await client.add_data_batch(P, C, [row], attributes=[{"blob": huge}])
            problems.append("add_data_batch sent an oversize row")
        except InvalidInputError as err:
            if err.field != "data":
                problems.append(f"add_data_batch: field {err.field!r}")
        if len(mock.calls) != sent_before:
            problems.append("add_data_batch sent a request")

        # The oversize row alone: nothing can be sent, so this is an InvalidInputError.
        try:
            await client.ingest(P, C, [("big", row, {"blob": huge})])
            problems.append("ingest accepted an oversize row")
        except InvalidInputError as err:
            if (err.field, err.row_id) != ("data", "big"):
                problems.append(f"ingest alone: field {err.field!r}, row {err.row_id!r}")
        except IngestError as err:
            problems.append(
                f"ingest alone: IngestError instead of InvalidInputError; "
                f"report: {err.report.summary()}"
            )
        if len(mock.calls) != sent_before:
            problems.append("ingest of the oversize row alone sent a request")

        # Three rows, the middle one over the cap, invalid rows skipped: two rows go out and
        # the report accounts for three.
        rows = [("r0", row, {"k": "v"}), ("big", row, {"blob": huge}), ("r2", row, {"k": "v"})]
        try:
            await client.ingest(P, C, rows, on_invalid="skip")
            problems.append("ingest with an oversize row reported success")
        except IngestError as err:
            report = err.report
            accounted = (report.rows_total, report.rows_sent, report.failed_ids)
            if accounted != (3, 2, ["big"]):
                problems.append(
                    f"ingest skip: (rows_total, rows_sent, failed_ids) = {accounted}, "
                    "expected (3, 2, ['big'])"
                )
    finally:
        del huge
    sent_before = len(mock.calls)
    try:
        await client.upload(P, C, b"1,2\n" * 37_500_000, file_format="csv")
        problems.append("upload sent a 200 MB body")
    except InvalidInputError as err:
        if err.field != "file_data":
            problems.append(f"upload: field {err.field!r}")
    if len(mock.calls) != sent_before:
        problems.append("upload sent a request")
    assert not problems, problems
