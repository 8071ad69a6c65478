"""File payloads of ``/upload`` and ``/automl_predict``: reading, checks, gzip, base64.

Files travel inside the JSON body as base64 (documented for ``automl_predict``; assumed for
``upload``). Before anything is sent the file is checked: the format is known, gzip data is
complete and intact, a binary file's header matches its size, text formats decode, and the
base64 body fits under the request cap (base64 inflates by 4/3: a 150 MB file is already
over 200 MB once encoded).
"""

from __future__ import annotations

import base64
import os
import re
import struct
import zlib
from dataclasses import dataclass
from typing import Final

import anyio

from vecml_async._config import HARD_MAX_REQUEST_BYTES
from vecml_async.errors import InvalidInputError

GZIP_MAGIC: Final = b"\x1f\x8b"
SUFFIX_FORMATS: Final = {
    ".csv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".libsvm": "libsvm",
    ".svm": "libsvm",
    ".bin": "binary",
    ".fbin": "binary",
}
_LIBSVM_LINE: Final = re.compile(rb"^\s*[^\s:]+(\s+\d+:[^\s:]+)*\s*$")
#: Room left for the other JSON fields next to ``file_data``.
_ENVELOPE_ALLOWANCE: Final = 64 * 1024


@dataclass(frozen=True)
class FilePayload:
    """A checked file, ready for the request body."""

    file_data: str
    file_format: str
    compression_type: str | None
    size: int


def _format_from_name(name: str) -> str | None:
    lowered = name.lower()
    if lowered.endswith(".gz"):
        lowered = lowered[:-3]
    for suffix, fmt in SUFFIX_FORMATS.items():
        if lowered.endswith(suffix):
            return fmt
    return None


def _gunzip(data: bytes) -> bytes:
    """The decompressed content; refuses truncated or corrupt gzip data."""
    decompressor = zlib.decompressobj(wbits=31)
    try:
        out = decompressor.decompress(data)
        out += decompressor.flush()
    except zlib.error as err:
        raise InvalidInputError(f"corrupt gzip data: {err}", field="file_data") from None
    if not decompressor.eof:
        raise InvalidInputError("gzip data is truncated", field="file_data")
    return out


def _check_content(content: bytes, file_format: str) -> None:
    if not content.strip():
        raise InvalidInputError("the file is empty", field="file_data")
    if file_format == "binary":
        if len(content) < 8:
            raise InvalidInputError(
                "a binary file starts with int32 rows, int32 dim", field="file_data"
            )
        rows, dim = struct.unpack("<ii", content[:8])
        expected = 8 + 4 * rows * dim
        if rows <= 0 or dim <= 0 or len(content) != expected:
            raise InvalidInputError(
                f"binary header says {rows} x {dim} float32 ({expected} bytes), the file has "
                f"{len(content)} bytes",
                field="file_data",
            )
        return
    head = content[:65536]
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        if err.start < len(head) - 4:  # a cut multi-byte character at the end is fine
            raise InvalidInputError(
                f"a {file_format} file must be UTF-8 text", field="file_data"
            ) from None
    if file_format == "json" and head.lstrip()[:1] not in (b"[", b"{"):
        raise InvalidInputError("a json file holds an array or lines of objects", field="file_data")
    if file_format == "libsvm":
        first = head.lstrip().split(b"\n", 1)[0]
        if not _LIBSVM_LINE.match(first):
            raise InvalidInputError(
                "a libsvm line is 'label index:value ...'; the first line is not", field="file_data"
            )


def prepare_file(
    content: bytes,
    *,
    file_format: str,
    compression_type: str | None,
    allowed_formats: tuple[str, ...],
    max_request_bytes: int = HARD_MAX_REQUEST_BYTES,
) -> FilePayload:
    """Check ``content`` and base64-encode it.

    ``compression_type`` ``"auto"`` sends ``"gzip"`` when the content starts with the gzip
    magic bytes; ``"gzip"`` requires gzip data; ``None`` sends the content as plain.
    """
    if file_format not in allowed_formats:
        raise InvalidInputError(
            f"{file_format!r} is not one of {', '.join(allowed_formats)}", field="file_format"
        )
    is_gzip = content[:2] == GZIP_MAGIC
    if compression_type == "auto":
        compression_type = "gzip" if is_gzip else None
    if compression_type not in (None, "gzip"):
        raise InvalidInputError(
            f"{compression_type!r} is not a supported compression; use 'gzip'",
            field="compression_type",
        )
    if compression_type == "gzip":
        if not is_gzip:
            raise InvalidInputError(
                "compression_type is 'gzip' but the data is not gzip", field="compression_type"
            )
        _check_content(_gunzip(content), file_format)
    else:
        if is_gzip:
            raise InvalidInputError(
                "the data is gzip; pass compression_type='gzip' (or 'auto')",
                field="compression_type",
            )
        _check_content(content, file_format)
    encoded_size = 4 * ((len(content) + 2) // 3)
    if encoded_size + _ENVELOPE_ALLOWANCE > max_request_bytes:
        raise InvalidInputError(
            f"the file is {len(content):,} bytes, {encoded_size:,} in base64: over the "
            f"{max_request_bytes:,}-byte request cap; split it, compress it, or use ingest()",
            field="file_data",
        )
    return FilePayload(
        base64.b64encode(content).decode("ascii"), file_format, compression_type, len(content)
    )


async def load_file(
    file: str | os.PathLike[str] | bytes,
    *,
    file_format: str | None,
    compression_type: str | None,
    allowed_formats: tuple[str, ...],
) -> FilePayload:
    """Read (off the event loop), check and encode a file given as a path or as bytes."""
    if isinstance(file, (bytes, bytearray, memoryview)):
        content = bytes(file)
        name = ""
    elif isinstance(file, (str, os.PathLike)):
        name = os.fspath(file)
        path = anyio.Path(name)
        if not await path.is_file():
            raise InvalidInputError(f"no such file: {name!r}", field="file")
        content = await path.read_bytes()
    else:
        raise InvalidInputError(
            f"file must be a path or bytes, got {type(file).__name__}", field="file"
        )
    if file_format is None:
        file_format = _format_from_name(name)
        if file_format is None:
            raise InvalidInputError(
                "cannot tell the format from the file name; pass file_format=", field="file_format"
            )
    return await anyio.to_thread.run_sync(
        lambda: prepare_file(
            content,
            file_format=file_format,
            compression_type=compression_type,
            allowed_formats=allowed_formats,
        )
    )
