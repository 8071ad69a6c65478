"""``vecml-async`` AutoML commands: ``train``, ``predict``, ``job status|wait``, ``model ...``.

``train`` starts a training job and, by default, waits for it; ``job`` checks or awaits any
upload or training job from its id, in this process or a later one. A job that fails or
misses its deadline exits 4 (:attr:`ExitCode.JOB`).
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import Annotated, Any

import typer

from vecml_async._cli_common import (
    ApiKey,
    BaseUrl,
    Collection,
    JsonOut,
    Model,
    Project,
    TrainingMode,
    Yes,
    connect,
    csv_list,
    run,
    with_client,
)
from vecml_async._cli_output import metric_dict, metric_text, print_done, print_json


class TaskType(str, enum.Enum):
    classification = "classification"
    regression = "regression"


class JobKind(str, enum.Enum):
    auto = "auto"
    upload = "upload"
    training = "training"


class PredictFormat(str, enum.Enum):
    csv = "csv"
    json = "json"
    libsvm = "libsvm"


# ----------------------------------------------------------------------------- AutoML


def train(
    project: Project,
    collection: Annotated[str, typer.Argument(help="Training collection.")],
    model: Annotated[str, typer.Argument(help="Name of the new model.")],
    task_type: Annotated[TaskType, typer.Option(help="The task.")],
    label: Annotated[str, typer.Option(help="Attribute holding the label / response.")],
    mode: Annotated[TrainingMode, typer.Option(help="Training mode.")] = TrainingMode.balanced,
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

    async def go() -> tuple[str, Any]:
        async with connect(api_key, base_url, allow_auto_training_mode=True) as client:
            job = await client.train_automl_model(
                project,
                collection,
                model,
                task_type=task_type.value,
                label_attribute=label,
                training_mode=mode.value,
                categorical_features=csv_list(categorical) or None,
                validation_dataset=validation_dataset,
            )
            return job.job_id, (await job.wait(timeout=timeout) if wait else None)

    job_id, status = run(go)
    if json_out:
        print_json(
            {"job_id": job_id}
            if status is None
            else {"job_id": job_id, **status.model_dump(exclude_none=True)}
        )
    elif status is None:
        typer.echo(f"training job {job_id} started")
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
        PredictFormat | None, typer.Option("--format", help="File format (default: from the name).")
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
                file_format=file_format.value if file_format else None,
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


# ----------------------------------------------------------------------------- jobs


def _job_kind(job_id: str, kind: JobKind) -> str:
    if kind is JobKind.auto:
        return "training" if job_id.endswith("_TrainJob") else "upload"
    return str(kind.value)


Kind = Annotated[
    JobKind, typer.Option(help="The job's kind; auto: training when the id ends in _TrainJob.")
]


def job_status(
    job_id: Annotated[str, typer.Argument(help="The job id.")],
    kind: Kind = JobKind.auto,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Print a job's status once (exit 0 whatever the status)."""
    resolved = _job_kind(job_id, kind)

    async def go() -> Any:
        async with connect(api_key, base_url) as client:
            if resolved == "training":
                return await client.get_automl_training_status(job_id)
            return await client.get_upload_data_status(job_id)

    _print_status(job_id, resolved, run(go), json_out)


def job_wait(
    job_id: Annotated[str, typer.Argument(help="The job id.")],
    kind: Kind = JobKind.auto,
    timeout: Annotated[float, typer.Option(min=0.001, help="Deadline, seconds.")] = 900.0,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Wait for a job to finish (exit 4 when it fails or the deadline passes)."""
    resolved = _job_kind(job_id, kind)

    async def go() -> Any:
        async with connect(api_key, base_url) as client:
            job = (
                client.training_job(job_id) if resolved == "training" else client.upload_job(job_id)
            )
            return await job.wait(timeout=timeout)

    _print_status(job_id, resolved, run(go), json_out)


def _print_status(job_id: str, kind: str, status: Any, json_out: bool) -> None:
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


# ----------------------------------------------------------------------------- models


def model_list(
    project: Project,
    collection: Collection,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """List the models of a collection."""

    infos = with_client(
        api_key, base_url, lambda client: client.list_automl_model_infos(project, collection)
    )
    if json_out:
        print_json([info.model_dump() for info in infos])
        return
    for info in infos:
        typer.echo(
            f"{info.model_name}\t{info.task_type}\t{info.training_mode}\t"
            f"{info.label_attribute}\t{info.create_time}"
        )


def model_metric(
    project: Project,
    collection: Collection,
    model: Model,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Print a model's validation metric."""

    answer = with_client(
        api_key,
        base_url,
        lambda client: client.get_model_validation_metric(project, collection, model),
    )
    if json_out:
        print_json({"validation_metric": metric_dict(answer.validation_metric)})
    else:
        typer.echo("validation: " + metric_text(answer.validation_metric))


def model_delete(
    project: Project,
    collection: Collection,
    model: Model,
    yes: Yes = False,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Delete a model (irreversible)."""
    if not yes:
        typer.confirm(f"Delete model {model} of {project}/{collection}?", abort=True, err=True)

    with_client(
        api_key, base_url, lambda client: client.delete_automl_model(project, collection, model)
    )
    fields = {"project": project, "collection": collection, "model": model}
    print_done(json_out, f"model {model} deleted", **fields, status="deleted")
