"""``ingest(wait=True)``: upload jobs awaited while batches still go out, against sending
first and then awaiting each job, as a script would.

The emulator (its own process) limits calls to ``--rate`` per second per key, answers after
20 ms and finishes each upload job ``--job-seconds`` after it was accepted. The same rows go
in twice per body size, each time under a fresh key: once with ``wait=False`` followed by
``await client.upload_job(id).wait()`` for every job in turn (the baseline), once with
``wait=True``. Printed: the jobs, the total time, the time spent waiting after the last
send, and the ratio of total times. With the defaults the sizer leaves spare calls while
sending, and the jobs are seen then; with small fixed bodies every call goes to a batch, so
the polls wait for the end and the ratio is about 1.0 (never below: a poll never takes a
batch's turn).

    python -m benchmarks.bench_wait_overlap [--rows 200000] [--dim 128] [--rate 10]
"""

from __future__ import annotations

import argparse
import itertools
import time
from typing import Any

import anyio

from benchmarks._common import dataset, report
from vecml_async import AsyncVecML
from vecml_async.emulator import FaultConfig, spawn

_KEYS = itertools.count()


async def one(
    base_url: str, data: Any, dim: int, wait: bool, **options: Any
) -> tuple[int, float, float]:
    """(jobs, total seconds, seconds after the last send) of one ingest."""
    vectors, ids, attributes = data
    key = f"vml_bench-wait-{next(_KEYS)}"
    async with AsyncVecML(key, base_url=base_url, rate_limit=None) as client:
        await client.create_project("w", exist_ok=True)
        await client.init("w", "c", vector_dim=dim, exist_ok=True)
    await anyio.sleep(1.0)  # the key's bucket refills
    async with AsyncVecML(key, base_url=base_url) as client:
        started = time.perf_counter()
        result = await client.ingest(
            "w", "c", vectors, ids=ids, attributes=attributes, wait=wait, **options
        )
        sent = time.perf_counter()
        if not wait:
            for job_id in result.job_ids:
                await client.upload_job(job_id).wait()
        ended = time.perf_counter()
    after = result.waited_after_send if wait else ended - sent
    return len(result.job_ids), ended - started, after


async def run(base_url: str, rows: int, dim: int) -> tuple[list[tuple[str, str]], list[float]]:
    data = dataset(rows, dim)
    lines, ratios = [], []
    for label, options in (("defaults", {}), ("batch_bytes=1 MiB", {"batch_bytes": 1 << 20})):
        jobs, base_total, base_after = await one(base_url, data, dim, False, **options)
        _, total, after = await one(base_url, data, dim, True, **options)
        ratios.append(base_total / total)
        lines.append(
            (
                f"{label}, {jobs} jobs",
                f"send then wait: {base_total:5.1f} s ({base_after:4.1f} s after the last send)"
                f"  wait=True: {total:5.1f} s ({after:4.2f} s after)  {base_total / total:.2f}x",
            )
        )
    return lines, ratios


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--job-seconds", type=float, default=0.5)
    args = parser.parse_args(argv)
    faults = FaultConfig(latency=0.02)
    with spawn(rate_limit=args.rate, upload_delay=args.job_seconds, faults=faults) as base_url:
        lines, ratios = anyio.run(run, base_url, args.rows, args.dim)
    report(
        f"wait=True vs send then wait: {args.rows:,} rows, dim {args.dim}, "
        f"server {args.rate:g} calls/s, jobs of {args.job_seconds:g} s",
        lines,
        "ratio = total time of send-then-wait / total time of wait=True (>= 1.0)",
    )
    return ratios[0]


if __name__ == "__main__":
    main()
