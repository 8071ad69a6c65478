"""A fork server for the crash cells of the matrix: imports once, forks one child per cell.

``python forkserver.py`` imports the package and every optional library an input needs,
prints ``READY``, then reads one JSON command per stdin line::

    {"cell": <Cell json>, "tmp": dir, "url": base_url, "key": api_key, "checkpoint": path,
     "stop_after": batches}

For each it forks a child that runs the cell's ingest with the checkpoint and prints
``PID <name> <pid>``, then ``ACK <name> <batches>`` after each batch (printed once the
batch's checkpoint line is written and fsynced), then ``DONE <name> <report json>`` or
``ERROR <name> <text>``. Once ``stop_after`` batches landed, each sender stops in the
progress callback after its batch, so the ingest cannot end before the kill. The parent
kills the child then, and synchronises on these lines only. Children are reaped
automatically (SIGCHLD ignored).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import numpy  # noqa: F401  - preloaded so that a child starts at once
import pandas  # noqa: F401
import pyarrow.parquet  # noqa: F401
import scipy.sparse  # noqa: F401

import vecml_async
from vecml_async import AsyncVecML

HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("matrix_cells", HERE / "cells.py")
assert _spec is not None and _spec.loader is not None
cells = importlib.util.module_from_spec(_spec)
sys.modules[_spec.name] = cells  # its dataclasses look their module up
_spec.loader.exec_module(cells)


def _say(line: str) -> None:
    os.write(1, (line + "\n").encode())


async def _run(command: dict[str, Any]) -> dict[str, Any]:
    cell = cells.Cell.from_json(command["cell"])
    data, options = cells.build(cell, Path(command["tmp"]))

    async def progress(state: Any) -> None:
        _say(f"ACK {cell.name} {state.batches_sent}")
        if state.batches_sent >= command["stop_after"]:
            await anyio.sleep_forever()  # every sender stops here: the parent kills us

    async with AsyncVecML(command["key"], base_url=command["url"], rate_limit=None) as client:
        report = await client.ingest(
            "matrix",
            cell.collection,
            data,
            vector_dim=cells.DIM,
            sparse=cell.kind == "sparse",
            checkpoint=command["checkpoint"],
            progress=progress,
            **options,
        )
    return {"rows_sent": report.rows_sent, "complete": report.complete}


def _child(command: dict[str, Any]) -> None:
    name = cells.Cell.from_json(command["cell"]).name
    try:
        with vecml_async.testing_mode():
            result = asyncio.run(_run(command))
    except BaseException as err:  # reported to the parent, which fails the cell
        _say(f"ERROR {name} {type(err).__name__}: {err}")
        os._exit(1)
    _say(f"DONE {name} {json.dumps(result)}")
    os._exit(0)


def main() -> int:
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    _say("READY")
    for line in sys.stdin:
        if not line.strip():
            continue
        command = json.loads(line)
        pid = os.fork()
        if pid == 0:
            _child(command)
        _say(f"PID {cells.Cell.from_json(command['cell']).name} {pid}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
