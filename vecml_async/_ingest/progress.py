"""Progress reporting for ``ingest``: what a callback receives, or a tqdm or rich bar.

Bars are drawn on stderr (stdout stays the application's). With ``wait=True`` the display
goes on after the last batch, showing upload jobs finished out of the jobs started.
"""

from __future__ import annotations

import contextlib
import inspect
import sys
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from vecml_async._ingest.chunks import require
from vecml_async._ingest.report import IngestReport


@dataclass(frozen=True)
class IngestProgress:
    """What a ``progress=`` callback receives after each batch (and, with ``wait=True``,
    after each upload job seen final).

    ``waiting`` is ``True`` once every batch was sent and only upload jobs are awaited;
    ``jobs_finished`` counts jobs seen final (finished or failed) out of ``jobs_total``, the
    jobs started so far (both stay 0 without ``wait=True``).
    """

    rows_read: int
    rows_sent: int
    rows_failed: int
    batches_sent: int
    bytes_sent: int
    elapsed: float
    rows_expected: int | None
    jobs_finished: int = 0
    jobs_total: int = 0
    waiting: bool = False


#: Called after each batch; returning ``False`` (or an awaitable giving ``False``) stops.
ProgressCallback = Callable[[IngestProgress], Any]


class ProgressReporter:
    """Builds the :class:`IngestProgress` of one ingest and calls the callback with it."""

    def __init__(
        self,
        callback: ProgressCallback,
        report: IngestReport,
        rows_expected: int | None,
        rows_read: Callable[[], int],
        jobs: Callable[[], tuple[int, int]] = lambda: (0, 0),
    ) -> None:
        self.callback = callback
        self.report = report
        self.rows_expected = rows_expected
        self.rows_read = rows_read
        self.jobs = jobs
        self.started = time.monotonic()

    async def __call__(self, *, waiting: bool = False) -> bool:
        """Call the callback; ``False`` when it asked to stop."""
        report = self.report
        seen, total = self.jobs()
        state = IngestProgress(
            rows_read=self.rows_read(),
            rows_sent=report.rows_sent,
            rows_failed=report.failed_row_count,
            batches_sent=report.batches_sent,
            bytes_sent=report.bytes_sent,
            elapsed=time.monotonic() - self.started,
            rows_expected=self.rows_expected,
            jobs_finished=seen,
            jobs_total=total,
            waiting=waiting,
        )
        result = self.callback(state)
        if inspect.isawaitable(result):
            result = await result
        return result is not False


def _tqdm_bar(total: int | None) -> tuple[Callable[[Any], None], Callable[[], None]]:
    tqdm = require("tqdm", "progress").tqdm
    bar = tqdm(
        total=total,
        unit="rows",
        unit_scale=True,
        desc="ingest",
        dynamic_ncols=True,
        file=sys.stderr,
    )
    done = 0

    def update(state: Any) -> None:
        nonlocal done
        bar.update(state.rows_sent + state.rows_failed - done)
        done = state.rows_sent + state.rows_failed
        seconds = max(state.elapsed, 1e-9)
        if state.waiting:
            bar.set_description("waiting for upload jobs")
        jobs = {"jobs": f"{state.jobs_finished}/{state.jobs_total}"} if state.jobs_total else {}
        bar.set_postfix(
            MBps=f"{state.bytes_sent / 1e6 / seconds:.1f}", failed=state.rows_failed, **jobs
        )

    return update, bar.close


def _rich_bar(total: int | None) -> tuple[Callable[[Any], None], Callable[[], None]]:
    progress_module = require("rich.progress", "progress")
    console = require("rich.console", "progress").Console(stderr=True)
    bar = progress_module.Progress(
        progress_module.TextColumn("{task.description}"),
        progress_module.BarColumn(),
        progress_module.MofNCompleteColumn(),
        progress_module.TextColumn("{task.fields[rate]}"),
        progress_module.TimeElapsedColumn(),
        console=console,
        transient=False,
    )
    task = bar.add_task("ingest", total=total, rate="")
    jobs_task: list[Any] = []
    bar.start()

    def update(state: Any) -> None:
        seconds = max(state.elapsed, 1e-9)
        rate = (
            f"{state.rows_sent / seconds:,.0f} rows/s  {state.bytes_sent / 1e6 / seconds:.1f} MB/s"
        )
        bar.update(task, completed=state.rows_sent + state.rows_failed, rate=rate)
        if state.jobs_total:
            if not jobs_task:
                jobs_task.append(bar.add_task("upload jobs", total=state.jobs_total, rate=""))
            label = "waiting for upload jobs" if state.waiting else "upload jobs"
            bar.update(
                jobs_task[0],
                completed=state.jobs_finished,
                total=state.jobs_total,
                description=label,
            )

    return update, bar.stop


@contextlib.asynccontextmanager
async def progress_callback(progress: Any, total: int | None) -> AsyncIterator[Any]:
    """The callback ``ingest`` calls after each batch, for what ``progress=`` asked for.

    ``None``/``False``: nothing. A callable: itself. ``"tqdm"``, ``"rich"``, or ``True``
    (rich when installed, else tqdm): a progress bar on stderr, closed when the ingest ends.
    """
    if progress is None or progress is False:
        yield None
        return
    if callable(progress):
        yield progress
        return
    if progress is True:
        try:
            require("rich.progress", "progress")
            progress = "rich"
        except ImportError:
            progress = "tqdm"
    if progress == "rich":
        update, close = _rich_bar(total)
    else:  # IngestOptions refused anything else
        update, close = _tqdm_bar(total)
    try:
        yield update
    finally:
        close()
