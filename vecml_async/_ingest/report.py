"""What an ingest did: :class:`IngestReport` and its per-batch failures.

Every row of the input ends in exactly one place: sent (its batch was accepted), skipped (a
resumed ingest found it in the checkpoint), failed (listed with its id in ``failures``,
together with the error), or unread (the ingest stopped before reading it)::

    rows_total == rows_sent + rows_skipped + failed_row_count + (rows_unread or 0)

A failure keeps its rows' ids and copies of their encoded bytes, never the chunks they were
cut from, so the report's memory is bounded by what failed. ``failed_rows()`` decodes them
back; for an input that can be read again (an array, a sequence, a frame, a file) it also
reads again the unread rows and the rows of failed upload jobs, so that ``ingest`` of it
sends exactly what is missing.

This module imports nothing from the rest of the package: the errors can name the report
without an import cycle.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

#: A row as ``failed_rows()`` gives it back: ``(id, vector, attributes)``.
Row = tuple[str, Any, dict[str, str]]
#: Reads rows of the input again: the row ranges wanted, then where unread rows start.
Reread = Callable[[Sequence[tuple[int, int]], "int | None"], Iterator[Row]]


def detached(error: BaseException) -> BaseException:
    """``error`` without tracebacks (its chain's too): a traceback keeps every local of the
    frames it went through alive, the request body among them."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        current.__traceback__ = None
        current = current.__cause__ or current.__context__
    return error


def _array(fragments: bytes) -> Any:
    return orjson.loads(b"[" + fragments + b"]")


@dataclass(frozen=True)
class RowBytes:
    """Copies of some rows' encoded bytes: each column's fragments joined by commas.

    ``vectors`` is ``None`` when only the ids were kept (rows whose upload job failed: they
    are read again from the input); ``attributes`` is ``None`` when no row had any.
    """

    ranges: tuple[tuple[int, int], ...]
    ids: bytes
    vectors: bytes | None = None
    attributes: bytes | None = None

    @property
    def count(self) -> int:
        return sum(stop - start for start, stop in self.ranges)

    @property
    def nbytes(self) -> int:
        return len(self.ids) + len(self.vectors or b"") + len(self.attributes or b"")

    def decode_ids(self) -> list[str]:
        ids: list[str] = _array(self.ids)
        return ids

    def rows(self) -> Iterator[Row]:
        """The rows decoded (only when the vectors were kept)."""
        if self.vectors is None:
            return
        vectors = _array(self.vectors)
        attributes = _array(self.attributes) if self.attributes is not None else None
        for k, row_id in enumerate(self.decode_ids()):
            yield row_id, vectors[k], attributes[k] if attributes is not None else {}


class BatchFailure:
    """Rows that are not known to be on the server, and why.

    Attributes:
        kind: ``"send"`` (the request failed after its retries), ``"job"`` (the upload job
            failed, with ``wait=True``), ``"invalid"`` (a row was refused before sending),
            or ``"not_sent"`` (the ingest stopped before this batch was sent).
        batch_index: the batch's number, or ``None`` for an invalid row.
        row_ids: the ids of the rows concerned (an invalid row without a readable id has
            none).
        first_row: index in the input of the first of them.
        error: the error text (never contains the key).
        exception: the error itself (without its traceback, which would keep the request
            alive).
        job_id: the upload job, for ``"job"`` failures.
        encoded: copies of the rows' encoded bytes (``None`` for invalid rows).

    ``count`` gives the number of rows when the ids do not (an invalid row without a
    readable id is one row; an input refused part-way is none: its rows are unread).
    """

    def __init__(
        self,
        kind: str,
        batch_index: int | None,
        row_ids: list[str] | None = None,
        first_row: int = 0,
        error: str = "",
        exception: BaseException | None = None,
        job_id: str | None = None,
        *,
        encoded: RowBytes | None = None,
        count: int | None = None,
    ) -> None:
        self.kind = kind
        self.batch_index = batch_index
        self._row_ids = row_ids
        self.first_row = first_row
        self.error = error
        self.exception = exception
        self.job_id = job_id
        self.encoded = encoded
        self._count = count

    @property
    def row_ids(self) -> list[str]:
        if self._row_ids is not None:
            return list(self._row_ids)
        return self.encoded.decode_ids() if self.encoded is not None else []

    @property
    def rows(self) -> int:
        """How many rows this failure concerns."""
        if self._count is not None:
            return self._count
        if self._row_ids is not None:
            return len(self._row_ids)
        return self.encoded.count if self.encoded is not None else 0

    @property
    def ranges(self) -> tuple[tuple[int, int], ...]:
        """The rows concerned, as ``[start, stop)`` ranges of input indices."""
        if self.encoded is not None:
            return self.encoded.ranges
        return ((self.first_row, self.first_row + 1),) if self.kind == "invalid" else ()

    def __repr__(self) -> str:
        return (
            f"BatchFailure(kind={self.kind!r}, batch_index={self.batch_index!r}, "
            f"rows={self.rows}, first_row={self.first_row}, error={self.error!r})"
        )


@dataclass
class IngestReport:
    """The outcome of :meth:`AsyncVecML.ingest`.

    Attributes:
        project_name / collection_name: where the rows went.
        rows_total: rows of the input, as far as known: every row read, plus the unread
            ones when their number is known.
        rows_sent: rows in accepted batches.
        rows_skipped: rows a resumed ingest skipped because the checkpoint had them.
        rows_unread: rows never read because the ingest stopped early; ``None`` when their
            number is unknown (the rest of a stream, or of a file never read to its end).
        stopped_at: index of the first row not read, when the ingest stopped early.
        batches_sent: accepted ``add_data_batch`` requests.
        bytes_sent: body bytes of the accepted requests.
        job_ids: the upload job of each accepted batch, in batch order.
        jobs_finished: jobs seen ``finished`` (``wait=True``).
        retries: request attempts that were retried.
        rate_limited: ``Request limit reached`` answers received.
        elapsed: seconds from start to end.
        waited_after_send: with ``wait=True``, seconds spent waiting for upload jobs after
            the last batch was sent (jobs are polled while batches still go out).
        peak_memory: the most bytes of encoded rows the ingest held at once (the bodies in
            flight and the rows read ahead; at most half of ``max_memory``).
        target_history: the body sizes the ingest cut its batches at, in the order it chose
            them (one entry for a fixed ``batch_bytes``).
        failures: everything read that did not land, with ids.
        generated_ids: ``True`` when the client generated the ids (``id_prefix`` + index).
        id_prefix: the prefix of generated ids.
        stopped: why the ingest ended early, or ``None``.
    """

    project_name: str
    collection_name: str
    rows_total: int = 0
    rows_sent: int = 0
    rows_skipped: int = 0
    rows_unread: int | None = 0
    stopped_at: int | None = None
    batches_sent: int = 0
    bytes_sent: int = 0
    job_ids: list[str] = field(default_factory=list)
    jobs_finished: int = 0
    retries: int = 0
    rate_limited: int = 0
    elapsed: float = 0.0
    waited_after_send: float = 0.0
    peak_memory: int = 0
    target_history: list[int] = field(default_factory=list)
    failures: list[BatchFailure] = field(default_factory=list)
    generated_ids: bool = False
    id_prefix: str | None = None
    stopped: str | None = None
    #: Reads rows of the input again (set for re-readable inputs; not pickled).
    reread: Reread | None = field(default=None, repr=False, compare=False)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["reread"] = None  # holds the input; a copy in another process cannot read it
        return state

    @property
    def failed_row_count(self) -> int:
        return sum(f.rows for f in self.failures)

    @property
    def failed_ids(self) -> list[str]:
        """Ids of every row read that is not known to be on the server."""
        return [row_id for f in self.failures for row_id in f.row_ids]

    @property
    def complete(self) -> bool:
        """Every row of the input was sent (or was already sent by an earlier run)."""
        return not self.failures and self.stopped is None and self.rows_unread == 0

    @property
    def rows_per_second(self) -> float:
        return self.rows_sent / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def megabytes_per_second(self) -> float:
        return self.bytes_sent / 1e6 / self.elapsed if self.elapsed > 0 else 0.0

    def generated_id(self, index: int) -> str:
        """The id generated for input row ``index`` (only when ``generated_ids``)."""
        if not self.generated_ids or self.id_prefix is None:
            raise ValueError("this ingest did not generate ids")
        return f"{self.id_prefix}{index}"

    def failed_rows(self) -> list[Row]:
        """Every row that did not land, as ``(id, vector, attributes)`` tuples.

        Pass the list to ``ingest`` to send exactly what is missing: the rows of failed and
        unsent batches, and, for an input that can be read again (not a one-shot iterator),
        the rows of failed upload jobs and the rows never read. Rows refused as invalid are
        not in it (they would be refused again); their ids are in ``failures``.
        """
        rows: list[Row] = []
        wanted: list[tuple[int, int]] = []
        for failure in self.failures:
            if failure.kind == "invalid" or failure.encoded is None:
                continue
            if failure.encoded.vectors is None:
                wanted.extend(failure.encoded.ranges)
            else:
                rows.extend(failure.encoded.rows())
        if self.reread is not None and (wanted or self.stopped_at is not None):
            rows.extend(self.reread(sorted(wanted), self.stopped_at))
        return rows

    def summary(self) -> str:
        """One paragraph for logs and the command line."""
        state = "complete" if self.complete else f"INCOMPLETE ({self.stopped or 'failures'})"
        text = (
            f"{self.rows_sent:,} of {self.rows_total:,} rows sent to "
            f"{self.project_name}/{self.collection_name} in {self.batches_sent:,} "
            f"{'batch' if self.batches_sent == 1 else 'batches'}, "
            f"{self.elapsed:.1f} s ({self.rows_per_second:,.0f} rows/s, "
            f"{self.megabytes_per_second:.1f} MB/s); retries {self.retries}, rate-limit answers "
            f"{self.rate_limited}; {state}"
        )
        if self.rows_skipped:
            text += f"; {self.rows_skipped:,} rows skipped (already in the checkpoint)"
        if self.failures:
            text += f"; {self.failed_row_count:,} rows failed"
        if self.stopped_at is not None:
            unread = "an unknown number of" if self.rows_unread is None else f"{self.rows_unread:,}"
            text += f"; reading stopped at row {self.stopped_at:,}, {unread} rows unread"
        return text
