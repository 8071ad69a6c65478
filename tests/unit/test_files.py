"""File payloads of /upload and /automl_predict: format, gzip, checks, base64, size cap."""

from __future__ import annotations

import base64
import gzip
import struct
from pathlib import Path

import pytest

from vecml_async import InvalidInputError
from vecml_async._files import FilePayload, load_file, prepare_file
from vecml_async.models import FILE_FORMATS, PREDICT_FILE_FORMATS

CSV = b"f1,f2,label\n1,2,a\n3,4,b\n"


def b64(payload: FilePayload) -> bytes:
    """The file as the server gets it: the base64 pieces, decoded."""
    return base64.b64decode(b"".join(payload.pieces))


def prepare(content: bytes, fmt: str = "csv", compression: str | None = "auto", **kw):  # type: ignore[no-untyped-def]
    return prepare_file(
        content, file_format=fmt, compression_type=compression, allowed_formats=FILE_FORMATS, **kw
    )


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("a.csv", "csv"),
        ("A.CSV", "csv"),
        ("a.csv.gz", "csv"),
        ("a.json", "json"),
        ("a.jsonl", "json"),
        ("a.jsonl.gz", "json"),
        ("a.libsvm", "libsvm"),
        ("a.svm", "libsvm"),
        ("a.bin", "binary"),
        ("a.fbin", "binary"),
    ],
)
async def test_format_from_file_name(tmp_path: Path, name, fmt):
    """The format follows the extension, case-insensitively, through a .gz suffix."""
    content = {
        "csv": CSV,
        "json": b'[{"data": [1]}]',
        "libsvm": b"1 1:2\n",
        "binary": struct.pack("<iif", 1, 1, 0.5),
    }[fmt]
    if name.endswith(".gz"):
        content = gzip.compress(content)
    path = tmp_path / name
    path.write_bytes(content)
    payload = await load_file(
        path, file_format=None, compression_type="auto", allowed_formats=FILE_FORMATS
    )
    assert payload.file_format == fmt
    assert payload.compression_type == ("gzip" if name.endswith(".gz") else None)
    assert b64(payload) == content
    assert payload.size == len(content)


async def test_explicit_format_wins_over_extension(tmp_path: Path):
    """file_format= overrides what the file name suggests."""
    path = tmp_path / "rows.txt"
    path.write_bytes(b'{"data": [1, 2]}\n')
    payload = await load_file(
        str(path), file_format="json", compression_type="auto", allowed_formats=FILE_FORMATS
    )
    assert payload.file_format == "json"


@pytest.mark.parametrize("wrap", [bytes, bytearray, memoryview])
async def test_bytes_like_content(wrap):
    """bytes, bytearray and memoryview are all accepted as file content."""
    payload = await load_file(
        wrap(CSV), file_format="csv", compression_type="auto", allowed_formats=FILE_FORMATS
    )
    assert b64(payload) == CSV


def test_gzip_auto_detected_and_sent_compressed():
    """'auto' sends gzip data as is (compressed) with compression_type 'gzip'."""
    compressed = gzip.compress(CSV)
    payload = prepare(compressed)
    assert payload.compression_type == "gzip"
    assert b64(payload) == compressed


def test_gzip_explicit():
    """compression_type='gzip' with gzip data is accepted."""
    assert prepare(gzip.compress(CSV), compression="gzip").compression_type == "gzip"


def test_plain_data_no_compression():
    """Plain data with 'auto' or None carries no compression_type."""
    assert prepare(CSV).compression_type is None
    assert prepare(CSV, compression=None).compression_type is None


def test_gzip_content_is_checked_after_decompression():
    """The decompressed content is checked too (a gzip of a broken binary file is refused)."""
    bad = gzip.compress(struct.pack("<ii", 5, 5) + b"\x00" * 8)
    with pytest.raises(InvalidInputError, match="binary header") as info:
        prepare(bad, "binary")
    assert info.value.field == "file_data"


def test_binary_header_must_match_size():
    """A binary file is int32 rows, int32 dim, then rows*dim float32: exactly that size."""
    good = struct.pack("<ii", 2, 3) + struct.pack("<6f", *range(6))
    assert prepare(good, "binary").size == 32
    with pytest.raises(InvalidInputError, match="2 x 3"):
        prepare(good + b"\x00", "binary")
    with pytest.raises(InvalidInputError):
        prepare(struct.pack("<ii", 0, 3), "binary")


def test_text_checks():
    """json must start with '[' or '{'; libsvm's first line must be 'label i:v ...'."""
    assert prepare(b'  \n[{"data": [1]}]', "json").file_format == "json"
    assert prepare(b'{"data": [1]}\n{"data": [2]}\n', "json").file_format == "json"
    assert prepare(b"-1 3:0.5 10:1e-3\n", "libsvm").file_format == "libsvm"
    assert prepare(b"2.5\n", "libsvm").file_format == "libsvm"
    with pytest.raises(InvalidInputError):
        prepare(b"data,1\n", "json")
    with pytest.raises(InvalidInputError):
        prepare(b"1 2 3\n", "libsvm")


def test_utf8_cut_at_check_boundary_is_fine():
    """A multi-byte character cut by the 64 KiB check window is not taken for bad UTF-8."""
    content = b"a," + b"x" * 65533 + "é,1\n".encode()
    assert content[65535:65536] == "é".encode()[:1]
    assert prepare(content).size == len(content)


def test_size_cap_counts_base64():
    """The cap applies to the base64 size: 3 bytes become 4."""
    content = b"1,2\n" * 300  # 1200 bytes -> 1600 in base64
    allowance = 64 * 1024
    assert prepare(content, max_request_bytes=1600 + allowance).size == 1200
    with pytest.raises(InvalidInputError, match="request cap") as info:
        prepare(content, max_request_bytes=1599 + allowance)
    assert info.value.field == "file_data"


def test_predict_formats_exclude_binary():
    """automl_predict takes csv, json and libsvm files only."""
    assert PREDICT_FILE_FORMATS == ("csv", "json", "libsvm")
    with pytest.raises(InvalidInputError) as info:
        prepare_file(
            struct.pack("<iif", 1, 1, 1.0),
            file_format="binary",
            compression_type=None,
            allowed_formats=PREDICT_FILE_FORMATS,
        )
    assert info.value.field == "file_format"


async def test_directory_is_not_a_file(tmp_path: Path):
    """A directory path is refused as 'no such file'."""
    with pytest.raises(InvalidInputError, match="no such file") as info:
        await load_file(
            tmp_path, file_format="csv", compression_type="auto", allowed_formats=FILE_FORMATS
        )
    assert info.value.field == "file"
