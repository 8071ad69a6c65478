"""Run the emulator in a child process, and read any running emulator's counters over HTTP.

:func:`spawn` starts ``python -m vecml_async.emulator --port 0 ...`` and reads the base URL
from the child's first stdout line, so a benchmark's client and server use different cores.
On exit the child gets SIGTERM (uvicorn shuts down gracefully), then SIGKILL if it hangs.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from vecml_async.emulator.command import (
    API_KEYS_ENV,
    URL_LINE_PREFIX,
    api_keys_env,
    settings_to_argv,
)
from vecml_async.emulator.settings import EmulatorSettings

__all__ = ["ainspect_remote", "inspect_remote", "inspect_url", "spawn"]

_PACKAGE_ROOT = Path(__file__).resolve().parents[2]


def _read_url(proc: subprocess.Popen[str], timeout: float) -> str:
    """Wait for the child's URL line, failing fast if it exits first."""
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("the emulator process did not report its URL in time")
            if sel.select(left):
                line = proc.stdout.readline()
                if not line:
                    code = proc.wait()
                    raise RuntimeError(f"the emulator process exited with status {code}")
                if line.startswith(URL_LINE_PREFIX):
                    return line[len(URL_LINE_PREFIX) :].strip()


@contextlib.contextmanager
def spawn(
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    python: str | None = None,
    startup_timeout: float = 60.0,
    **settings: Any,
) -> Iterator[str]:
    """Run an emulator process built from ``settings``; yields its base URL.

    ``settings`` are :class:`EmulatorSettings` keywords (validated here, before the child
    starts). The child finds this copy of the package even when it is not installed.
    """
    parsed = EmulatorSettings(**settings)
    argv = settings_to_argv(parsed)
    env = {k: v for k, v in os.environ.items() if k != API_KEYS_ENV}
    env.update(api_keys_env(parsed))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(_PACKAGE_ROOT), env.get("PYTHONPATH")]))
    command = [python or sys.executable, "-m", "vecml_async.emulator", "--host", host]
    proc = subprocess.Popen(
        [*command, "--port", str(port), *argv],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        yield _read_url(proc, startup_timeout)
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        assert proc.stdout is not None
        proc.stdout.close()


def inspect_url(base_url: str) -> str:
    """The inspection endpoint of the emulator at ``base_url`` (``.../api``)."""
    return base_url.rstrip("/") + "/_emulator/inspect"


def inspect_remote(base_url: str, api_key: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """Counters and data summary of ``api_key`` at a running emulator (sync)."""
    response = httpx.post(
        inspect_url(base_url), json={"user_api_key": api_key}, timeout=timeout, trust_env=False
    )
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result


async def ainspect_remote(base_url: str, api_key: str, *, timeout: float = 10.0) -> dict[str, Any]:
    """:func:`inspect_remote` for async code."""
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
        response = await client.post(inspect_url(base_url), json={"user_api_key": api_key})
    response.raise_for_status()
    result: dict[str, Any] = response.json()
    return result
