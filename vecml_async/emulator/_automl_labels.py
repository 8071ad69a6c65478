"""Labels and targets of the emulator's AutoML: which rows carry a label, the classes the
labels form (numbers when every label is one), and the encoded targets.

Pure functions shared by training and prediction (:mod:`~vecml_async.emulator.automl`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeAlias

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "Attributes",
    "classes_of",
    "encode",
    "labelled_rows",
    "missing_categorical",
    "number",
    "targets",
]

#: One ``{name: value}`` mapping of attributes per row.
Attributes: TypeAlias = Sequence[Mapping[str, str]]


def number(s: str) -> float | None:
    """``s`` as a finite float, else None."""
    try:
        v = float(s)
    except ValueError:
        return None
    return v if np.isfinite(v) else None


def labelled_rows(attributes: Attributes, label: str) -> tuple[list[int], list[str], bool]:
    """(indices of labelled rows, their stripped labels, whether any row has the key)."""
    rows: list[int] = []
    values: list[str] = []
    seen = False
    for i, attrs in enumerate(attributes):
        v = attrs.get(label)
        if v is None:
            continue
        seen = True
        v = v.strip()
        if v:
            rows.append(i)
            values.append(v)
    return rows, values, seen


def classes_of(labels: list[str]) -> tuple[tuple[str, ...], tuple[float, ...] | None]:
    """The classes the labels form, and their values when every label is a number."""
    distinct = set(labels)
    numbers = {s: number(s) for s in distinct}
    if all(v is not None for v in numbers.values()):
        by_value: dict[float, str] = {}
        for s in sorted(distinct):  # the smallest spelling names a class ("1" over "1.0")
            by_value.setdefault(numbers[s] or 0.0, s)
        values = tuple(sorted(by_value))
        return tuple(by_value[v] for v in values), values
    return tuple(sorted(distinct)), None


def encode(
    classes: Sequence[str], class_values: Sequence[float] | None, labels: list[str]
) -> NDArray[np.int64]:
    """Class index of each label, -1 for a label the model never saw."""
    if class_values is not None:
        lookup: dict[Any, int] = {v: i for i, v in enumerate(class_values)}
        keys: list[Any] = [number(s) for s in labels]
    else:
        lookup = {s: i for i, s in enumerate(classes)}
        keys = labels
    return np.array([lookup.get(k, -1) for k in keys], dtype=np.int64)


def targets(
    labels: list[str], label: str, rows: list[int], error: type[Exception]
) -> NDArray[np.float64]:
    """The labels as regression targets; ``error`` names the first one that is no number."""
    values = [number(s) for s in labels]
    for v, s, r in zip(values, labels, rows, strict=True):
        if v is None:
            raise error(f"label {s!r} of attribute {label!r} is not a number (row index {r})")
    return np.array(values, dtype=np.float64)


def missing_categorical(attributes: Attributes, names: Sequence[str], what: str) -> str | None:
    """The message for the first of ``names`` that no row of ``what`` has, else None."""
    for name in names:
        if not any(name in a for a in attributes):
            return f"categorical attribute {name!r} is missing from every row of {what}"
    return None
