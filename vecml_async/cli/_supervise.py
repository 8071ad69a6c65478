"""``vecml-async emulator`` runs the emulator in a child process and stops it on Ctrl-C.

A training job runs scikit-learn in a worker thread of the server, and some of that work
holds the interpreter lock for long stretches: a signal handler in the same process may wait
seconds for its turn. This process does nothing but wait, so it sees Ctrl-C at once, passes it
on (one SIGINT: the child runs in a session of its own, away from the terminal's Ctrl-C), and
ends the child if it has not stopped by itself within :data:`STOP_GRACE` seconds. With
``--data-dir`` the child saves its data as it stops: it gets :data:`SAVE_GRACE` seconds.
The child's stdout and stderr are copied line by line to this process's own.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from types import FrameType
from typing import IO

#: Seconds a stopping emulator gets before it is ended (Ctrl-C stops within 2 s).
STOP_GRACE = 1.0
#: Seconds an emulator with ``--data-dir`` gets to save its data.
SAVE_GRACE = 60.0
INTERRUPTED = 130


def _copy(source: IO[str], target: IO[str]) -> None:
    for line in iter(source.readline, ""):
        target.write(line)
        target.flush()
    source.close()


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run_emulator(args: Sequence[str], prog: str) -> int:
    """Serve the emulator with ``args`` in a child process until Ctrl-C (or SIGTERM);
    returns the exit status (the child's, or 130 when it had to be ended)."""
    code = (
        "import sys; from vecml_async.emulator import command; "
        f"sys.exit(command.main(sys.argv[1:], prog={prog!r}))"
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", code, *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
        start_new_session=True,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    copies = [
        threading.Thread(target=_copy, args=(proc.stdout, sys.stdout), daemon=True),
        threading.Thread(target=_copy, args=(proc.stderr, sys.stderr), daemon=True),
    ]
    for thread in copies:
        thread.start()
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    grace = SAVE_GRACE if any(a.startswith("--data-dir") for a in args) else STOP_GRACE
    try:
        status = proc.wait()
    except KeyboardInterrupt:
        status = _stop(proc, grace)
    for thread in copies:
        thread.join(timeout=5)
    return status


def _stop(proc: subprocess.Popen[str], grace: float) -> int:
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    return INTERRUPTED
