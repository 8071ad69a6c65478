"""Event-loop responsiveness during an ingest: a ticker task's p99 delay.

A task sleeps 5 ms in a loop and records how late it wakes up, first with the loop idle
(the baseline), then while ``ingest`` sends rows to the emulator (a separate process).
Target: p99 lateness under 20 ms during the ingest.

    python -m benchmarks.bench_loop_lag [--rows 200000] [--dim 64]
"""

from __future__ import annotations

import argparse
import time

import anyio

from benchmarks._common import dataset, percentile, report
from vecml_async import AsyncVecML
from vecml_async.emulator import spawn

TICK = 0.005


async def ticker(lateness: list[float], stop: anyio.Event) -> None:
    while not stop.is_set():
        started = time.perf_counter()
        await anyio.sleep(TICK)
        lateness.append(time.perf_counter() - started - TICK)


async def measure(base_url: str, rows: int, dim: int) -> tuple[list[float], list[float], float]:
    vectors, ids, attrs = dataset(rows, dim)
    idle: list[float] = []
    busy: list[float] = []
    stop = anyio.Event()
    async with anyio.create_task_group() as group:
        group.start_soon(ticker, idle, stop)
        await anyio.sleep(1.0)
        stop.set()
    stop = anyio.Event()
    async with AsyncVecML("vml_bench-lag", base_url=base_url, rate_limit=None) as client:
        await client.create_project("lag")
        await client.init("lag", "c", vector_dim=dim)
        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            group.start_soon(ticker, busy, stop)
            await client.ingest("lag", "c", vectors, ids=ids, attributes=attrs)
            stop.set()
        elapsed = time.perf_counter() - started
    return idle, busy, elapsed


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=64)
    args = parser.parse_args(argv)
    with spawn() as base_url:
        idle, busy, elapsed = anyio.run(measure, base_url, args.rows, args.dim)
    p99_idle, p99_busy = percentile(idle, 99) * 1000, percentile(busy, 99) * 1000
    rows = [
        ("idle loop", f"p50 {percentile(idle, 50) * 1000:.2f} ms, p99 {p99_idle:.2f} ms"),
        (
            f"during ingest ({args.rows:,} rows, {elapsed:.1f} s)",
            f"p50 {percentile(busy, 50) * 1000:.2f} ms, p99 {p99_busy:.2f} ms, "
            f"max {max(busy) * 1000:.1f} ms",
        ),
        ("ratio busy/idle p99", f"{p99_busy / max(p99_idle, 1e-3):.1f}x"),
    ]
    verdict = (
        f"p99 lateness {p99_busy:.1f} ms (target < 20 ms): {'PASS' if p99_busy < 20 else 'MISS'}"
    )
    report("event-loop lag during an ingest", rows, verdict)
    return p99_busy


if __name__ == "__main__":
    main()
