"""An emulator in a child process that can still be inspected from Python.

``python emulator_proc.py '<json>'`` serves an :class:`Emulator` (``run_in_thread``) built from
the JSON object ``{"settings": {...EmulatorSettings keywords}, "faults": {...FaultConfig
keywords}}``, prints ``URL <base_url>`` and then answers one JSON command per stdin line with
one JSON line on stdout. It exits when stdin closes. The test process keeps its own core for
the client, and still gets what only the Python inspection view offers (the stored ids).

Commands (``{"op": ..., ...}``):

* ``ids``: the ids of ``key/project/collection``, in insertion order;
* ``save``: ``np.save(path, vectors)``, answering with the ids (row order of the file);
* ``counters``: ``collection_counters``;
* ``stats``: ``stats(key)`` (``key`` may be null: every tenant);
* ``window``: ``max_requests_in_window(window, key)``.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import numpy as np

from vecml_async.emulator import Emulator, EmulatorSettings, FaultConfig, run_in_thread


def _answer(emulator: Emulator, command: dict[str, Any]) -> Any:
    op = command["op"]
    where = (command.get("key"), command.get("project"), command.get("collection"))
    if op == "ids":
        return emulator.collection_ids(*where)
    if op == "save":
        ids, matrix, _ = emulator.collection_data(*where)
        np.save(command["path"], np.asarray(matrix, dtype=np.float32))
        return ids
    if op == "counters":
        return emulator.collection_counters(*where)
    if op == "stats":
        return emulator.stats(command.get("key"))
    if op == "window":
        return emulator.max_requests_in_window(command["window"], command.get("key"))
    raise ValueError(f"unknown op {op!r}")


def main() -> int:
    spec = json.loads(sys.argv[1])
    faults = dict(spec.get("faults", {}))
    if faults.get("endpoints") is not None:
        faults["endpoints"] = frozenset(faults["endpoints"])
    if "schedule" in faults:
        faults["schedule"] = {int(k): v for k, v in faults["schedule"].items()}
    settings = EmulatorSettings(faults=FaultConfig(**faults), **spec.get("settings", {}))
    emulator = Emulator(settings)
    with run_in_thread(emulator) as url:
        print(f"URL {url}", flush=True)
        for line in sys.stdin:
            if not line.strip():
                continue
            try:
                reply = {"ok": _answer(emulator, json.loads(line))}
            except Exception as err:  # reported to the test, which raises it
                reply = {"error": f"{type(err).__name__}: {err}"}
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
