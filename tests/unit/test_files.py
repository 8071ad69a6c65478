"""File payloads of /upload and /automl_predict: format, gzip, checks, base64, size cap."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import struct
import tracemalloc
from pathlib import Path

import httpx
import pytest

from vecml_async import AsyncVecML, InvalidInputError
from vecml_async._body import encode_request
from vecml_async._files import READ_CHUNK, FilePayload, file_body, load_file, prepare_file
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


# ----------------------------------------------------------------------------- memory


class _Consume(httpx.AsyncBaseTransport):
    """Reads a request body as a stream, keeping only its length and a running hash of the
    ``file_data`` string (the body's last field: it ends the body with ``"}``)."""

    MARK = b'"file_data":"'

    def __init__(self) -> None:
        self.length = 0
        self.digest = hashlib.sha256()
        self.tail = b""
        self.in_file = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.AsyncByteStream)
        async for chunk in request.stream:
            self.length += len(chunk)
            data = self.tail + bytes(chunk)
            if not self.in_file:
                start = data.find(self.MARK)
                if start < 0:
                    self.tail = data
                    continue
                data, self.in_file = data[start + len(self.MARK) :], True
            self.digest.update(data[:-2])
            self.tail = data[-2:]
        assert self.tail == b'"}'
        return httpx.Response(200, json={"success": True, "job_id": "j"})


def _csv_file(path: Path, size: int) -> bytes:
    """A CSV file of about ``size`` bytes; returns a sha256 of its base64 text."""
    line = b"0.123456,1.234567,2.345678,3.456789,label\n"
    with path.open("wb") as handle:
        handle.write(b"a,b,c,d,label\n")
        handle.write(line * (size // len(line)))
    return hashlib.sha256(base64.b64encode(path.read_bytes())).digest()


async def test_upload_builds_its_body_in_bounded_memory(tmp_path: Path, api_key: str):
    """A 24 MB file is sent holding its base64 text in pieces (4/3 of the file, what a retry
    needs) plus a few read pieces at most: never the file, its base64 and the JSON body at
    once (which peaked over 4x the file). The body the server reads holds the file intact."""
    path = tmp_path / "big.csv"
    expected_digest = _csv_file(path, 24_000_000)
    size = path.stat().st_size
    sink = _Consume()
    async with (
        httpx.AsyncClient(transport=sink) as http,
        AsyncVecML(
            api_key, base_url="http://vecml.test/api", http_client=http, rate_limit=None
        ) as client,
    ):
        tracemalloc.start()
        try:
            await client.upload("p", "c", path, has_field_names=True)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    encoded = 4 * ((size + 2) // 3)
    assert peak - encoded < 3 * READ_CHUNK, f"peak {peak / 1e6:.1f} MB, {size / 1e6:.1f} MB file"
    assert encoded < sink.length < encoded + 1000
    assert sink.digest.digest() == expected_digest


def test_file_body_is_the_fields_plus_the_base64_text():
    """file_body() puts the pieces after the other fields: one valid JSON object."""
    payload = prepare(CSV)
    body = file_body(encode_request("k", {"a": 1}), "file_data", payload)
    parsed = json.loads(body.to_bytes())
    assert parsed == {"user_api_key": "k", "a": 1, "file_data": base64.b64encode(CSV).decode()}
    assert body.length == len(body.to_bytes())


async def test_oversize_file_is_refused_from_its_size_before_reading(tmp_path: Path):
    """A 300 MB file (sparse on disk) is refused by its size alone: nothing like its size is
    ever allocated."""
    path = tmp_path / "huge.csv"
    with path.open("wb") as handle:
        handle.truncate(300_000_000)
    tracemalloc.start()
    try:
        with pytest.raises(InvalidInputError, match="request cap") as info:
            await load_file(
                path, file_format=None, compression_type="auto", allowed_formats=FILE_FORMATS
            )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert info.value.field == "file_data"
    assert peak < 5_000_000


def test_gzip_stream_checks_integrity_piece_by_piece():
    """A gzip file longer than one read piece is checked whole: a flipped byte near its end
    is found, a cut file is 'truncated'."""
    content = b"x,y\n" + b"".join(f"{i},{i * 7 % 13}\n".encode() for i in range(900_000))
    compressed = bytearray(gzip.compress(content, compresslevel=1))
    assert len(compressed) > 2 * (3 << 20) or len(content) > 2 * (3 << 20)
    assert b64(prepare(bytes(compressed))) == bytes(compressed)
    with pytest.raises(InvalidInputError, match="truncated"):
        prepare(bytes(compressed[:-20]))
    compressed[-12] ^= 0xFF  # inside the CRC/size trailer
    with pytest.raises(InvalidInputError, match="gzip"):
        prepare(bytes(compressed))
