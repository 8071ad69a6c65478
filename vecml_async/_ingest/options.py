"""The options of one ingest, checked in one place: :class:`IngestOptions`.

Every option is validated when the options are made, before anything is read or sent; a bad
value, or two options that cannot both be honoured, is an :class:`InvalidInputError` naming
the option. The options are then frozen: the executor only reads them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from vecml_async._config import HARD_MAX_REQUEST_BYTES
from vecml_async._ingest.chunks import CHUNK_BYTES
from vecml_async._ingest.defaults import (
    BODY_SHARE,
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CONSECUTIVE_FAILURES,
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_ROWS,
)
from vecml_async._ingest.frames import Columns
from vecml_async._ingest.sparse import SPARSE_FORMATS
from vecml_async.errors import InvalidInputError

ON_INVALID = ("raise", "skip")
#: The smallest memory budget accepted.
MIN_MEMORY = 1 << 20
PROGRESS_BARS = ("rich", "tqdm")


def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(f"must be an integer >= 1, got {value!r}", field=name)
    return value


def _names(value: object, name: str) -> tuple[str, ...] | None:
    """Column names: one name or a sequence of names (``None``: not given)."""
    if value is None:
        return None
    names = (value,) if isinstance(value, str) else value
    if not isinstance(names, Sequence) or not all(isinstance(n, str) and n for n in names):
        raise InvalidInputError("must be a column name or a list of column names", field=name)
    return tuple(names)


def _check_progress(progress: object) -> None:
    if progress is None or isinstance(progress, bool) or callable(progress):
        return
    if progress not in PROGRESS_BARS:
        raise InvalidInputError("use a callable, True, 'tqdm' or 'rich'", field="progress")


@dataclass(frozen=True)
class IngestOptions:
    """How one ingest reads, cuts, sends and reports (see :meth:`AsyncVecML.ingest`)."""

    ids: object = None
    attributes: object = None
    columns: Columns = field(default_factory=Columns)
    file_format: str | None = None
    vector_dim: int | None = None
    sparse: bool | None = None
    sparse_format: str = "pairs"
    max_rows: int = DEFAULT_MAX_ROWS
    max_bytes: int = DEFAULT_MAX_BYTES
    batch_bytes: int | None = None
    max_memory: int = DEFAULT_MAX_MEMORY
    concurrency: int = DEFAULT_CONCURRENCY
    wait: bool = False
    job_timeout: float | None = None
    raise_on_error: bool = True
    on_invalid: str = "raise"
    checkpoint: str | None = None
    progress: Callable[[Any], Any] | str | bool | None = None
    check_duplicate_ids: bool | None = None
    max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES
    chunk_bytes: int = CHUNK_BYTES

    @classmethod
    def create(
        cls,
        *,
        vector_columns: Sequence[str] | str | None = None,
        id_column: str | None = None,
        attribute_columns: Sequence[str] | str = (),
        checkpoint: str | os.PathLike[str] | None = None,
        **options: Any,
    ) -> IngestOptions:
        """Validated options; the keywords are those of :meth:`AsyncVecML.ingest`."""
        if id_column is not None and (not isinstance(id_column, str) or not id_column):
            raise InvalidInputError("must be a column name", field="id_column")
        columns = Columns(
            vector_columns=_names(vector_columns, "vector_columns"),
            id_column=id_column,
            attribute_columns=_names(attribute_columns, "attribute_columns") or (),
        )
        path = os.fspath(checkpoint) if checkpoint is not None else None
        made = cls(columns=columns, checkpoint=path, **options)
        made.validate()
        return made

    def validate(self) -> None:
        """Refuse bad values and combinations (see the module docstring)."""
        for name in ("max_rows", "concurrency", "max_consecutive_failures", "chunk_bytes"):
            _positive_int(getattr(self, name), name)
        max_bytes = _positive_int(self.max_bytes, "max_bytes")
        if max_bytes > HARD_MAX_REQUEST_BYTES:
            raise InvalidInputError(f"must be in 1..{HARD_MAX_REQUEST_BYTES}", field="max_bytes")
        self._check_sizes(max_bytes)
        if self.vector_dim is not None:
            _positive_int(self.vector_dim, "vector_dim")
        if self.on_invalid not in ON_INVALID:
            raise InvalidInputError("must be 'raise' or 'skip'", field="on_invalid")
        if self.sparse_format not in SPARSE_FORMATS:
            raise InvalidInputError(
                f"unknown sparse format {self.sparse_format!r}; use one of "
                f"{', '.join(SPARSE_FORMATS)}",
                field="sparse_format",
            )
        if self.job_timeout is not None and (
            isinstance(self.job_timeout, bool)
            or not isinstance(self.job_timeout, (int, float))
            or not self.job_timeout > 0
        ):
            raise InvalidInputError("must be a number of seconds > 0", field="job_timeout")
        if self.file_format is not None and not isinstance(self.file_format, str):
            raise InvalidInputError("must be a format name", field="file_format")
        _check_progress(self.progress)
        self._check_combinations()

    def _check_sizes(self, max_bytes: int) -> None:
        memory = _positive_int(self.max_memory, "max_memory")
        if memory < MIN_MEMORY:
            raise InvalidInputError(f"must be at least {MIN_MEMORY} bytes", field="max_memory")
        if self.batch_bytes is None:
            return
        size = _positive_int(self.batch_bytes, "batch_bytes")
        if size > max_bytes:
            raise InvalidInputError(f"{size} is over max_bytes ({max_bytes})", field="batch_bytes")
        if size > memory * BODY_SHARE:
            raise InvalidInputError(
                f"{size} is over a quarter of max_memory ({memory}): one body must fit "
                "while the next is read, with room for the process around them",
                field="batch_bytes",
            )

    @property
    def adaptive(self) -> bool:
        """Whether the sizer chooses body sizes (no ``batch_bytes``)."""
        return self.batch_bytes is None

    def _check_combinations(self) -> None:
        if self.ids is not None and self.columns.id_column is not None:
            raise InvalidInputError(
                "give the ids either as id_column or as ids=, not both", field="ids"
            )
        if self.attributes is not None and self.columns.attribute_columns:
            raise InvalidInputError(
                "give the attributes either as attribute_columns or as attributes=, not both",
                field="attributes",
            )

    @property
    def skip_invalid(self) -> bool:
        return self.on_invalid == "skip"
