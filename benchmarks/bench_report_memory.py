"""Memory an ingest report holds for its failures, against the encoded bytes of the rows
that failed.

An emulator in another process (sink mode: it counts bodies, so the client is what is
measured) fails half the ``add_data_batch`` requests at random (HTTP 500, seeded; no
retries), so about half the batches fail. The client ingests float32 rows from an array; the
memory the report keeps is measured with tracemalloc (allocated while the report is alive,
freed when it goes), and compared with the encoded bytes of the failed rows, computed apart
(each failed row's id and vector encoded on its own, as they are sent). A failure keeps its
rows' ids and a copy of their encoded bytes, nothing of the chunks they were cut from.
Target: at most 1.2x.

    python -m benchmarks.bench_report_memory [--rows 200000] [--dim 128]
"""

from __future__ import annotations

import argparse
import gc
import tracemalloc
from typing import Any

import anyio
import orjson

from benchmarks._common import dataset, report
from vecml_async import AsyncVecML
from vecml_async.emulator import FaultConfig, spawn

KEY = "vml_bench-report-memory"


async def run(base_url: str, rows: int, dim: int, max_bytes: int) -> dict[str, Any]:
    vectors, ids, _ = dataset(rows, dim)
    async with AsyncVecML(KEY, base_url=base_url, rate_limit=None, max_retries=0) as client:
        await client.create_project("mem", exist_ok=True)
        await client.init("mem", "c", vector_dim=dim, exist_ok=True)
        tracemalloc.start()
        try:
            ingested = await client.ingest(
                "mem",
                "c",
                vectors,
                ids=ids,
                max_bytes=max_bytes,
                concurrency=1,
                max_consecutive_failures=10**9,
                raise_on_error=False,
            )
            failed = ingested.failed_ids  # before measuring: this list outlives the report
            sent, batches = ingested.bytes_sent, ingested.batches_sent
            failures = len(ingested.failures)
            gc.collect()
            held = tracemalloc.get_traced_memory()[0]
            del ingested
            gc.collect()
            retained = held - tracemalloc.get_traced_memory()[0]
        finally:
            tracemalloc.stop()
    position = {row_id: k for k, row_id in enumerate(ids)}
    option = orjson.OPT_SERIALIZE_NUMPY
    encoded = sum(
        len(orjson.dumps(i)) + len(orjson.dumps(vectors[position[i]], option=option))
        for i in failed
    )
    return {
        "failed_rows": len(failed),
        "failed_batches": failures,
        "sent_batches": batches,
        "sent_bytes": sent,
        "encoded": encoded,
        "retained": retained,
    }


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--max-bytes", type=int, default=1 << 20)
    args = parser.parse_args(argv)
    faults = FaultConfig(seed=1, error_500=0.5, endpoints=frozenset({"add_data_batch"}))
    with spawn(faults=faults, sink=True) as base_url:
        result = anyio.run(run, base_url, args.rows, args.dim, args.max_bytes)
    ratio = result["retained"] / max(1, result["encoded"])
    rows = [
        (f"{args.rows:,} rows, dim {args.dim}", f"{result['sent_bytes'] / 1e6:,.0f} MB sent"),
        (
            "batches failed / sent",
            f"{result['failed_batches']:,} / {result['sent_batches']:,}",
        ),
        ("encoded bytes of the failed rows", f"{result['encoded'] / 1e6:,.1f} MB"),
        ("memory the report holds", f"{result['retained'] / 1e6:,.1f} MB"),
    ]
    verdict = f"report / failed rows = {ratio:.2f}x (target <= 1.2x): " + (
        "PASS" if ratio <= 1.2 else "MISS"
    )
    report("report memory: half the batches failing", rows, verdict)
    return ratio


if __name__ == "__main__":
    main()
