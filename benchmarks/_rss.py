"""Peak resident memory of a stretch of code, on Linux.

``/proc/self/clear_refs`` (writing ``5``) resets the kernel's high-water mark of the process
(``VmHWM``), so the peak of one ingest can be read in a process that did other work before.
Elsewhere the measurement is skipped (``growth`` stays ``None``).
"""

from __future__ import annotations

import gc
from pathlib import Path
from types import TracebackType

_STATUS = Path("/proc/self/status")
_CLEAR = Path("/proc/self/clear_refs")


def _field(name: str) -> int | None:
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        return None
    return None


class PeakRss:
    """``with PeakRss() as rss: ...``; then ``rss.growth``: peak RSS minus RSS at entry."""

    def __init__(self) -> None:
        self.before: int | None = None
        self.growth: int | None = None

    def __enter__(self) -> PeakRss:
        gc.collect()
        try:
            _CLEAR.write_text("5")
        except OSError:
            return self
        self.before = _field("VmRSS")
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        peak = _field("VmHWM")
        if self.before is not None and peak is not None:
            self.growth = max(0, peak - self.before)
