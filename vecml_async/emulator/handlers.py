"""Handlers of the project, collection, data and upload-job endpoints.

Each handler takes the :class:`~vecml_async.emulator.context.Context`, the caller's tenant
and the decoded body, and returns the fields of the success envelope (``success`` is added by
the app). Refusals are raised as ``RequestError``; the wire conventions in the project notes
fix the statuses and messages.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio.to_thread

from vecml_async.emulator.context import Context, conflict, not_found, preload
from vecml_async.emulator.matrices import storage_rows
from vecml_async.emulator.parsing import (
    bad,
    extract_batch,
    opt_bool,
    opt_int,
    opt_str,
    req_str,
)
from vecml_async.emulator.settings import SPARSE_DEFAULT_DIM
from vecml_async.emulator.store import Batch, Collection, Job, Project, Tenant
from vecml_async.models import FILE_FORMATS, VECTOR_TYPES  # the quantized kinds: stored dense

if TYPE_CHECKING:
    from vecml_async.emulator.formats import ParsedFile

__all__ = [
    "Handler",
    "generated_ids",
    "has_field_names",
    "job_status",
    "parse_inline_file",
    "upload",
]

Handler = Callable[[Context, Tenant, dict[str, Any]], Awaitable[dict[str, Any]]]

#: Largest dense dimension (a guard against a typo allocating gigabytes per 64 rows).
MAX_DENSE_DIM = 65_536
MAX_SPARSE_DIM = 2**31 - 1


def _vector_type(fields: dict[str, Any], default: str | None) -> str:
    value = opt_str(fields, "vector_type") or default
    if value is None:
        raise bad("Missing required field 'vector_type'")
    if value not in VECTOR_TYPES:
        raise bad(f"Unknown vector_type '{value}'; expected one of {', '.join(VECTOR_TYPES)}")
    return value


def _vector_dim(fields: dict[str, Any], vector_type: str, required: bool) -> int | None:
    dim = opt_int(fields, "vector_dim")
    if dim is None:
        if vector_type == "sparse":
            return SPARSE_DEFAULT_DIM
        if required:
            raise bad("Missing required field 'vector_dim' (required for dense collections)")
        return None
    limit = MAX_SPARSE_DIM if vector_type == "sparse" else MAX_DENSE_DIM
    if not 1 <= dim <= limit:
        raise bad(f"vector_dim must be between 1 and {limit}, got {dim}")
    return dim


def _new_collection(name: str, declared: str, dim: int) -> Collection:
    return Collection(name, "sparse" if declared == "sparse" else "dense", declared, dim)


def generated_ids(collection: Collection, n: int) -> list[str]:
    """``n`` fresh ids ``auto_<k>`` that no stored or waiting row of the collection uses."""
    out: list[str] = []
    while len(out) < n:
        candidate = f"auto_{collection.next_auto_id}"
        collection.next_auto_id += 1
        if candidate not in collection.index and candidate not in collection.pending_ids:
            out.append(candidate)
    return out


async def create_project(ctx: Context, tenant: Tenant, fields: dict[str, Any]) -> dict[str, Any]:
    name = ctx.name(fields, "project_name")
    application = opt_str(fields, "application")
    if name in tenant.projects:
        raise conflict(f"Project {name} already exists")
    tenant.projects[name] = Project(name, application)
    return {}


async def delete_project(ctx: Context, tenant: Tenant, fields: dict[str, Any]) -> dict[str, Any]:
    project = ctx.project(tenant, fields)
    for collection in project.collections.values():
        collection.deleted = True  # waiting uploads and trainings see it and give up
    del tenant.projects[project.name]
    return {}


async def init(ctx: Context, tenant: Tenant, fields: dict[str, Any]) -> dict[str, Any]:
    project = ctx.project(tenant, fields)
    name = ctx.name(fields, "collection_name")
    declared = _vector_type(fields, None)
    dim = _vector_dim(fields, declared, required=True)
    assert dim is not None
    if name in project.collections:
        raise conflict(f"Collection {name} already exists in project {project.name}")
    project.collections[name] = _new_collection(name, declared, dim)
    return {}


async def add_data_batch(ctx: Context, tenant: Tenant, fields: dict[str, Any]) -> dict[str, Any]:
    project = ctx.project(tenant, fields)
    collection = ctx.collection(tenant, fields)
    batch = extract_batch(
        fields,
        vector_type=collection.vector_type,
        dim=collection.dim,
        make_ids=functools.partial(generated_ids, collection),
        rules=ctx.row_rules,
    )
    job = ctx.submit_upload(tenant, project, collection, batch)
    return {"job_id": job.job_id}


async def add_data(ctx: Context, tenant: Tenant, fields: dict[str, Any]) -> dict[str, Any]:
    if "data" not in fields or fields["data"] is None:
        raise bad("Missing required field 'data'")
    string_id = opt_str(fields, "string_id")
    attributes = fields.get("attributes")
    one = {
        "data": [fields["data"]],
        "string_ids": None if string_id is None else [string_id],
        "attributes": None if attributes is None else [attributes],
    }
    return await add_data_batch(ctx, tenant, {**fields, **one})


def has_field_names(ctx: Context, fields: dict[str, Any], file_format: str) -> bool:
    """``has_field_names``: required for csv (as documented) unless the settings allow it
    missing (then ``true``); ignored for the other formats."""
    if (
        file_format == "csv"
        and fields.get("has_field_names") is None
        and not ctx.settings.allow_missing_has_field_names
    ):
        raise bad("Missing required field 'has_field_names' (required for csv files)")
    return opt_bool(fields, "has_field_names", True)


async def parse_inline_file(
    ctx: Context,
    fields: dict[str, Any],
    allowed: tuple[str, ...],
    *,
    file_field: str = "file_data",
    **options: Any,
) -> ParsedFile:
    """Decode ``file_field`` (base64, optionally gzip) and parse it in a worker thread.

    ``file_format`` must be one of ``allowed``; ``options`` go to ``formats.parse_file``.
    A corrupt encoding or file is a 400 naming the problem.
    """
    encoded = req_str(fields, file_field)
    file_format = req_str(fields, "file_format")
    if file_format not in allowed:
        raise bad(f"Unknown file_format '{file_format}'; expected one of {', '.join(allowed)}")
    compression = opt_str(fields, "compression_type")
    if compression not in (None, "gzip"):
        raise bad(f"Unknown compression_type '{compression}'; only 'gzip' is supported")
    await preload("vecml_async.emulator.formats")
    from vecml_async.emulator import formats

    try:
        data = formats.decode_base64(encoded)
    except formats.FileFormatError as err:
        raise bad(str(err)) from None
    header = has_field_names(ctx, fields, file_format)  # after the encoding: what is sent first
    parse = functools.partial(
        formats.parse_file,
        data,
        file_format=file_format,
        has_field_names=header,
        compression_type=compression,
        **options,
    )
    try:
        parsed: ParsedFile = await anyio.to_thread.run_sync(parse)
    except formats.FileFormatError as err:
        raise bad(f"Cannot read the {file_format} file: {err}") from None
    return parsed


def _column_selector(fields: dict[str, Any]) -> tuple[str | int | None, list[str | int]]:
    id_column = fields.get("string_id_column")
    if id_column is not None and (
        isinstance(id_column, bool) or not isinstance(id_column, (str, int))
    ):
        raise bad("Field 'string_id_column' must be a column name or a 0-based index")
    columns = fields.get("attribute_columns") or []
    if not isinstance(columns, list) or any(
        isinstance(c, bool) or not isinstance(c, (str, int)) for c in columns
    ):
        raise bad("Field 'attribute_columns' must be an array of column names or indices")
    return id_column, columns


async def upload(
    ctx: Context, tenant: Tenant, fields: dict[str, Any], *, file_field: str = "file_data"
) -> dict[str, Any]:
    """``/upload`` (and, with ``file_field="X"``, the observed ``/upload_automl_X``)."""
    project = ctx.project(tenant, fields)
    name = ctx.name(fields, "collection_name")
    existing = project.collections.get(name)
    declared = existing.declared_type if existing else _vector_type(fields, "dense")
    stored = "sparse" if declared == "sparse" else "dense"
    dim = existing.dim if existing else _vector_dim(fields, declared, required=False)
    id_column, columns = _column_selector(fields)
    parsed = await parse_inline_file(
        ctx,
        fields,
        FILE_FORMATS,
        file_field=file_field,
        vector_dim=dim,
        vector_type=stored,
        string_id_column=id_column,
        attribute_columns=columns,
        label_attribute=opt_str(fields, "label_attribute") or "label",
    )
    n = parsed.X.shape[0]
    if n == 0:
        raise bad("The file holds no rows")
    if len(parsed.attributes) != n or (parsed.ids is not None and len(parsed.ids) != n):
        raise bad("The file's ids or attributes do not match its rows")
    # The project may have been deleted or the collection created while the file parsed.
    if tenant.projects.get(project.name) is not project:
        raise not_found(f"Project {project.name} does not exist")
    collection = project.collections.get(name)
    created = collection is None
    if collection is None:
        width = dim if dim is not None else int(parsed.X.shape[1])
        collection = _new_collection(name, declared, width)
    dense, sparse = storage_rows(parsed.X, collection.vector_type, collection.dim)
    ids = parsed.ids if parsed.ids is not None else generated_ids(collection, n)
    batch = Batch(list(ids), [dict(a) for a in parsed.attributes], dense, sparse)
    job = ctx.submit_upload(tenant, project, collection, batch)
    if created:  # only once the batch is accepted: a refused file leaves no empty collection
        project.collections[name] = collection
    return {"job_id": job.job_id}


def job_status(job: Job) -> dict[str, Any]:
    """The fields both status endpoints share."""
    out: dict[str, Any] = {
        "status": job.status,
        "start_time": job.start_time_text(),
        "duration": job.duration_text(),
    }
    if job.status == "failed":
        out["error"] = job.error or "Job failed"
    return out


async def get_upload_data_status(
    ctx: Context, tenant: Tenant, fields: dict[str, Any]
) -> dict[str, Any]:
    job_id = req_str(fields, "job_id")
    job = tenant.jobs.get(job_id) or ctx.sink_jobs.get(job_id)
    if job is None or job.kind != "upload":
        raise not_found(f"Job {job_id} not found")
    return {**job_status(job), "num_rows": job.num_rows}


HANDLERS: dict[str, Handler] = {
    "create_project": create_project,
    "delete_project": delete_project,
    "init": init,
    "add_data": add_data,
    "add_data_batch": add_data_batch,
    "upload": upload,
    "get_upload_data_status": get_upload_data_status,
}
