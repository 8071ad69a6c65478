"""/upload: inline files create or extend collections through upload jobs."""

from __future__ import annotations

import base64
import gzip
import struct
from typing import Any

import numpy as np
import orjson
import pytest

P = {"project_name": "p", "collection_name": "c"}
HEADER = {"has_field_names": True}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


async def test_csv_upload_creates_the_collection(api: Any) -> None:
    """A csv upload to a new collection creates it (dim from the file) with ids and attributes."""
    await api.ok("create_project", project_name="p")
    text = b"id,x1,x2,label,color\na,1,2,1,red\nb,3,4,0,blue\n"
    job = await api.ok(
        "upload",
        **P,
        file_data=b64(text),
        file_format="csv",
        has_field_names=True,
        string_id_column="id",
    )
    assert (await api.wait_job(job["job_id"]))["num_rows"] == 2
    ids, matrix, attrs = api.emulator.collection_data(api.key, "p", "c")
    assert ids == ["a", "b"]
    np.testing.assert_array_equal(matrix, [[1, 2], [3, 4]])
    assert attrs == [{"label": "1", "color": "red"}, {"label": "0", "color": "blue"}]


async def test_json_gzip_upload_appends_to_an_existing_collection(api: Any) -> None:
    """A gzip-compressed JSON-lines file appends to a collection made with init."""
    await api.collection(dim=2)
    await api.ok("add_data_batch", **P, data=[[0, 0]], string_ids=["first"])
    lines = b"\n".join(
        orjson.dumps({"string_id": f"r{i}", "data": [i, i], "attributes": {"k": "v"}})
        for i in range(3)
    )
    job = await api.ok(
        "upload",
        **P,
        file_data=b64(gzip.compress(lines)),
        file_format="json",
        compression_type="gzip",
    )
    await api.wait_job(job["job_id"])
    assert api.emulator.collection_ids(api.key, "p", "c") == ["first", "r0", "r1", "r2"]


async def test_libsvm_and_binary_uploads(api: Any) -> None:
    """libsvm labels land in the 'label' attribute; binary files carry n, dim and floats."""
    await api.ok("create_project", project_name="p")
    libsvm = b"1 1:0.5 3:2\n0 2:1\n"
    job = await api.ok("upload", **P, file_data=b64(libsvm), file_format="libsvm", vector_dim=4)
    await api.wait_job(job["job_id"])
    _, matrix, attrs = api.emulator.collection_data(api.key, "p", "c")
    np.testing.assert_array_equal(matrix, [[0.5, 0, 2, 0], [0, 1, 0, 0]])
    assert attrs == [{"label": "1"}, {"label": "0"}]
    binary = struct.pack("<ii", 2, 4) + np.arange(8, dtype="<f4").tobytes()
    job = await api.ok("upload", **P, file_data=b64(binary), file_format="binary")
    await api.wait_job(job["job_id"])
    assert len(api.emulator.collection_ids(api.key, "p", "c")) == 4


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"file_data": "!!!not base64", "file_format": "csv", **HEADER}, "base64"),
        ({"file_data": b64(b"x"), "file_format": "xlsx"}, "file_format"),
        ({"file_data": b64(b"x"), "file_format": "csv", "compression_type": "zip"}, "gzip"),
        ({"file_data": b64(b"not gzip"), "file_format": "csv", "compression_type": "gzip",
          **HEADER}, "gzip"),
        ({"file_data": b64(b"\x01\x00"), "file_format": "binary"}, "binary"),
        ({"file_format": "csv"}, "file_data"),
        ({"file_data": b64(b"a,b\n1,2\n"), "file_format": "csv", "vector_dim": 5, **HEADER},
         "5"),
        ({"file_data": b64(b"a,b\n1,2\n"), "file_format": "csv"}, "has_field_names"),
    ],
)  # fmt: skip
async def test_bad_files_are_400(api: Any, fields: dict[str, Any], fragment: str) -> None:
    """Corrupt base64, gzip or file content, or a wrong dimension, is a 400 naming it."""
    await api.collection(dim=2)
    message = await api.fail("upload", 400, **{**P, "collection_name": "new"}, **fields)
    assert fragment in message
    assert "new" not in api.emulator.inspect(api.key)["projects"]["p"]


async def test_upload_needs_an_existing_project(api: Any) -> None:
    """/upload into a missing project is 404."""
    assert "does not exist" in await api.fail(
        "upload", 404, **P, file_data=b64(b"a\n1\n"), file_format="csv", **HEADER
    )


async def test_upload_dimension_must_match_the_collection(api: Any) -> None:
    """A file whose width differs from an existing dense collection is refused."""
    await api.collection(dim=3)
    await api.fail("upload", 400, **P, file_data=b64(b"a,b\n1,2\n"), file_format="csv", **HEADER)


async def test_csv_needs_has_field_names_unless_lenient(start: Any) -> None:
    """The documentation requires has_field_names for csv: a csv upload without it is 400
    (nothing stored); with allow_missing_has_field_names it is taken as a header row."""
    strict = await start()
    await strict.ok("create_project", project_name="p")
    text = b"x1,x2\n1,2\n"
    message = await strict.fail("upload", 400, **P, file_data=b64(text), file_format="csv")
    assert message == "Missing required field 'has_field_names' (required for csv files)"
    assert "c" not in strict.emulator.inspect(strict.key)["projects"]["p"]
    json_text = b'[{"data": [1, 2]}]'
    await strict.ok("upload", **P, file_data=b64(json_text), file_format="json")  # csv only
    lenient = await start(allow_missing_has_field_names=True)
    await lenient.ok("create_project", project_name="p")
    job = await lenient.ok("upload", **P, file_data=b64(text), file_format="csv")
    assert (await lenient.wait_job(job["job_id"]))["num_rows"] == 1
