"""Ray Data: write a dataset to a VecML collection under one shared call budget.

::

    import ray
    from vecml_async.ray import RayBudget, VecMLDatasink

    ds = ray.data.read_parquet("s3://bucket/embeddings/")
    sink = VecMLDatasink("proj", "docs", budget=RayBudget(20), id_column="doc_id")
    ds.write_datasink(sink, concurrency=8)
    print(sink.report.summary())

* :class:`RayBudget` is a named async actor (``num_cpus=0``, restarted if it dies) holding
  the budget state; every write task (any node) acquires its slots from it, so the whole job
  stays under R calls/s. The arithmetic is the local limiter's and the Redis script's.
* :class:`VecMLDatasink` runs ``AsyncVecML.ingest`` on each block of each write task and
  merges the tasks' reports into :attr:`VecMLDatasink.report` on the driver.

Ray re-runs a write task whose worker died. Its rows are sent again *with the same ids* and
the server replaces them, so nothing is stored twice: the sink therefore needs ids that do
not change between runs (``id_column`` or ``id_from``) and refuses to start without them.

Needs the ``ray`` extra (``pip install 'vecml-async[ray]'``). ``Datasink`` is a developer
API of Ray; the versions this module is tested with are pinned in the extra.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import time
from collections.abc import Iterable, Sequence
from typing import Any

import ray
from ray.data import Datasink

from vecml_async import IngestReport
from vecml_async._budget_state import BudgetState
from vecml_async._client import AsyncVecML
from vecml_async._config import API_KEY_ENV, RateLimitPolicy
from vecml_async._limiter import Budget, sleep_until_slot
from vecml_async._ray_blocks import block_rows, merge_reports, portable_report
from vecml_async.budget import DEFAULT_MARGIN
from vecml_async.errors import IngestError, InvalidInputError

__all__ = ["DEFAULT_ACTOR_NAME", "RayBudget", "VecMLDatasink"]

#: The actor name used when none is given: tasks of one job share it.
DEFAULT_ACTOR_NAME = "vecml-async-budget"
#: Ingest options the sink sets itself from the block.
_SINK_OWNED = frozenset({"ids", "attributes", "vector_columns", "id_column", "attribute_columns"})
#: Ingest options that make no sense once per task.
_REFUSED = frozenset({"checkpoint"})


class _BudgetActor:
    """The state of a :class:`RayBudget`, on the actor's clock (``time.monotonic``)."""

    def __init__(self, policy: RateLimitPolicy, margin: float) -> None:
        self._policy = policy
        self._state = BudgetState.for_policy(policy, margin)

    async def acquire(self) -> tuple[float, float | None]:
        wait = self._state.acquire(self._policy, time.monotonic())
        return wait, self._state.allowed

    async def refused(self) -> float | None:
        self._state.refused(self._policy, time.monotonic())
        return self._state.allowed

    async def peek(self) -> float | None:
        self._state.recover(self._policy, time.monotonic())
        return self._state.allowed


_ACTOR_CLASS: Any = None


def _actor_class() -> Any:
    global _ACTOR_CLASS
    if _ACTOR_CLASS is None:
        _ACTOR_CLASS = ray.remote(num_cpus=0, max_restarts=-1, max_task_retries=-1)(_BudgetActor)
    return _ACTOR_CLASS


class RayBudget:
    """One call budget for every task of a Ray job, held by a named actor.

    Args:
        calls_per_second: the ceiling R for all tasks together.
        name: the actor's name; a second ``RayBudget`` with the same name (in the same
            namespace) uses the existing actor and its settings. Default
            :data:`DEFAULT_ACTOR_NAME`.
        policy: the adaptive behaviour; its ``calls_per_second`` is replaced.
        margin: seconds of lateness the slots leave room for, as for
            :class:`~vecml_async.budget.RedisBudget`.
        namespace: the Ray namespace of the actor (default: the job's).

    The actor lives as long as the driver that created it; if it dies Ray restarts it with
    a fresh state (the rate back at R, the slots starting now). A ``RayBudget`` pickles to
    the actor's handle: pass it to tasks and to :class:`VecMLDatasink`.
    """

    def __init__(
        self,
        calls_per_second: float,
        *,
        name: str | None = None,
        policy: RateLimitPolicy | None = None,
        margin: float = DEFAULT_MARGIN,
        namespace: str | None = None,
    ) -> None:
        if isinstance(calls_per_second, bool) or not calls_per_second > 0:
            raise InvalidInputError("must be > 0", field="calls_per_second")
        if not 0 <= margin < 1:
            raise InvalidInputError("must be in [0, 1) seconds", field="margin")
        base = policy or RateLimitPolicy()
        full = RateLimitPolicy(
            calls_per_second=float(calls_per_second),
            adaptive=base.adaptive,
            min_calls_per_second=base.min_calls_per_second,
            decrease_factor=base.decrease_factor,
            recovery_per_second=base.recovery_per_second,
            decrease_interval=base.decrease_interval,
        )
        self.name = name or DEFAULT_ACTOR_NAME
        self._actor = (
            _actor_class()
            .options(name=self.name, namespace=namespace, get_if_exists=True)
            .remote(full, float(margin))
        )
        self._rate: float | None = float(calls_per_second)
        self._margin = float(margin)
        self.rate_limited_count = 0

    def __repr__(self) -> str:
        return f"RayBudget(name={self.name!r}, current_rate={self._rate!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_budget, (self.name, self._actor, self._rate, self._margin))

    @property
    def current_rate(self) -> float | None:
        """The job's rate as of this copy's last exchange with the actor."""
        return self._rate

    async def acquire(self) -> None:
        """Take the next slot from the actor and sleep until it."""
        await sleep_until_slot(self._take_slot, self._margin)

    async def _take_slot(self) -> float:
        wait, self._rate = await self._actor.acquire.remote()
        return float(wait)

    def on_rate_limited(self) -> None:
        """Tell the actor (without waiting); it lowers the rate once per burst."""
        self.rate_limited_count += 1
        self._actor.refused.remote()

    def on_success(self) -> None:
        """Nothing to send: the actor's rate recovers with time."""

    async def refresh(self) -> float | None:
        """Ask the actor for the rate now (after any recovery due)."""
        self._rate = await self._actor.peek.remote()
        return self._rate


def _rebuild_budget(name: str, actor: Any, rate: float | None, margin: float) -> RayBudget:
    budget = RayBudget.__new__(RayBudget)
    budget.name, budget._actor, budget._rate, budget._margin = name, actor, rate, margin
    budget.rate_limited_count = 0
    return budget


class _Key:
    """The API key on its way to the write tasks: picklable, never shown."""

    __slots__ = ("value",)

    def __init__(self, value: str) -> None:
        self.value = value

    def __repr__(self) -> str:
        return "_Key('***')"

    def __getstate__(self) -> str:
        return self.value

    def __setstate__(self, value: str) -> None:
        self.value = value


def _check_ingest_options(options: dict[str, Any]) -> None:
    owned = sorted(set(options) & _SINK_OWNED)
    if owned:
        raise InvalidInputError(
            f"the sink sets {', '.join(owned)} from each block; use vector_column, id_column, "
            "id_from and attribute_columns",
            field=owned[0],
        )
    refused = sorted(set(options) & _REFUSED)
    if refused:
        raise InvalidInputError(
            "a checkpoint journal cannot be shared by write tasks; re-run the write instead "
            "(ids are stable, the server replaces what it has)",
            field=refused[0],
        )
    parameters = inspect.signature(AsyncVecML.ingest).parameters
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        unknown = sorted(set(options) - set(parameters))
        if unknown:
            raise InvalidInputError(f"ingest() has no option {unknown[0]!r}", field=unknown[0])


class VecMLDatasink(Datasink[IngestReport]):
    """Writes a Ray dataset to a collection: ``dataset.write_datasink(sink, concurrency=N)``.

    Each write task opens a client under ``budget`` and calls ``ingest`` once per block
    (the rows of one block are in memory already). The collection must exist (``init``).

    Args:
        project_name / collection_name: where the rows go.
        api_key / base_url: as for :class:`~vecml_async.AsyncVecML`; by default each task
            reads ``VECML_API_KEY`` / ``VECML_BASE_URL`` from its own environment (set them
            with a ``runtime_env``). A key given here travels to the tasks with the sink.
        budget: the call budget of the whole write: a :class:`RayBudget` (or any shared
            :class:`~vecml_async.Budget`), or a number of calls per second for a new
            ``RayBudget``. Default: a ``RayBudget`` at the client's default rate.
        vector_column: the column of vectors (lists, fixed-size lists or tensors).
        id_column: a column of unique row ids, sent as text (e.g. ``row_hash`` from
            ``read_parquet(..., include_row_hash=True)``).
        id_from: columns that together identify a row, when there is no id column: the id
            is a digest of their values, the same on every run.
        attribute_columns: columns sent as the rows' attributes.
        ingest_options: more ``ingest`` keywords (``max_rows``, ``max_bytes``,
            ``concurrency``, ``wait``, ``raise_on_error``, ...).

    After the write, :attr:`report` holds one :class:`~vecml_async.IngestReport` for the
    whole dataset. With ``raise_on_error`` (the default) a write with failures raises
    :class:`~vecml_async.IngestError` on the driver once all tasks are done.
    """

    def __init__(
        self,
        project_name: str,
        collection_name: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        budget: Budget | float | None = None,
        vector_column: str = "vector",
        id_column: str | None = None,
        id_from: str | Sequence[str] | None = None,
        attribute_columns: Sequence[str] = (),
        **ingest_options: Any,
    ) -> None:
        id_columns = (id_from,) if isinstance(id_from, str) else tuple(id_from or ())
        if id_column is None and not id_columns:
            raise InvalidInputError(
                "VecMLDatasink needs ids that stay the same when Ray re-runs a write task "
                "(otherwise a retried task would store its rows twice): pass id_column= "
                "(a column of unique ids; read_parquet(..., include_row_hash=True) adds one "
                "named 'row_hash') or id_from= (columns that together identify a row)",
                field="id_column",
            )
        if id_column is not None and id_columns:
            raise InvalidInputError("pass id_column or id_from, not both", field="id_from")
        _check_ingest_options(ingest_options)
        self.project_name = project_name
        self.collection_name = collection_name
        self.vector_column = vector_column
        self.id_column = id_column
        self.id_from = id_columns
        self.attribute_columns = tuple(attribute_columns)
        self.raise_on_error = bool(ingest_options.pop("raise_on_error", True))
        self.ingest_options = ingest_options
        self.base_url = base_url
        self._key = _Key(api_key) if api_key is not None else None
        if budget is None or isinstance(budget, (int, float)):
            rate = RateLimitPolicy().calls_per_second if budget is None else budget
            assert rate is not None
            budget = RayBudget(float(rate))
        self.budget: Budget = budget
        self.report: IngestReport | None = None
        self._started = 0.0

    def __repr__(self) -> str:
        return (
            f"VecMLDatasink({self.project_name!r}, {self.collection_name!r}, "
            f"budget={self.budget!r})"
        )

    def get_name(self) -> str:
        return "VecML"

    def on_write_start(self, schema: Any = None) -> None:
        """On the driver, before the tasks: the named columns must exist."""
        self._started = time.monotonic()
        self.report = None
        if schema is None:
            return
        names = set(getattr(schema, "names", ()))
        wanted = [self.vector_column, *([self.id_column] if self.id_column else []), *self.id_from]
        for column in [*wanted, *self.attribute_columns]:
            if names and column not in names:
                raise InvalidInputError(
                    f"the dataset has no column {column!r} (columns: {', '.join(sorted(names))})",
                    field=column,
                )

    def write(self, blocks: Iterable[Any], ctx: Any) -> IngestReport:
        """In a write task: ingest every block; the task's report (rows, failures) back."""
        return asyncio.run(self._write(blocks))

    async def _write(self, blocks: Iterable[Any]) -> IngestReport:
        key = self._key.value if self._key is not None else os.environ.get(API_KEY_ENV)
        reports = []
        async with AsyncVecML(key, base_url=self.base_url, rate_limit=self.budget) as client:
            for block in blocks:
                vectors, ids, attributes = block_rows(
                    block,
                    vector_column=self.vector_column,
                    id_column=self.id_column,
                    id_from=self.id_from,
                    attribute_columns=self.attribute_columns,
                )
                if not ids:
                    continue
                options = {"vector_dim": vectors.shape[1], **self.ingest_options}
                report = await client.ingest(
                    self.project_name,
                    self.collection_name,
                    vectors,
                    ids=ids,
                    attributes=attributes,
                    raise_on_error=False,
                    **options,
                )
                reports.append(portable_report(report))
        return merge_reports(self.project_name, self.collection_name, reports)

    def on_write_complete(self, write_result: Any) -> None:
        """On the driver: merge the tasks' reports into :attr:`report`."""
        returns = getattr(write_result, "write_returns", write_result)
        reports = [r for r in returns if isinstance(r, IngestReport)]
        report = merge_reports(self.project_name, self.collection_name, reports)
        if self._started:
            report.elapsed = time.monotonic() - self._started
        self.report = report
        if self.raise_on_error and report.failures:
            raise IngestError(report)
