"""The ``vecml-async`` command: demo, local emulator, file ingestion, training, prediction, jobs.

Every command that talks to a server takes the key from ``--api-key`` or ``VECML_API_KEY``
(never printed) and the URL from ``--base-url`` or ``VECML_BASE_URL`` (default: VecML's cloud).
Results go to stdout, as text or, with ``--json``, as one JSON document for scripts. Failures
print ONE line on stderr, ``error: ...``, without a traceback, and exit with a code from
:class:`ExitCode`.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
import typer.core

from vecml_async._client import AsyncVecML
from vecml_async._config import API_KEY_ENV, BASE_URL_ENV
from vecml_async._ingest_defaults import DEFAULT_CONCURRENCY, DEFAULT_MAX_BYTES, DEFAULT_MAX_ROWS
from vecml_async._report import IngestReport
from vecml_async._version import __version__
from vecml_async.errors import (
    IngestError,
    InvalidInputError,
    JobError,
    VecMLError,
)
from vecml_async.models import TRAINING_MODES, ClassificationMetrics

T = TypeVar("T")


class ExitCode(enum.IntEnum):
    """Exit statuses of ``vecml-async``."""

    OK = 0
    #: The server refused a request, or it could not be reached.
    ERROR = 1
    #: Bad options or input (nothing was sent), including a missing file.
    USAGE = 2
    #: An ingest ended with rows not on the server (their ids are written to a file).
    INCOMPLETE = 3
    #: A job failed, or did not finish before the deadline.
    JOB = 4
    INTERRUPTED = 130


class TaskType(str, enum.Enum):
    classification = "classification"
    regression = "regression"


class TrainingMode(str, enum.Enum):
    high_speed = "high_speed"
    balanced = "balanced"
    high_accuracy = "high_accuracy"
    auto = "auto"


class JobKind(str, enum.Enum):
    auto = "auto"
    upload = "upload"
    training = "training"


class IngestFormat(str, enum.Enum):
    csv = "csv"
    jsonl = "jsonl"
    json = "json"
    npy = "npy"
    parquet = "parquet"


class PredictFormat(str, enum.Enum):
    csv = "csv"
    json = "json"
    libsvm = "libsvm"


class VectorType(str, enum.Enum):
    dense = "dense"
    sparse = "sparse"


# ----------------------------------------------------------------------------- errors


#: Keys of the running command, only to mask them should one slip into a message.
_KEYS: set[str] = set()


def _say_error(message: str) -> None:
    """One line on stderr, with any known key masked."""
    for key in (*_KEYS, os.environ.get(API_KEY_ENV)):
        if key:
            message = message.replace(key, "***")
    typer.echo("error: " + " ".join(message.split()), err=True)


def _exit_code_of(err: BaseException) -> ExitCode:
    if isinstance(err, JobError):
        return ExitCode.JOB
    if isinstance(err, IngestError):
        return ExitCode.INCOMPLETE
    if isinstance(err, (InvalidInputError, FileNotFoundError, IsADirectoryError)):
        return ExitCode.USAGE
    return ExitCode.ERROR


def _describe(err: BaseException) -> str:
    if isinstance(err, OSError) and err.strerror:
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror}"
    return str(err) or type(err).__name__


def _typer_exception(name: str) -> type[Exception]:
    """Typer's own ``ClickException``/``UsageError`` (typer >= 0.2x vendors click; older
    versions use click's), found from the public ``typer.BadParameter``."""
    for cls in typer.BadParameter.__mro__:
        if cls.__name__ == name:
            return cls
    raise ImportError(f"typer has no {name}")  # pragma: no cover


_ClickException = _typer_exception("ClickException")
_UsageError = _typer_exception("UsageError")


class _Group(typer.core.TyperGroup):
    """The root group: turns every failure into one ``error:`` line and an exit code."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(
                args, prog_name, complete_var, standalone_mode, windows_expand_args, **extra
            )
        try:
            code = super().main(
                args, prog_name or "vecml-async", complete_var, False, windows_expand_args, **extra
            )
        except _ClickException as err:
            if type(err).__name__ != "NoArgsIsHelpError":  # its help is already printed
                _say_error(_click_message(err))
            sys.exit(getattr(err, "exit_code", ExitCode.USAGE))
        except typer.Abort:
            _say_error("aborted")
            sys.exit(ExitCode.ERROR)
        except (VecMLError, OSError) as err:
            _say_error(_describe(err))
            sys.exit(_exit_code_of(err))
        finally:
            _KEYS.clear()
        sys.exit(code if isinstance(code, int) else ExitCode.OK)


def _click_message(err: Exception) -> str:
    message: str = getattr(err, "format_message", err.__str__)()
    ctx = getattr(err, "ctx", None)
    if isinstance(err, _UsageError) and ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message


def _run(factory: Callable[[], Awaitable[T]]) -> T:
    """Run one coroutine on a fresh event loop (the client is asyncio-only)."""

    async def main() -> T:
        return await factory()

    return asyncio.run(main())


# ----------------------------------------------------------------------------- options

ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar=API_KEY_ENV,
        show_default=False,
        show_envvar=True,
        help="VecML API key (prefer the environment variable: options show in process lists).",
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar=BASE_URL_ENV,
        show_default=False,
        show_envvar=True,
        help="API base URL (default: https://aidb.vecml.com/api).",
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


@contextlib.asynccontextmanager
async def _connect(
    api_key: str | None, base_url: str | None, **options: Any
) -> AsyncIterator[AsyncVecML]:
    if api_key:
        _KEYS.add(api_key)
    async with AsyncVecML(api_key or None, base_url=base_url or None, **options) as client:
        yield client


def _csv_list(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1000, "m": 1000**2, "g": 1000**3}


def parse_size(text: str) -> int:
    """``"4MiB"`` -> 4194304, ``"2MB"``/``"2m"`` -> 2000000, ``"1500"`` -> 1500."""
    match = _SIZE.match(text)
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a size (e.g. 4MiB, 2MB, 500000)")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    base = 1024 if "i" in unit else 1000
    power = "bkmg".index(unit[0]) if unit else 0
    value = int(number * base**power)
    if value < 1:
        raise typer.BadParameter("must be at least 1 byte")
    return value


def _json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=False)


def _metric_dict(value: ClassificationMetrics | float | dict[str, float] | None) -> Any:
    if isinstance(value, ClassificationMetrics):
        return value.model_dump()
    return value


def _metric_text(value: Any) -> str:
    value = _metric_dict(value)
    if value is None:
        return "none (no labelled rows)"
    if isinstance(value, dict):
        return "  ".join(f"{k}={v:.4f}" for k, v in value.items())
    return f"MSE={value:.6g}"


# ----------------------------------------------------------------------------- app

app = typer.Typer(
    cls=_Group,
    name="vecml-async",
    help="Async client for the VecML REST API, with a local VecML-compatible emulator.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
project_app = typer.Typer(help="Create and delete projects.", no_args_is_help=True)
collection_app = typer.Typer(help="Create collections.", no_args_is_help=True)
model_app = typer.Typer(help="List, inspect and delete AutoML models.", no_args_is_help=True)
job_app = typer.Typer(help="Check and wait for upload and training jobs.", no_args_is_help=True)
app.add_typer(project_app, name="project")
app.add_typer(collection_app, name="collection")
app.add_typer(model_app, name="model")
app.add_typer(job_app, name="job")


def _version(value: bool) -> None:
    if value:
        typer.echo(f"vecml-async {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """Async client for the VecML REST API, with a local VecML-compatible emulator.

    Key: --api-key or VECML_API_KEY. URL: --base-url or VECML_BASE_URL.
    """


# ----------------------------------------------------------------------------- demo


@app.command()
def demo(
    rows: Annotated[int, typer.Option(min=10, help="Training rows to ingest.")] = 100_000,
    dim: Annotated[int, typer.Option(min=1, help="Vector dimension.")] = 64,
    prediction_rows: Annotated[int, typer.Option(min=1, help="Rows to predict.")] = 2_000,
    project: Annotated[
        str, typer.Option(help="Project to use; DELETED first if it exists.")
    ] = "vecml_async_demo",
    mode: Annotated[TrainingMode, typer.Option(help="Training mode.")] = TrainingMode.high_speed,
    concurrency: Annotated[int, typer.Option(min=1, help="Concurrent requests.")] = 4,
    rate_limit: Annotated[
        float | None, typer.Option(help="Client calls per second (remote servers).")
    ] = None,
    emulator: Annotated[
        bool, typer.Option("--emulator", help="Use the embedded emulator even with a key.")
    ] = False,
    cleanup: Annotated[
        bool, typer.Option("--cleanup", help="Delete the project at the end.")
    ] = False,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Run VecML's AutoML example at scale: ingest, train, predict, print a summary.

    With no key and no base URL, an embedded emulator is served on loopback for the run.
    """
    from vecml_async._demo import DemoOptions, run_demo

    options = DemoOptions(
        rows=rows,
        dim=dim,
        prediction_rows=prediction_rows,
        project=project,
        training_mode=mode.value,
        concurrency=concurrency,
        cleanup=cleanup,
    )
    console = _console()

    def on_step(name: str, detail: str, seconds: float) -> None:
        if not json_out:
            console.print(f"[green]✓[/] {name:<18} {seconds:6.2f} s  {detail}")

    if api_key:
        _KEYS.add(api_key)
    result = _run(
        lambda: run_demo(
            options,
            api_key=api_key,
            base_url=base_url,
            use_emulator=True if emulator else None,
            rate_limit=rate_limit,
            progress=not json_out,
            on_step=on_step,
        )
    )
    if json_out:
        _json(result.as_dict())
    else:
        _print_demo(result, console)


def _print_demo(result: Any, console: Any) -> None:
    from rich.table import Table

    summary = Table(title="Summary", show_header=False, title_justify="left")
    summary.add_column(style="bold")
    summary.add_column()
    summary.add_row("server", result.server)
    summary.add_row(
        "rows",
        f"{result.rows:,} training (dim {result.dim}), {result.prediction_rows:,} to predict",
    )
    summary.add_row(
        "batches", f"{result.batches:,} add_data_batch requests; {result.upload_jobs} upload jobs"
    )
    summary.add_row(
        "throughput",
        f"{result.rows_per_second:,.0f} rows/s, {result.megabytes_per_second:.1f} MB/s "
        f"({result.bytes_sent / 1e6:.1f} MB in {result.ingest_seconds:.2f} s, jobs included)",
    )
    summary.add_row("retries", f"{result.retries} ({result.rate_limited} rate-limit answers)")
    summary.add_row("predictions", f"{result.num_predictions:,} ({result.num_samples:,} labelled)")
    for info in result.models:
        summary.add_row(
            "model",
            f"{info['model_name']}: {info['task_type']}, {info['training_mode']}, "
            f"label {info['label_attribute']}, created {info['create_time']}",
        )
    summary.add_row("total time", f"{result.total_seconds:.1f} s")
    console.print(summary)
    metrics = Table(title="Metrics", title_justify="left")
    metrics.add_column("metric", style="bold")
    metrics.add_column("validation", justify="right")
    metrics.add_column("prediction", justify="right")
    validation, prediction = result.validation_metric, result.prediction_metric
    if isinstance(validation, dict) and isinstance(prediction, dict):
        for key, value in validation.items():
            metrics.add_row(key, f"{value:.4f}", f"{prediction.get(key, float('nan')):.4f}")
    else:
        metrics.add_row("metric", _metric_text(validation), _metric_text(prediction))
    console.print(metrics)


# ----------------------------------------------------------------------------- emulator


@app.command(
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    add_help_option=False,
)
def emulator(ctx: typer.Context) -> None:
    """Serve a local VecML-compatible server on loopback until Ctrl-C.

    Options are those of python -m vecml_async.emulator: --host, --port (8765), --rate-limit,
    --max-body-bytes, --upload-delay, fault injection, ...; see 'vecml-async emulator --help'.
    """
    from vecml_async.emulator import command
    from vecml_async.emulator.server import LOOPBACK_HOSTS

    args = list(ctx.args)
    parser = command.build_parser(prog="vecml-async emulator")
    if "-h" in args or "--help" in args:
        typer.echo(parser.format_help().rstrip())
        raise typer.Exit()

    def refuse(message: str) -> NoReturn:
        raise _UsageError(message, ctx)

    parser.error = refuse  # type: ignore[method-assign]
    parsed = parser.parse_args(args)
    try:
        command.settings_from_args(parsed)
    except (ValueError, TypeError) as err:
        refuse(str(err))
    if parsed.host not in LOOPBACK_HOSTS:
        refuse(f"the emulator serves loopback only ({', '.join(LOOPBACK_HOSTS)})")
    typer.echo(
        "VecML emulator: point VECML_BASE_URL at the URL below; any non-empty VECML_API_KEY "
        "works unless --api-key limits them. Ctrl-C stops it.",
        err=True,
    )
    raise typer.Exit(command.main(args))


# ----------------------------------------------------------------------------- ingest


@app.command()
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
    dim: Annotated[int | None, typer.Option(min=1, help="Vector dimension (checked here).")] = None,
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
        str, typer.Option(help="Largest request body, e.g. 4MiB (cap: 198MB).")
    ] = f"{DEFAULT_MAX_BYTES // 1024 // 1024}MiB",
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
    failed_ids: Annotated[
        Path | None,
        typer.Option(
            help="Where to write failed ids (default: FILE.failed-ids.txt).", dir_okay=False
        ),
    ] = None,
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Stream a file into a collection with add_data_batch (constant memory).

    Exits 3 and writes the ids of the rows not sent (one per line) when anything failed;
    with --checkpoint, running the same command again sends only what is missing.
    """
    body_cap = parse_size(max_bytes)
    if create and dim is None:
        raise typer.BadParameter("--create needs --dim", param_hint="--create")
    client_options: dict[str, Any] = {"max_retries": max_retries}
    if rate_limit is not None:
        client_options["rate_limit"] = rate_limit

    async def go() -> IngestReport:
        async with _connect(api_key, base_url, **client_options) as client:
            if create:
                await client.create_project(project, exist_ok=True)
                await client.init(project, collection, vector_dim=dim, exist_ok=True)
            try:
                return await client.ingest(
                    project,
                    collection,
                    str(file),
                    id_column=id_column,
                    attribute_columns=_csv_list(attributes),
                    vector_columns=_csv_list(vector_columns) or None,
                    file_format=file_format.value if file_format else None,
                    vector_dim=dim,
                    max_rows=max_rows,
                    max_bytes=body_cap,
                    concurrency=concurrency,
                    wait=wait,
                    job_timeout=job_timeout,
                    raise_on_error=False,
                    on_invalid="skip" if skip_invalid else "raise",
                    checkpoint=str(checkpoint) if checkpoint is not None else None,
                    progress=not json_out,
                )
            except IngestError as err:
                return err.report

    report = _run(go)
    ids_path: Path | None = None
    if not report.complete:
        ids_path = failed_ids or file.with_name(file.name + ".failed-ids.txt")
        ids = report.failed_ids
        ids_path.write_text("".join(f"{i}\n" for i in ids), encoding="utf-8")
    if json_out:
        _json(_report_dict(report, ids_path))
    else:
        typer.echo(report.summary())
        if report.job_ids and not wait:
            typer.echo(f"{len(report.job_ids)} upload jobs; first {report.job_ids[0]}")
    if ids_path is not None:
        detail = report.failures[0].error if report.failures else report.stopped
        message = f"{report.failed_row_count:,} rows not sent ({detail}); ids in {ids_path}"
        if report.stopped:
            message += f"; stopped after reading {report.rows_total:,} rows"
        message += "; re-run to resume" if checkpoint else "; use --checkpoint to resume"
        _say_error(message)
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


# ----------------------------------------------------------------------------- AutoML


@app.command()
def train(
    project: Annotated[str, typer.Argument(help="Project name.")],
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
        modes = (*TRAINING_MODES, TrainingMode.auto.value)
        async with _connect(api_key, base_url, training_modes=modes) as client:
            job = await client.train_automl_model(
                project,
                collection,
                model,
                task_type=task_type.value,
                label_attribute=label,
                training_mode=mode.value,
                categorical_features=_csv_list(categorical) or None,
                validation_dataset=validation_dataset,
            )
            return job.job_id, (await job.wait(timeout=timeout) if wait else None)

    job_id, status = _run(go)
    if json_out:
        _json(
            {"job_id": job_id}
            if status is None
            else {"job_id": job_id, **status.model_dump(exclude_none=True)}
        )
    elif status is None:
        typer.echo(f"training job {job_id} started")
    else:
        typer.echo(f"model {model} trained (job {job_id}, {status.duration or '?'})")
        typer.echo("validation: " + _metric_text(status.validation_metric))


@app.command()
def predict(
    project: Annotated[str, typer.Argument(help="Project name.")],
    collection: Annotated[str, typer.Argument(help="Collection the model was trained on.")],
    model: Annotated[str, typer.Argument(help="Model name.")],
    dataset: Annotated[str | None, typer.Option(help="Collection to predict on.")] = None,
    file: Annotated[
        Path | None,
        typer.Option(exists=True, dir_okay=False, readable=True, help="File to predict on."),
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
        async with _connect(api_key, base_url) as client:
            return await client.automl_predict(
                project,
                collection,
                model,
                prediction_dataset=dataset,
                file=str(file) if file is not None else None,
                file_format=file_format.value if file_format else None,
                has_field_names=header if file is not None else None,
            )

    answer = _run(go)
    if output is not None:
        output.write_text("".join(f"{p:g}\n" for p in answer.predictions), encoding="utf-8")
    if json_out:
        _json(answer.model_dump(exclude_none=True))
        return
    shown = ", ".join(f"{p:g}" for p in answer.predictions[:10])
    more = " ..." if len(answer.predictions) > 10 else ""
    typer.echo(f"{len(answer.predictions):,} predictions: {shown}{more}")
    typer.echo(
        f"metric on {answer.num_samples:,} labelled rows: " + _metric_text(answer.prediction_metric)
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


@job_app.command("status")
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
        async with _connect(api_key, base_url) as client:
            if resolved == "training":
                return await client.get_automl_training_status(job_id)
            return await client.get_upload_data_status(job_id)

    _print_status(job_id, resolved, _run(go), json_out)


@job_app.command("wait")
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
        async with _connect(api_key, base_url) as client:
            job = (
                client.training_job(job_id) if resolved == "training" else client.upload_job(job_id)
            )
            return await job.wait(timeout=timeout)

    _print_status(job_id, resolved, _run(go), json_out)


def _print_status(job_id: str, kind: str, status: Any, json_out: bool) -> None:
    if json_out:
        _json({"job_id": job_id, "kind": kind, **status.model_dump(exclude_none=True)})
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
        typer.echo("validation: " + _metric_text(status.validation_metric))


# ----------------------------------------------------------------------------- resources


@project_app.command("create")
def project_create(
    name: Annotated[str, typer.Argument(help="Project name.")],
    application: Annotated[str, typer.Option(help="Application label.")] = "Machine Learning",
    exist_ok: Annotated[
        bool, typer.Option("--exist-ok", help="An existing project is not an error.")
    ] = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Create a project."""

    async def go() -> None:
        async with _connect(api_key, base_url) as client:
            await client.create_project(name, application=application, exist_ok=exist_ok)

    _run(go)
    typer.echo(f"project {name} ready")


@project_app.command("delete")
def project_delete(
    name: Annotated[str, typer.Argument(help="Project name.")],
    missing_ok: Annotated[
        bool, typer.Option("--missing-ok", help="A missing project is not an error.")
    ] = False,
    yes: Yes = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Delete a project and everything in it."""
    if not yes:
        typer.confirm(f"Delete project {name} and all its collections and models?", abort=True)

    async def go() -> None:
        async with _connect(api_key, base_url) as client:
            await client.delete_project(name, missing_ok=missing_ok)

    _run(go)
    typer.echo(f"project {name} deleted")


@collection_app.command("init")
def collection_init(
    project: Annotated[str, typer.Argument(help="Project name.")],
    collection: Annotated[str, typer.Argument(help="Collection name.")],
    dim: Annotated[int | None, typer.Option(min=1, help="Vector dimension (dense).")] = None,
    vector_type: Annotated[
        VectorType, typer.Option("--type", help="Vector type.")
    ] = VectorType.dense,
    exist_ok: Annotated[
        bool, typer.Option("--exist-ok", help="An existing collection is not an error.")
    ] = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Create an empty collection (dense collections need --dim)."""

    async def go() -> None:
        async with _connect(api_key, base_url) as client:
            await client.init(
                project,
                collection,
                vector_type=vector_type.value,
                vector_dim=dim,
                exist_ok=exist_ok,
            )

    _run(go)
    typer.echo(f"collection {project}/{collection} ready")


@model_app.command("list")
def model_list(
    project: Annotated[str, typer.Argument(help="Project name.")],
    collection: Annotated[str, typer.Argument(help="Collection name.")],
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """List the models of a collection."""

    async def go() -> Any:
        async with _connect(api_key, base_url) as client:
            return await client.list_automl_model_infos(project, collection)

    infos = _run(go)
    if json_out:
        _json([info.model_dump() for info in infos])
        return
    for info in infos:
        typer.echo(
            f"{info.model_name}\t{info.task_type}\t{info.training_mode}\t"
            f"{info.label_attribute}\t{info.create_time}"
        )


@model_app.command("metric")
def model_metric(
    project: Annotated[str, typer.Argument(help="Project name.")],
    collection: Annotated[str, typer.Argument(help="Collection name.")],
    model: Annotated[str, typer.Argument(help="Model name.")],
    json_out: JsonOut = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Print a model's validation metric."""

    async def go() -> Any:
        async with _connect(api_key, base_url) as client:
            return await client.get_model_validation_metric(project, collection, model)

    answer = _run(go)
    if json_out:
        _json({"validation_metric": _metric_dict(answer.validation_metric)})
    else:
        typer.echo("validation: " + _metric_text(answer.validation_metric))


@model_app.command("delete")
def model_delete(
    project: Annotated[str, typer.Argument(help="Project name.")],
    collection: Annotated[str, typer.Argument(help="Collection name.")],
    model: Annotated[str, typer.Argument(help="Model name.")],
    yes: Yes = False,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Delete a model (irreversible)."""
    if not yes:
        typer.confirm(f"Delete model {model} of {project}/{collection}?", abort=True)

    async def go() -> None:
        async with _connect(api_key, base_url) as client:
            await client.delete_automl_model(project, collection, model)

    _run(go)
    typer.echo(f"model {model} deleted")


# ----------------------------------------------------------------------------- entry point


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); always exits."""
    command = typer.main.get_command(app)
    command.main(args=list(argv) if argv is not None else None, prog_name="vecml-async")
    sys.exit(ExitCode.OK)  # not reached: main() exits


if __name__ == "__main__":
    main()
