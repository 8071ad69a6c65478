"""What ``vecml-async`` prints: exit codes, the one-line ``error:`` report, JSON and metrics.

:class:`ErrorLineGroup` is the root click group of the command. It turns every failure (a
usage error, a refusal by the server, a job that failed, a missing file) into ONE line on
stderr, ``error: ...``, with any API key the command used masked, and exits with a code from
:class:`ExitCode`. Commands print results on stdout: text, or with ``--json`` one JSON
document (:func:`print_json`).
"""

from __future__ import annotations

import enum
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

import typer
import typer.core

from vecml_async._config import API_KEY_ENV
from vecml_async._redact import redact
from vecml_async.errors import IngestError, InvalidInputError, JobError, VecMLError
from vecml_async.models import ClassificationMetrics


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


# ----------------------------------------------------------------------------- error lines

#: Keys of the running command, only to mask them should one slip into a message.
_KEYS: set[str] = set()


def remember_key(api_key: str | None) -> None:
    """Mask ``api_key`` in every error line until the command ends."""
    if api_key:
        _KEYS.add(api_key)


def say_error(message: str) -> None:
    """One line on stderr, ``error: ...``, with any known key masked."""
    for key in (*_KEYS, os.environ.get(API_KEY_ENV)):
        if key:
            message = redact(message, key)  # a short key is masked as a token only
    typer.echo("error: " + " ".join(message.split()), err=True)


def exit_code_of(err: BaseException) -> ExitCode:
    """The exit status for an error that ended a command."""
    if isinstance(err, JobError):
        return ExitCode.JOB
    if isinstance(err, IngestError):
        return ExitCode.INCOMPLETE
    if isinstance(err, (InvalidInputError, FileNotFoundError, IsADirectoryError)):
        return ExitCode.USAGE
    return ExitCode.ERROR


def describe(err: BaseException) -> str:
    """An error as the text of its ``error:`` line (``path: reason`` for OS errors)."""
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


ClickException = _typer_exception("ClickException")
UsageError = _typer_exception("UsageError")


def click_message(err: Exception) -> str:
    """A click error's text; usage errors point at the command's ``--help``."""
    message: str = getattr(err, "format_message", err.__str__)()
    ctx = getattr(err, "ctx", None)
    if isinstance(err, UsageError) and ctx is not None:
        message += f" (see '{ctx.command_path} --help')"
    return message


class ErrorLineGroup(typer.core.TyperGroup):
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
        except ClickException as err:
            if type(err).__name__ != "NoArgsIsHelpError":  # its help is already printed
                say_error(click_message(err))
            sys.exit(getattr(err, "exit_code", ExitCode.USAGE))
        except typer.Abort:
            say_error("aborted")
            sys.exit(ExitCode.ERROR)
        except (VecMLError, OSError) as err:
            say_error(describe(err))
            sys.exit(exit_code_of(err))
        finally:
            _KEYS.clear()
        sys.exit(code if isinstance(code, int) else ExitCode.OK)


# ----------------------------------------------------------------------------- results


def print_json(data: Any) -> None:
    """``data`` as one indented JSON document on stdout (what ``--json`` prints)."""
    typer.echo(json.dumps(data, indent=2, default=str))


def print_done(json_out: bool, text: str, **fields: str) -> None:
    """The end of a command that only acts: ``text``, or with ``--json`` the ``fields``."""
    if json_out:
        print_json(fields)
    else:
        typer.echo(text)


#: Width of a rich console that is not a terminal: wide enough that no line is wrapped.
PLAIN_WIDTH = 1000


def rich_console(*, stderr: bool = False) -> Any:
    """A rich console on stdout (results: tables) or stderr (progress and status). Off a
    terminal it does not wrap: a pipe or a log gets whole lines."""
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    width = None if stream.isatty() else PLAIN_WIDTH
    return Console(file=stream, highlight=False, soft_wrap=width is not None, width=width)


def metric_dict(value: ClassificationMetrics | float | dict[str, float] | None) -> Any:
    """A metric in its JSON form: a dict of classification metrics, an MSE, or None."""
    if isinstance(value, ClassificationMetrics):
        return value.model_dump()
    return value


def metric_text(value: Any) -> str:
    """A metric on one line: ``accuracy=0.9123  f1=...`` or ``MSE=...``."""
    value = metric_dict(value)
    if value is None:
        return "none (no labelled rows)"
    if isinstance(value, dict):
        return "  ".join(f"{k}={v:.4f}" for k, v in value.items())
    return f"MSE={value:.6g}"
