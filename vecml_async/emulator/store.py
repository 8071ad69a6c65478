"""In-memory data of the emulator: tenants -> projects -> collections -> rows and models.

A tenant is one API key, held only as its sha256 fingerprint: the store never keeps a key, so
nothing it prints or raises can leak one. Tenants never see each other's projects or jobs.

Everything here runs on the server's event loop and does not block on I/O; nothing in this
module schedules work (the app decides when an upload applies). Inspection methods may be
called from another thread (``run_in_thread``): they copy what they return.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse

    from vecml_async.emulator.automl import TrainedModel

__all__ = [
    "Batch",
    "Collection",
    "Job",
    "ModelRecord",
    "Project",
    "SparseRow",
    "Store",
    "Tenant",
    "fingerprint",
]

#: One sparse row: sorted, unique int32 indices and their float32 values.
SparseRow = tuple[np.ndarray, np.ndarray]
JobStatus = Literal["pending", "in_progress", "finished", "failed"]
_EMPTY_ROW: SparseRow = (np.empty(0, np.int32), np.empty(0, np.float32))


def fingerprint(api_key: str) -> str:
    """Short, stable, non-reversible name of a tenant (first 12 hex digits of sha256)."""
    return hashlib.sha256(api_key.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def utcnow() -> datetime:
    """Current time in UTC (the emulator reports every time in UTC)."""
    return datetime.now(timezone.utc)


@dataclass
class Batch:
    """Rows ready to store: exactly one of ``dense`` (n, dim) float32 or ``sparse`` is set."""

    ids: list[str]
    attributes: list[dict[str, str]]
    dense: np.ndarray | None = None
    sparse: list[SparseRow] | None = None

    def __len__(self) -> int:
        return len(self.ids)

    def take(self, keep: list[int]) -> Batch:
        """The rows at positions ``keep``, in that order."""
        dense = self.dense[keep] if self.dense is not None else None
        sparse = [self.sparse[k] for k in keep] if self.sparse is not None else None
        return Batch([self.ids[k] for k in keep], [self.attributes[k] for k in keep], dense, sparse)


@dataclass
class Job:
    """An upload, training or label job. Status moves pending -> in_progress -> finished |
    failed. Label jobs (``/attach_automl_label``) keep the attribute in ``label_attribute``."""

    job_id: str
    kind: Literal["upload", "training", "label"]
    status: JobStatus = "pending"
    started: datetime = field(default_factory=utcnow)
    ended: datetime | None = None
    num_rows: int = 0
    error: str | None = None
    # Training jobs only.
    task_type: str = ""
    model_name: str = ""
    label_attribute: str = ""
    validation_metric: dict[str, float] | float | None = None

    def finish(self, error: str | None = None) -> None:
        """Mark the job finished, or failed with ``error``."""
        self.status = "failed" if error is not None else "finished"
        self.error = error
        self.ended = utcnow()

    def start_time_text(self) -> str:
        return self.started.strftime("%Y/%m/%d %H:%M:%S")

    def duration_text(self) -> str:
        """Elapsed time as HH:MM:SS (up to now while the job runs)."""
        seconds = int(((self.ended or utcnow()) - self.started).total_seconds())
        return f"{seconds // 3600:02d}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


@dataclass
class ModelRecord:
    """A model name in a collection: its training job and, once finished, the model."""

    name: str
    task_type: str
    training_mode: str
    label_attribute: str
    job: Job
    trained: TrainedModel | None = None


class Collection:
    """Rows of one collection: ids (unique, with an id -> row map), vectors and attributes.

    Dense vectors live in a float32 matrix that doubles its capacity when full; sparse rows
    are (indices, values) pairs. Overwriting an id replaces its row in place.
    """

    def __init__(self, name: str, vector_type: str, declared_type: str, dim: int) -> None:
        self.name = name
        self.vector_type = vector_type  # "dense" or "sparse": how rows are stored
        self.declared_type = declared_type  # what init asked for, e.g. "dense8Bit"
        self.dim = dim
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.attributes: list[dict[str, str]] = []
        self._dense = np.empty((0, dim), np.float32) if vector_type == "dense" else None
        self._sparse: list[SparseRow] = []
        self.models: dict[str, ModelRecord] = {}
        self.pending_ids: set[str] = set()  # ids of accepted batches not applied yet
        self.id_writes = 0
        self.overwrites = 0
        self.deleted = False
        self.next_auto_id = 0  # plain ints (not itertools.count) so the store pickles

    def __getstate__(self) -> dict[str, Any]:
        # A snapshot (data_dir) keeps the stored rows, not the spare capacity of the matrix.
        state = self.__dict__.copy()
        if self._dense is not None:
            state["_dense"] = self._dense[: self.rows].copy()
        return state

    @property
    def rows(self) -> int:
        return len(self.ids)

    def known_ids(self, ids: list[str]) -> list[str]:
        """The ids of ``ids`` already stored or waiting in an accepted batch, in order."""
        index, pending = self.index, self.pending_ids
        if index.keys().isdisjoint(ids) and pending.isdisjoint(ids):
            return []
        return [id_ for id_ in ids if id_ in index or id_ in pending]

    def apply(self, batch: Batch) -> int:
        """Store ``batch`` as an upsert; return how many stored rows it overwrote.

        A repeated id inside the batch keeps its last row (and counts as an overwrite).
        """
        n = len(batch)
        index, ids, attributes = self.index, self.ids, self.attributes
        if len(set(batch.ids)) == n and index.keys().isdisjoint(batch.ids):
            # The common case, new ids only: append in bulk, no per-row Python work.
            start = len(ids)
            ids.extend(batch.ids)
            attributes.extend(batch.attributes)
            index.update(zip(batch.ids, range(start, start + n)))
            if batch.dense is not None:
                self._grow(len(ids))
                assert self._dense is not None
                self._dense[start : start + n] = batch.dense
            elif batch.sparse is not None:
                self._sparse.extend(batch.sparse)
            self.id_writes += n
            return 0
        last = {id_: k for k, id_ in enumerate(batch.ids)}
        overwrites = n - len(last)
        if overwrites:
            batch = batch.take(sorted(last.values()))
        targets = np.empty(len(batch), np.intp)
        for k, (id_, attrs) in enumerate(zip(batch.ids, batch.attributes)):
            row = index.get(id_)
            if row is None:
                row = index[id_] = len(ids)
                ids.append(id_)
                attributes.append(attrs)
            else:
                overwrites += 1
                attributes[row] = attrs
            targets[k] = row
        if batch.dense is not None:
            self._grow(len(ids))
            assert self._dense is not None
            self._dense[targets] = batch.dense
        elif batch.sparse is not None:
            # Placeholders for the new rows, then every row lands at its target.
            self._sparse.extend([_EMPTY_ROW] * (len(ids) - len(self._sparse)))
            for row, piece in zip(targets.tolist(), batch.sparse):
                self._sparse[row] = piece
        self.id_writes += n
        self.overwrites += overwrites
        return overwrites

    def _grow(self, rows: int) -> None:
        assert self._dense is not None
        capacity = self._dense.shape[0]
        if rows <= capacity:
            return
        bigger = np.empty((max(rows, 2 * capacity, 64), self.dim), np.float32)
        bigger[:capacity] = self._dense
        self._dense = bigger

    def matrix(self) -> np.ndarray | scipy.sparse.csr_matrix:
        """A copy of the stored vectors: float32 (rows, dim) array or CSR matrix."""
        n = self.rows
        if self._dense is not None:
            return self._dense[:n].copy()
        import scipy.sparse

        lengths = np.fromiter((len(ix) for ix, _ in self._sparse), np.int64, count=n)
        indptr = np.zeros(n + 1, np.int64)
        np.cumsum(lengths, out=indptr[1:])
        if n:
            indices = np.concatenate([ix for ix, _ in self._sparse])
            values = np.concatenate([vals for _, vals in self._sparse])
        else:
            indices, values = np.empty(0, np.int32), np.empty(0, np.float32)
        return scipy.sparse.csr_matrix((values, indices, indptr), shape=(n, self.dim))

    def snapshot(self) -> tuple[np.ndarray | scipy.sparse.csr_matrix, list[dict[str, str]]]:
        """Vectors and attributes as they are now, safe to read from another thread."""
        return self.matrix(), list(self.attributes)

    def describe(self) -> dict[str, Any]:
        """Counters and shape, as the inspection endpoint reports them."""
        return {
            "vector_type": self.declared_type,
            "vector_dim": self.dim,
            "rows": self.rows,
            "id_writes": self.id_writes,
            "overwrites": self.overwrites,
            "models": sorted(self.models),
        }


@dataclass
class Project:
    name: str
    application: str | None = None
    collections: dict[str, Collection] = field(default_factory=dict)


@dataclass
class Tenant:
    """Everything one API key owns. Counters outlive deleted collections."""

    fingerprint: str
    projects: dict[str, Project] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    next_upload: int = 0
    id_writes: int = 0
    overwrites: int = 0

    def describe(self) -> dict[str, Any]:
        return {
            "projects": {
                p.name: {name: c.describe() for name, c in list(p.collections.items())}
                for p in list(self.projects.values())
            },
            "jobs": {
                status: sum(1 for j in list(self.jobs.values()) if j.status == status)
                for status in ("pending", "in_progress", "finished", "failed")
            },
            "id_writes": self.id_writes,
            "overwrites": self.overwrites,
        }


class Store:
    """All tenants. Looks tenants up by fingerprint; creates them on first use."""

    def __init__(self) -> None:
        self.tenants: dict[str, Tenant] = {}

    def tenant(self, fp: str) -> Tenant:
        found = self.tenants.get(fp)
        if found is None:
            found = self.tenants[fp] = Tenant(fp)
        return found

    def find(self, fp: str) -> Tenant | None:
        """The tenant, or ``None`` when that key never stored anything."""
        return self.tenants.get(fp)

    def clear(self) -> None:
        self.tenants.clear()
