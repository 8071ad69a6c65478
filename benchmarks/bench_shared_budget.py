"""Throughput of 1, 2 and 4 worker processes under one shared budget, and the control.

An emulator process limits the key to R calls/s. Each run starts N worker processes that
ingest tiny bodies (so the budget is the only limit) through one ``RedisBudget(R)``: together
they should reach about R calls/s whatever N (ratio ~1.0 against the single worker measured
in the same run) with no refusal and at most R calls in any second at the server. The
control gives 4 workers private limiters at R each: more calls are attempted, the server
refuses some, and the adaptive limiters settle near R in total.

    python -m benchmarks.bench_shared_budget [--rate 20] [--calls 120]

Needs the ``redis-server`` program (``apt-get install redis-server``) and redis-py.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import numpy as np

from benchmarks._common import report
from vecml_async import AsyncVecML
from vecml_async.emulator import inspect_remote, spawn

KEY = "vml_bench_shared_budget"
P, DIM, ROWS_PER_CALL = "bench", 8, 50


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """A private redis-server on a free loopback port (no persistence)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    argv = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    proc = subprocess.Popen([*argv, "--appendonly", "no"], stdout=subprocess.DEVNULL)
    try:
        import redis

        client = redis.Redis(port=port)
        deadline = time.monotonic() + 20
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.02)
        client.close()
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        proc.wait()


async def _work(spec: dict[str, Any]) -> list[float]:
    """One worker: ingest its calls' worth of rows; the send time of each request."""
    from vecml_async.budget import RedisBudget

    sent: list[float] = []

    async def stamp(request: httpx.Request) -> None:
        sent.append(time.monotonic())

    rows = spec["calls"] * ROWS_PER_CALL
    vectors = np.random.default_rng(spec["worker"]).random((rows, DIM), dtype=np.float32)
    ids = [f"w{spec['worker']}-{i}" for i in range(rows)]
    budget: Any = float(spec["rate"])
    if spec["redis"] is not None:
        budget = RedisBudget(spec["redis"], spec["rate"], name=spec["name"])
    async with (
        httpx.AsyncClient(trust_env=False, event_hooks={"request": [stamp]}) as http,
        AsyncVecML(KEY, base_url=spec["url"], rate_limit=budget, http_client=http) as client,
    ):
        await client.ingest(
            P, spec["collection"], vectors, ids=ids, vector_dim=DIM,
            max_rows=ROWS_PER_CALL, raise_on_error=False,
        )  # fmt: skip
    if spec["redis"] is not None:
        await budget.aclose()
    return sent


def work(spec: dict[str, Any]) -> list[float]:
    return asyncio.run(_work(spec))


async def _create(url: str, collection: str) -> None:
    async with AsyncVecML(KEY, base_url=url, rate_limit=None) as client:
        await client.create_project(P, exist_ok=True)
        await client.init(P, collection, vector_dim=DIM)


def run(url: str, redis_url: str | None, workers: int, rate: float, calls: int) -> dict[str, Any]:
    """N workers sharing ``calls``; calls/s from first to last send, server's view."""
    collection = f"c{uuid.uuid4().hex[:8]}"
    asyncio.run(_create(url, collection))
    before = inspect_remote(url, KEY)
    name = f"bench-{uuid.uuid4().hex[:8]}"
    specs = [
        {"worker": k, "calls": calls // workers, "rate": rate, "redis": redis_url,
         "name": name, "url": url, "collection": collection}
        for k in range(workers)
    ]  # fmt: skip
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        stamps = sorted(t for sent in pool.map(work, specs) for t in sent)
    after = inspect_remote(url, KEY)
    refused = after["rejections"]["rate_limited"] - before["rejections"]["rate_limited"]
    return {
        "calls_per_s": (len(stamps) - 1) / (stamps[-1] - stamps[0]),
        "refused": refused,
        "busiest_second": after["max_requests_in_1s"],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--calls", type=int, default=120)
    args = parser.parse_args(argv)
    if shutil.which("redis-server") is None:
        print("bench_shared_budget: skipped (no redis-server program)")
        return
    results = {}
    with redis_server() as redis_url:
        # One emulator per run: its busiest second counts over the emulator's whole life.
        for workers in (1, 2, 4):
            with spawn(rate_limit=args.rate) as url:
                results[f"{workers} shared"] = run(url, redis_url, workers, args.rate, args.calls)
        with spawn(rate_limit=args.rate) as url:
            results["4 private (control)"] = run(url, None, 4, args.rate, args.calls)
    base = results["1 shared"]["calls_per_s"]
    rows = [
        (
            label,
            f"{r['calls_per_s']:5.1f} calls/s ({r['calls_per_s'] / base:.2f}x), busiest second "
            f"{r['busiest_second']}, {r['refused']} refused",
        )
        for label, r in results.items()
    ]
    ratios = ", ".join(
        f"{n}: {results[f'{n} shared']['calls_per_s'] / base:.2f}x" for n in (1, 2, 4)
    )
    report(
        f"workers under one RedisBudget({args.rate:g}), server limit {args.rate:g} calls/s",
        rows,
        f"throughput vs 1 worker under one budget: {ratios} (1.0 = the budget holds)",
    )


if __name__ == "__main__":
    main()
