"""Which body size is fastest when nothing limits the calls: the sweep that set the
adaptive sizer's first size (``sizing.INITIAL_BYTES``, kept while calls do not wait).

Ingests the same rows at several fixed body sizes (``batch_bytes=``, concurrency 4, no
client rate limit) into the emulator (a separate process that parses every float), and
prints MB/s and the ratio against the first size, measured in the same run. Under a call
limit bigger bodies win instead: ``bench_defaults`` measures that.

    python -m benchmarks.bench_batch_size [--rows 80000] [--dim 64]
"""

from __future__ import annotations

import argparse
import time

import anyio

from benchmarks._common import dataset, report
from vecml_async import AsyncVecML
from vecml_async._ingest.sizing import INITIAL_BYTES
from vecml_async.emulator import spawn

SIZES = [256 * 1024, 1 << 20, 2 << 20, 4 << 20, 8 << 20, 16 << 20, 64 << 20]


async def sweep(base_url: str, rows: int, dim: int, concurrency: int) -> dict[int, float]:
    vectors, ids, attrs = dataset(rows, dim)
    out: dict[int, float] = {}
    async with AsyncVecML("vml_bench-size", base_url=base_url, rate_limit=None) as client:
        await client.create_project("size")
        for size in SIZES:
            name = f"s{size}"
            await client.init("size", name, vector_dim=dim, exist_ok=True)
            started = time.perf_counter()
            result = await client.ingest(
                "size",
                name,
                vectors,
                ids=ids,
                attributes=attrs,
                batch_bytes=size,
                max_rows=10**6,
                concurrency=concurrency,
            )
            rate = result.bytes_sent / 1e6 / (time.perf_counter() - started)
            out[size] = max(rate, out.get(size, 0.0))
    return out


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=80_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--concurrency", type=int, default=4)
    args = parser.parse_args(argv)
    with spawn() as base_url:
        rates = anyio.run(sweep, base_url, args.rows, args.dim, args.concurrency)
    default = rates[INITIAL_BYTES]
    rows = [
        (
            f"{size / 2**20:g} MiB" + (" (first size)" if size == INITIAL_BYTES else ""),
            f"{rate:.1f} MB/s  ({rate / default:.2f}x the first size)",
        )
        for size, rate in sorted(rates.items())
    ]
    best = max(rates, key=rates.__getitem__)
    verdict = f"best {best / 2**20:g} MiB at {rates[best] / default:.2f}x the first size"
    report(
        f"batch size: {args.rows:,} rows, dim {args.dim}, concurrency {args.concurrency}",
        rows,
        verdict,
    )
    return rates[best] / default


if __name__ == "__main__":
    main()
