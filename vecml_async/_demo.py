"""The demo workflow: VecML's documented AutoML example, at scale, through ``AsyncVecML``.

The steps are those of the official example: delete and create a project, ``init`` a training
and a prediction collection, add rows, wait for the upload jobs, train an AutoML model, wait
for the training job and predict on the prediction collection. The rows come from the same
generator as the example (label = 1 when the sum of the first 20 components plus a weight of
the category A/B/C is positive), but they go through :meth:`AsyncVecML.ingest` so any number
of rows is cut into size-capped ``add_data_batch`` requests sent concurrently.

:func:`run_demo` picks the server: with no API key and no base URL it serves the embedded
emulator (:func:`vecml_async.emulator.serve`) on a loopback port for the length of the run,
with a throwaway key; otherwise it uses the key and URL given (or ``VECML_API_KEY`` /
``VECML_BASE_URL``). The ``vecml-async demo`` command and the tests call it.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from vecml_async._client import AsyncVecML
from vecml_async._config import API_KEY_ENV, BASE_URL_ENV, DEFAULT_BASE_URL, PollPolicy
from vecml_async.errors import InvalidInputError
from vecml_async.models import (
    ALL_TRAINING_MODES,
    ClassificationMetrics,
    PredictResponse,
    TrainingMode,
)

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

    from vecml_async._ingest.report import IngestReport

#: Weight each category adds to the score, as in VecML's example.
CATEGORY_WEIGHTS = {"A": 1.0, "B": -0.5, "C": 0.0}
#: Components summed into the score, as in VecML's example.
SCORE_COMPONENTS = 20
TRAINING_COLLECTION = "training_data"
PREDICTION_COLLECTION = "prediction_data"
MODEL_NAME = "model1"
#: Polls start fast (the emulator's jobs take milliseconds) and back off to one second.
DEMO_POLL = PollPolicy(initial_interval=0.05, max_interval=1.0)
#: Upper bound on rows x dim (floats held in memory by the generated dataset: 1 GiB).
MAX_FLOATS = 1 << 28

StepCallback = Callable[[str, str, float], None]


@dataclass(frozen=True)
class DemoOptions:
    """What the demo does.

    Attributes:
        rows: rows ingested into the training collection.
        dim: vector dimension of both collections.
        prediction_rows: rows of the prediction collection.
        project: the project; it is DELETED first if it exists, then created.
        training_mode: ``high_speed`` (the example's), ``balanced``, ``high_accuracy``, or
            ``auto`` (in VecML's example request, not in its documented list; the demo's
            client allows it).
        seed: seed of the training rows (the prediction rows use ``seed + 1``).
        concurrency: concurrent ``add_data_batch`` requests.
        cleanup: delete the project at the end.
    """

    rows: int = 100_000
    dim: int = 64
    prediction_rows: int = 2_000
    project: str = "vecml_async_demo"
    training_mode: TrainingMode = "high_speed"
    seed: int = 2025
    concurrency: int = 4
    cleanup: bool = False

    def __post_init__(self) -> None:
        if self.rows < 10:
            raise InvalidInputError("the demo needs at least 10 rows", field="rows")
        if self.prediction_rows < 1:
            raise InvalidInputError("must be >= 1", field="prediction_rows")
        if self.dim < 1:
            raise InvalidInputError("must be >= 1", field="dim")
        if (self.rows + self.prediction_rows) * self.dim > MAX_FLOATS:
            raise InvalidInputError(
                f"rows x dim is over {MAX_FLOATS:,} floats; the demo holds its generated "
                "dataset in memory (ingest a file to stream any size)",
                field="rows",
            )
        if self.concurrency < 1:
            raise InvalidInputError("must be >= 1", field="concurrency")
        if self.training_mode not in ALL_TRAINING_MODES:
            raise InvalidInputError(
                f"must be one of {', '.join(ALL_TRAINING_MODES)}", field="training_mode"
            )


@dataclass
class DemoResult:
    """What the demo did and measured (``as_dict()`` is its JSON form).

    ``ingest_*`` numbers come from the training ingest's :class:`IngestReport` (its elapsed
    time includes waiting for the upload jobs). Metrics are dicts of the eight documented
    classification metrics. ``steps`` maps each step to its duration in seconds.
    """

    server: str
    emulator: bool
    project: str
    rows: int
    dim: int
    prediction_rows: int
    batches: int
    bytes_sent: int
    ingest_seconds: float
    rows_per_second: float
    megabytes_per_second: float
    retries: int
    rate_limited: int
    upload_jobs: int
    training_job_id: str
    training_mode: str
    validation_metric: dict[str, float] | float | None
    prediction_metric: dict[str, float] | float | None
    num_predictions: int
    num_samples: int
    models: list[dict[str, Any]]
    steps: dict[str, float] = field(default_factory=dict)
    total_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Dataset:
    """Generated rows: a float32 matrix, string ids and ``{label, category}`` attributes."""

    vectors: NDArray[np.float32]
    ids: list[str]
    attributes: list[dict[str, str]]


def generate_dataset(num_samples: int, vector_dim: int, id_prefix: str, seed: int) -> Dataset:
    """Rows like VecML's example: standard normal vectors, a category A/B/C, and
    ``label = "1" if sum(v[:20]) + weight[category] > 0 else "0"``. Deterministic per seed."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((num_samples, vector_dim), dtype=np.float32)
    names = np.array(sorted(CATEGORY_WEIGHTS))
    picks = rng.integers(0, len(names), num_samples)
    weights = np.array([CATEGORY_WEIGHTS[str(n)] for n in names])[picks]
    score = vectors[:, :SCORE_COMPONENTS].sum(axis=1, dtype=np.float64) + weights
    labels = np.where(score > 0, "1", "0").tolist()
    categories = names[picks].tolist()
    ids = [f"{id_prefix}_{i:06d}" for i in range(num_samples)]
    attributes = [{"label": lab, "category": cat} for lab, cat in zip(labels, categories)]
    return Dataset(vectors, ids, attributes)


def _ingest_line(report: IngestReport) -> str:
    state = "" if report.complete else f", INCOMPLETE: {report.failed_row_count:,} rows failed"
    return (
        f"{report.rows_sent:,} rows in {report.batches_sent:,} batches, "
        f"{report.rows_per_second:,.0f} rows/s, {report.megabytes_per_second:.1f} MB/s{state}"
    )


def _metric(value: ClassificationMetrics | float | None) -> dict[str, float] | float | None:
    if isinstance(value, ClassificationMetrics):
        return {k: float(v) for k, v in value.model_dump().items()}
    return value


@contextlib.asynccontextmanager
async def demo_client(
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    use_emulator: bool | None = None,
    rate_limit: float | None = None,
) -> AsyncIterator[tuple[AsyncVecML, str, bool]]:
    """A client for the demo, and ``(client, server description, is_emulator)``.

    ``use_emulator=None`` serves the embedded emulator when neither a key nor a base URL is
    given (arguments or environment); ``True`` always does (ignoring both); ``False`` never.
    Against the emulator the client has no rate limit (the emulator has none); elsewhere
    ``rate_limit`` calls per second, or the library default when ``None``.
    """
    key = api_key or os.environ.get(API_KEY_ENV) or None
    url = base_url or os.environ.get(BASE_URL_ENV) or None
    if use_emulator is None:
        use_emulator = key is None and url is None
    if use_emulator:
        from vecml_async.emulator import serve

        async with (
            serve(allow_auto_training_mode=True) as local_url,
            AsyncVecML(
                "demo-" + secrets.token_hex(8),
                base_url=local_url,
                rate_limit=None,
                poll=DEMO_POLL,
                allow_auto_training_mode=True,
            ) as client,
        ):
            yield client, f"embedded emulator at {local_url}", True
        return
    if key is None:
        raise InvalidInputError(
            f"no API key: set {API_KEY_ENV} or pass --api-key (any non-empty key works with "
            "a local emulator)",
            field="api_key",
        )
    options: dict[str, Any] = {
        "base_url": url,
        "poll": DEMO_POLL,
        "allow_auto_training_mode": True,
    }
    if rate_limit is not None:
        options["rate_limit"] = rate_limit
    async with AsyncVecML(key, **options) as client:
        yield client, url or DEFAULT_BASE_URL, False


class _StepClock:
    """Times the workflow's steps, each from the end of the one before it."""

    def __init__(self, on_step: StepCallback | None) -> None:
        self.steps: dict[str, float] = {}
        self._on_step = on_step
        self._mark = time.perf_counter()

    def done(self, name: str, detail: str) -> None:
        """Record step ``name`` (ended now) and tell ``on_step``."""
        now = time.perf_counter()
        self.steps[name] = round(now - self._mark, 3)
        if self._on_step is not None:
            self._on_step(name, detail, now - self._mark)
        self._mark = now


async def run_workflow(
    client: AsyncVecML,
    options: DemoOptions,
    *,
    progress: bool | Callable[[Any], object] = True,
    on_step: StepCallback | None = None,
) -> DemoResult:
    """Run the demo's steps with ``client`` (see the module docstring) and measure them.

    ``progress`` is passed to the training ingest (``True``: a progress bar). ``on_step`` is
    called after each step with the step's name, a one-line description and its duration in
    seconds. Errors propagate
    (:class:`~vecml_async.errors.VecMLError` subclasses).
    """
    started = time.perf_counter()
    clock = _StepClock(on_step)
    await _create_project(client, options, clock)
    report, pred_report = await _ingest_datasets(client, options, clock, progress)
    job_id, validation, answer = await _train_and_predict(client, options, clock)
    models = [
        info.model_dump()
        for info in await client.list_automl_model_infos(options.project, TRAINING_COLLECTION)
    ]
    if options.cleanup:
        await client.delete_project(options.project)
        clock.done("cleanup", f"project {options.project} deleted")
    return DemoResult(
        server="",
        emulator=False,
        project=options.project,
        rows=report.rows_sent,
        dim=options.dim,
        prediction_rows=pred_report.rows_sent,
        batches=report.batches_sent,
        bytes_sent=report.bytes_sent,
        ingest_seconds=round(report.elapsed, 3),
        rows_per_second=round(report.rows_per_second, 1),
        megabytes_per_second=round(report.megabytes_per_second, 2),
        retries=report.retries + pred_report.retries,
        rate_limited=report.rate_limited + pred_report.rate_limited,
        upload_jobs=len(report.job_ids) + len(pred_report.job_ids),
        training_job_id=job_id,
        training_mode=options.training_mode,
        validation_metric=validation,
        prediction_metric=_metric(answer.prediction_metric),
        num_predictions=len(answer.predictions),
        num_samples=answer.num_samples,
        models=models,
        steps=clock.steps,
        total_seconds=round(time.perf_counter() - started, 3),
    )


async def _create_project(client: AsyncVecML, options: DemoOptions, clock: _StepClock) -> None:
    """The steps ``project`` (deleted if it exists, then created) and ``init``."""
    project, dim = options.project, options.dim
    await client.delete_project(project, missing_ok=True)
    await client.create_project(project, application="Machine Learning")
    clock.done("project", f"project {project} (re)created")
    await client.init(project, TRAINING_COLLECTION, vector_type="dense", vector_dim=dim)
    await client.init(project, PREDICTION_COLLECTION, vector_type="dense", vector_dim=dim)
    clock.done("init", f"collections {TRAINING_COLLECTION}, {PREDICTION_COLLECTION} (dim {dim})")


async def _ingest_datasets(
    client: AsyncVecML,
    options: DemoOptions,
    clock: _StepClock,
    progress: bool | Callable[[Any], object],
) -> tuple[IngestReport, IngestReport]:
    """The steps ``generate``, ``ingest`` and ``ingest_prediction``: both reports."""
    train = generate_dataset(options.rows, options.dim, "train", options.seed)
    predict = generate_dataset(options.prediction_rows, options.dim, "pred", options.seed + 1)
    clock.done("generate", f"{options.rows:,} + {options.prediction_rows:,} rows generated")
    report: IngestReport = await client.ingest(
        options.project,
        TRAINING_COLLECTION,
        train.vectors,
        ids=train.ids,
        attributes=train.attributes,
        concurrency=options.concurrency,
        wait=True,
        progress=progress,
    )
    del train  # the training rows are sent: free them before the prediction rows go
    clock.done("ingest", _ingest_line(report))
    pred_report = await client.ingest(
        options.project,
        PREDICTION_COLLECTION,
        predict.vectors,
        ids=predict.ids,
        attributes=predict.attributes,
        concurrency=options.concurrency,
        wait=True,
    )
    clock.done("ingest_prediction", _ingest_line(pred_report))
    return report, pred_report


async def _train_and_predict(
    client: AsyncVecML, options: DemoOptions, clock: _StepClock
) -> tuple[str, dict[str, float] | float | None, PredictResponse]:
    """The steps ``train`` and ``predict``: the training job's id, its validation metric,
    and the prediction answer."""
    job = await client.train_automl_model(
        options.project,
        TRAINING_COLLECTION,
        MODEL_NAME,
        training_mode=options.training_mode,
        task_type="classification",
        label_attribute="label",
        categorical_features=["category"],
    )
    status = await job
    validation = _metric(status.validation_metric)
    clock.done("train", f"model {MODEL_NAME} trained ({options.training_mode})")
    answer = await client.automl_predict(
        options.project, TRAINING_COLLECTION, MODEL_NAME, prediction_dataset=PREDICTION_COLLECTION
    )
    clock.done("predict", f"{len(answer.predictions):,} predictions")
    return job.job_id, validation, answer


async def run_demo(
    options: DemoOptions | None = None,
    *,
    api_key: str | None = None,
    base_url: str | None = None,
    use_emulator: bool | None = None,
    rate_limit: float | None = None,
    progress: bool | Callable[[Any], object] = True,
    on_step: StepCallback | None = None,
) -> DemoResult:
    """The whole demo: pick the server (:func:`demo_client`), run :func:`run_workflow`.

    ``total_seconds`` includes starting and stopping the embedded emulator.
    """
    options = options or DemoOptions()
    started = time.perf_counter()
    async with demo_client(
        api_key=api_key, base_url=base_url, use_emulator=use_emulator, rate_limit=rate_limit
    ) as (client, server, emulator):
        if on_step is not None:
            on_step("server", server, time.perf_counter() - started)
        result = await run_workflow(client, options, progress=progress, on_step=on_step)
    result.server = server
    result.emulator = emulator
    result.total_seconds = round(time.perf_counter() - started, 3)
    return result
