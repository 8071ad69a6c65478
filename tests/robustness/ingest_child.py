"""A client process for the crash-and-resume suite: ingests with ``checkpoint=``.

``python ingest_child.py '<json>'`` with ``{"url", "key", "project", "collection",
"checkpoint", "rows", "dim", "seed", "max_rows", "explicit_ids", "concurrency"}`` builds the
same rows as :func:`make_rows` (so the parent knows them), ingests them, and prints one line
``ACK <batches_sent> <rows_sent>`` per batch the progress callback sees (the checkpoint line
of an accepted batch is written and fsynced before its callback runs), then ``DONE <json>``.
The parent synchronises on these lines, never on time.
"""

from __future__ import annotations

import asyncio
import json
import sys
from typing import Any

import numpy as np

from vecml_async import AsyncVecML, testing_mode


def make_rows(rows: int, dim: int, seed: int, explicit_ids: bool) -> tuple[Any, list[str] | None]:
    """The input of one crash test: vectors and (when explicit) ids, from the seed alone."""
    vectors = np.random.default_rng(seed).standard_normal((rows, dim)).astype(np.float32)
    ids = [f"row-{seed}-{i}" for i in range(rows)] if explicit_ids else None
    return vectors, ids


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    vectors, ids = make_rows(spec["rows"], spec["dim"], spec["seed"], spec["explicit_ids"])

    def progress(state: Any) -> None:
        sys.stdout.write(f"ACK {state.batches_sent} {state.rows_sent}\n")
        sys.stdout.flush()

    async with AsyncVecML(spec["key"], base_url=spec["url"], rate_limit=None) as client:
        report = await client.ingest(
            spec["project"],
            spec["collection"],
            vectors,
            ids=ids,
            vector_dim=spec["dim"],
            max_rows=spec["max_rows"],
            concurrency=spec["concurrency"],
            checkpoint=spec["checkpoint"],
            progress=progress,
        )
    return {
        "rows_total": report.rows_total,
        "rows_sent": report.rows_sent,
        "rows_skipped": report.rows_skipped,
        "batches_sent": report.batches_sent,
        "complete": report.complete,
        "generated_ids": report.generated_ids,
        "id_prefix": report.id_prefix,
    }


def main() -> int:
    spec = json.loads(sys.argv[1])
    with testing_mode():
        result = asyncio.run(run(spec))
    sys.stdout.write("DONE " + json.dumps(result) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
