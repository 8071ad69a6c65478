"""Stream a large file into a collection with a checkpoint, interrupt it, and resume.

``python examples/ingest_large_file.py [FILE.csv] [--rows N] [--dim D] [--checkpoint PATH]``

Without FILE, a CSV of ``--rows`` rows (columns ``id``, ``v0``..``v{dim-1}``, ``label``) is
written to a temporary directory. The file is read in chunks, so memory stays flat whatever
its size. The first pass stops itself after about half the rows (a progress callback returning
False, standing in for a crash or a Ctrl-C); the second pass runs with the same checkpoint and
sends only the rows the first one did not. Each pass prints its IngestReport.

Uses VecML when VECML_API_KEY is set, otherwise a local emulator.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import os
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np

from vecml_async import AsyncVecML, IngestProgress, IngestReport
from vecml_async.emulator import serve

PROJECT = "large_file_demo"
COLLECTION = "rows"


def write_demo_csv(path: Path, rows: int, dim: int, chunk: int = 10_000) -> None:
    """A CSV of random rows, written chunk by chunk (constant memory)."""
    rng = np.random.default_rng(0)
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", *(f"v{j}" for j in range(dim)), "label"])
        for start in range(0, rows, chunk):
            block = rng.standard_normal((min(chunk, rows - start), dim)).round(5)
            labels = (block[:, :5].sum(axis=1) > 0).astype(int)
            writer.writerows(
                [f"row{start + i}", *values, label]
                for i, (values, label) in enumerate(zip(block.tolist(), labels.tolist()))
            )


def vector_dim(path: Path) -> int:
    """Vector columns of the CSV: every column but ``id`` and ``label``."""
    with path.open(newline="") as handle:
        header = next(csv.reader(handle))
    return len([name for name in header if name not in ("id", "label")])


async def ingest_pass(
    client: AsyncVecML, path: Path, checkpoint: Path, stop_after: int | None
) -> IngestReport:
    """One pass over the file; with ``stop_after``, stop once that many rows are sent."""

    def progress(state: IngestProgress) -> bool:
        return stop_after is None or state.rows_sent < stop_after

    return await client.ingest(
        PROJECT,
        COLLECTION,
        path,
        id_column="id",
        attribute_columns=["label"],
        checkpoint=checkpoint,
        progress=progress,
        wait=True,
    )


@contextlib.asynccontextmanager
async def connect() -> AsyncIterator[AsyncVecML]:
    if os.environ.get("VECML_API_KEY"):
        async with AsyncVecML() as client:
            yield client
    else:
        async with serve() as url, AsyncVecML("local-key", base_url=url) as client:
            yield client


async def run(path: Path, checkpoint: Path, dim: int, interrupt_after: int | None) -> None:
    async with connect() as client:
        await client.delete_project(PROJECT, missing_ok=True)
        await client.create_project(PROJECT)
        await client.init(PROJECT, COLLECTION, vector_dim=dim)
        first = await ingest_pass(client, path, checkpoint, stop_after=interrupt_after)
        print("first pass: ", first.summary())
        if not first.complete:
            second = await ingest_pass(client, path, checkpoint, stop_after=None)
            print("second pass:", second.summary())
            assert second.complete, second.failures
            sent = first.rows_sent + second.rows_sent
            print(f"rows sent by both passes: {sent:,}; skipped on resume: {second.rows_skipped:,}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", nargs="?", type=Path, help="CSV with id, vector columns, label")
    parser.add_argument("--rows", type=int, default=200_000, help="rows of the demo CSV")
    parser.add_argument("--dim", type=int, default=32, help="vector columns of the demo CSV")
    parser.add_argument("--checkpoint", type=Path, help="journal path (default: next to FILE)")
    parser.add_argument(
        "--interrupt-after", type=int, help="stop the first pass after N rows (default: "
        "half the demo CSV; no interruption for a FILE)"
    )  # fmt: skip
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as scratch:
        path: Path = args.file or Path(scratch) / "demo.csv"
        interrupt_after: int | None = args.interrupt_after
        if args.file is None:
            write_demo_csv(path, args.rows, args.dim)
            print(f"wrote {args.rows:,} rows to {path} ({path.stat().st_size / 1e6:.1f} MB)")
            interrupt_after = interrupt_after or args.rows // 2
        checkpoint: Path = args.checkpoint or path.with_name(path.name + ".checkpoint")
        checkpoint.unlink(missing_ok=True)  # the project is recreated: start a fresh journal
        asyncio.run(run(path, checkpoint, vector_dim(path), interrupt_after))


if __name__ == "__main__":
    main()
