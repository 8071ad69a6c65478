"""Shared state of one emulator and the helpers every endpoint handler uses.

:class:`Context` owns the store, the counters, the fault injector, the rate-limit buckets and
the background work (upload timers, training tasks). Handlers receive it with the caller's
tenant and the decoded body; they raise :class:`~vecml_async.emulator.parsing.RequestError`
to refuse a request.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import sys
import time
from collections.abc import Callable, Coroutine
from typing import Any

import anyio.to_thread
import orjson

from vecml_async.emulator.faults import FaultInjector
from vecml_async.emulator.limits import TokenBuckets
from vecml_async.emulator.parsing import RequestError, RowRules, bad, req_str
from vecml_async.emulator.settings import DEFAULT_NAME_PATTERN, EmulatorSettings
from vecml_async.emulator.stats import Stats
from vecml_async.emulator.store import Batch, Collection, Job, Project, Store, Tenant

__all__ = ["Context", "DuplicateIdsError", "conflict", "not_found", "preload"]


async def preload(module: str) -> None:
    """Import ``module`` in a worker thread unless it is loaded already.

    The AutoML and file modules pull in scikit-learn and scipy, which take seconds to import
    on a busy machine. Imported on the event loop, that stall outlasts uvicorn's keep-alive
    timer, which then closes every pooled connection under its clients' feet.
    """
    if module not in sys.modules:
        await anyio.to_thread.run_sync(importlib.import_module, module)


def not_found(message: str) -> RequestError:
    return RequestError(404, message, "not_found")


def conflict(message: str) -> RequestError:
    return RequestError(409, message, "conflict")


class DuplicateIdsError(RequestError):
    """``duplicate_ids="reject"``: ids of a batch already stored (or waiting to be).

    The answer names every one of them, in the message (as a JSON array) and in the
    envelope's ``duplicate_ids`` list, so a client can tell the retry of its own batch
    (every id named) from a real conflict.
    """

    def __init__(self, ids: list[str]) -> None:
        listed = orjson.dumps(ids).decode()
        what = (
            f"string_id '{ids[0]}' already exists"
            if len(ids) == 1
            else (f"string_ids: {len(ids)} already exist")
        )
        super().__init__(400, f"Duplicate {what} in the collection: {listed}")
        self.extra = {"duplicate_ids": ids}


class Context:
    """One emulator's state. Create it outside a loop; use it on the server's loop."""

    def __init__(
        self, settings: EmulatorSettings, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.store = Store()
        self.stats = Stats(clock)
        self.faults = FaultInjector(settings.faults)
        self.buckets = TokenBuckets(settings.rate_limit, settings.bucket_capacity, clock)
        self.row_rules = RowRules(
            settings.sparse_formats, settings.sparse_index_base, settings.attribute_types
        )
        self.sink_jobs: dict[str, Job] = {}
        # Waiting uploads: their timer and what to do if the server stops first.
        self._timers: dict[asyncio.TimerHandle, Callable[[], None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- lookups -------------------------------------------------------------------------

    def name(self, fields: dict[str, Any], key: str) -> str:
        """A required name field that matches the name pattern."""
        value = req_str(fields, key)
        if not self.settings.name_ok(value):
            rule = (
                "use 1-128 letters, digits, '_' or '-'"
                if self.settings.name_pattern == DEFAULT_NAME_PATTERN
                else f"it must match {self.settings.name_pattern}"
            )
            raise bad(f"Invalid {key} '{value[:140]}': {rule}")
        return value

    def project(self, tenant: Tenant, fields: dict[str, Any]) -> Project:
        name = self.name(fields, "project_name")
        found = tenant.projects.get(name)
        if found is None:
            raise not_found(f"Project {name} does not exist")
        return found

    def collection(
        self, tenant: Tenant, fields: dict[str, Any], key: str = "collection_name"
    ) -> Collection:
        project = self.project(tenant, fields)
        name = self.name(fields, key)
        found = project.collections.get(name)
        if found is None:
            raise not_found(f"Collection {name} does not exist in project {project.name}")
        return found

    # -- upload jobs ---------------------------------------------------------------------

    def submit_upload(
        self, tenant: Tenant, project: Project, collection: Collection, batch: Batch
    ) -> Job:
        """Accept ``batch`` as an upload job that applies after ``upload_delay`` seconds.

        With ``duplicate_ids="reject"`` an id already stored or waiting in an accepted batch
        refuses the whole batch before anything is stored; with ``"ignore"`` such rows are
        dropped when the batch applies. An id repeated within the batch follows
        ``duplicate_ids_in_batch`` (or ``duplicate_ids``): refused, first row kept
        (``ignore``) or last row kept (``overwrite``).
        """
        batch = self._within_batch(batch)
        reject = self.settings.duplicate_ids == "reject"
        if reject:
            known = collection.known_ids(batch.ids)
            if known:
                raise DuplicateIdsError(known)
        job_id = f"{tenant.fingerprint}_{project.name}_{collection.name}_"
        job_id += f"{tenant.next_upload}_UploadJob"
        tenant.next_upload += 1
        job = Job(job_id, "upload", num_rows=len(batch))
        tenant.jobs[job_id] = job
        delay = self.settings.upload_delay
        if delay <= 0:
            self._apply(tenant, collection, batch, job)
            return job
        job.status = "in_progress"
        if reject:
            collection.pending_ids.update(batch.ids)
        loop = asyncio.get_running_loop()
        handle: asyncio.TimerHandle | None = None

        def release() -> None:
            if reject:
                collection.pending_ids.difference_update(batch.ids)

        def fire() -> None:
            assert handle is not None
            self._timers.pop(handle, None)
            release()
            self._apply(tenant, collection, batch, job)

        def abandon() -> None:
            release()
            job.finish("The server stopped before this upload applied")

        handle = loop.call_later(delay, fire)
        self._timers[handle] = abandon
        return job

    def _within_batch(self, batch: Batch) -> Batch:
        """``batch`` after the rule for ids it repeats (refused, or only one row kept)."""
        mode = self.settings.duplicate_ids_in_batch or self.settings.duplicate_ids
        if mode == "overwrite" or len(set(batch.ids)) == len(batch.ids):
            return batch  # overwrite: Collection.apply keeps the last row of an id
        first: dict[str, int] = {}
        for k, id_ in enumerate(batch.ids):
            if id_ in first and mode == "reject":
                raise bad(f"Duplicate string_id '{id_}' in the batch")
            first.setdefault(id_, k)
        return batch.take(sorted(first.values()))

    def _apply(self, tenant: Tenant, collection: Collection, batch: Batch, job: Job) -> None:
        if collection.deleted:
            job.finish(f"Collection {collection.name} was deleted before the upload applied")
            return
        if self.settings.duplicate_ids == "ignore":
            # Rows whose id is stored by now (an earlier batch included) are dropped.
            batch = batch.take(
                [k for k, id_ in enumerate(batch.ids) if id_ not in collection.index]
            )
        overwrites = collection.apply(batch)
        tenant.id_writes += len(batch)
        tenant.overwrites += overwrites
        job.finish()

    def new_sink_job(self) -> str:
        job_id = f"sink_{len(self.sink_jobs)}_UploadJob"
        job = Job(job_id, "upload")
        job.finish()
        self.sink_jobs[job_id] = job
        return job_id

    # -- background work -----------------------------------------------------------------

    def spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run ``coro`` as a task that :meth:`aclose` cancels."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _abandon_uploads(self) -> None:
        timers, self._timers = self._timers, {}
        for handle, abandon in timers.items():
            handle.cancel()
            abandon()

    async def aclose(self) -> None:
        """Stop background work: waiting uploads fail (their rows never land) and running
        trainings are cancelled (their jobs fail); the server is stopping."""
        self._abandon_uploads()
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    def reset(self) -> None:
        """Forget all data, counters, buckets and fault state (background work is cancelled
        by :meth:`aclose`, not here)."""
        self._abandon_uploads()
        self.store.clear()
        self.stats.reset()
        self.faults.reset()
        self.buckets.reset()
        self.sink_jobs.clear()
