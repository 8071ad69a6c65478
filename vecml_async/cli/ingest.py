"""``vecml-async ingest``: stream a file into a collection with ``add_data_batch``.

The file is read in constant memory and sent through :meth:`AsyncVecML.ingest` (size-capped
batches, concurrent senders, retries), with its progress on stderr. When rows did not land,
their ids are written to a file in the working directory (or ``--failed-ids``), one per line,
and the command exits 3; with ``--checkpoint``, running the same command again sends only
what is missing. Ctrl-C says how many rows landed and how to resume, and exits 130.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import typer

from vecml_async._ingest.defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_ROWS,
)
from vecml_async._ingest.report import IngestReport
from vecml_async.cli._common import ApiKey, BaseUrl, JsonOut, connect, csv_list, parse_size, run
from vecml_async.cli._live import IngestWatch, ingest_interrupted
from vecml_async.cli._output import ExitCode, print_json, say_error
from vecml_async.errors import IngestError


class IngestFormat(str, enum.Enum):
    csv = "csv"
    jsonl = "jsonl"
    json = "json"
    npy = "npy"
    parquet = "parquet"


def ingest(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, readable=True, help="CSV, JSON lines, JSON, .npy, Parquet."
        ),
    ],
    project: Annotated[str, typer.Option("--project", "-p", help="Project name.")],
    collection: Annotated[str, typer.Option("--collection", "-c", help="Collection name.")],
    id_column: Annotated[
        str | None, typer.Option(help="Column of the row ids (default: ids are generated).")
    ] = None,
    attributes: Annotated[
        str | None, typer.Option(help="Comma-separated attribute columns, e.g. label,category.")
    ] = None,
    vector_columns: Annotated[
        str | None,
        typer.Option(help="Comma-separated vector columns (default: every other column)."),
    ] = None,
    file_format: Annotated[
        IngestFormat | None,
        typer.Option("--format", help="File format (default: from the name)."),
    ] = None,
    dim: Annotated[
        int | None, typer.Option(min=1, help="Vector dimension; rows are checked before sending.")
    ] = None,
    create: Annotated[
        bool,
        typer.Option(
            "--create", help="Create the project and the (dense, --dim) collection if missing."
        ),
    ] = False,
    concurrency: Annotated[
        int, typer.Option(min=1, help="Concurrent requests.")
    ] = DEFAULT_CONCURRENCY,
    max_bytes: Annotated[
        str | None,
        typer.Option(help="Largest request body, e.g. 64MiB (default and cap: 198MB)."),
    ] = None,
    batch_bytes: Annotated[
        str | None,
        typer.Option(help="Cut every body at this size, e.g. 4MiB (default: adaptive)."),
    ] = None,
    max_memory: Annotated[
        str | None, typer.Option(help="Memory the ingest may take (default: 256MiB).")
    ] = None,
    max_rows: Annotated[int, typer.Option(min=1, help="Most rows per request.")] = DEFAULT_MAX_ROWS,
    rate_limit: Annotated[
        float | None, typer.Option(help="Client calls per second (default: 10).")
    ] = None,
    max_retries: Annotated[
        int | None, typer.Option(min=0, help="Retries of a failed request (default: 5).")
    ] = None,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Journal of sent batches; re-running with it resumes.", dir_okay=False),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for every upload job to finish.")] = False,
    job_timeout: Annotated[
        float | None, typer.Option(help="Deadline of each job wait, seconds.")
    ] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid", help="Skip invalid rows (listed as failed) instead of stopping."
        ),
    ] = False,
    check_duplicates: Annotated[
        bool,
        typer.Option(
            "--check-duplicates",
            help="Refuse a repeated id in the file (memory grows with the number of ids).",
        ),
    ] = False,
    failed_ids: Annotated[
        Path | None,
        typer.Option(
            help="Where to write failed ids (default: ./FILE.failed-ids.txt).", dir_okay=False
        ),
    ] = None,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Stream a file into a collection with add_data_batch (constant memory).

    When rows did not land, their ids go to a file (one per line) and the
    exit status is 3. With --checkpoint, running the same command again
    sends only what is missing.
    """
    sizes = _Sizes.parse(max_bytes, batch_bytes, max_memory)
    if create and dim is None:
        raise typer.BadParameter("--create needs --dim", param_hint="--create")
    client_options: dict[str, Any] = {"max_retries": max_retries}
    if rate_limit is not None:
        client_options["rate_limit"] = rate_limit
    watch = IngestWatch(show=not json_out)

    async def go() -> IngestReport:
        async with connect(api_key, base_url, **client_options) as client:
            if create:
                await client.create_project(project, exist_ok=True)
                await client.init(project, collection, vector_dim=dim, exist_ok=True)
            try:
                return await client.ingest(
                    project,
                    collection,
                    str(file),
                    id_column=id_column,
                    attribute_columns=csv_list(attributes),
                    vector_columns=csv_list(vector_columns) or None,
                    file_format=file_format.value if file_format else None,
                    vector_dim=dim,
                    max_rows=max_rows,
                    max_bytes=sizes.max_bytes,
                    batch_bytes=sizes.batch_bytes,
                    max_memory=sizes.max_memory,
                    concurrency=concurrency,
                    wait=wait,
                    job_timeout=job_timeout,
                    raise_on_error=False,
                    on_invalid="skip" if skip_invalid else "raise",
                    checkpoint=str(checkpoint) if checkpoint is not None else None,
                    check_duplicate_ids=check_duplicates,
                    progress=watch,
                )
            except IngestError as err:
                return err.report

    try:
        report = run(go)
    except KeyboardInterrupt:
        watch.close()
        ingest_interrupted(watch, str(checkpoint) if checkpoint else None, sys.argv[1:])
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    finally:
        watch.close()
    _finish(report, file, failed_ids, checkpoint, json_out=json_out, wait=wait)


class _Sizes(NamedTuple):
    """The size options, parsed; those not given keep ``ingest``'s defaults."""

    max_bytes: int
    batch_bytes: int | None
    max_memory: int

    @classmethod
    def parse(cls, max_bytes: str | None, batch: str | None, memory: str | None) -> _Sizes:
        return cls(
            parse_size(max_bytes) if max_bytes is not None else DEFAULT_MAX_BYTES,
            parse_size(batch) if batch is not None else None,
            parse_size(memory) if memory is not None else DEFAULT_MAX_MEMORY,
        )


def _finish(
    report: IngestReport,
    file: Path,
    failed_ids: Path | None,
    checkpoint: Path | None,
    *,
    json_out: bool,
    wait: bool,
) -> None:
    """Print the report (stdout), write the failed ids and say what to do (stderr)."""
    ids_path: Path | None = None
    if not report.complete:
        ids_path = failed_ids or Path.cwd() / (file.name + ".failed-ids.txt")
        ids_path.write_text("".join(f"{i}\n" for i in report.failed_ids), encoding="utf-8")
    if json_out:
        print_json(_report_dict(report, ids_path))
    else:
        typer.echo(report.summary())
        if report.job_ids and not wait:
            typer.echo(f"{len(report.job_ids)} upload jobs; first {report.job_ids[0]}")
    if ids_path is not None:
        detail = report.failures[0].error if report.failures else report.stopped
        message = f"{report.failed_row_count:,} rows not sent ({detail}); ids in {ids_path}"
        if report.stopped_at is not None:
            unread = (
                "rows unread"
                if report.rows_unread is None
                else (f"{report.rows_unread:,} rows unread")
            )
            message += f"; reading stopped at row {report.stopped_at:,} ({unread})"
        if checkpoint:
            message += "; re-run the same command to send the rest"
        elif report.rows_sent:
            # Only then does a checkpoint help: a re-run would skip what landed.
            message += "; add --checkpoint FILE so a re-run sends only what did not land"
        say_error(message)
        raise typer.Exit(ExitCode.INCOMPLETE)


def _report_dict(report: IngestReport, failed_ids_path: Path | None) -> dict[str, Any]:
    return {
        "project": report.project_name,
        "collection": report.collection_name,
        "complete": report.complete,
        "rows_total": report.rows_total,
        "rows_sent": report.rows_sent,
        "rows_skipped": report.rows_skipped,
        "rows_failed": report.failed_row_count,
        "rows_unread": report.rows_unread,
        "stopped_at": report.stopped_at,
        "batches_sent": report.batches_sent,
        "bytes_sent": report.bytes_sent,
        "elapsed": round(report.elapsed, 3),
        "rows_per_second": round(report.rows_per_second, 1),
        "megabytes_per_second": round(report.megabytes_per_second, 2),
        "retries": report.retries,
        "rate_limited": report.rate_limited,
        "jobs_finished": report.jobs_finished,
        "job_ids": report.job_ids,
        "stopped": report.stopped,
        "errors": sorted({f.error for f in report.failures})[:10],
        "failed_ids_file": str(failed_ids_path) if failed_ids_path else None,
    }
