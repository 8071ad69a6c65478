"""Resumable ingests: an append-only journal of acknowledged batches, tied to its input.

The first line is a header: format, project, collection, the prefix of generated ids (so a
re-run generates the same ids) and the input's fingerprint (see ``fingerprint.py``). Each
later line records one batch the server accepted: the input row ranges it held, its upload
job, the ids of its first and last rows and a checksum of each of those two rows; or it
undoes one (the batch's upload job failed: its rows are to be sent again).

Every line carries a CRC of its content and is written whole, flushed and fsynced before the
batch counts as landed. When the journal is opened again:

* a last line without its newline (cut short by a crash) is dropped silently;
* the header must match the project, the collection and the input (every fingerprint key);
* any other damage is refused, never trusted: a line that is not JSON or fails its CRC, a
  range that is empty, negative, beyond the input's rows, or overlaps rows already recorded,
  an undo of rows not recorded.

While a resumed ingest skips recorded rows, the executor compares the first and last row of
each record with the input (their checksums), so a changed stream is refused too.
"""

from __future__ import annotations

import os
import zlib
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.to_thread
import orjson

from vecml_async._ingest.fingerprint import differences
from vecml_async.errors import InvalidInputError

FORMAT = "vecml-async-checkpoint"
VERSION = 2


def _crc(record: dict[str, Any]) -> int:
    content = {k: v for k, v in record.items() if k != "crc"}
    return zlib.crc32(orjson.dumps(content, option=orjson.OPT_SORT_KEYS))


def _refuse(path: str, why: str) -> InvalidInputError:
    return InvalidInputError(f"{path!r}: {why}; it cannot be trusted to resume", field="checkpoint")


class Checkpoint:
    """The journal of one ingest; see the module docstring."""

    def __init__(self, path: str, header: dict[str, Any], length: int | None) -> None:
        self.path = path
        self.header = header
        self.length = length
        self._starts: list[int] = []
        self._stops: list[int] = []
        #: Rows to compare with the input: index -> (checksum, id) of a record's end rows.
        self.checks: dict[int, tuple[int, str]] = {}
        self._check_keys: list[int] = []
        self._lock = anyio.Lock()

    @property
    def id_prefix(self) -> str:
        return str(self.header["id_prefix"])

    @property
    def rows_done(self) -> int:
        return sum(b - a for a, b in zip(self._starts, self._stops))

    # ------------------------------------------------------------------ reading

    @classmethod
    async def open(
        cls,
        path: str | os.PathLike[str],
        project: str,
        collection: str,
        *,
        fingerprint: dict[str, Any],
        id_prefix: str,
        length: int | None = None,
    ) -> Checkpoint:
        """Load the journal at ``path`` (checked against this input), or start one there."""
        header = {
            "format": FORMAT,
            "version": VERSION,
            "project": project,
            "collection": collection,
            "id_prefix": id_prefix,
            "input": fingerprint,
        }
        return await anyio.to_thread.run_sync(cls._open_sync, os.fspath(path), header, length)

    @classmethod
    def _open_sync(cls, path: str, wanted: dict[str, Any], length: int | None) -> Checkpoint:
        lines = cls._read_lines(path)
        if not lines:
            checkpoint = cls(path, wanted, length)
            checkpoint._append_sync(wanted)
            return checkpoint
        header = cls._load(path, lines[0], 1)
        cls._check_header(path, header, wanted)
        checkpoint = cls(path, header, length)
        for number, line in enumerate(lines[1:], 2):
            checkpoint._apply(checkpoint._load(path, line, number), number)
        return checkpoint

    @staticmethod
    def _read_lines(path: str) -> list[bytes]:
        if not os.path.exists(path):
            return []
        with open(path, "rb") as handle:
            content = handle.read()
        whole = content.rfind(b"\n") + 1
        if whole < len(content):
            # A line cut short by a crash: drop it, so the next record starts a line.
            os.truncate(path, whole)
            content = content[:whole]
        return content.splitlines()

    @staticmethod
    def _load(path: str, line: bytes, number: int) -> dict[str, Any]:
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            if number == 1:
                raise InvalidInputError(
                    f"{path!r} is not a vecml-async checkpoint", field="checkpoint"
                )
            raise _refuse(path, f"line {number} is damaged")
        if number == 1 and (record.get("format"), record.get("version")) != (FORMAT, VERSION):
            raise InvalidInputError(
                f"{path!r} is not a vecml-async checkpoint (version {VERSION})", field="checkpoint"
            )
        if record.get("crc") != _crc(record):
            raise _refuse(path, f"line {number} fails its checksum")
        return record

    @staticmethod
    def _check_header(path: str, header: dict[str, Any], wanted: dict[str, Any]) -> None:
        where = (header.get("project"), header.get("collection"))
        if where != (wanted["project"], wanted["collection"]):
            raise InvalidInputError(
                f"{path!r} belongs to {where[0]}/{where[1]}", field="checkpoint"
            )
        if not isinstance(header.get("id_prefix"), str):
            raise _refuse(path, "its header has no id prefix")
        recorded = header.get("input")
        changed = differences(recorded if isinstance(recorded, dict) else {}, wanted["input"])
        if changed:
            raise InvalidInputError(
                f"{path!r} was written for another input (it differs in: "
                f"{', '.join(changed)}); use a new checkpoint for this input",
                field="checkpoint",
            )

    def _apply(self, record: dict[str, Any], number: int) -> None:
        ranges = record.get("ranges")
        if not isinstance(ranges, list) or not ranges:
            raise _refuse(self.path, f"line {number} holds no row ranges")
        for pair in ranges:
            if not (
                isinstance(pair, list)
                and len(pair) == 2
                and all(isinstance(v, int) and not isinstance(v, bool) for v in pair)
                and 0 <= pair[0] < pair[1]
                and (self.length is None or pair[1] <= self.length)
            ):
                raise _refuse(self.path, f"line {number} holds an impossible range {pair!r}")
            start, stop = pair
            if record.get("undo"):
                if self.remaining(start, stop):
                    raise _refuse(self.path, f"line {number} undoes rows never recorded")
                self._remove(start, stop)
            elif self.remaining(start, stop) != [(start, stop)]:
                raise _refuse(self.path, f"line {number} records rows recorded before")
            else:
                self._add(start, stop)
        if not record.get("undo"):
            self._remember_checks(ranges, record)

    def _remember_checks(self, ranges: list[list[int]], record: dict[str, Any]) -> None:
        ids, digests = record.get("ids"), record.get("digests")
        if isinstance(ids, list) and isinstance(digests, list) and len(ids) == len(digests) == 2:
            self.checks[ranges[0][0]] = (digests[0], ids[0])
            self.checks[ranges[-1][1] - 1] = (digests[1], ids[1])
            self._check_keys = sorted(self.checks)

    def checks_in(self, start: int, stop: int) -> list[tuple[int, int, str]]:
        """Rows of ``[start, stop)`` to compare with the input: ``(index, checksum, id)``."""
        keys = self._check_keys
        found = keys[bisect_left(keys, start) : bisect_left(keys, stop)]
        return [(k, *self.checks[k]) for k in found]

    # ------------------------------------------------------------------ intervals

    def _add(self, start: int, stop: int) -> None:
        i = bisect_left(self._starts, start)
        self._starts.insert(i, start)
        self._stops.insert(i, stop)
        merged: list[tuple[int, int]] = []
        for a, b in zip(self._starts, self._stops):
            if merged and a <= merged[-1][1]:
                merged[-1] = (merged[-1][0], max(merged[-1][1], b))
            else:
                merged.append((a, b))
        self._starts = [a for a, _ in merged]
        self._stops = [b for _, b in merged]

    def _remove(self, start: int, stop: int) -> None:
        kept: list[tuple[int, int]] = []
        for a, b in zip(self._starts, self._stops):
            if b <= start or a >= stop:
                kept.append((a, b))
                continue
            if a < start:
                kept.append((a, start))
            if b > stop:
                kept.append((stop, b))
        self._starts = [a for a, _ in kept]
        self._stops = [b for _, b in kept]

    def remaining(self, start: int, stop: int) -> list[tuple[int, int]]:
        """Sub-ranges of ``[start, stop)`` not yet recorded as landed."""
        out: list[tuple[int, int]] = []
        position = start
        i = max(0, bisect_right(self._starts, start) - 1)
        while position < stop and i < len(self._starts):
            a, b = self._starts[i], self._stops[i]
            if b <= position:
                i += 1
                continue
            if a >= stop:
                break
            if a > position:
                out.append((position, a))
            position = max(position, b)
            i += 1
        if position < stop:
            out.append((position, stop))
        return out

    # ------------------------------------------------------------------ writing

    def _append_sync(self, record: dict[str, Any]) -> None:
        line = orjson.dumps({**record, "crc": _crc(record)}) + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def record(
        self,
        ranges: Sequence[tuple[int, int]],
        job_id: str | None,
        ids: tuple[str, str],
        digests: tuple[int, int],
    ) -> None:
        """Journal an accepted batch (durably, before returning).

        ``ids`` and ``digests`` are the id and checksum of its first and last rows.
        """
        record = {
            "ranges": [list(r) for r in ranges],
            "job": job_id,
            "ids": list(ids),
            "digests": list(digests),
        }
        await self._write(record)

    async def undo(self, ranges: Sequence[tuple[int, int]], job_id: str | None) -> None:
        """Journal that an accepted batch's job failed: its rows are to be sent again."""
        await self._write({"ranges": [list(r) for r in ranges], "job": job_id, "undo": True})

    async def _write(self, record: dict[str, Any]) -> None:
        async with self._lock:
            # Not abandoned on cancellation: the line is either whole or not written.
            await anyio.to_thread.run_sync(self._append_sync, record)
            self._apply({**record, "crc": 0}, 0)
