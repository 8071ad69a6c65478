"""``ingest()`` with no tuning arguments, under the server's call limit, against what users
write and against fixed body sizes.

For each server limit R in {2, 10, 50, unlimited} calls/s per key (the emulator, a separate
process, 20 ms of latency on every answer) and each dimension (64, 768), the same rows (ids,
float32 vectors, two attributes) go in, side by side in this process, from:

* the seed script's loop (sequential ``requests.post(json=)``, 1000 rows/request);
* a hand-written httpx + orjson loop (4 in flight, ``AsyncLimiter(R, 1)``, 1000 rows);
* ``ingest()`` with no tuning arguments (the client's default ceiling of 10 calls/s);
* ``ingest(batch_bytes=S)`` for a sweep of fixed sizes S, under the same client defaults.

Every contender uses its own key (its own bucket on the server) and a fresh client. Rows per
contender are chosen so that each runs about ``--seconds`` at the throughput it can reach
(all ``ingest`` runs of a cell get the same rows, but fixed sizes too small to finish in
time get fewer). Printed per cell: rows/s and the ratios; the targets checked:

* defaults >= 0.9x the best fixed size of the sweep, and >= 1.0x the hand-written loop;
* defaults >= 5x the seed loop wherever any contender reaches 5x;
* no refused call for the defaults when the client's ceiling (10/s) is at or below R;
* the defaults' peak RSS growth within their memory budget (``max_memory``, 256 MiB).

    python -m benchmarks.bench_defaults [--seconds 6] [--dims 64,768] [--rates 2,10,50,none]
"""

from __future__ import annotations

import argparse
import itertools
import time
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.to_thread
import orjson

from benchmarks._common import dataset
from benchmarks._contenders import BATCH_ROWS, hand_written_loop, seed_loop
from benchmarks._rss import PeakRss
from vecml_async import AsyncVecML
from vecml_async._config import RateLimitPolicy
from vecml_async._ingest.defaults import DEFAULT_MAX_MEMORY
from vecml_async.emulator import FaultConfig, inspect_remote, spawn

MIB = 1 << 20
SWEEP = [1 * MIB, 4 * MIB, 16 * MIB, 64 * MIB]
#: The client's default ceiling (calls/s), as ``AsyncVecML()`` sets it.
CEILING = RateLimitPolicy().calls_per_second or 10.0
#: What one emulator process parses per second, roughly (sizes runs; not a result).
SERVER_BYTES_PER_S = 70e6
LATENCY = 0.02
_KEYS = itertools.count()


@dataclass
class Result:
    name: str
    rows: int
    rows_per_s: float
    refused: int = 0
    note: str = ""


@dataclass
class Cell:
    rate: float | None
    dim: int
    results: list[Result] = field(default_factory=list)
    rss_growth: int | None = None

    @property
    def label(self) -> str:
        limit = "unlimited" if self.rate is None else f"{self.rate:g}/s"
        return f"R = {limit}, dim {self.dim}"

    def get(self, name: str) -> Result:
        return next(r for r in self.results if r.name == name)


def row_bytes(data: tuple[Any, list[str], Any]) -> float:
    """Encoded bytes per row as ``ingest`` sends them (float32, shortest form)."""
    vectors, ids, attributes = data
    sample = orjson.dumps(
        {"i": ids[:1000], "d": vectors[:1000], "a": attributes[:1000]},
        option=orjson.OPT_SERIALIZE_NUMPY,
    )
    return len(sample) / min(1000, len(ids))


def sized(
    rows_max: int, per_row: float, bytes_per_s: float, seconds: float, floor: int = 20 * BATCH_ROWS
) -> int:
    """Rows that take about ``seconds`` at ``bytes_per_s``, at least ``floor`` (20 bodies'
    worth) and at most ``rows_max``."""
    wanted = int(seconds * bytes_per_s / per_row)
    return min(rows_max, max(floor, wanted))


def cut(data: tuple[Any, list[str], Any], rows: int) -> tuple[Any, list[str], Any]:
    vectors, ids, attributes = data
    return vectors[:rows], ids[:rows], attributes[:rows]


class Bench:
    """The contenders of one cell, against one emulator."""

    def __init__(self, base_url: str, cell: Cell, seconds: float) -> None:
        self.base_url = base_url
        self.cell = cell
        self.seconds = seconds

    async def _collection(self, key: str) -> None:
        async with AsyncVecML(key, base_url=self.base_url, rate_limit=None) as client:
            await client.create_project("bench", exist_ok=True)
            await client.init("bench", "rows", vector_dim=self.cell.dim, exist_ok=True)
        if self.cell.rate is not None:
            await anyio.sleep(max(1.0, 2.0 / self.cell.rate))  # the key's bucket refills

    async def _cleanup(self, key: str) -> int:
        stats = await anyio.to_thread.run_sync(inspect_remote, self.base_url, key)
        async with AsyncVecML(key, base_url=self.base_url, rate_limit=None) as client:
            await client.delete_project("bench", missing_ok=True)
        return int(stats.get("rejections", {}).get("rate_limited", 0))

    async def run(self, name: str, rows: int, go: Any) -> Result:
        key = f"vml_bench-defaults-{next(_KEYS)}"
        await self._collection(key)
        rate, note = await go(key, rows)
        refused = await self._cleanup(key)
        result = Result(name, rows, rate, refused, note)
        self.cell.results.append(result)
        print(f"    {name:<28} {rows:>9,} rows  {rate:>10,.0f} rows/s  refused {refused}  {note}")
        return result

    async def contenders(self, data: tuple[Any, list[str], Any]) -> None:
        cell, seconds = self.cell, self.seconds
        per_row = row_bytes(data)
        limit = cell.rate if cell.rate is not None else float("inf")
        n = len(data[1])
        seed_calls = min(limit, 8.0 if cell.dim <= 128 else 1.5)
        seed_rows = sized(n, per_row, seed_calls * BATCH_ROWS * per_row, seconds)

        async def seed(key: str, rows: int) -> tuple[float, str]:
            part = cut(data, rows)
            rate = await anyio.to_thread.run_sync(
                seed_loop, self.base_url, key, "bench", "rows", part
            )
            return rate, ""

        await self.run("seed loop (requests)", seed_rows, seed)
        hand_bytes = min(SERVER_BYTES_PER_S, limit * BATCH_ROWS * per_row)
        hand_rows = sized(n, per_row, hand_bytes, seconds)

        async def hand(key: str, rows: int) -> tuple[float, str]:
            part = cut(data, rows)
            rate = await hand_written_loop(self.base_url, key, "bench", "rows", part, cell.rate)
            return rate, ""

        await self.run("hand-written httpx loop", hand_rows, hand)
        # The defaults get the rows of the fastest fixed sizes (the same work for the
        # server, whose cost per row grows with what it holds); a fixed size too small to
        # finish them in time gets fewer, at least 20 of its bodies.
        client_calls = min(limit, CEILING)
        sweep_rows = {}
        for size in SWEEP:
            expected = min(SERVER_BYTES_PER_S, client_calls * size)
            floor = 20 * max(1, int(size / per_row))
            sweep_rows[size] = sized(n, per_row, expected, seconds * 1.3, floor)
        await self.run("ingest() defaults", max(sweep_rows.values()), self._defaults(data))
        for size, rows in sweep_rows.items():
            await self.run(f"ingest(batch_bytes={size // MIB} MiB)", rows, self._fixed(data, size))

    def _defaults(self, data: tuple[Any, list[str], Any]) -> Any:
        async def go(key: str, rows: int) -> tuple[float, str]:
            vectors, ids, attributes = cut(data, rows)
            async with AsyncVecML(key, base_url=self.base_url) as client:
                with PeakRss() as rss:
                    started = time.perf_counter()
                    report = await client.ingest(
                        "bench", "rows", vectors, ids=ids, attributes=attributes
                    )
                    elapsed = time.perf_counter() - started
            self.cell.rss_growth = rss.growth
            sizes = "/".join(f"{t / MIB:g}" for t in report.target_history)
            note = f"sizes {sizes} MiB, held {report.peak_memory / MIB:.0f} MiB"
            if rss.growth is not None:
                note += f", RSS +{rss.growth / MIB:.0f} MiB"
            return report.rows_sent / elapsed, note

        return go

    def _fixed(self, data: tuple[Any, list[str], Any], size: int) -> Any:
        async def go(key: str, rows: int) -> tuple[float, str]:
            vectors, ids, attributes = cut(data, rows)
            async with AsyncVecML(key, base_url=self.base_url) as client:
                started = time.perf_counter()
                report = await client.ingest(
                    "bench", "rows", vectors, ids=ids, attributes=attributes, batch_bytes=size
                )
                elapsed = time.perf_counter() - started
            return report.rows_sent / elapsed, ""

        return go


def _size(result: Result) -> str:
    """``"16 MiB"`` from ``"ingest(batch_bytes=16 MiB)"``."""
    return result.name.removeprefix("ingest(batch_bytes=").removesuffix(")")


def verdicts(cell: Cell) -> list[str]:
    """The targets of one cell, each PASS or MISS."""
    defaults = cell.get("ingest() defaults")
    seed = cell.get("seed loop (requests)")
    hand = cell.get("hand-written httpx loop")
    sweep = [r for r in cell.results if r.name.startswith("ingest(batch_bytes")]
    best = max(sweep, key=lambda r: r.rows_per_s)
    out = []

    def check(text: str, ok: bool) -> None:
        out.append(f"{text}: {'PASS' if ok else 'MISS'}")

    ratio = defaults.rows_per_s / best.rows_per_s
    check(f"defaults / best fixed ({_size(best)}) = {ratio:.2f}x (>= 0.9)", ratio >= 0.9)
    ratio = defaults.rows_per_s / hand.rows_per_s
    check(f"defaults / hand-written = {ratio:.2f}x (>= 1.0)", ratio >= 1.0)
    fastest = max(r.rows_per_s for r in cell.results)
    ratio = defaults.rows_per_s / seed.rows_per_s
    if fastest >= 5 * seed.rows_per_s:
        check(f"defaults / seed = {ratio:.1f}x (>= 5)", ratio >= 5)
    else:
        out.append(f"defaults / seed = {ratio:.1f}x (no contender reaches 5x: not checked)")
    if cell.rate is None or cell.rate >= CEILING:
        check(f"refused calls of the defaults = {defaults.refused} (0)", defaults.refused == 0)
    if cell.rss_growth is not None:
        growth = cell.rss_growth
        check(
            f"defaults' RSS growth {growth / MIB:.0f} MiB (<= {DEFAULT_MAX_MEMORY // MIB} MiB)",
            growth <= DEFAULT_MAX_MEMORY,
        )
    return out


def print_cell(cell: Cell) -> None:
    seed = cell.get("seed loop (requests)").rows_per_s
    hand = cell.get("hand-written httpx loop").rows_per_s
    print(f"\n== defaults: {cell.label}, {LATENCY * 1000:.0f} ms latency")
    for r in cell.results:
        print(
            f"  {r.name:<28} {r.rows_per_s:>10,.0f} rows/s  {r.rows_per_s / seed:>6.1f}x seed  "
            f"{r.rows_per_s / hand:>5.2f}x hand-written"
        )
    for line in verdicts(cell):
        print(f"  -> {line}")


def markdown(cells: list[Cell]) -> str:
    """The table the README carries."""
    lines = [
        "| server limit, dim | seed loop | hand-written | defaults | best fixed | "
        "defaults / best fixed | / hand-written | / seed | sizes chosen |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for cell in cells:
        d = cell.get("ingest() defaults")
        seed = cell.get("seed loop (requests)").rows_per_s
        hand = cell.get("hand-written httpx loop").rows_per_s
        sweep = [r for r in cell.results if r.name.startswith("ingest(batch_bytes")]
        best = max(sweep, key=lambda r: r.rows_per_s)
        sizes = d.note.split(",")[0].removeprefix("sizes ")
        lines.append(
            f"| {cell.label} | {seed:,.0f} | {hand:,.0f} | {d.rows_per_s:,.0f} | "
            f"{best.rows_per_s:,.0f} ({_size(best)}) | {d.rows_per_s / best.rows_per_s:.2f}x "
            f"| {d.rows_per_s / hand:.2f}x | {d.rows_per_s / seed:.1f}x | {sizes} |"
        )
    return "\n".join(lines)


async def run_cell(rate: float | None, dim: int, rows: int, seconds: float) -> Cell:
    cell = Cell(rate, dim)
    data = dataset(rows, dim)
    print(f"\n-- {cell.label}: up to {rows:,} rows", flush=True)
    with spawn(rate_limit=rate, faults=FaultConfig(latency=LATENCY)) as base_url:
        await Bench(base_url, cell, seconds).contenders(data)
    return cell


def main(argv: list[str] | None = None) -> float:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=6.0)
    parser.add_argument("--dims", default="64,768")
    parser.add_argument("--rates", default="2,10,50,none")
    args = parser.parse_args(argv)
    rates = [None if r == "none" else float(r) for r in args.rates.split(",")]
    cells = []
    for dim in (int(d) for d in args.dims.split(",")):
        # Enough rows for the biggest contenders to run about --seconds at the server's pace.
        per_row = 10.5 * dim + 60
        rows = int(1.4 * args.seconds * SERVER_BYTES_PER_S / per_row)
        for rate in rates:
            cells.append(anyio.run(run_cell, rate, dim, rows, args.seconds))
    for cell in cells:
        print_cell(cell)
    print("\n" + markdown(cells))
    return min(
        c.get("ingest() defaults").rows_per_s
        / max(r.rows_per_s for r in c.results if r.name.startswith("ingest(batch_bytes"))
        for c in cells
    )


if __name__ == "__main__":
    main()
