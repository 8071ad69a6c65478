"""Handlers of the AutoML endpoints VecML does not document but real clients call.

Known only from third-party code that calls the live API (OBSERVED, NOT DOCUMENTED); served
unless ``EmulatorSettings.observed_endpoints`` is off. The emulator's reading of them:

* ``/upload_automl_X``: ``/upload`` with the file in ``X``; the ``categorical_features``
  columns stay attributes (a csv's text columns are attributes anyway). Answers an upload job.
* ``/attach_automl_label``: a one-column csv in ``file_data`` (``has_field_names`` as for any
  csv) sets attribute ``attribute_name`` on the collection's rows, in row order; an empty
  cell removes it. Answers a label job, polled with ``/get_automl_training_status`` (as those
  clients do). The job applies after ``upload_delay``, so after the uploads accepted before it;
  it fails when the number of labels is not the number of rows.
* ``/get_feature_importance``: permutation importance of a trained model (see
  ``_automl_importance``), as ``[{"feature", "importance"}, ...]``.
"""

from __future__ import annotations

import asyncio
import csv
import functools
import io
from typing import Any

import anyio.to_thread

from vecml_async.emulator.automl_handlers import model_of, trained_model
from vecml_async.emulator.context import Context, preload
from vecml_async.emulator.handlers import Handler, has_field_names, upload
from vecml_async.emulator.parsing import bad, opt_str, opt_str_list, req_str
from vecml_async.emulator.store import Collection, Job, Tenant

__all__ = ["OBSERVED_AUTOML_HANDLERS"]


async def upload_automl_x(ctx: Context, tenant: Tenant, fields: dict[str, Any]) -> dict[str, Any]:
    if fields.get("X") is None:
        raise bad("Missing required field 'X' (the base64 file)")
    categorical = opt_str_list(fields, "categorical_features") or []
    return await upload(ctx, tenant, {**fields, "attribute_columns": categorical}, file_field="X")


def _label_values(text: str, header: bool) -> list[str]:
    """The cells of a one-column csv (after its header row when ``header``)."""
    reader = csv.reader(io.StringIO(text), strict=True)
    values: list[str] = []
    try:
        for row in reader:
            if not row:
                continue
            if len(row) != 1:
                raise bad(f"Label file line {reader.line_num} has {len(row)} fields; one expected")
            values.append(row[0])
    except csv.Error as err:
        raise bad(f"Cannot read the label file: line {reader.line_num}: {err}") from None
    if header:
        values = values[1:]
    if not values:
        raise bad("The label file holds no labels")
    return values


async def _decoded_csv(fields: dict[str, Any]) -> str:
    encoded = req_str(fields, "file_data")
    if (opt_str(fields, "file_format") or "csv") != "csv":
        raise bad("attach_automl_label takes a csv file")
    compression = opt_str(fields, "compression_type")
    if compression not in (None, "gzip"):
        raise bad(f"Unknown compression_type '{compression}'; only 'gzip' is supported")
    await preload("vecml_async.emulator.formats")
    from vecml_async.emulator import formats

    try:
        data = formats.decode_base64(encoded)
        if compression == "gzip":
            data = formats.decompress(data, "gzip")
        return data.decode("utf-8-sig")
    except formats.FileFormatError as err:
        raise bad(str(err)) from None
    except UnicodeDecodeError:
        raise bad("The label file is not UTF-8 text") from None


def _apply_labels(collection: Collection, name: str, values: list[str], job: Job) -> None:
    if collection.deleted:
        job.finish("The collection was deleted")
        return
    if len(values) != collection.rows:
        job.finish(f"{len(values)} labels for the {collection.rows} rows of {collection.name}")
        return
    # New dicts: a training that snapshot the attributes keeps the ones it saw.
    collection.attributes[:] = [
        {**{k: v for k, v in attrs.items() if k != name}, **({name: value} if value else {})}
        for attrs, value in zip(collection.attributes, values)
    ]
    job.finish()


async def attach_automl_label(
    ctx: Context, tenant: Tenant, fields: dict[str, Any]
) -> dict[str, Any]:
    project = ctx.project(tenant, fields)
    collection = ctx.collection(tenant, fields)
    name = opt_str(fields, "attribute_name")
    if not name:
        hint = (
            " (the field is attribute_name, not label or label_attribute)"
            if "label" in fields or "label_attribute" in fields
            else ""
        )
        raise bad(f"Missing required field 'attribute_name'{hint}")
    header = has_field_names(ctx, fields, "csv")
    values = _label_values(await _decoded_csv(fields), header)
    job_id = f"{tenant.fingerprint}_{project.name}_{collection.name}_{tenant.next_upload}"
    job_id += "_LabelJob"
    tenant.next_upload += 1
    job = Job(job_id, "label", num_rows=len(values), label_attribute=name)
    tenant.jobs[job_id] = job
    delay = ctx.settings.upload_delay
    if delay <= 0:
        _apply_labels(collection, name, values, job)
    else:
        job.status = "in_progress"

        async def later() -> None:
            try:
                await asyncio.sleep(delay)
            except asyncio.CancelledError:
                job.finish("Stopped: the server shut down")
                raise
            _apply_labels(collection, name, values, job)

        ctx.spawn(later())
    return {"job_id": job_id}


async def get_feature_importance(
    ctx: Context, tenant: Tenant, fields: dict[str, Any]
) -> dict[str, Any]:
    _, record = model_of(ctx, tenant, fields)
    model = trained_model(record)
    await preload("vecml_async.emulator._automl_importance")
    from vecml_async.emulator._automl_importance import feature_importance

    pairs = await anyio.to_thread.run_sync(functools.partial(feature_importance, model))
    return {"feature_importance": [{"feature": f, "importance": v} for f, v in pairs]}


OBSERVED_AUTOML_HANDLERS: dict[str, Handler] = {
    "upload_automl_X": upload_automl_x,
    "attach_automl_label": attach_automl_label,
    "get_feature_importance": get_feature_importance,
}
