"""``vecml-async job status|wait``: check or await an upload or training job from its id.

``job wait`` prints the job id, then a live status line (status, elapsed) on stderr, and the
final status on stdout; a job that fails or misses its deadline exits 4. Ctrl-C leaves the
job running and says how to wait for it again (exit 130).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import typer

from vecml_async.cli._common import ApiKey, BaseUrl, JsonOut, connect, run
from vecml_async.cli._live import job_interrupted, say, watch_job
from vecml_async.cli._output import ExitCode, metric_text, print_json

JobKind = Literal["auto", "upload", "training"]


def job_kind(job_id: str, kind: JobKind) -> Literal["upload", "training"]:
    """The kind of a job: given, or inferred (training when the id ends in ``_TrainJob``)."""
    if kind == "auto":
        return "training" if job_id.endswith("_TrainJob") else "upload"
    return kind


Kind = Annotated[
    JobKind, typer.Option(help="The job's kind; auto: training when the id ends in _TrainJob.")
]
JobId = Annotated[str, typer.Argument(help="The job id.")]


def job_status(
    job_id: JobId,
    kind: Kind = "auto",
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Print a job's status once (exit 0 whatever the status)."""
    resolved = job_kind(job_id, kind)

    async def go() -> Any:
        async with connect(api_key, base_url) as client:
            if resolved == "training":
                return await client.get_automl_training_status(job_id)
            return await client.get_upload_data_status(job_id)

    print_status(job_id, resolved, run(go), json_out)


def job_wait(
    job_id: JobId,
    kind: Kind = "auto",
    timeout: Annotated[float, typer.Option(min=0.001, help="Deadline, seconds.")] = 900.0,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Wait for a job to finish, with a live status line (exit 4 when it fails or the
    deadline passes; Ctrl-C leaves it running)."""
    resolved = job_kind(job_id, kind)
    say(f"{resolved} job {job_id}")

    async def go() -> Any:
        async with connect(api_key, base_url) as client:
            job = (
                client.training_job(job_id) if resolved == "training" else client.upload_job(job_id)
            )
            return await watch_job(job, timeout)

    try:
        status = run(go)
    except KeyboardInterrupt:
        job_interrupted(job_id, resolved)
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    print_status(job_id, resolved, status, json_out)


def print_status(job_id: str, kind: str, status: Any, json_out: bool) -> None:
    """A job status on stdout: one JSON document, or a few lines of text."""
    if json_out:
        print_json({"job_id": job_id, "kind": kind, **status.model_dump(exclude_none=True)})
        return
    line = f"{kind} job {job_id}: {status.status}"
    if status.duration:
        line += f" ({status.duration})"
    num_rows = (status.model_extra or {}).get("num_rows")
    if num_rows is not None:
        line += f", {num_rows:,} rows"
    typer.echo(line)
    if status.error:
        typer.echo(f"error: {status.error}")
    if getattr(status, "validation_metric", None) is not None:
        typer.echo("validation: " + metric_text(status.validation_metric))
