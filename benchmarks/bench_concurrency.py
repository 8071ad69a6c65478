"""Rows/s of ``ingest`` against a sequential loop of ``add_data_batch`` calls, with 20 ms of
added server latency, at the same batch size.

Baselines (measured in the same run, against the same emulator process):
* the seed script's pattern, literally: blocking ``requests.post(url, json=...)`` of
  ``.tolist()`` rows, one after another;
* a sequential loop of this library's ``add_data_batch`` (orjson, pre-encoded, but one at a
  time).
Target: ``ingest`` at least 10x the seed pattern's rows/s.

The run is repeated against the emulator in sink mode (it reads bodies without parsing
them): on a 2-core machine the parsing emulator saturates its core first, so the sink run
shows what the client itself can do.

    python -m benchmarks.bench_concurrency [--rows 60000] [--dim 64] [--batch-rows 1000]
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import anyio

from benchmarks._common import dataset, report
from benchmarks._contenders import seed_loop
from vecml_async import AsyncVecML
from vecml_async.emulator import FaultConfig, spawn

KEY = "vml_bench-concurrency"


async def sequential_add_data_batch(
    client: AsyncVecML, vectors: Any, ids: list[str], attrs: list[dict[str, str]], batch: int
) -> float:
    rows = len(ids)
    started = time.perf_counter()
    for start in range(0, rows, batch):
        stop = min(rows, start + batch)
        await client.add_data_batch(
            "bench",
            "loop",
            vectors[start:stop],
            string_ids=ids[start:stop],
            attributes=attrs[start:stop],
        )
    return rows / (time.perf_counter() - started)


async def run(args: argparse.Namespace, base_url: str) -> list[tuple[str, float]]:
    vectors, ids, attrs = dataset(args.rows, args.dim)
    results = []
    async with AsyncVecML(KEY, base_url=base_url, rate_limit=None) as client:
        await client.create_project("bench")
        for name in ("seed", "loop", "ingest"):
            await client.init("bench", name, vector_dim=args.dim)
        seed_rate = await anyio.to_thread.run_sync(
            seed_loop, base_url, KEY, "bench", "seed", (vectors, ids, attrs), args.batch_rows
        )
        results.append(("seed pattern (requests, json=)", seed_rate))
        loop_rate = await sequential_add_data_batch(client, vectors, ids, attrs, args.batch_rows)
        results.append(("sequential add_data_batch", loop_rate))
        started = time.perf_counter()
        ingested = await client.ingest(
            "bench",
            "ingest",
            vectors,
            ids=ids,
            attributes=attrs,
            max_rows=args.batch_rows,
            concurrency=args.concurrency,
        )
        rate = ingested.rows_sent / (time.perf_counter() - started)
        results.append((f"ingest, concurrency {args.concurrency}", rate))
    return results


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=60_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--batch-rows", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.02)
    args = parser.parse_args(argv)
    ratios = {}
    for mode in ("parse", "sink"):
        with spawn(sink=mode == "sink", faults=FaultConfig(latency=args.latency)) as base_url:
            results = anyio.run(run, args, base_url)
        seed = results[0][1]
        ratios[mode] = results[-1][1] / seed
        rows = [
            (name, f"{rate:,.0f} rows/s  ({rate / seed:.1f}x seed pattern)")
            for name, rate in results
        ]
        verdict = f"ingest / seed pattern = {ratios[mode]:.1f}x" + (
            f" (target >= 10x): {'PASS' if ratios[mode] >= 10 else 'MISS'}"
            if mode == "parse"
            else " (client alone: the emulator only counts bytes)"
        )
        report(
            f"concurrency, {mode} emulator: {args.rows:,} rows, dim {args.dim}, "
            f"{args.batch_rows} rows/request, {args.latency * 1000:.0f} ms server latency",
            rows,
            verdict,
        )
    return ratios["parse"]


if __name__ == "__main__":
    main()
