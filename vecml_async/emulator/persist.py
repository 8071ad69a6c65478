"""Optional persistence of the emulator's data between runs (``EmulatorSettings.data_dir``).

The whole store (tenants by key fingerprint, projects, collections with their vectors, ids
and attributes, trained models, job records) is pickled to ``<data_dir>/store.pickle`` when
a server stops or on :meth:`Emulator.save`. The file is written beside the old one and then
renamed over it, so a crash while saving leaves the previous snapshot whole. An emulator
created with the same ``data_dir`` starts from that snapshot.

Not kept: request, rejection and fault counters, rate-limit buckets, sink jobs. Uploads still
waiting when the server stopped were marked failed before the save, and so were trainings.

Unpickling can run code: point ``data_dir`` only at a directory you trust (your own).
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from vecml_async.emulator.store import Store

__all__ = ["SNAPSHOT_NAME", "load_store", "save_store"]

SNAPSHOT_NAME = "store.pickle"
_FORMAT = "vecml-emulator-store/1"


def save_store(store: Store, data_dir: Path) -> Path:
    """Write ``store`` to ``data_dir`` atomically; return the snapshot's path."""
    data_dir.mkdir(parents=True, exist_ok=True)
    target = data_dir / SNAPSHOT_NAME
    payload: dict[str, Any] = {"format": _FORMAT, "tenants": store.tenants}
    fd, tmp = tempfile.mkstemp(prefix=".store-", suffix=".tmp", dir=data_dir)
    try:
        with os.fdopen(fd, "wb") as out:
            pickle.dump(payload, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def load_store(data_dir: Path) -> Store:
    """The store saved in ``data_dir``, or an empty one when there is no snapshot yet.

    Raises ``ValueError`` when the snapshot is unreadable or from another format version.
    """
    store = Store()
    path = data_dir / SNAPSHOT_NAME
    if not path.exists():
        return store
    try:
        with path.open("rb") as src:
            payload = pickle.load(src)
    except Exception as err:
        raise ValueError(f"cannot read the emulator snapshot {path}: {err}") from None
    if not isinstance(payload, dict) or payload.get("format") != _FORMAT:
        raise ValueError(f"{path} is not an emulator snapshot of format {_FORMAT}")
    store.tenants.update(payload["tenants"])
    return store
