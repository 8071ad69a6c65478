r"""A FastAPI service that shares one AsyncVecML: background ingestion and job status by id.

``python examples/fastapi_app.py`` serves on http://127.0.0.1:8000 (VecML when VECML_API_KEY
is set, otherwise an emulator started with the app). Then, for example::

    curl -X PUT --data-binary @rows.csv \
        'http://127.0.0.1:8000/projects/p/collections/c/data?dim=64&id_column=id&attributes=label'
    curl http://127.0.0.1:8000/ingests/<ingest_id>
    curl http://127.0.0.1:8000/jobs/upload/<job_id>
    curl -X POST -H 'content-type: application/json' \
        http://127.0.0.1:8000/projects/p/collections/c/models \
        -d '{"model_name": "m", "task_type": "classification", "label_attribute": "label"}'
    curl http://127.0.0.1:8000/jobs/training/<job_id>

The pattern:

* one client for the whole app, opened and closed by the lifespan (one connection pool and one
  rate limiter shared by every request);
* long work runs in a task group the lifespan owns, not in the request: the upload endpoint
  streams the body to a temporary file, starts the ingest and answers 202 with an ingest id;
* job status is rebuilt from an id alone with ``client.upload_job(job_id)`` /
  ``client.training_job(job_id)``, so it works after a restart or from another worker;
* the ingest reads and encodes in small chunks, so the event loop keeps serving other requests.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import anyio
from anyio.abc import TaskGroup
from fastapi import FastAPI, HTTPException, Request
from pydantic import BaseModel

from vecml_async import AsyncVecML, IngestProgress, NotFoundError, VecMLError


@dataclass
class IngestState:
    """What ``GET /ingests/{id}`` reports about one background ingest."""

    ingest_id: str
    project: str
    collection: str
    state: Literal["running", "finished", "failed"] = "running"
    rows_sent: int = 0
    rows_failed: int = 0
    bytes_sent: int = 0
    job_ids: list[str] = field(default_factory=list)
    failed_ids: list[str] = field(default_factory=list)
    summary: str | None = None
    error: str | None = None


class TrainBody(BaseModel):
    model_name: str
    task_type: Literal["classification", "regression"]
    label_attribute: str
    training_mode: Literal["high_speed", "balanced", "high_accuracy"] = "balanced"
    categorical_features: list[str] | None = None
    validation_dataset: str | None = None


@dataclass
class Services:
    """What the lifespan opens: the shared client, the task group, the ingests."""

    client: AsyncVecML
    tasks: TaskGroup
    scratch: Path
    ingests: dict[str, IngestState] = field(default_factory=dict)


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


async def run_ingest(
    svc: Services, state: IngestState, path: Path, dim: int | None, options: dict[str, Any]
) -> None:
    """The background task: create the collection if asked, ingest the file, record it all."""

    def on_progress(progress: IngestProgress) -> None:
        state.rows_sent = progress.rows_sent
        state.rows_failed = progress.rows_failed
        state.bytes_sent = progress.bytes_sent

    try:
        if dim is not None:
            await svc.client.create_project(state.project, exist_ok=True)
            await svc.client.init(state.project, state.collection, vector_dim=dim, exist_ok=True)
        report = await svc.client.ingest(
            state.project,
            state.collection,
            path,
            raise_on_error=False,
            progress=on_progress,
            **options,
        )
    except VecMLError as err:
        state.state, state.error = "failed", str(err)
    else:
        state.state = "finished" if report.complete else "failed"
        state.rows_sent, state.rows_failed = report.rows_sent, report.failed_row_count
        state.bytes_sent, state.job_ids = report.bytes_sent, report.job_ids
        state.failed_ids, state.summary = report.failed_ids, report.summary()
    finally:
        await anyio.Path(path).unlink(missing_ok=True)


def create_app(api_key: str | None = None, base_url: str | None = None) -> FastAPI:
    """The app. Without a key (argument or VECML_API_KEY) and a URL, the lifespan also serves
    a local emulator for the app to use."""

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with contextlib.AsyncExitStack() as stack:
            key, url = api_key or os.environ.get("VECML_API_KEY"), base_url
            if key is None and url is None:
                from vecml_async.emulator import serve

                key, url = "local-key", await stack.enter_async_context(serve())
            client = await stack.enter_async_context(AsyncVecML(key, base_url=url))
            scratch = Path(tempfile.mkdtemp(prefix="vecml-uploads-"))
            stack.callback(shutil.rmtree, scratch, ignore_errors=True)
            tasks = await stack.enter_async_context(anyio.create_task_group())
            app.state.services = Services(client, tasks, scratch)
            yield
            tasks.cancel_scope.cancel()  # stop ingests still running at shutdown

    app = FastAPI(title="vecml-async FastAPI example", lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.put("/projects/{project}/collections/{collection}/data", status_code=202)
    async def upload_rows(
        project: str,
        collection: str,
        request: Request,
        dim: int | None = None,
        id_column: str | None = None,
        attributes: str = "",
        file_format: Literal["csv", "jsonl"] = "csv",
    ) -> dict[str, str]:
        """Stream the body (CSV or JSON lines) to a file and ingest it in the background.
        With ``dim``, the project and the collection are created if missing."""
        svc = services(request)
        state = IngestState(uuid.uuid4().hex, project, collection)
        path = svc.scratch / f"{state.ingest_id}.{file_format}"
        async with await anyio.open_file(path, "wb") as out:
            async for chunk in request.stream():
                await out.write(chunk)
        options = {
            "id_column": id_column,
            "attribute_columns": [a for a in attributes.split(",") if a],
            "file_format": file_format,
        }
        svc.ingests[state.ingest_id] = state
        svc.tasks.start_soon(run_ingest, svc, state, path, dim, options)
        return {"ingest_id": state.ingest_id, "status": f"/ingests/{state.ingest_id}"}

    @app.get("/ingests/{ingest_id}")
    async def ingest_status(ingest_id: str, request: Request) -> IngestState:
        state = services(request).ingests.get(ingest_id)
        if state is None:
            raise HTTPException(404, f"no ingest {ingest_id}")
        return state

    @app.post("/projects/{project}/collections/{collection}/models", status_code=202)
    async def train(project: str, collection: str, body: TrainBody, request: Request) -> Any:
        try:
            job = await services(request).client.train_automl_model(
                project, collection, **body.model_dump(exclude_none=True)
            )
        except VecMLError as err:
            raise HTTPException(_status(err), str(err)) from err
        return {"job_id": job.job_id, "status": f"/jobs/training/{job.job_id}"}

    @app.get("/jobs/{kind}/{job_id}")
    async def job_status(
        kind: Literal["upload", "training"], job_id: str, request: Request
    ) -> dict[str, Any]:
        """One status poll of any job, from its id alone."""
        client = services(request).client
        job = client.upload_job(job_id) if kind == "upload" else client.training_job(job_id)
        try:
            status = await job.refresh()
        except VecMLError as err:
            raise HTTPException(_status(err), str(err)) from err
        return {"job_id": job_id, "kind": kind, **status.model_dump(exclude_none=True)}

    return app


def _status(err: VecMLError) -> int:
    return 404 if isinstance(err, NotFoundError) else 502


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(create_app(), host="127.0.0.1", port=8000)
