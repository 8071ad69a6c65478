"""One ingesting worker process of the shared-budget tests and benchmark.

``python budget_child.py '<json>'`` builds its rows, prints ``READY``, waits for a line on
stdin (so all workers start together), ingests, and prints one JSON line: the report's
counts and the ``time.monotonic()`` of every request it sent (one clock for all processes
of the machine). The spec: ``base_url``, ``key``, ``project``, ``collection``, ``start``,
``rows``, ``dim``, ``max_rows``, ``concurrency``, ``rate`` and ``redis`` (a URL: share a
``RedisBudget`` named ``name``; ``null``: a private limiter at ``rate``).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any

import httpx
import numpy as np

from vecml_async import AsyncVecML, RateLimitPolicy
from vecml_async._limiter import Budget


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    start, rows = spec["start"], spec["rows"]
    data = np.random.default_rng(start).random((rows, spec["dim"]), dtype=np.float32)
    ids = [f"row-{i}" for i in range(start, start + rows)]
    sent: list[float] = []

    async def stamp(request: httpx.Request) -> None:
        sent.append(time.monotonic())

    shared = None
    budget: Budget | RateLimitPolicy = RateLimitPolicy(calls_per_second=spec["rate"])
    if spec["redis"] is not None:
        from vecml_async.budget import RedisBudget

        budget = shared = RedisBudget(spec["redis"], spec["rate"], name=spec["name"])
    print("READY", flush=True)
    sys.stdin.readline()
    began = time.monotonic()
    async with (
        httpx.AsyncClient(trust_env=False, timeout=60, event_hooks={"request": [stamp]}) as http,
        AsyncVecML(
            spec["key"], base_url=spec["base_url"], rate_limit=budget, http_client=http
        ) as c,
    ):
        report = await c.ingest(
            spec["project"],
            spec["collection"],
            data,
            ids=ids,
            vector_dim=spec["dim"],
            max_rows=spec["max_rows"],
            concurrency=spec["concurrency"],
            raise_on_error=False,
        )
    elapsed = time.monotonic() - began
    if shared is not None:
        await shared.aclose()
    return {
        "sent": sent,
        "elapsed": elapsed,
        "rows_sent": report.rows_sent,
        "failed": report.failed_row_count,
        "batches": report.batches_sent,
        "rate_limited": report.rate_limited,
        "retries": report.retries,
    }


if __name__ == "__main__":
    result = asyncio.run(run(json.loads(sys.argv[1])))
    print(json.dumps(result), flush=True)
