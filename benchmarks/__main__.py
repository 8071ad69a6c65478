"""Run every benchmark: ``python -m benchmarks`` (or ``nox -s bench``).

Each prints its numbers and a ratio against a baseline measured in the same run; absolute
times are not comparable between machines or runs.
"""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = [
    "bench_encode",
    "bench_emulator_parse",
    "bench_concurrency",
    "bench_rate_limit",
    "bench_memory",
    "bench_report_memory",
    "bench_loop_lag",
    "bench_batch_size",
    "bench_shared_budget",
    "bench_defaults",
    "bench_wait_overlap",
]


def main(argv: list[str]) -> None:
    chosen = argv or BENCHMARKS
    for name in chosen:
        module = importlib.import_module(f"benchmarks.{name}")
        module.main([])


if __name__ == "__main__":
    main(sys.argv[1:])
