"""File payloads of ``/upload`` and ``/automl_predict``: reading, checks, gzip, base64.

Files travel inside the JSON body as base64 (documented for ``automl_predict``; assumed for
``upload``). Before anything is sent the file is checked: the base64 body fits under the
request cap (base64 inflates by 4/3: a 150 MB file is already over 200 MB once encoded; the
size comes from the file system, before anything is read), the format is known, gzip data is
complete and intact, a binary file's header matches its size, text formats decode.

The file is read in pieces and each piece base64-encoded as it comes, so memory holds the
base64 text (about 4/3 of the file, which a retry needs) and one piece, never the whole file
beside it; :func:`file_body` puts the pieces into the request body without joining them.
"""

from __future__ import annotations

import base64
import os
import re
import struct
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Final

import anyio
import anyio.to_thread
import orjson

from vecml_async._body import EncodedBody
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


#: Bytes read (and base64-encoded) at a time: a multiple of 3, so the base64 of the pieces
#: joins into the base64 of the whole file without padding in between.
READ_CHUNK: Final = 3 << 20
#: How much of a text file's start is checked (format, UTF-8).
_HEAD_BYTES: Final = 65536


@dataclass(frozen=True)
class FilePayload:
    """A checked file, base64-encoded in pieces, ready for the request body.

    ``pieces`` joined are the base64 text of the file (ASCII); ``encoded_size`` is their total
    length. Holding the pieces (about 4/3 of the file) is all the memory a file body takes:
    the file is never held whole next to its base64 text.
    """

    pieces: tuple[bytes, ...] = field(repr=False)
    encoded_size: int
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


class _GzipCheck:
    """Decompresses a gzip stream piece by piece (output bounded), keeping only its start and
    its length, to check the content without holding it."""

    def __init__(self) -> None:
        self._decompressor = zlib.decompressobj(wbits=31)
        self.head = b""
        self.length = 0

    def feed(self, data: bytes | memoryview) -> None:
        pending = data
        while pending:
            try:
                out = self._decompressor.decompress(pending, READ_CHUNK)
            except zlib.error as err:
                raise InvalidInputError(f"corrupt gzip data: {err}", field="file_data") from None
            self._take(out)
            pending = self._decompressor.unconsumed_tail
            if self._decompressor.eof:
                return

    def finish(self) -> None:
        self._take(self._decompressor.flush())
        if not self._decompressor.eof:
            raise InvalidInputError("gzip data is truncated", field="file_data")

    def _take(self, out: bytes) -> None:
        if len(self.head) < _HEAD_BYTES:
            self.head += out[: _HEAD_BYTES - len(self.head)]
        self.length += len(out)


def _check_content(head: bytes, length: int, file_format: str) -> None:
    """Check a file from its first bytes (``head``) and its total ``length``."""
    if length == 0 or (length <= len(head) and not head.strip()):
        raise InvalidInputError("the file is empty", field="file_data")
    if file_format == "binary":
        if length < 8:
            raise InvalidInputError(
                "a binary file starts with int32 rows, int32 dim", field="file_data"
            )
        rows, dim = struct.unpack("<ii", head[:8])
        expected = 8 + 4 * rows * dim
        if rows <= 0 or dim <= 0 or length != expected:
            raise InvalidInputError(
                f"binary header says {rows} x {dim} float32 ({expected} bytes), the file has "
                f"{length} bytes",
                field="file_data",
            )
        return
    head = head[:_HEAD_BYTES]
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


def _compression(first_bytes: bytes, compression_type: str | None) -> str | None:
    """The compression to send, from the option and the data's first bytes."""
    is_gzip = first_bytes[:2] == GZIP_MAGIC
    if compression_type == "auto":
        return "gzip" if is_gzip else None
    if compression_type not in (None, "gzip"):
        raise InvalidInputError(
            f"{compression_type!r} is not a supported compression; use 'gzip'",
            field="compression_type",
        )
    if compression_type == "gzip" and not is_gzip:
        raise InvalidInputError(
            "compression_type is 'gzip' but the data is not gzip", field="compression_type"
        )
    if compression_type is None and is_gzip:
        raise InvalidInputError(
            "the data is gzip; pass compression_type='gzip' (or 'auto')",
            field="compression_type",
        )
    return compression_type


def _check_size(size: int, max_request_bytes: int) -> int:
    """The base64 size of a ``size``-byte file; refused when the body would pass the cap."""
    encoded_size = 4 * ((size + 2) // 3)
    if encoded_size + _ENVELOPE_ALLOWANCE > max_request_bytes:
        raise InvalidInputError(
            f"the file is {size:,} bytes, {encoded_size:,} in base64: over the "
            f"{max_request_bytes:,}-byte request cap; split it, compress it, or use ingest()",
            field="file_data",
        )
    return encoded_size


def _check_format(file_format: str, allowed_formats: tuple[str, ...]) -> None:
    if file_format not in allowed_formats:
        raise InvalidInputError(
            f"{file_format!r} is not one of {', '.join(allowed_formats)}", field="file_format"
        )


def _encode_pieces(
    chunks: Iterable[bytes | memoryview],
    *,
    size: int,
    file_format: str,
    compression_type: str | None,
) -> FilePayload:
    """Base64-encode ``chunks`` (each a multiple of 3 bytes but the last) into pieces, checking
    the content on the way: one pass, nothing held but the pieces."""
    pieces: list[bytes] = []
    gzip_check = _GzipCheck() if compression_type == "gzip" else None
    head = b""
    read = 0
    for chunk in chunks:
        if gzip_check is not None:
            gzip_check.feed(chunk)
        elif len(head) < _HEAD_BYTES:
            head += bytes(chunk[: _HEAD_BYTES - len(head)])
        read += len(chunk)
        pieces.append(base64.b64encode(chunk))
    if read != size:
        raise InvalidInputError(
            f"the file changed while it was read ({size:,} bytes, then {read:,})", field="file"
        )
    if gzip_check is not None:
        gzip_check.finish()
        _check_content(gzip_check.head, gzip_check.length, file_format)
    else:
        _check_content(head, size, file_format)
    return FilePayload(tuple(pieces), sum(map(len, pieces)), file_format, compression_type, size)


def prepare_file(
    content: bytes | bytearray | memoryview,
    *,
    file_format: str,
    compression_type: str | None,
    allowed_formats: tuple[str, ...],
    max_request_bytes: int = HARD_MAX_REQUEST_BYTES,
) -> FilePayload:
    """Check ``content`` and base64-encode it (in pieces).

    ``compression_type`` ``"auto"`` sends ``"gzip"`` when the content starts with the gzip
    magic bytes; ``"gzip"`` requires gzip data; ``None`` sends the content as plain.
    """
    _check_format(file_format, allowed_formats)
    view = memoryview(content).cast("B")
    compression = _compression(bytes(view[:2]), compression_type)
    _check_size(len(view), max_request_bytes)
    chunks = (view[start : start + READ_CHUNK] for start in range(0, len(view), READ_CHUNK))
    return _encode_pieces(
        chunks, size=len(view), file_format=file_format, compression_type=compression
    )


def _read_chunks(handle: BinaryIO) -> Iterator[bytes]:
    while chunk := handle.read(READ_CHUNK):
        yield chunk


def read_file(
    path: str,
    *,
    file_format: str,
    compression_type: str | None,
    allowed_formats: tuple[str, ...],
    max_request_bytes: int = HARD_MAX_REQUEST_BYTES,
) -> FilePayload:
    """Check the file at ``path`` and base64-encode it in pieces (blocking: run it in a thread).

    The size comes from the file system first: a file too large for the request cap is refused
    before a byte of it is read.
    """
    _check_format(file_format, allowed_formats)
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        _check_size(size, max_request_bytes)
        compression = _compression(handle.read(2), compression_type)
        handle.seek(0)
        return _encode_pieces(
            _read_chunks(handle), size=size, file_format=file_format, compression_type=compression
        )


async def load_file(
    file: str | os.PathLike[str] | bytes | bytearray | memoryview,
    *,
    file_format: str | None,
    compression_type: str | None,
    allowed_formats: tuple[str, ...],
    max_request_bytes: int = HARD_MAX_REQUEST_BYTES,
) -> FilePayload:
    """Check and encode a file given as a path or as bytes, off the event loop."""
    name = ""
    if isinstance(file, (str, os.PathLike)):
        name = os.fspath(file)
        if not await anyio.Path(name).is_file():
            raise InvalidInputError(f"no such file: {name!r}", field="file")
    elif not isinstance(file, (bytes, bytearray, memoryview)):
        raise InvalidInputError(
            f"file must be a path or bytes, got {type(file).__name__}", field="file"
        )
    if file_format is None:
        file_format = _format_from_name(name)
        if file_format is None:
            raise InvalidInputError(
                "cannot tell the format from the file name; pass file_format=", field="file_format"
            )
    fmt = file_format
    content = None if name else file
    assert not isinstance(content, (str, os.PathLike))

    def check() -> FilePayload:
        if content is None:
            return read_file(
                name,
                file_format=fmt,
                compression_type=compression_type,
                allowed_formats=allowed_formats,
                max_request_bytes=max_request_bytes,
            )
        return prepare_file(
            content,
            file_format=fmt,
            compression_type=compression_type,
            allowed_formats=allowed_formats,
            max_request_bytes=max_request_bytes,
        )

    return await anyio.to_thread.run_sync(check)


def file_body(fields: EncodedBody, file_field: str, payload: FilePayload) -> EncodedBody:
    """The request body of ``fields`` (an encoded JSON object) plus ``file_field`` holding the
    file's base64 text, as pieces: the base64 pieces are not copied into one buffer."""
    head = fields.to_bytes()
    if not head.endswith(b"}"):
        raise ValueError("fields must encode a JSON object")
    separator = b"" if head.replace(b" ", b"") == b"{}" else b","
    opening = head[:-1] + separator + orjson.dumps(file_field) + b':"'
    pieces = (opening, *payload.pieces, b'"}')
    return EncodedBody(pieces, len(opening) + payload.encoded_size + 2)
