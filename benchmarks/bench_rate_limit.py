"""Using a server's rate limit fully without tripping it, and converging on an unknown one.

The emulator limits calls to R per second per key (token bucket). Runs, in the same process
and against the same emulator:
* known limit: the client is told R; target >= 0.9 R calls/s achieved and <= 1% of requests
  answered ``Request limit reached``;
* unknown limit: the client is told 2R; the adaptive limiter halves on refusals and recovers
  slowly. Reported: achieved rate / R and the refused share.

    python -m benchmarks.bench_rate_limit [--rate 20] [--seconds 8]
"""

from __future__ import annotations

import argparse
import time

import anyio

from benchmarks._common import report
from vecml_async import AsyncVecML, RateLimitPolicy
from vecml_async.emulator import inspect_remote, spawn


async def drive(
    base_url: str, key: str, client_rate: float, seconds: float, dim: int
) -> tuple[float, int]:
    """Ingest tiny batches for ``seconds``; returns (calls/s achieved, calls made)."""
    import numpy as np

    rows = int(seconds * client_rate * 1.5) * 10
    vectors = np.random.default_rng(0).standard_normal((rows, dim)).astype(np.float32)
    async with AsyncVecML(
        key, base_url=base_url, rate_limit=RateLimitPolicy(client_rate)
    ) as client:
        await client.create_project("rl")
        await client.init("rl", "c", vector_dim=dim)
        started = time.monotonic()
        calls = 0

        def progress(state: object) -> bool:
            return time.monotonic() - started < seconds

        result = await client.ingest(
            "rl",
            "c",
            vectors,
            max_rows=10,
            concurrency=8,
            progress=progress,
            raise_on_error=False,
        )
        elapsed = time.monotonic() - started
        calls = (
            result.batches_sent
            + result.rate_limited
            + sum(1 for f in result.failures if f.kind == "send")
        )
        return result.batches_sent / elapsed, calls


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--dim", type=int, default=16)
    args = parser.parse_args(argv)
    rate = args.rate
    rows = []
    with spawn(rate_limit=rate) as base_url:
        known_rate, _ = anyio.run(drive, base_url, "vml_rl-known", rate, args.seconds, args.dim)
        known = inspect_remote(base_url, "vml_rl-known")
        unknown_rate, _ = anyio.run(
            drive, base_url, "vml_rl-unknown", 2 * rate, args.seconds, args.dim
        )
        unknown = inspect_remote(base_url, "vml_rl-unknown")
    ratios = []
    for name, achieved, stats in (
        ("known limit", known_rate, known),
        ("unknown limit (told 2R)", unknown_rate, unknown),
    ):
        counters = stats.get("stats", stats)
        refused = int(counters.get("rejections", {}).get("rate_limited", 0))
        total = int(sum(counters.get("requests", {}).values())) or 1
        ratios.append((achieved / rate, refused / total))
        rows.append(
            (
                name,
                f"{achieved:.1f} calls/s = {achieved / rate:.2f} R; "
                f"refused {refused}/{total} = {refused / total:.1%}",
            )
        )
    ok = ratios[0][0] >= 0.9 and ratios[0][1] <= 0.01
    verdict = (
        f"known limit: {ratios[0][0]:.2f} R achieved, {ratios[0][1]:.1%} refused "
        f"(target >= 0.90 R, <= 1%): {'PASS' if ok else 'MISS'}"
    )
    report(f"rate limit: emulator at R = {rate:g} calls/s per key", rows, verdict)
    return ratios[0][0]


if __name__ == "__main__":
    main()
