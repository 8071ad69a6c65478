"""What ``vecml-async`` shows while it works: a live status line and ingest progress, on
stderr only (stdout holds the results, so ``--json`` and pipes stay clean).

On a terminal the line is rewritten in place; elsewhere (a pipe, a log file, CI) a new line is
printed only when something worth a line changed, and no line is ever wrapped or cut.
"""

from __future__ import annotations

import shlex
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TextIO

import anyio

from vecml_async._jobs import Job

if sys.version_info < (3, 11):
    from exceptiongroup import BaseExceptionGroup
from vecml_async.cli._output import rich_console

#: Seconds between two progress lines when stderr is not a terminal.
PLAIN_EVERY = 5.0


class StatusLine:
    """One status line on stderr (see the module docstring)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty()
        self._key: object = None
        self._open = False

    def show(self, text: str, key: object = None) -> None:
        """Show ``text``; off a terminal, only when ``key`` (default: the text) changed."""
        key = text if key is None else key
        if self.tty:
            self.stream.write("\r\x1b[2K" + text)
            self._open = True
        elif key != self._key:
            self.stream.write(text + "\n")
        self._key = key
        self.stream.flush()

    def close(self) -> None:
        """End the line, so what is printed next starts on a line of its own."""
        if self._open:
            self.stream.write("\n")
            self.stream.flush()
            self._open = False


def say(text: str) -> None:
    """One status line on stderr (never on stdout)."""
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


# ----------------------------------------------------------------------------- jobs


def _job_text(job: Job[Any], started: float) -> tuple[str, object]:
    status = job.last_status.status if job.last_status is not None else "submitted"
    elapsed = time.monotonic() - started
    return f"{job.kind} job {job.job_id}: {status}, {elapsed:,.0f} s", status


async def watch_job(job: Job[Any], timeout: float) -> Any:
    """``job.wait(timeout)`` with a live status line (status and elapsed time) on stderr."""
    line = StatusLine()
    started = time.monotonic()

    async def tick() -> None:
        while True:
            line.show(*_job_text(job, started))
            await anyio.sleep(0.5)  # display refresh only; the wait below decides

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(tick)
            try:
                return await job.wait(timeout=timeout)
            finally:
                group.cancel_scope.cancel()
    except BaseExceptionGroup as errors:
        # The ticker never fails: the error is the wait's (a failed job, a deadline, ...).
        raise errors.exceptions[0] from None
    finally:
        line.show(*_job_text(job, started))
        line.close()


def job_interrupted(job_id: str | None, kind: str) -> None:
    """What Ctrl-C during a job wait prints: the job goes on; how to wait for it again."""
    if job_id is None:
        say("interrupted before the server answered; nothing was started as far as we know")
        return
    option = " --kind training" if kind == "training" and not job_id.endswith("_TrainJob") else ""
    say(f"interrupted: {kind} job {job_id} goes on on the server")
    say(f"wait for it again with: vecml-async job wait {shlex.quote(job_id)}{option}")


# ----------------------------------------------------------------------------- ingest


@dataclass
class IngestWatch:
    """Progress of an ingest as the CLI shows it; ``state`` is the latest ``IngestProgress``
    (rows sent so far, for the Ctrl-C message)."""

    show: bool
    state: Any = None
    _bar: Any = None
    _task: Any = None
    _line: StatusLine | None = None
    _last: float = 0.0
    _closed: bool = False

    def __call__(self, state: Any) -> None:
        self.state = state
        if not self.show or self._closed:
            return
        if self._line is None:
            self._start(state)
        seconds = max(state.elapsed, 1e-9)
        rate = (
            f"{state.rows_sent / seconds:,.0f} rows/s, {state.bytes_sent / 1e6 / seconds:.1f} MB/s"
        )
        if self._bar is not None:
            done = state.rows_sent + state.rows_failed
            self._bar.update(self._task, completed=done, rate=rate)
        elif time.monotonic() - self._last >= PLAIN_EVERY:
            self._plain(state, rate)

    def _start(self, state: Any) -> None:
        self._line = StatusLine()
        self._last = time.monotonic()
        if self._line.tty:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
            )

            self._bar = Progress(
                TextColumn("ingest"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[rate]}"),
                TimeElapsedColumn(),
                console=rich_console(stderr=True),
            )
            self._task = self._bar.add_task("ingest", total=state.rows_expected, rate="")
            self._bar.start()

    def _plain(self, state: Any, rate: str) -> None:
        assert self._line is not None
        self._last = time.monotonic()
        failed = f", {state.rows_failed:,} failed" if state.rows_failed else ""
        self._line.show(f"ingest: {state.rows_sent:,} rows sent{failed} ({rate})")

    def close(self) -> None:
        """Stop the bar (or print the last plain line); later calls do nothing."""
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        elif self._line is not None and self.state is not None:
            seconds = max(self.state.elapsed, 1e-9)
            self._plain(self.state, f"{self.state.rows_sent / seconds:,.0f} rows/s")


def resume_command(argv: Sequence[str]) -> str:
    """The command line that was run, as ``vecml-async ...``, without any ``--api-key`` value
    (the key comes from ``VECML_API_KEY`` again, never printed)."""
    kept: list[str] = []
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--api-key":
            skip = True
        elif not arg.startswith("--api-key="):
            kept.append(arg)
    return shlex.join(["vecml-async", *kept])


def ingest_interrupted(watch: IngestWatch, checkpoint: str | None, argv: Sequence[str]) -> None:
    """What Ctrl-C during ``ingest`` prints: rows landed, the checkpoint, how to resume."""
    state = watch.state
    sent = state.rows_sent if state is not None else 0
    read = f" of {state.rows_read:,} read" if state is not None else ""
    say(f"interrupted: {sent:,} rows sent and accepted by the server{read}")
    if checkpoint is None:
        say(
            "no checkpoint: running the same command again sends every row again "
            "(add --checkpoint FILE to make an ingest resumable)"
        )
        return
    say(f"checkpoint: {checkpoint}")
    say(f"resume with: {resume_command(argv)}")
