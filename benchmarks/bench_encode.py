"""Client CPU per MB sent, against a bare ``orjson.dumps`` of the same rows.

The client encodes each chunk of rows once, validates it (dimension, finiteness, attribute
types, duplicate ids), cuts it into size-exact batches and assembles the bodies from slices.
The baseline is one ``orjson.dumps`` of the whole payload, with no checks and no cutting.
Target: the client within 1.3x of the baseline's CPU per MB.

    python -m benchmarks.bench_encode [--rows 200000] [--dim 64]
"""

from __future__ import annotations

import argparse

import orjson

from benchmarks._common import dataset, interleaved_cpu, report
from vecml_async._ingest.batching import Batch, Batcher, Envelope
from vecml_async._ingest.chunks import RawChunk, rows_per_chunk
from vecml_async._ingest.defaults import DEFAULT_MAX_BYTES
from vecml_async._ingest.encoder import ChunkEncoder

KEY = "vml_benchmark-key"


def client_bodies(vectors: object, ids: list[str], attrs: list[dict[str, str]]) -> int:
    """Encode, check, batch and assemble every body as the pipeline does; total bytes."""
    encoder = ChunkEncoder("vx-bench-")
    envelope = Envelope.create(KEY, "bench", "coll")
    batcher = Batcher(envelope, max_rows=10**6, max_bytes=DEFAULT_MAX_BYTES)
    step = rows_per_chunk(vectors.shape[1])  # type: ignore[attr-defined]
    total = 0
    n = len(ids)
    for start in range(0, n, step):
        stop = min(n, start + step)
        chunk = encoder.encode(
            RawChunk(start, vectors[start:stop], ids[start:stop], attrs[start:stop])  # type: ignore[index]
        )
        for item in batcher.add(chunk):
            assert isinstance(item, Batch)
            total += item.body(envelope).length
    last = batcher.flush()
    if last is not None:
        total += last.body(envelope).length
    return total


def baseline(vectors: object, ids: list[str], attrs: list[dict[str, str]]) -> int:
    body = orjson.dumps(
        {
            "user_api_key": KEY,
            "project_name": "bench",
            "collection_name": "coll",
            "string_ids": ids,
            "data": vectors,
            "attributes": attrs,
        },
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    return len(body)


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args(argv)
    rows = []
    ratios = []
    for dim in sorted({args.dim, 768}):
        n = args.rows if dim == args.dim else max(1000, args.rows * 64 // 768)
        vectors, ids, attrs = dataset(n, dim)
        size = baseline(vectors, ids, attrs)
        base, client = interleaved_cpu(
            args.repeat,
            lambda data=(vectors, ids, attrs): baseline(*data),  # type: ignore[misc]
            lambda data=(vectors, ids, attrs): client_bodies(*data),  # type: ignore[misc]
        )
        ratio = client / base
        ratios.append(ratio)
        rows += [
            (f"dim {dim}, {n:,} rows", f"{size / 1e6:.1f} MB"),
            ("  bare orjson.dumps", f"{size / 1e6 / base:,.0f} MB/s CPU"),
            ("  client pipeline", f"{size / 1e6 / client:,.0f} MB/s CPU"),
            ("  ratio client/baseline", f"{ratio:.2f}x CPU per MB"),
        ]
    worst = max(ratios)
    verdict = f"worst {worst:.2f}x (target <= 1.30x): {'PASS' if worst <= 1.3 else 'MISS'}"
    report("encode: client CPU per MB vs bare orjson.dumps", rows, verdict)
    return worst


if __name__ == "__main__":
    main()
