"""What identifies an input: checked when a checkpoint resumes, and the seed of generated ids.

A *fingerprint* is a small JSON-able dict stored in a checkpoint's header and compared, key by
key, when the checkpoint is used again:

* a file: its path, size, modification time and a hash of its first and last blocks;
* an in-memory input: its kind and row count, and a hash of rows sampled along it;
* a stream (a one-shot iterator): nothing can be known before reading it, so only the
  per-record checks of the checkpoint apply.

Parallel ``ids=`` add a hash of every id.

An *identity* is a digest of the whole content, where one costs little next to sending the
rows (arrays, sparse matrices, frames: one hash pass; files: the fingerprint). Generated ids
are derived from it with the project and the collection, so the same input ingested again
into the same collection produces the same ids and upserts its rows instead of adding them
twice. Inputs without one (lists, streams) get a random prefix, unless a checkpoint holds one.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

#: Bytes hashed at each end of a file.
BLOCK = 64 * 1024
#: Rows sampled along an in-memory input.
SAMPLES = 64
#: Prefix every generated id starts with.
ID_PREFIX_HEAD = "vx-"


def digest(parts: Iterable[bytes | memoryview]) -> str:
    """A hex sha256 of ``parts``, each length-prefixed (so boundaries count)."""
    hasher = hashlib.sha256()
    for part in parts:
        view = memoryview(part).cast("B")
        hasher.update(len(view).to_bytes(8, "little"))
        hasher.update(view)
    return hasher.hexdigest()


def file_fingerprint(path: str, file_format: str) -> dict[str, Any]:
    """Path, size, modification time and the hashes of the first and last blocks."""
    info = os.stat(path)
    with open(path, "rb") as handle:
        head = handle.read(BLOCK)
        handle.seek(max(0, info.st_size - BLOCK))
        tail = handle.read(BLOCK)
    return {
        "kind": "file",
        "format": file_format,
        "path": os.path.abspath(path),
        "size": info.st_size,
        "mtime_ns": info.st_mtime_ns,
        "head": digest([head]),
        "tail": digest([tail]),
    }


def sample_indices(length: int, samples: int = SAMPLES) -> list[int]:
    """Up to ``samples`` row indices spread evenly over ``length`` rows, both ends included."""
    if length <= samples:
        return list(range(length))
    last = length - 1
    return sorted({round(k * last / (samples - 1)) for k in range(samples)})


def memory_fingerprint(kind: str, length: int, sample: str, **extra: Any) -> dict[str, Any]:
    """The fingerprint of an in-memory input of ``length`` rows and a digest of sampled rows."""
    return {"kind": "memory", "type": kind, "rows": length, "sample": sample, **extra}


def ids_digest(ids: Iterable[object]) -> str:
    """A hash of every id, in order."""
    return digest(str(value).encode("utf-8", "surrogatepass") for value in ids)


def differences(recorded: Mapping[str, Any], current: Mapping[str, Any]) -> list[str]:
    """The keys on which two fingerprints differ (empty: the same input)."""
    keys = sorted(set(recorded) | set(current))
    return [key for key in keys if recorded.get(key) != current.get(key)]


def derived_prefix(identity: bytes, project: str, collection: str) -> str:
    """The generated-id prefix of an input of this identity sent to this collection."""
    seed = digest([identity, project.encode(), collection.encode()])
    return f"{ID_PREFIX_HEAD}{seed[:16]}-"


def random_prefix() -> str:
    """A fresh generated-id prefix (inputs without an identity)."""
    return f"{ID_PREFIX_HEAD}{uuid.uuid4().hex[:16]}-"
