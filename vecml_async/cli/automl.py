"""``vecml-async train`` and ``predict``: AutoML training and prediction.

``train`` prints the training job's id on stderr as soon as the server gives it, then, unless
``--no-wait``, a live status line (status, elapsed) until the job ends; the result goes to
stdout. A job that fails or misses its deadline exits 4; Ctrl-C leaves it running and says how
to wait for it again (exit 130).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from vecml_async.cli._common import (
    ApiKey,
    BaseUrl,
    JsonOut,
    Model,
    Project,
    connect,
    csv_list,
    run,
)
from vecml_async.cli._live import job_interrupted, say, watch_job
from vecml_async.cli._output import ExitCode, metric_text, print_json
from vecml_async.models import PredictFileFormat, TaskType, TrainingMode


def train(
    project: Project,
    collection: Annotated[str, typer.Argument(help="Training collection.")],
    model: Annotated[str, typer.Argument(help="Name of the new model.")],
    task_type: Annotated[TaskType, typer.Option(help="The task.")],
    label: Annotated[str, typer.Option(help="Attribute holding the label / response.")],
    mode: Annotated[
        TrainingMode,
        typer.Option(help="Training mode ('auto' is in one VecML example, not documented)."),
    ] = "balanced",
    categorical: Annotated[
        str | None, typer.Option(help="Comma-separated categorical attributes.")
    ] = None,
    validation_dataset: Annotated[
        str | None, typer.Option(help="Collection to validate on (default: cross-validation).")
    ] = None,
    wait: Annotated[bool, typer.Option(help="Wait for the training job to finish.")] = True,
    timeout: Annotated[
        float, typer.Option(min=0.001, help="Deadline of the wait, seconds.")
    ] = 3600.0,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Train an AutoML model on a collection (waits for it by default)."""
    started: list[str] = []

    async def go() -> Any:
        # Choosing --mode auto on the command line is the configuration that allows it.
        async with connect(api_key, base_url, allow_auto_training_mode=True) as client:
            job = await client.train_automl_model(
                project,
                collection,
                model,
                task_type=task_type,
                label_attribute=label,
                training_mode=mode,
                categorical_features=csv_list(categorical) or None,
                validation_dataset=validation_dataset,
            )
            started.append(job.job_id)
            say(f"training job {job.job_id} started")
            return await watch_job(job, timeout) if wait else None

    try:
        status = run(go)
    except KeyboardInterrupt:
        job_interrupted(started[0] if started else None, "training")
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    job_id = started[0]
    if json_out:
        fields = {} if status is None else status.model_dump(exclude_none=True)
        print_json({"job_id": job_id, **fields})
    elif status is None:
        typer.echo(job_id)
    else:
        typer.echo(f"model {model} trained (job {job_id}, {status.duration or '?'})")
        typer.echo("validation: " + metric_text(status.validation_metric))


def predict(
    project: Project,
    collection: Annotated[str, typer.Argument(help="Collection the model was trained on.")],
    model: Model,
    dataset: Annotated[str | None, typer.Option(help="Collection to predict on.")] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            exists=True,
            dir_okay=False,
            readable=True,
            help="File to predict on (CSV, JSON, libsvm).",
        ),
    ] = None,
    file_format: Annotated[
        PredictFileFormat | None,
        typer.Option("--format", help="File format (default: from the name)."),
    ] = None,
    header: Annotated[bool, typer.Option(help="The CSV file has a header row.")] = True,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the predictions, one per line.")
    ] = None,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Predict with a trained model, on a collection (--dataset) or a file (--file)."""
    if (dataset is None) == (file is None):
        raise typer.BadParameter("give exactly one of --dataset and --file", param_hint="--dataset")

    async def go() -> Any:
        async with connect(api_key, base_url) as client:
            return await client.automl_predict(
                project,
                collection,
                model,
                prediction_dataset=dataset,
                file=str(file) if file is not None else None,
                file_format=file_format,
                has_field_names=header if file is not None else None,
            )

    answer = run(go)
    if output is not None:
        output.write_text("".join(f"{p:g}\n" for p in answer.predictions), encoding="utf-8")
    if json_out:
        print_json(answer.model_dump(exclude_none=True))
        return
    shown = ", ".join(f"{p:g}" for p in answer.predictions[:10])
    more = " ..." if len(answer.predictions) > 10 else ""
    typer.echo(f"{len(answer.predictions):,} predictions: {shown}{more}")
    typer.echo(
        f"metric on {answer.num_samples:,} labelled rows: " + metric_text(answer.prediction_metric)
    )
    if output is not None:
        typer.echo(f"predictions written to {output}")
