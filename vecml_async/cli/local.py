"""``vecml-async demo`` and ``vecml-async emulator``: the commands that serve the emulator.

``demo`` runs VecML's AutoML example at scale (:mod:`vecml_async._demo`), on the embedded
emulator unless a key or base URL points it at a server. ``emulator`` is
``python -m vecml_async.emulator`` under this command's name: the same options, checked here
first so a bad one is one ``error:`` line like any other command's; it serves in a child
process that Ctrl-C stops within 2 s, even during a training job (see ``_supervise``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, NoReturn

import typer

from vecml_async.cli._common import ApiKey, BaseUrl, JsonOut, run
from vecml_async.cli._live import IngestWatch
from vecml_async.cli._output import (
    UsageError,
    metric_text,
    print_json,
    remember_key,
    rich_console,
)
from vecml_async.cli._supervise import run_emulator
from vecml_async.models import TrainingMode

#: The program name the emulator's parser shows under this command.
EMULATOR_PROG = "vecml-async emulator"
#: ``emulator`` hands its arguments, help included, to the emulator's own parser.
EMULATOR_COMMAND_SETTINGS: dict[str, Any] = {
    "context_settings": {"allow_extra_args": True, "ignore_unknown_options": True},
    "add_help_option": False,
}


# ----------------------------------------------------------------------------- demo


def demo(
    rows: Annotated[int, typer.Option(min=10, help="Training rows to ingest.")] = 100_000,
    dim: Annotated[int, typer.Option(min=1, help="Vector dimension.")] = 64,
    prediction_rows: Annotated[int, typer.Option(min=1, help="Rows to predict.")] = 2_000,
    project: Annotated[
        str, typer.Option(help="Project to use; DELETED first if it exists.")
    ] = "vecml_async_demo",
    mode: Annotated[TrainingMode, typer.Option(help="Training mode.")] = "high_speed",
    concurrency: Annotated[int, typer.Option(min=1, help="Concurrent requests.")] = 4,
    rate_limit: Annotated[
        float | None, typer.Option(help="Client calls per second to a given server (default: 10).")
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

    With no key and no base URL, an embedded emulator is served on loopback
    for the run (or always, with --emulator).
    """
    from vecml_async._demo import DemoOptions, run_demo

    options = DemoOptions(
        rows=rows,
        dim=dim,
        prediction_rows=prediction_rows,
        project=project,
        training_mode=mode,
        concurrency=concurrency,
        cleanup=cleanup,
    )
    watch = IngestWatch(show=not json_out)
    remember_key(api_key)
    result = run(
        lambda: run_demo(
            options,
            api_key=api_key,
            base_url=base_url,
            use_emulator=True if emulator else None,
            rate_limit=rate_limit,
            progress=watch,
            on_step=_step_printer(watch, json_out=json_out),
        )
    )
    if json_out:
        print_json(result.as_dict())
    else:
        _print_demo(result, rich_console())


def _step_printer(watch: IngestWatch, *, json_out: bool) -> Callable[[str, str, float], None]:
    """A line on stderr per finished step of the demo (none with ``--json``)."""
    status = rich_console(stderr=True)

    def on_step(name: str, detail: str, seconds: float) -> None:
        if watch.state is not None:
            watch.close()  # the training ingest is over: its bar ends before the next line
        if not json_out:
            status.print(f"[green]✓[/] {name:<18} {seconds:6.2f} s  {detail}")

    return on_step


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
        metrics.add_row("metric", metric_text(validation), metric_text(prediction))
    console.print(metrics)


# ----------------------------------------------------------------------------- emulator


def emulator(ctx: typer.Context) -> None:
    """Serve a local VecML-compatible server on loopback until Ctrl-C.

    Options are those of python -m vecml_async.emulator: --host, --port
    (8765), --rate-limit, --max-body-bytes, --upload-delay, fault injection,
    ...; see 'vecml-async emulator --help'.
    """
    from vecml_async.emulator import command

    args = list(ctx.args)
    parser = command.build_parser(prog=EMULATOR_PROG)
    if "-h" in args or "--help" in args:
        typer.echo(parser.format_help().rstrip())
        raise typer.Exit()

    def refuse(message: str) -> NoReturn:
        raise UsageError(message, ctx)

    # Checked here, not only by command.main(): a bad option is then one error line, before
    # the banner. What only main() can find (a port in use) it reports under EMULATOR_PROG.
    parser.error = refuse  # type: ignore[method-assign]
    try:
        command.check_args(parser.parse_args(args))
    except (ValueError, TypeError) as err:
        refuse(str(err))
    typer.echo(
        "VecML emulator: point VECML_BASE_URL at the URL below; any non-empty VECML_API_KEY "
        "works unless --api-key limits them. Ctrl-C stops it.",
        err=True,
    )
    raise typer.Exit(run_emulator(args, EMULATOR_PROG))
