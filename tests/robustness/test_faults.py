"""Ingest through a faulty network: dropped connections (before and after the batch is
applied), 500/503 answers and rate-limit bursts, against an emulator in another process.

What is pinned: with enough retries every row lands exactly once, byte for byte; when the
retries run out, the report's failed ids and the server's ids partition the input; where the
client cannot know (a connection dropped after the server applied the batch) the report errs
on the side of "failed", and re-sending the failed rows converges to exactly once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from vecml_async import (
    AsyncVecML,
    IngestError,
    RateLimitError,
    RateLimitPolicy,
    RetryPolicy,
    ServerError,
    TransportError,
)
from vecml_async.emulator import FaultConfig

pytestmark = [pytest.mark.integration, pytest.mark.slow]

P, C = "robust", "faults"
KINDS = ("drop_before_apply", "drop_after_apply", "error_500", "error_503", "rate_limit")
# A ceiling well above what the emulator serves, and a fast recovery after a refusal, so the
# adaptive limiter is exercised without turning a 10 s run into a minute.
LIMIT = RateLimitPolicy(calls_per_second=500, recovery_per_second=1.0)


def _rows(n: int, dim: int, seed: int) -> tuple[np.ndarray[Any, Any], list[str]]:
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, dim)).astype(np.float32)
    ids = [f"s{seed}-{i}" for i in rng.permutation(n)]  # ids unrelated to input order
    return vectors, ids


async def _client(url: str, key: str, retries: int) -> AsyncVecML:
    """A client with ``retries`` retries, and the collection created (or found)."""
    client = AsyncVecML(key, base_url=url, retry=RetryPolicy(max_retries=retries), rate_limit=LIMIT)
    try:
        await client.create_project(P, exist_ok=True)
        await client.init(P, C, vector_dim=64, exist_ok=True)
    except BaseException:
        await client.aclose()
        raise
    return client


async def test_every_row_lands_exactly_once_through_drops_5xx_and_rate_limit_bursts(
    emulator_process: Any, key: str, seed: int, tmp_path: Path
) -> None:
    """200k rows through drops, 5xx, rate-limit bursts: complete, ids once, counters agree."""
    n, max_rows = 200_000, 500
    faults = FaultConfig(
        seed=seed,
        drop_before_apply=0.05,
        drop_after_apply=0.05,
        error_500=0.025,
        error_503=0.025,
        rate_limit_burst_prob=0.02,
        rate_limit_burst_length=3,
        endpoints=frozenset({"add_data_batch", "get_upload_data_status"}),
    )
    server = emulator_process(faults=faults)
    vectors, ids = _rows(n, 64, seed)
    began = time.monotonic()
    async with await _client(server.url, key, retries=15) as client:
        report = await client.ingest(P, C, vectors, ids=ids, max_rows=max_rows, wait=True)
    elapsed = time.monotonic() - began
    why = f"seed={seed}: {report.summary()}"

    assert report.complete, why
    assert report.rows_total == report.rows_sent == n, why
    assert report.batches_sent == report.jobs_finished == len(report.job_ids) == n // max_rows, why

    stored_ids, matrix = server.data(key, P, C, tmp_path)
    assert len(stored_ids) == n, why
    assert len(set(stored_ids)) == n, f"{why}: an id is stored twice"
    assert set(stored_ids) == set(ids), f"{why}: ids lost or invented"
    position = {row_id: k for k, row_id in enumerate(stored_ids)}
    order = np.fromiter((position[row_id] for row_id in ids), np.int64, count=n)
    assert np.array_equal(matrix[order], vectors), f"{why}: a stored vector differs"

    counters = server.counters(key, P, C)
    stats = server.stats(key)
    injected = {kind: stats["faults"].get(kind, 0) for kind in KINDS}
    requests = stats["requests"]
    figures = {
        "rows": n,
        "faults": injected,
        "retries": report.retries,
        "rate_limited": report.rate_limited,
        "requests": requests,
        "overwrites": counters["overwrites"],
        "seconds": round(elapsed, 1),
    }
    print(f"\nFAULTS seed={seed} {figures}")
    why = f"seed={seed}: {figures}"
    assert all(injected[kind] > 0 for kind in KINDS), f"{why}: a fault kind never fired"
    # Each id was written once, plus once per replay of a batch the server had applied but
    # whose answer was dropped (the upsert turns the replay into an overwrite).
    assert counters["rows"] == n, why
    assert counters["id_writes"] == n + counters["overwrites"], why
    assert counters["overwrites"] > 0, f"{why}: no drop-after-apply hit add_data_batch"
    assert counters["overwrites"] % max_rows == 0, f"{why}: a batch was partly re-applied"
    # Every failed attempt was retried, and every retry answers for exactly one fault; the
    # rate-limit answers are waited through apart from the retries.
    sends = report.batches_sent + report.retries + report.rate_limited
    assert requests["add_data_batch"] == sends, why
    poll_retries = requests["get_upload_data_status"] - report.batches_sent
    assert sum(injected.values()) == report.retries + report.rate_limited + poll_retries, why
    assert report.rate_limited <= injected["rate_limit"], why


async def test_when_retries_run_out_failed_ids_and_stored_ids_partition_the_input(
    emulator_process: Any, key: str, seed: int
) -> None:
    """When retries run out, failed_ids and stored ids are disjoint and together the input."""
    n, max_rows = 50_000, 250
    faults = FaultConfig(
        seed=seed,
        drop_before_apply=0.2,
        error_500=0.15,
        error_503=0.15,
        rate_limit_burst_prob=0.05,
        rate_limit_burst_length=2,
        endpoints=frozenset({"add_data_batch"}),
    )
    server = emulator_process(faults=faults)
    vectors, ids = _rows(n, 64, seed)
    async with await _client(server.url, key, retries=2) as client:
        with pytest.raises(IngestError) as caught:
            await client.ingest(P, C, vectors, ids=ids, max_rows=max_rows)
    report = caught.value.report
    stored = server.ids(key, P, C)
    failed = report.failed_ids
    why = f"seed={seed}: {report.summary()}"
    print(f"\nEXHAUSTED seed={seed} {report.summary()} faults={server.stats(key)['faults']}")

    assert failed, f"{why}: the retries never ran out; raise the fault rate"
    assert stored, f"{why}: nothing landed; lower the fault rate"
    assert len(failed) == len(set(failed)), f"{why}: a row is reported failed twice"
    assert len(stored) == len(set(stored)), f"{why}: a row is stored twice"
    assert not set(failed) & set(stored), f"{why}: rows both stored and reported failed"
    assert set(failed) | set(stored) == set(ids), f"{why}: rows neither stored nor failed"
    assert report.rows_sent == len(stored), why
    assert report.rows_sent + report.failed_row_count == report.rows_total == n, why
    for failure in report.failures:
        assert failure.kind in ("send", "not_sent"), f"{why}: {failure}"
        if failure.kind == "send":
            assert isinstance(failure.exception, (TransportError, ServerError, RateLimitError))

    rows = report.failed_rows()
    assert sorted(r[0] for r in rows) == sorted(failed), why
    async with await _client(server.url, key, retries=40) as client:
        again = await client.ingest(P, C, rows, max_rows=max_rows)
    assert again.complete, f"seed={seed}: {again.summary()}"
    stored = server.ids(key, P, C)
    assert len(stored) == len(set(stored)) == n, f"seed={seed}"
    assert set(stored) == set(ids), f"seed={seed}"


async def test_ambiguous_failures_are_reported_failed_and_resending_converges(
    emulator_process: Any, key: str, seed: int
) -> None:
    """Drops after apply may leave rows stored yet failed; nothing is lost; resend converges."""
    n, max_rows = 40_000, 250
    faults = FaultConfig(
        seed=seed,
        drop_before_apply=0.15,
        drop_after_apply=0.25,
        error_500=0.1,
        error_503=0.05,
        endpoints=frozenset({"add_data_batch", "get_upload_data_status"}),
    )
    server = emulator_process(faults=faults)
    vectors, ids = _rows(n, 64, seed)
    async with await _client(server.url, key, retries=2) as client:
        report = await client.ingest(
            P, C, vectors, ids=ids, max_rows=max_rows, wait=True, raise_on_error=False
        )
    stored = set(server.ids(key, P, C))
    failed = report.failed_ids
    why = f"seed={seed}: {report.summary()}"

    assert failed, f"{why}: the retries never ran out"
    assert len(failed) == len(set(failed)), why
    assert set(failed) | stored == set(ids), f"{why}: rows neither stored nor failed"
    # No attempt-level proof is possible: a batch whose first attempt was applied and dropped
    # and whose retries were then refused ends with a ServerError, yet its rows are stored.
    # What must hold: the rows stored and not reported failed are exactly the rows sent.
    assert report.rows_sent == len(stored - set(failed)), why

    async with await _client(server.url, key, retries=40) as client:
        again = await client.ingest(P, C, report.failed_rows(), max_rows=max_rows, wait=True)
    assert again.complete, f"seed={seed}: {again.summary()}"
    final = server.ids(key, P, C)
    assert len(final) == len(set(final)) == n, f"seed={seed}"
    assert set(final) == set(ids), f"seed={seed}"
