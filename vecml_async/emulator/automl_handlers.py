"""Handlers of the AutoML endpoints: training jobs, prediction, model metadata.

Training and prediction call the automl module (scikit-learn) in a worker thread so the event
loop keeps serving; the module is imported on first use because scikit-learn is slow to
import and most emulator runs never train. A training job snapshots the collection when it
starts, so rows uploaded later do not change a running training.
"""

from __future__ import annotations

import asyncio
import functools
import logging
from datetime import timezone
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import numpy as np

from vecml_async.emulator.context import Context, conflict, not_found, preload
from vecml_async.emulator.handlers import Handler, job_status, parse_inline_file
from vecml_async.emulator.matrices import conform
from vecml_async.emulator.parsing import bad, opt_str, opt_str_list, req_str
from vecml_async.emulator.store import Collection, Job, ModelRecord, Tenant
from vecml_async.models import (
    ALL_TRAINING_MODES,
    PREDICT_FILE_FORMATS,
    TASK_TYPES,
    TRAINING_MODES,
)

if TYPE_CHECKING:
    from vecml_async.emulator.automl import TrainedModel

__all__ = ["AUTOML_HANDLERS", "model_of", "trained_model"]

log = logging.getLogger("vecml_async.emulator")


def _metric(value: object) -> dict[str, float] | float | None:
    """A metric as plain JSON numbers (numpy scalars become floats)."""
    if value is None:
        return None
    if isinstance(value, dict):
        return {str(k): float(v) for k, v in value.items()}
    return float(value)  # type: ignore[arg-type]


def model_of(
    ctx: Context, tenant: Tenant, fields: dict[str, Any]
) -> tuple[Collection, ModelRecord]:
    collection = ctx.collection(tenant, fields)
    name = ctx.name(fields, "model_name")
    record = collection.models.get(name)
    if record is None:
        raise not_found(f"Model {name} does not exist in collection {collection.name}")
    return collection, record


def trained_model(record: ModelRecord) -> TrainedModel:
    """The trained model of ``record`` (400 while it trains or when training failed)."""
    if record.trained is not None:
        return record.trained
    if record.job.status == "failed":
        raise bad(f"Model {record.name} failed to train: {record.job.error}")
    raise bad(f"Model {record.name} has not finished training (status: {record.job.status})")


async def train_automl_model(
    ctx: Context, tenant: Tenant, fields: dict[str, Any]
) -> dict[str, Any]:
    project = ctx.project(tenant, fields)
    collection = ctx.collection(tenant, fields)
    name = ctx.name(fields, "model_name")
    mode = req_str(fields, "training_mode")
    modes = ALL_TRAINING_MODES if ctx.settings.allow_auto_training_mode else TRAINING_MODES
    if mode not in modes:
        raise bad(f"Unknown training_mode '{mode}'; expected one of {', '.join(modes)}")
    task_type = req_str(fields, "task_type")
    if task_type not in TASK_TYPES:
        raise bad(f"Unknown task_type '{task_type}'; expected classification or regression")
    label = req_str(fields, "label_attribute")
    categorical = _categorical(ctx, fields)
    validation: Collection | None = None
    if opt_str(fields, "validation_dataset") is not None:
        validation = ctx.collection(tenant, fields, key="validation_dataset")
        if validation.dim != collection.dim:
            raise bad(
                f"validation_dataset has vector_dim {validation.dim} "
                f"but the training collection has {collection.dim}"
            )
    previous = collection.models.get(name)
    if previous is not None and previous.job.status != "failed":
        raise conflict(f"Model {name} already exists in collection {collection.name}")
    job_id = f"{tenant.fingerprint}_{project.name}_{collection.name}_{name}_TrainJob"
    job = Job(job_id, "training", task_type=task_type, model_name=name, label_attribute=label)
    tenant.jobs[job_id] = job
    record = ModelRecord(name, task_type, mode, label, job)
    collection.models[name] = record
    ctx.spawn(_train(ctx, collection, record, validation, tuple(categorical)))
    return {"job_id": job_id}


def _categorical(ctx: Context, fields: dict[str, Any]) -> list[str]:
    """The categorical features, from the field(s) ``categorical_features_field`` honours:
    by default the documented name, else the alias seen in the wild."""
    honoured = ctx.settings.categorical_features_field
    documented = alias = None
    if honoured in ("both", "categorical_features"):
        documented = opt_str_list(fields, "categorical_features")
    if honoured in ("both", "train_categorical_features"):
        alias = opt_str_list(fields, "train_categorical_features")
    return documented if documented is not None else alias or []


async def _train(
    ctx: Context,
    collection: Collection,
    record: ModelRecord,
    validation: Collection | None,
    categorical: tuple[str, ...],
) -> None:
    """Run one training job to its end; every outcome is written to the job."""
    job = record.job
    try:
        if ctx.settings.training_delay > 0:
            await asyncio.sleep(ctx.settings.training_delay)
        job.status = "in_progress"
        await preload("vecml_async.emulator.automl")
        from vecml_async.emulator import automl

        X, attributes = collection.snapshot()
        train = functools.partial(
            automl.train_model,
            X,
            attributes,
            model_name=record.name,
            task_type=record.task_type,
            training_mode="balanced" if record.training_mode == "auto" else record.training_mode,
            label_attribute=record.label_attribute,
            categorical_features=categorical,
            validation=validation.snapshot() if validation is not None else None,
            seed=0,
        )
        try:
            trained = await anyio.to_thread.run_sync(train, abandon_on_cancel=True)
        except automl.TrainingError as err:
            job.finish(str(err) or "Training failed")
            return
    except asyncio.CancelledError:
        job.finish("Training stopped: the server shut down")
        raise
    except Exception as err:
        log.exception("training job of model %s crashed", record.name)
        job.finish(f"Training failed: {type(err).__name__}: {err}")
        return
    if collection.deleted or collection.models.get(record.name) is not record:
        job.finish("The model was deleted while it trained")
        return
    record.trained = trained
    job.validation_metric = _metric(trained.validation_metric)
    job.finish()


async def get_automl_training_status(
    ctx: Context, tenant: Tenant, fields: dict[str, Any]
) -> dict[str, Any]:
    job_id = req_str(fields, "job_id")
    job = tenant.jobs.get(job_id)
    # Label jobs (the observed /attach_automl_label) are polled here, as real clients do.
    if job is None or job.kind not in ("training", "label"):
        raise not_found(f"Job {job_id} not found")
    if job.kind == "label":
        return {"label_attribute": job.label_attribute, **job_status(job)}
    out = {
        "task_type": job.task_type,
        "model_name": job.model_name,
        "label_attribute": job.label_attribute,
        **job_status(job),
    }
    if job.status == "finished":
        out["validation_metric"] = job.validation_metric
    return out


async def automl_predict(ctx: Context, tenant: Tenant, fields: dict[str, Any]) -> dict[str, Any]:
    collection, record = model_of(ctx, tenant, fields)
    model = trained_model(record)
    has_dataset = fields.get("prediction_dataset") is not None
    has_file = fields.get("file_data") is not None
    if has_dataset and has_file:
        raise bad("Give either prediction_dataset or file_data, not both")
    if has_dataset:
        source = ctx.collection(tenant, fields, key="prediction_dataset")
        X, attributes = source.snapshot()
    elif has_file:
        parsed = await parse_inline_file(
            ctx,
            fields,
            PREDICT_FILE_FORMATS,
            vector_dim=model.vector_dim,
            vector_type=collection.vector_type,
            label_attribute=model.label_attribute,
        )
        X, attributes = parsed.X, parsed.attributes
    else:
        raise bad("Give prediction_dataset or file_data")
    width = int(X.shape[1])
    if isinstance(X, np.ndarray) and width != model.vector_dim:
        raise bad(
            f"The prediction data has vector_dim {width} "
            f"but model {record.name} was trained on {model.vector_dim}"
        )
    X = conform(X, collection.vector_type, model.vector_dim)
    await preload("vecml_async.emulator.automl")  # loaded by the training already, normally
    from vecml_async.emulator import automl

    run = functools.partial(automl.predict, model, X, attributes)
    try:
        result = await anyio.to_thread.run_sync(run)
    except (automl.TrainingError, automl.PredictionError) as err:
        raise bad(f"Prediction failed: {err}") from None
    out: dict[str, Any] = {
        "num_samples": int(result.num_samples),
        "predictions": [float(p) for p in result.predictions],
        "prediction_metric": _metric(result.metric),
    }
    if result.classes is not None:
        out["classes"] = [str(c) for c in result.classes]
    return out


async def delete_automl_model(
    ctx: Context, tenant: Tenant, fields: dict[str, Any]
) -> dict[str, Any]:
    collection, record = model_of(ctx, tenant, fields)
    del collection.models[record.name]
    return {}


async def get_model_validation_metric(
    ctx: Context, tenant: Tenant, fields: dict[str, Any]
) -> dict[str, Any]:
    _, record = model_of(ctx, tenant, fields)
    return {"validation_metric": _metric(trained_model(record).validation_metric)}


_INFO_FIELDS = ("model_name", "task_type", "training_mode", "label_attribute", "create_time")


def _model_info(record: ModelRecord) -> list[str]:
    """The documented five-element entry; a model that cannot predict yet adds its status."""
    created = record.trained.created_at if record.trained is not None else record.job.started
    if created.tzinfo is not None:
        created = created.astimezone(timezone.utc)
    info = [
        record.name,
        record.task_type,
        record.training_mode,
        record.label_attribute,
        created.strftime("%Y/%m/%d, %H:%M"),
    ]
    if record.trained is None:
        info.append(record.job.status)
    return info


async def list_automl_model_infos(
    ctx: Context, tenant: Tenant, fields: dict[str, Any]
) -> dict[str, Any]:
    """Every model of the collection, as documented ("all models"): trained ones as the
    documented five-element lists, the others (pending, training, failed) with a sixth
    element, their status; the time is when training finished, or when it was asked for.
    With ``model_infos_shape="dict"`` each entry is an object of the same named fields."""
    collection = ctx.collection(tenant, fields)
    infos = [_model_info(record) for record in collection.models.values()]
    if ctx.settings.model_infos_shape == "dict":
        named = [dict(zip((*_INFO_FIELDS, "status"), info)) for info in infos]
        return {"model_infos": named}
    return {"model_infos": infos}


AUTOML_HANDLERS: dict[str, Handler] = {
    "train_automl_model": train_automl_model,
    "get_automl_training_status": get_automl_training_status,
    "automl_predict": automl_predict,
    "delete_automl_model": delete_automl_model,
    "get_model_validation_metric": get_model_validation_metric,
    "list_automl_model_infos": list_automl_model_infos,
}
