"""``vecml-async probe``: ask a server what VecML's documentation leaves open.

Runs :func:`vecml_async.probe.probe` with the key and URL of the command line and prints the
answers as a table (question, answer, evidence), or with ``--json`` the profile itself (on
stdout, nothing else there), or with ``--report`` a short text for a bug report; ``-o FILE``
also writes the profile. The step in progress is shown on stderr. Ctrl-C stops the probe and
deletes its scratch project before exiting (130).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Final

import typer

from vecml_async.cli._common import ApiKey, BaseUrl, JsonOut, connect, run
from vecml_async.cli._live import StatusLine, say
from vecml_async.cli._output import ExitCode, rich_console
from vecml_async.probe import DEFAULT_MAX_CALLS, ServerProfile, probe
from vecml_async.probe.report import report_text, table_rows

__all__ = ["probe_command"]

STEPS: Final = {
    "setup": "creating the scratch project",
    "errors": "ordinary errors",
    "rate": "the rate limit (a ramp up to the first refusal)",
    "uploads": "the upload job",
    "training": "starting three small trainings",
    "names": "name rules",
    "attributes": "attribute types",
    "duplicates": "duplicate ids",
    "sparse": "sparse encodings",
    "size": "the size cap (bodies of about 200 MB)",
    "cleanup": "deleting the scratch project",
}


def probe_command(
    rate: Annotated[
        bool, typer.Option("--rate", help="Also find the rate limit (up to ~150 more calls).")
    ] = False,
    size: Annotated[
        bool, typer.Option("--size", help="Also find the size cap (sends up to 16 ~200 MB bodies).")
    ] = False,
    json_out: JsonOut = False,
    report: Annotated[
        bool, typer.Option("--report", help="Print a short text to paste into a bug report.")
    ] = False,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Also write the profile (JSON) to this file."),
    ] = None,
    max_calls: Annotated[
        int, typer.Option(min=20, help="Bound on the default questions' calls.")
    ] = DEFAULT_MAX_CALLS,
    max_rate: Annotated[
        float, typer.Option(min=2.5, help="Highest rate the --rate ramp tries, calls/s.")
    ] = 60.0,
    api_key: ApiKey = None,
    base_url: BaseUrl = None,
) -> None:
    """Ask the server what VecML's documentation leaves open (error statuses, duplicate
    ids, names, sparse forms, training modes, ...), in a scratch project it deletes after.

    Use the profile: AsyncVecML(profile="server.json") adapts the client to the server;
    'vecml-async emulator --profile server.json' serves an emulator that answers the same.
    """
    profile = _run_probe(
        rate=rate,
        size=size,
        max_calls=max_calls,
        max_rate=max_rate,
        api_key=api_key,
        base_url=base_url,
    )
    _show(profile, json_out=json_out, report=report, output=output)


def _run_probe(
    *,
    rate: bool,
    size: bool,
    max_calls: int,
    max_rate: float,
    api_key: str | None,
    base_url: str | None,
) -> ServerProfile:
    """Run the probe with a status line on stderr; on Ctrl-C say whether its scratch project
    was deleted and exit with :attr:`ExitCode.INTERRUPTED`."""
    line = StatusLine()
    ended: list[str] = []

    def progress(step: str) -> None:
        if step in STEPS:
            line.show(f"probe: {STEPS[step]}")
        else:
            ended.append(step)

    async def go() -> ServerProfile:
        # The ramp cannot pass the client's ceiling: with --rate the client has none (its
        # limiter still slows down on a refusal) and the probe paces itself.
        options = {"rate_limit": None} if rate else {}
        async with connect(api_key, base_url, **options) as client:
            return await probe(
                client,
                rate=rate,
                size=size,
                max_calls=max_calls,
                max_rate=max_rate,
                progress=progress,
            )

    try:
        return run(go)
    except KeyboardInterrupt:
        line.close()
        if ended and ended[-1] == "cleaned up":
            say("interrupted: the probe's scratch project was deleted")
        else:
            say("interrupted: " + (ended[-1] if ended else "the cleanup did not run"))
        raise typer.Exit(ExitCode.INTERRUPTED) from None
    finally:
        line.close()


def _show(profile: ServerProfile, *, json_out: bool, report: bool, output: Path | None) -> None:
    if output is not None:
        output.write_text(profile.to_json() + "\n", encoding="utf-8")
    if json_out:
        typer.echo(profile.to_json())
    elif report:
        typer.echo(report_text(profile))
    else:
        _table(profile)
    if profile.left_behind:
        say(f"warning: the probe could not delete {', '.join(profile.left_behind)}")


def _table(profile: ServerProfile) -> None:
    from rich.table import Table

    table = Table(title=f"{profile.base_url}: {profile.calls} calls, {profile.elapsed:.1f} s")
    for column in ("question", "answer", "evidence"):
        table.add_column(column, overflow="fold")
    for question, answer, evidence in table_rows(profile):
        table.add_row(question, answer, evidence)
    rich_console().print(table)
