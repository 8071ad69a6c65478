"""Shared helpers for the benchmarks: data, timing, and printing ratios."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from typing import Any

import numpy as np


def dataset(rows: int, dim: int, seed: int = 0) -> tuple[Any, list[str], list[dict[str, str]]]:
    """Seed-like rows: float32 vectors, string ids, a label and a category attribute."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((rows, dim)).astype(np.float32)
    categories = rng.choice(["A", "B", "C"], rows)
    score = vectors[:, : min(20, dim)].sum(axis=1)
    labels = (score > 0).astype(int)
    ids = [f"row-{i:09d}" for i in range(rows)]
    attributes = [{"label": str(lab), "category": str(cat)} for lab, cat in zip(labels, categories)]
    return vectors, ids, attributes


def best_of(repeat: int, fn: Callable[[], Any]) -> float:
    """Best wall time of ``repeat`` runs (the least disturbed by a noisy machine)."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return min(times)


def cpu_of(repeat: int, fn: Callable[[], Any]) -> float:
    """Best process CPU time of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        started = time.process_time()
        fn()
        times.append(time.process_time() - started)
    return min(times)


def interleaved_cpu(repeat: int, *fns: Callable[[], Any]) -> list[float]:
    """Best process CPU time of each function, measured in alternating rounds so that a
    change in machine load affects them alike."""
    best = [float("inf")] * len(fns)
    for _ in range(repeat):
        for i, fn in enumerate(fns):
            started = time.process_time()
            fn()
            best[i] = min(best[i], time.process_time() - started)
    return best


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def report(title: str, rows: list[tuple[str, str]], verdict: str) -> None:
    """Print a small table and the verdict line."""
    print(f"\n== {title}")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(f"  -> {verdict}")


__all__ = ["best_of", "cpu_of", "dataset", "interleaved_cpu", "percentile", "report", "statistics"]
