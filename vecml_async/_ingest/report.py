"""What an ingest did: :class:`IngestReport` and its per-batch failures.

Every row read from the input ends in exactly one place: sent (its batch was accepted and got
an upload job), skipped (a resumed ingest found it in the checkpoint), or failed (listed with
its id in ``failures``, together with the error). ``failed_rows()`` gives the rows of failed
batches back, ready to pass to ``ingest`` again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from vecml_async._ingest.batching import Batch


@dataclass
class BatchFailure:
    """Rows that are not known to be on the server, and why.

    Attributes:
        kind: ``"send"`` (the request failed after its retries), ``"job"`` (the upload job
            failed, with ``wait=True``), ``"invalid"`` (a row was refused before sending),
            or ``"not_sent"`` (the ingest stopped before this batch was sent).
        batch_index: the batch's number, or ``None`` for an invalid row.
        row_ids: the ids of the rows concerned.
        first_row: index in the input of the first of them.
        error: the error text (never contains the key).
        exception: the error itself.
        job_id: the upload job, for ``"job"`` failures.
    """

    kind: str
    batch_index: int | None
    row_ids: list[str]
    first_row: int
    error: str
    exception: BaseException | None = field(default=None, repr=False)
    job_id: str | None = None
    batch: Batch | None = field(default=None, repr=False)

    @property
    def rows(self) -> int:
        return len(self.row_ids)


@dataclass
class IngestReport:
    """The outcome of :meth:`AsyncVecML.ingest`.

    Attributes:
        project_name / collection_name: where the rows went.
        rows_total: rows read from the input.
        rows_sent: rows in accepted batches.
        rows_skipped: rows a resumed ingest skipped because the checkpoint had them.
        batches_sent: accepted ``add_data_batch`` requests.
        bytes_sent: body bytes of the accepted requests.
        job_ids: the upload job of each accepted batch, in batch order.
        jobs_finished: jobs seen ``finished`` (``wait=True``).
        retries: request attempts that were retried.
        rate_limited: ``Request limit reached`` answers received.
        elapsed: seconds from start to end.
        failures: everything that did not land, with ids.
        generated_ids: ``True`` when the client generated the ids (``id_prefix`` + index).
        id_prefix: the prefix of generated ids.
        stopped: why the ingest ended early, or ``None``.
    """

    project_name: str
    collection_name: str
    rows_total: int = 0
    rows_sent: int = 0
    rows_skipped: int = 0
    batches_sent: int = 0
    bytes_sent: int = 0
    job_ids: list[str] = field(default_factory=list)
    jobs_finished: int = 0
    retries: int = 0
    rate_limited: int = 0
    elapsed: float = 0.0
    failures: list[BatchFailure] = field(default_factory=list)
    generated_ids: bool = False
    id_prefix: str | None = None
    stopped: str | None = None

    @property
    def failed_row_count(self) -> int:
        return sum(f.rows for f in self.failures)

    @property
    def failed_ids(self) -> list[str]:
        """Ids of every row that is not known to be on the server."""
        return [row_id for f in self.failures for row_id in f.row_ids]

    @property
    def complete(self) -> bool:
        """Every row read was sent (or was already sent by an earlier run) and nothing stopped
        the ingest early."""
        return not self.failures and self.stopped is None

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

    def failed_rows(self) -> list[tuple[str, list[Any], dict[str, str]]]:
        """The rows of failed and unsent batches as ``(id, vector, attributes)`` tuples.

        Pass the list to ``ingest`` to try them again. Rows refused as invalid are not in it
        (they would be refused again); their ids are in ``failures``.
        """
        return list(self._iter_failed_rows())

    def _iter_failed_rows(self) -> Iterator[tuple[str, list[Any], dict[str, str]]]:
        for failure in self.failures:
            if failure.batch is None:
                continue
            for seg in failure.batch.segments:
                chunk = seg.chunk
                for i in range(seg.first, seg.stop):
                    vector = orjson.loads(chunk.vec_col.row(i))
                    attrs = (
                        orjson.loads(chunk.attr_col.row(i)) if chunk.attr_col is not None else {}
                    )
                    yield chunk.ids[i], vector, attrs

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
        return text
