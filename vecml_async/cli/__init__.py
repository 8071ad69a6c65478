"""The ``vecml-async`` command: demo, local emulator, file ingestion, training, prediction, jobs.

Every command that talks to a server takes the key from ``--api-key`` or ``VECML_API_KEY``
(never printed) and the URL from ``--base-url`` or ``VECML_BASE_URL`` (default: VecML's cloud).
Results go to stdout, as text or, with ``--json``, as one JSON document for scripts; progress
and status lines go to stderr. Failures
print ONE line on stderr, ``error: ...``, without a traceback, and exit with a code from
:class:`ExitCode`.

This module assembles the command tree; the commands live in one module per group:

* :mod:`vecml_async.cli.local`: ``demo`` and ``emulator``;
* :mod:`vecml_async.cli.ingest`: ``ingest``;
* :mod:`vecml_async.cli.automl`: ``train`` and ``predict``;
* :mod:`vecml_async.cli.job`: ``job status|wait``;
* :mod:`vecml_async.cli.model`: ``model list|metric|delete``;
* :mod:`vecml_async.cli.resources`: ``project ...``, ``collection ...``;
* :mod:`vecml_async.cli.probe`: ``probe``;

and the shared parts in :mod:`~vecml_async.cli._output` (exit codes, error lines, JSON),
:mod:`~vecml_async.cli._common` (options, the client factory) and
:mod:`~vecml_async.cli._live` (the status line and progress, on stderr).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import Annotated, NoReturn

import typer

from vecml_async._version import __version__
from vecml_async.cli._common import parse_size
from vecml_async.cli._output import ErrorLineGroup, ExitCode
from vecml_async.cli.automl import predict, train
from vecml_async.cli.ingest import ingest
from vecml_async.cli.job import job_status, job_wait
from vecml_async.cli.local import EMULATOR_COMMAND_SETTINGS, demo, emulator
from vecml_async.cli.model import model_delete, model_list, model_metric
from vecml_async.cli.probe import probe_command
from vecml_async.cli.resources import collection_init, project_create, project_delete

__all__ = ["ExitCode", "app", "main", "parse_size"]

app = typer.Typer(
    cls=ErrorLineGroup,
    name="vecml-async",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
project_app = typer.Typer(help="Create and delete projects.", no_args_is_help=True)
collection_app = typer.Typer(help="Create collections.", no_args_is_help=True)
model_app = typer.Typer(help="List, inspect and delete AutoML models.", no_args_is_help=True)
job_app = typer.Typer(help="Check and wait for upload and training jobs.", no_args_is_help=True)

app.command()(demo)
app.command(**EMULATOR_COMMAND_SETTINGS)(emulator)
app.command()(ingest)
app.command()(train)
app.command()(predict)
app.command("probe")(probe_command)
project_app.command("create")(project_create)
project_app.command("delete")(project_delete)
collection_app.command("init")(collection_init)
model_app.command("list")(model_list)
model_app.command("metric")(model_metric)
model_app.command("delete")(model_delete)
job_app.command("status")(job_status)
job_app.command("wait")(job_wait)
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
    With --json a command prints one JSON document on stdout.
    Errors are one line on stderr, 'error: ...'.

    Exit status: 0 done; 1 the server refused or could not be reached;
    2 bad options or input (nothing sent); 3 ingest incomplete (ids of the
    rows not sent are in a file); 4 a job failed or missed its deadline.
    """


def main(argv: Sequence[str] | None = None) -> NoReturn:
    """Run the command line with ``argv`` (default ``sys.argv[1:]``); always exits."""
    command = typer.main.get_command(app)
    command.main(args=list(argv) if argv is not None else None, prog_name="vecml-async")
    sys.exit(ExitCode.OK)  # not reached: main() exits


if __name__ == "__main__":
    main()
