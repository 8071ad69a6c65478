"""Resumable ingests: an append-only journal of acknowledged batches.

The first line is a header (format, project, collection, and the prefix of generated ids, so
a re-run generates the same ids). Each later line records one batch the server accepted: the
input row ranges it held, its upload job, and its first and last ids. Every line is written
whole, flushed and fsynced before the batch counts as landed; a last line cut short by a
crash is dropped when the journal is opened again (any other damage is refused). A re-run
with the same input skips the recorded rows and sends the rest; a batch in flight at the
crash is sent again with the same ids (the server upserts by id).
"""

from __future__ import annotations

import os
from bisect import bisect_right
from collections.abc import Sequence
from typing import Any

import anyio
import anyio.to_thread
import orjson

from vecml_async.errors import InvalidInputError

FORMAT = "vecml-async-checkpoint"
VERSION = 1


class Checkpoint:
    """The journal of one ingest; see the module docstring."""

    def __init__(self, path: str, header: dict[str, Any]) -> None:
        self.path = path
        self.header = header
        self._starts: list[int] = []
        self._stops: list[int] = []
        self.known_ids: dict[int, str] = {}
        self.job_ids: list[str] = []
        self._lock = anyio.Lock()

    @property
    def id_prefix(self) -> str | None:
        value = self.header.get("id_prefix")
        return value if isinstance(value, str) else None

    @property
    def rows_done(self) -> int:
        return sum(b - a for a, b in zip(self._starts, self._stops))

    # ------------------------------------------------------------------ reading

    @classmethod
    async def open(
        cls, path: str | os.PathLike[str], project: str, collection: str, id_prefix: str
    ) -> Checkpoint:
        """Load the journal at ``path``, or start one there."""
        name = os.fspath(path)
        return await anyio.to_thread.run_sync(cls._open_sync, name, project, collection, id_prefix)

    @classmethod
    def _open_sync(cls, path: str, project: str, collection: str, id_prefix: str) -> Checkpoint:
        records: list[dict[str, Any]] = []
        header: dict[str, Any] | None = None
        if os.path.exists(path):
            with open(path, "rb") as handle:
                content = handle.read()
            whole = content.rfind(b"\n") + 1
            if whole < len(content):
                # A line cut short by a crash: drop it, so the next record starts a line.
                os.truncate(path, whole)
                content = content[:whole]
            for number, line in enumerate(content.splitlines(), 1):
                try:
                    record = orjson.loads(line)
                except orjson.JSONDecodeError:
                    raise InvalidInputError(
                        f"{path!r} line {number} is damaged; it is not a checkpoint to resume",
                        field="checkpoint",
                    ) from None
                if header is None:
                    header = record
                else:
                    records.append(record)
        if header is not None:
            if header.get("format") != FORMAT or header.get("version") != VERSION:
                raise InvalidInputError(
                    f"{path!r} is not a vecml-async checkpoint", field="checkpoint"
                )
            if (header.get("project"), header.get("collection")) != (project, collection):
                raise InvalidInputError(
                    f"{path!r} belongs to {header.get('project')}/{header.get('collection')}",
                    field="checkpoint",
                )
            checkpoint = cls(path, header)
        else:
            header = {
                "format": FORMAT,
                "version": VERSION,
                "project": project,
                "collection": collection,
                "id_prefix": id_prefix,
            }
            checkpoint = cls(path, header)
            checkpoint._append_sync(header)
        for record in records:
            checkpoint._apply(record)
        return checkpoint

    def _apply(self, record: dict[str, Any]) -> None:
        ranges = record.get("ranges", [])
        if record.get("undo"):
            for start, stop in ranges:
                self._remove(start, stop)
            return
        for start, stop in ranges:
            self._add(start, stop)
        ids = record.get("ids") or []
        if ranges and len(ids) == 2:
            self.known_ids[ranges[0][0]] = ids[0]
            self.known_ids[ranges[-1][1] - 1] = ids[1]
        if record.get("job"):
            self.job_ids.append(record["job"])

    # ------------------------------------------------------------------ intervals

    def _add(self, start: int, stop: int) -> None:
        pairs = sorted([*zip(self._starts, self._stops), (start, stop)])
        merged: list[list[int]] = []
        for a, b in pairs:
            if merged and a <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], b)
            else:
                merged.append([a, b])
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
        line = orjson.dumps(record) + b"\n"
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    async def record(
        self, ranges: Sequence[tuple[int, int]], job_id: str, ids: Sequence[str]
    ) -> None:
        """Journal an accepted batch (durably, before returning)."""
        record = {"ranges": [list(r) for r in ranges], "job": job_id, "ids": [ids[0], ids[-1]]}
        async with self._lock:
            # Not abandoned on cancellation: the line is either whole or not written.
            await anyio.to_thread.run_sync(self._append_sync, record)
            self._apply(record)

    async def undo(self, ranges: Sequence[tuple[int, int]], job_id: str) -> None:
        """Journal that an accepted batch's job failed: its rows are to be sent again."""
        record = {"ranges": [list(r) for r in ranges], "job": job_id, "undo": True}
        async with self._lock:
            await anyio.to_thread.run_sync(self._append_sync, record)
            self._apply(record)


def contiguous_ranges(indices: Sequence[int]) -> list[tuple[int, int]]:
    """``[start, stop)`` runs of consecutive indices."""
    out: list[tuple[int, int]] = []
    for i in indices:
        if out and out[-1][1] == i:
            out[-1] = (out[-1][0], i + 1)
        else:
            out.append((i, i + 1))
    return out
