"""The loops ``ingest()`` is measured against in ``bench_defaults``: what users write.

* :func:`seed_loop`: the seed script's pattern, sequential blocking ``requests.post(json=)``
  of ``.tolist()`` rows, 1000 rows per request. The seed script does not retry; here a
  ``Request limit reached`` answer is retried after a second ("please try again later"), so
  that every row lands and the rows/s compare.
* :func:`hand_written_loop`: what a competent user writes in about forty lines: httpx and
  orjson (numpy encoded directly), 1000 rows per request, 4 requests in flight, an
  aiolimiter ``AsyncLimiter(R, 1)`` at the server's limit when there is one, and a short
  sleep before retrying a refused call.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import orjson

LIMIT_TEXT = "Request limit reached"
BATCH_ROWS = 1000


def seed_loop(
    base_url: str,
    key: str,
    project: str,
    collection: str,
    data: tuple[Any, list[str], Any],
    batch_rows: int = BATCH_ROWS,
) -> float:
    """Rows/s of the seed script's loop over ``data`` (vectors, ids, attributes):
    sequential blocking ``requests.post(json=...)`` of lists, ``batch_rows`` a request."""
    import requests

    vectors, ids, attributes = data
    rows = len(ids)
    started = time.perf_counter()
    with requests.Session() as session:
        session.trust_env = False
        for start in range(0, rows, batch_rows):
            stop = min(rows, start + batch_rows)
            body = {
                "user_api_key": key,
                "project_name": project,
                "collection_name": collection,
                "string_ids": ids[start:stop],
                "data": vectors[start:stop].tolist(),
                "attributes": attributes[start:stop],
            }
            while True:
                response = session.post(f"{base_url}/add_data_batch", json=body)
                if response.status_code == 400 and LIMIT_TEXT in response.text:
                    time.sleep(1.0)
                    continue
                response.raise_for_status()
                break
    return rows / (time.perf_counter() - started)


async def hand_written_loop(
    base_url: str,
    key: str,
    project: str,
    collection: str,
    data: tuple[Any, list[str], Any],
    rate: float | None,
) -> float:
    """Rows/s of the hand-written concurrent loop (``rate``: the server's limit, if any)."""
    from aiolimiter import AsyncLimiter

    vectors, ids, attributes = data
    starts = list(range(0, len(ids), BATCH_ROWS))[::-1]
    limiter = AsyncLimiter(rate, 1) if rate is not None else None

    async def post(http: httpx.AsyncClient, body: bytes) -> httpx.Response:
        if limiter is None:
            return await http.post("/add_data_batch", content=body)
        async with limiter:
            return await http.post("/add_data_batch", content=body)

    async def worker(http: httpx.AsyncClient) -> None:
        while starts:
            start = starts.pop()
            stop = min(len(ids), start + BATCH_ROWS)
            body = orjson.dumps(
                {
                    "user_api_key": key,
                    "project_name": project,
                    "collection_name": collection,
                    "string_ids": ids[start:stop],
                    "data": vectors[start:stop],
                    "attributes": attributes[start:stop],
                },
                option=orjson.OPT_SERIALIZE_NUMPY,
            )
            while True:
                response = await post(http, body)
                if response.status_code == 400 and LIMIT_TEXT in response.text:
                    await asyncio.sleep(0.5)
                    continue
                response.raise_for_status()
                break

    started = time.perf_counter()
    headers = {"content-type": "application/json"}
    async with httpx.AsyncClient(
        base_url=base_url, timeout=120, headers=headers, trust_env=False
    ) as http:
        await asyncio.gather(*(worker(http) for _ in range(4)))
    return len(ids) / (time.perf_counter() - started)
