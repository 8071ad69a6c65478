"""Progress reporting for ``ingest``: what a callback receives, or a tqdm or rich bar."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from vecml_async._ingest.chunks import require


@dataclass(frozen=True)
class IngestProgress:
    """What a ``progress=`` callback receives after each batch."""

    rows_read: int
    rows_sent: int
    rows_failed: int
    batches_sent: int
    bytes_sent: int
    elapsed: float
    rows_expected: int | None


#: Called after each batch; returning ``False`` (or an awaitable giving ``False``) stops.
ProgressCallback = Callable[[IngestProgress], Any]


def _tqdm_bar(total: int | None) -> tuple[Callable[[Any], None], Callable[[], None]]:
    tqdm = require("tqdm", "progress").tqdm
    bar = tqdm(total=total, unit="rows", unit_scale=True, desc="ingest", dynamic_ncols=True)
    done = 0

    def update(state: Any) -> None:
        nonlocal done
        bar.update(state.rows_sent + state.rows_failed - done)
        done = state.rows_sent + state.rows_failed
        seconds = max(state.elapsed, 1e-9)
        bar.set_postfix(MBps=f"{state.bytes_sent / 1e6 / seconds:.1f}", failed=state.rows_failed)

    return update, bar.close


def _rich_bar(total: int | None) -> tuple[Callable[[Any], None], Callable[[], None]]:
    progress_module = require("rich.progress", "progress")
    bar = progress_module.Progress(
        progress_module.TextColumn("ingest"),
        progress_module.BarColumn(),
        progress_module.MofNCompleteColumn(),
        progress_module.TextColumn("{task.fields[rate]}"),
        progress_module.TimeElapsedColumn(),
        transient=False,
    )
    task = bar.add_task("ingest", total=total, rate="")
    bar.start()

    def update(state: Any) -> None:
        seconds = max(state.elapsed, 1e-9)
        rate = (
            f"{state.rows_sent / seconds:,.0f} rows/s  {state.bytes_sent / 1e6 / seconds:.1f} MB/s"
        )
        bar.update(task, completed=state.rows_sent + state.rows_failed, rate=rate)

    return update, bar.stop


@contextlib.asynccontextmanager
async def progress_callback(progress: Any, total: int | None) -> AsyncIterator[Any]:
    """The callback ``ingest`` calls after each batch, for what ``progress=`` asked for.

    ``None``/``False``: nothing. A callable: itself. ``"tqdm"``, ``"rich"``, or ``True``
    (rich when installed, else tqdm): a progress bar, closed when the ingest ends.
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
