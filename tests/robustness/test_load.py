"""Load: 1,000 concurrent job futures polling under a client rate limit of R calls/s.

The emulator (another process, so the client loop cannot distort its clock) records the
arrival of every request; in no one-second window may more than R of them arrive, and every
job must complete. Polls run back to back (testing mode: no poll interval), so the client's
limiter is the only thing holding them back.

The client's own send times (an httpx request hook, right after the limiter) are checked too,
strictly. The emulator stamps a request when its handler starts, between the client's send
and the answer; on a loaded machine (a descheduled server process) requests queued for a
while get stamps close together, so the emulator may count a few more than R in a window
even though the client never sent them that fast. The emulator's count is therefore held to
R when the round trips were short, and otherwise to what the client sent within 1 s plus the
longest round trip (every stamp lies within its request's round trip). A client burst cannot
hide behind that: the client-side check has no allowance.
"""

from __future__ import annotations

import asyncio
import bisect
import random
import time
from typing import Any

import httpx
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
    """1,000 job futures under R calls/s: never over R in any 1 s window; all complete."""
    server = emulator_process(upload_delay=0.5)
    rng = random.Random(seed)
    rebuilt = set(rng.sample(range(JOBS), JOBS // 2))
    limit = RateLimitPolicy(calls_per_second=R)
    sent: list[float] = []
    round_trips: list[float] = []

    async def stamp(request: httpx.Request) -> None:
        request.extensions["sent_at"] = time.monotonic()
        sent.append(request.extensions["sent_at"])

    async def answered(response: httpx.Response) -> None:
        round_trips.append(time.monotonic() - response.request.extensions["sent_at"])

    http = httpx.AsyncClient(
        trust_env=False,
        timeout=60,
        limits=httpx.Limits(max_connections=64, max_keepalive_connections=64),
        event_hooks={"request": [stamp], "response": [answered]},
    )
    began = time.monotonic()
    client = AsyncVecML(key, base_url=server.url, rate_limit=limit, http_client=http)
    async with http, client:
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
    client_window = _max_in_window(sorted(sent), 1.0)
    longest = max(round_trips)
    bound = max(R, _max_in_window(sorted(sent), 1.0 + longest))
    figures = {
        "R": R,
        "jobs": JOBS,
        "client_max_in_1s": client_window,
        "emulator_max_in_1s": window,
        "longest_round_trip": round(longest, 3),
        "emulator_bound": bound,
        "requests": requests,
        "seconds": round(elapsed, 1),
    }
    print(f"\nLOAD seed={seed} {figures}")
    why = f"seed={seed}: {figures}"
    assert all(s.status == "finished" and s.num_rows == ROWS_PER_JOB for s in statuses), why
    assert requests["add_data_batch"] == JOBS, why
    assert requests["get_upload_data_status"] >= JOBS, why
    assert stats["rejections"]["rate_limited"] == 0, why
    assert len(sent) == sum(requests.values()), why
    assert client_window <= R, f"{why}: the client sent more than R calls in a 1 s window"
    assert window <= bound, f"{why}: the emulator saw more calls in 1 s than the client sent"
    assert client_window >= 0.8 * R, f"{why}: the client did not use its budget; proves little"
    ids = server.ids(key, P, C)
    assert len(ids) == len(set(ids)) == JOBS * ROWS_PER_JOB, why


def _max_in_window(times: list[float], window: float) -> int:
    """Most of the sorted ``times`` within any half-open interval of ``window`` seconds."""
    return max(
        (bisect.bisect_left(times, start + window, lo=i) - i for i, start in enumerate(times)),
        default=0,
    )
