"""Several worker processes, one API key, one rate budget kept in Redis.

Each worker is a separate process with its own client; all of them acquire their call slots
from one ``RedisBudget``, so together they never send more than R calls per second, which
private limiters (R each) would. Without ``--base-url`` the workers write to a local emulator
that enforces R calls/s, and the script prints what it saw: the busiest second and the
refusals.

    python examples/scale_out.py --redis redis://127.0.0.1:6379/0 --workers 4 --rate 20

Needs ``pip install 'vecml-async[redis,emulator]'`` and a Redis server.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import time

import numpy as np

from vecml_async import AsyncVecML
from vecml_async.budget import RedisBudget

PROJECT, COLLECTION, DIM = "scale-out", "vectors", 16


async def ingest_share(args: argparse.Namespace, worker: int) -> str:
    """One worker: its own rows, its own client, the shared budget."""
    rows = args.rows // args.workers
    first = worker * rows
    vectors = np.random.default_rng(worker).random((rows, DIM), dtype=np.float32)
    ids = [f"doc-{i}" for i in range(first, first + rows)]
    async with (
        RedisBudget(args.redis, args.rate, name="scale-out-example") as budget,
        AsyncVecML(args.key, base_url=args.base_url, rate_limit=budget) as client,
    ):
        report = await client.ingest(
            PROJECT, COLLECTION, vectors, ids=ids, vector_dim=DIM, max_rows=args.rows_per_call
        )
    return f"worker {worker}: {report.summary()}"


def run_worker(args: argparse.Namespace, worker: int) -> str:
    return asyncio.run(ingest_share(args, worker))


async def prepare(args: argparse.Namespace) -> None:
    async with (
        RedisBudget(args.redis, args.rate, name="scale-out-example") as budget,
        AsyncVecML(args.key, base_url=args.base_url, rate_limit=budget) as client,
    ):
        await client.create_project(PROJECT, exist_ok=True)
        await client.init(PROJECT, COLLECTION, vector_dim=DIM, exist_ok=True)


def run_all(args: argparse.Namespace) -> None:
    asyncio.run(prepare(args))
    started = time.monotonic()
    # "spawn": each worker starts a fresh interpreter, like separate uvicorn workers or pods.
    with multiprocessing.get_context("spawn").Pool(args.workers) as pool:
        for line in pool.starmap(run_worker, [(args, k) for k in range(args.workers)]):
            print(line)
    print(f"{args.rows:,} rows by {args.workers} workers in {time.monotonic() - started:.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--redis", default=os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"))
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--rate", type=float, default=20.0, help="calls/s for all workers")
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--rows-per-call", type=int, default=500)
    parser.add_argument("--base-url", default=os.environ.get("VECML_BASE_URL"))
    parser.add_argument("--key", default=os.environ.get("VECML_API_KEY", "vml_scale_out_demo"))
    args = parser.parse_args()
    if args.base_url:
        run_all(args)
        return
    from vecml_async.emulator import inspect_remote, spawn

    with spawn(rate_limit=args.rate) as url:
        args.base_url = url
        run_all(args)
        seen = inspect_remote(url, args.key)
    print(
        f"emulator: busiest second {seen['max_requests_in_1s']} calls (limit {args.rate:g}), "
        f"{seen['rejections']['rate_limited']} refused, "
        f"{seen['projects'][PROJECT][COLLECTION]['rows']:,} rows stored"
    )


if __name__ == "__main__":
    main()
