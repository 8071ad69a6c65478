"""Load: 1,000 concurrent job futures polling under a client rate limit of R calls/s.

The emulator (another process, so the client loop cannot distort its clock) records the
arrival of every request; in no one-second window may more than R of them arrive, and every
job must complete. Polls run back to back (testing mode: no poll interval), so the client's
limiter is the only thing holding them back.
"""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import pytest

from vecml_async import AsyncVecML, RateLimitPolicy

pytestmark = [pytest.mark.integration, pytest.mark.slow]

P, C = "load", "jobs"
R = 100  # well under what a 2-core runner sustains (~150-400 calls/s), so the limiter binds
JOBS = 1_000
ROWS_PER_JOB = 3


async def test_a_thousand_job_futures_never_exceed_the_rate_limit_and_all_complete(
    emulator_process: Any, key: str, seed: int
) -> None:
    """1,000 upload jobs (add_data_batch of 3 rows each), each awaited at once by its own
    task, half of them through a handle rebuilt from the job id: every job finishes, its rows
    are stored, and the emulator never sees more than R calls in any 1 s window."""
    server = emulator_process(upload_delay=0.5)
    rng = random.Random(seed)
    rebuilt = set(rng.sample(range(JOBS), JOBS // 2))
    limit = RateLimitPolicy(calls_per_second=R)
    began = time.monotonic()
    async with AsyncVecML(key, base_url=server.url, rate_limit=limit) as client:
        await client.create_project(P)
        await client.init(P, C, vector_dim=4)

        async def one(n: int) -> Any:
            rows = [[float(n), float(k), 1.0, -1.0] for k in range(ROWS_PER_JOB)]
            ids = [f"j{n}-{k}" for k in range(ROWS_PER_JOB)]
            job = await client.add_data_batch(P, C, rows, string_ids=ids)
            if n in rebuilt:
                job = client.upload_job(job.job_id)
            return await job.wait(timeout=300)

        statuses = await asyncio.gather(*(one(n) for n in range(JOBS)))
    elapsed = time.monotonic() - began
    stats = server.stats(key)
    requests = stats["requests"]
    window = server.window(1.0, key)
    quarter = server.window(0.25, key)  # informative: arrival jitter may put R/4 + 3 here
    figures = {
        "R": R,
        "jobs": JOBS,
        "max_in_1s": window,
        "max_in_0.25s": quarter,
        "requests": requests,
        "seconds": round(elapsed, 1),
    }
    print(f"\nLOAD seed={seed} {figures}")
    why = f"seed={seed}: {figures}"
    assert all(s.status == "finished" and s.num_rows == ROWS_PER_JOB for s in statuses), why
    assert requests["add_data_batch"] == JOBS, why
    assert requests["get_upload_data_status"] >= JOBS, why
    assert stats["rejections"]["rate_limited"] == 0, why
    assert window <= R, f"{why}: more than R calls in a one-second window"
    assert window >= 0.8 * R, f"{why}: the client did not use its budget; the test proves little"
    ids = server.ids(key, P, C)
    assert len(ids) == len(set(ids)) == JOBS * ROWS_PER_JOB, why
