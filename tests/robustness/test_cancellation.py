"""Cancellation at random points: of an ingest (while encoding, mid-request, between the
server's answer and the checkpoint record, in the progress callback, while waiting for its
jobs) and of job waits.

After each cancellation: no task of the client is left running, no connection stays open once
the client is closed (client sockets counted with psutil; ResourceWarning is an error), and
the checkpoint is consistent: a re-run with it completes and stores every id exactly once.
The emulator runs in another process, so every task and socket of this process is the
client's (and a busy client loop cannot starve the server of the GIL, which would make the
chosen cancellation points unreachable).
"""

from __future__ import annotations

import asyncio
import gc
import random
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import orjson
import psutil
import pytest

from vecml_async import AsyncVecML, RateLimitPolicy

pytestmark = pytest.mark.integration

P, C = "robust", "cancel"
ROWS, DIM, MAX_ROWS, CONCURRENCY = 20_000, 16, 200, 4
LIMIT = RateLimitPolicy(calls_per_second=None)


def _client_sockets(url: str) -> list[Any]:
    """This process's open TCP sockets connected to the emulator (client side only)."""
    port = urlsplit(url).port
    return [
        c for c in psutil.Process().net_connections(kind="tcp") if c.raddr and c.raddr.port == port
    ]


class CancelAt:
    """httpx event hooks that cancel ``task`` at the ``n``-th request (or response) to
    ``endpoint``: mid-request, or after the server has answered but before the caller has
    seen the answer."""

    def __init__(self, endpoint: str, n: int, phase: str) -> None:
        self.endpoint, self.n, self.phase = endpoint, n, phase
        self.seen = 0
        self.task: asyncio.Task[Any] | None = None
        self.fired = False

    async def _hit(self, request: httpx.Request) -> None:
        if request.url.path.endswith("/" + self.endpoint):
            self.seen += 1
            if self.seen == self.n and self.task is not None:
                self.fired = True
                self.task.cancel()

    async def on_request(self, request: httpx.Request) -> None:
        if self.phase == "request":
            await self._hit(request)

    async def on_response(self, response: httpx.Response) -> None:
        if self.phase == "response":
            await self._hit(response.request)


async def _cancelled_cleanly(
    task: asyncio.Task[Any], before: set[asyncio.Task[Any]], why: str
) -> bool:
    """Await a task that was (maybe) cancelled; check no other task of it is left running.
    Returns whether the cancellation hit (False: the task had finished first)."""
    try:
        await task
    except asyncio.CancelledError:
        hit = True
    else:
        hit = False
    leftover = asyncio.all_tasks() - before
    assert not leftover, f"{why}: tasks still running after the cancellation: {leftover}"
    return hit


def _no_connections(url: str, why: str) -> None:
    gc.collect()  # a socket left for the garbage collector raises its ResourceWarning here
    assert not _client_sockets(url), f"{why}: connections left open"


async def _resume_exactly_once(
    url: str, key: str, server: Any, checkpoint: Path, vectors: Any, ids: list[str], why: str
) -> None:
    async with AsyncVecML(key, base_url=url, rate_limit=LIMIT) as client:
        report = await client.ingest(
            P, C, vectors, ids=ids, max_rows=MAX_ROWS, checkpoint=checkpoint, wait=True
        )
    assert report.complete, f"{why}: {report.summary()}"
    assert report.rows_skipped + report.rows_sent == ROWS, f"{why}: {report.summary()}"
    stored = server.ids(key, P, C)
    assert len(stored) == len(set(stored)) == ROWS, f"{why}: {len(stored)} stored"
    assert set(stored) == set(ids), why
    counters = server.counters(key, P, C)
    # Only batches in flight at the cancellation may have been sent twice.
    assert counters["overwrites"] <= (CONCURRENCY + 1) * MAX_ROWS, f"{why}: {counters}"
    _no_connections(url, why)


MECHANISMS = [
    "request:add_data_batch",  # cancelled while a batch is being sent
    "response:add_data_batch",  # after the server applied a batch, before it is recorded
    "request:get_upload_data_status",  # while waiting for the upload jobs (wait=True)
    "progress",  # from inside the progress callback
    "loop",  # after a random number of event-loop turns (encoding, queueing, anything)
]


@pytest.mark.parametrize("mechanism", MECHANISMS)
async def test_cancelled_ingest_leaves_no_task_no_connection_and_a_resumable_checkpoint(
    emulator_process: Any, key: str, seed: int, tmp_path: Path, mechanism: str
) -> None:
    """A cancelled ingest leaves no task, no socket, and a checkpoint that resumes exactly once."""
    server = emulator_process(upload_delay=0.02)
    url = server.url
    rng = random.Random(seed)
    vectors = np.random.default_rng(seed).standard_normal((ROWS, DIM)).astype(np.float32)
    ids = [f"c{seed}-{i}" for i in range(ROWS)]
    checkpoint = tmp_path / "cancel.ckpt"
    batches = ROWS // MAX_ROWS
    point = rng.randint(1, batches)
    why = f"seed={seed} {mechanism} at {point}"

    hooks: CancelAt | None = None
    http: httpx.AsyncClient | None = None
    progress: Callable[[Any], Awaitable[None]] | None = None
    holder: dict[str, asyncio.Task[Any]] = {}
    if mechanism.startswith(("request:", "response:")):
        phase, endpoint = mechanism.split(":")
        hooks = CancelAt(endpoint, point, phase)
        http = httpx.AsyncClient(
            trust_env=False,
            event_hooks={"request": [hooks.on_request], "response": [hooks.on_response]},
        )
    elif mechanism == "progress":

        async def progress(state: Any) -> None:
            # Two senders may both finish before either reports: cancel at the first report
            # at or past the point.
            if state.batches_sent >= point and "fired" not in holder:
                holder["fired"] = holder["task"]
                holder["task"].cancel()

    async with AsyncVecML(key, base_url=url, rate_limit=LIMIT, http_client=http) as client:
        await client.create_project(P)
        await client.init(P, C, vector_dim=DIM)
        before = asyncio.all_tasks()
        task = asyncio.create_task(
            client.ingest(
                P,
                C,
                vectors,
                ids=ids,
                max_rows=MAX_ROWS,
                concurrency=CONCURRENCY,
                checkpoint=checkpoint,
                wait=True,
                progress=progress,
            )
        )
        holder["task"] = task
        if hooks is not None:
            hooks.task = task
        if mechanism == "loop":
            for _ in range(rng.randint(0, 400)):
                await asyncio.sleep(0)
            task.cancel()
        hit = await _cancelled_cleanly(task, before, why)
        assert hit, f"{why}: the ingest finished before the cancellation"
    if http is not None:
        await http.aclose()
    _no_connections(url, why)
    await _resume_exactly_once(url, key, server, checkpoint, vectors, ids, why)


async def test_cancelled_job_waits_leave_nothing_running_and_the_jobs_go_on(
    emulator_process: Any, key: str, seed: int
) -> None:
    """Job waits cancelled at seeded polls leave nothing running; rebuilt from ids, jobs finish."""
    server = emulator_process(upload_delay=2.0)
    url = server.url
    rng = random.Random(seed)
    jobs_n = 50
    targets: dict[str, int] = {}
    tasks: dict[str, asyncio.Task[Any]] = {}
    polls: dict[str, int] = {}

    async def on_request(request: httpx.Request) -> None:
        if request.url.path.endswith("/get_upload_data_status"):
            job_id = orjson.loads(request.content)["job_id"]
            polls[job_id] = polls.get(job_id, 0) + 1
            if polls[job_id] == targets.get(job_id):
                tasks[job_id].cancel()

    http = httpx.AsyncClient(trust_env=False, event_hooks={"request": [on_request]})
    async with AsyncVecML(key, base_url=url, rate_limit=LIMIT, http_client=http) as client:
        await client.create_project(P)
        await client.init(P, C, vector_dim=4)
        before = asyncio.all_tasks()
        job_ids: list[str] = []
        by_index: dict[int, str] = {}
        chosen = [rng.randint(0, 4) for _ in range(jobs_n)]  # polls before each cancellation

        async def add_and_wait(i: int) -> Any:
            job = await client.add_data_batch(
                P, C, [[float(i), 1.0, 2.0, 3.0]], string_ids=[f"j{i}"]
            )
            job_ids.append(job.job_id)
            by_index[i] = job.job_id
            tasks[job.job_id] = asyncio.current_task()  # type: ignore[assignment]
            targets[job.job_id] = chosen[i]
            if targets[job.job_id] == 0:
                tasks[job.job_id].cancel()  # before its first poll
            return await job.wait(timeout=30)

        waits = [asyncio.create_task(add_and_wait(i)) for i in range(jobs_n)]
        outcomes = await asyncio.gather(*waits, return_exceptions=True)
        why = f"seed={seed} targets={targets}"
        leftover = asyncio.all_tasks() - before
        assert not leftover, f"{why}: {leftover}"
        uncancelled = {
            by_index.get(i): (outcome, chosen[i], polls.get(by_index.get(i, "")))
            for i, outcome in enumerate(outcomes)
            if not isinstance(outcome, asyncio.CancelledError)
        }
        assert not uncancelled, f"{why}: {uncancelled}"
    await http.aclose()
    _no_connections(url, why)

    async with AsyncVecML(key, base_url=url, rate_limit=LIMIT) as client:
        finished = await asyncio.gather(*(client.upload_job(j).wait(timeout=30) for j in job_ids))
    assert all(status.status == "finished" for status in finished), why
    assert sorted(server.ids(key, P, C)) == sorted(f"j{i}" for i in range(jobs_n))
    _no_connections(url, why)
