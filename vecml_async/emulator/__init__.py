"""A local VecML-compatible server, for tests, demos and benchmarks (like moto for AWS).

Quick use::

    from vecml_async.emulator import serve

    async with serve(rate_limit=10) as base_url:
        ...  # point a client at base_url ("http://127.0.0.1:<port>/api")

See :class:`EmulatorSettings` for the behaviours that can be configured and
:class:`FaultConfig` for injected failures. Needs the ``emulator`` extra (starlette,
uvicorn, numpy, scikit-learn).
"""

from vecml_async.emulator.command import main
from vecml_async.emulator.faults import FaultConfig
from vecml_async.emulator.process import ainspect_remote, inspect_remote, spawn
from vecml_async.emulator.server import Emulator, run_in_thread, serve
from vecml_async.emulator.settings import RATE_LIMIT_TEXT, EmulatorSettings

__all__ = [
    "RATE_LIMIT_TEXT",
    "Emulator",
    "EmulatorSettings",
    "FaultConfig",
    "ainspect_remote",
    "inspect_remote",
    "main",
    "run_in_thread",
    "serve",
    "spawn",
]
