"""Peak memory of ``ingest`` on a streamed input: 10x the rows must not mean 10x the memory.

Each run is a fresh child process (so peaks do not mix) that ingests rows from a generator
into an emulator in sink mode (it reads and counts bodies, so the client is what is
measured), and prints its peak RSS. Target: the 10x run peaks under 1.2x the small run.

    python -m benchmarks.bench_memory [--rows 50000] [--dim 64]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
from collections.abc import Iterator

import anyio

from benchmarks._common import report
from vecml_async import AsyncVecML


def rows(count: int, dim: int) -> Iterator[tuple[str, list[float], dict[str, str]]]:
    """Rows made on the fly: the input itself takes no memory."""
    import numpy as np

    block = np.random.default_rng(0).standard_normal((1024, dim)).astype(np.float32)
    for i in range(count):
        yield f"row-{i:09d}", block[i % 1024].tolist(), {"label": str(i % 2), "category": "A"}


async def child(base_url: str, count: int, dim: int) -> dict[str, float]:
    async with AsyncVecML("vml_bench-memory", base_url=base_url, rate_limit=None) as client:
        await client.create_project("mem", exist_ok=True)
        await client.init("mem", "c", vector_dim=dim, exist_ok=True)
        report_ = await client.ingest("mem", "c", rows(count, dim))
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "rows": report_.rows_sent,
        "peak_mb": peak_kib / 1024,
        "mb_sent": report_.bytes_sent / 1e6,
    }


def run_child(base_url: str, count: int, dim: int) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_memory",
            "--child",
            base_url,
            "--rows",
            str(count),
            "--dim",
            str(dim),
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, float] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(anyio.run(child, args.child, args.rows, args.dim)))
        return 0.0
    from vecml_async.emulator import spawn

    with spawn(sink=True) as base_url:
        small = run_child(base_url, args.rows, args.dim)
        large = run_child(base_url, args.rows * 10, args.dim)
    ratio = large["peak_mb"] / small["peak_mb"]
    rows_ = [
        (
            f"{int(small['rows']):,} rows ({small['mb_sent']:.0f} MB sent)",
            f"peak RSS {small['peak_mb']:.0f} MB",
        ),
        (
            f"{int(large['rows']):,} rows ({large['mb_sent']:.0f} MB sent)",
            f"peak RSS {large['peak_mb']:.0f} MB",
        ),
    ]
    verdict = (
        f"10x rows -> {ratio:.2f}x peak memory (target < 1.2x): {'PASS' if ratio < 1.2 else 'MISS'}"
    )
    report("memory: streamed ingest, peak RSS of the client process", rows_, verdict)
    return ratio


if __name__ == "__main__":
    main()
