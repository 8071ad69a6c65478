"""``AsyncVecML``: the client. One method per documented endpoint, plus ``ingest``.

One client holds one connection pool and one rate limiter; share it between any number of
tasks of one event loop (for example, open it in a FastAPI lifespan). Use ``async with`` or
call ``aclose()``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from vecml_async._config import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    HARD_MAX_REQUEST_BYTES,
    PollPolicy,
    RateLimitPolicy,
    RetryPolicy,
)
from vecml_async._files import load_file
from vecml_async._ingest.batching import Batch, Batcher, Envelope
from vecml_async._ingest.chunks import CHUNK_BYTES, RawChunk
from vecml_async._ingest.defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CONSECUTIVE_FAILURES,
    DEFAULT_MAX_ROWS,
)
from vecml_async._ingest.encoder import DEFAULT_SPARSE_DIM, ChunkEncoder
from vecml_async._ingest.encoding import EncodedBody
from vecml_async._ingest.executor import run_ingest
from vecml_async._ingest.fingerprint import random_prefix
from vecml_async._ingest.options import IngestOptions
from vecml_async._ingest.progress import ProgressCallback
from vecml_async._ingest.report import IngestReport
from vecml_async._jobs import TrainingJob, UploadJob
from vecml_async._limiter import RateLimiter
from vecml_async._redact import Secret
from vecml_async._transport import SendStats, Transport
from vecml_async.errors import (
    APIError,
    ClientClosedError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from vecml_async.models import (
    FILE_FORMATS,
    PREDICT_FILE_FORMATS,
    TRAINING_MODES,
    VECTOR_TYPES,
    APIResponse,
    CollectionRequest,
    CreateProjectRequest,
    DeleteProjectRequest,
    InitRequest,
    JobStartedResponse,
    JobStatusRequest,
    ModelInfo,
    ModelInfosResponse,
    ModelRequest,
    PredictResponse,
    TrainingStatus,
    TrainRequest,
    UploadStatus,
    ValidationMetricResponse,
    check_choice,
    check_name,
)

if TYPE_CHECKING:
    import httpx


ModelT = TypeVar("ModelT", bound=BaseModel)
_UNSET: Any = object()


def _build(model: type[ModelT], **fields: Any) -> ModelT:
    """A request model, with pydantic's errors turned into :class:`InvalidInputError`."""
    try:
        return model(**fields)
    except ValidationError as err:
        first = err.errors()[0]
        cause = first.get("ctx", {}).get("error")
        if isinstance(cause, InvalidInputError):
            raise cause from None
        field = ".".join(str(part) for part in first["loc"]) or model.__name__
        raise InvalidInputError(first["msg"], field=field) from None


def _parse(model: type[ModelT], answer: Mapping[str, Any], endpoint: str) -> ModelT:
    """A response model; an answer of an unexpected shape is an :class:`APIError`.

    The server said yes (2xx, not ``"success": false``) but not in the documented form; the
    pydantic error is summarised without the input values (they may echo the key).
    """
    try:
        return model.model_validate(answer)
    except ValidationError as err:
        first = err.errors(include_url=False, include_input=False, include_context=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or model.__name__
        raise APIError(
            f"unexpected answer: {where}: {first['msg']} ({err.error_count()} problem(s))",
            endpoint=endpoint,
            status_code=200,
        ) from None


class AsyncVecML:
    """Async client of the VecML REST API.

    Args:
        api_key: the key; defaults to the ``VECML_API_KEY`` environment variable.
        base_url: defaults to ``VECML_BASE_URL``, then ``https://aidb.vecml.com/api``.
        timeout: seconds per HTTP attempt (or an ``httpx.Timeout``).
        max_retries: shorthand for ``retry=RetryPolicy(max_retries=...)``.
        retry: the retry policy (backoff, jitter, Retry-After).
        poll: how job futures poll, and their default deadlines.
        rate_limit: calls per second (a float), a full :class:`RateLimitPolicy`, or ``None``
            for no client-side ceiling (the client still slows down when the server refuses).
        http_client: an ``httpx.AsyncClient`` to use instead of the client's own (it is not
            closed by ``aclose()``).
        training_modes: the ``training_mode`` values accepted before sending; add ``"auto"``
            if your server takes it (it appears in one VecML example, not in the list).
        max_connections: size of the connection pool.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout = 120.0,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        rate_limit: float | RateLimitPolicy | None = _UNSET,
        http_client: httpx.AsyncClient | None = None,
        training_modes: Collection[str] = TRAINING_MODES,
        max_connections: int = 64,
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if not key:
            raise InvalidInputError(
                f"no API key: pass api_key= or set the {API_KEY_ENV} environment variable",
                field="api_key",
            )
        url = base_url or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
        if not url.startswith(("http://", "https://")):
            raise InvalidInputError(f"{url!r} is not an http(s) URL", field="base_url")
        retry = retry or RetryPolicy()
        if max_retries is not None:
            retry = dataclasses.replace(retry, max_retries=max_retries)
        if rate_limit is _UNSET:
            limit = RateLimitPolicy()
        elif isinstance(rate_limit, RateLimitPolicy):
            limit = rate_limit
        else:
            limit = RateLimitPolicy(calls_per_second=rate_limit)
        self._key = Secret(key)
        self.base_url = url.rstrip("/")
        self.poll = poll or PollPolicy()
        self.training_modes = tuple(training_modes)
        self.limiter = RateLimiter(limit)
        self._transport = Transport(
            base_url=self.base_url,
            api_key=self._key,
            timeout=timeout,
            retry=retry,
            limiter=self.limiter,
            http_client=http_client,
            max_connections=max_connections,
        )
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        # (project, collection) -> (vector_type, dim), learnt from init() calls.
        self._collections: dict[tuple[str, str], tuple[str, int | None]] = {}

    # ------------------------------------------------------------------ lifecycle

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"AsyncVecML(base_url={self.base_url!r}, {state})"

    async def __aenter__(self) -> AsyncVecML:
        self._check_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool. Calls made afterwards raise :class:`ClientClosedError`."""
        if not self._closed:
            self._closed = True
            await self._transport.aclose()

    @property
    def closed(self) -> bool:
        return self._closed

    def _check_open(self) -> None:
        if self._closed:
            raise ClientClosedError("this AsyncVecML client is closed")
        loop = _running_asyncio_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                "this AsyncVecML client was first used on another event loop; "
                "create one client per event loop"
            )

    @property
    def transport(self) -> Transport:
        """The transport (used by the ingestion pipeline)."""
        self._check_open()
        return self._transport

    def _envelope(self, project_name: str, collection_name: str) -> Envelope:
        return Envelope.create(self._key.get(), project_name, collection_name)

    def collection_dim(self, project_name: str, collection_name: str) -> int | None:
        """The vector dimension of a collection created by this client's ``init``, if known."""
        return self._collections.get((project_name, collection_name), ("", None))[1]

    def collection_type(self, project_name: str, collection_name: str) -> str | None:
        """The vector type of a collection created by this client's ``init``, if known."""
        known = self._collections.get((project_name, collection_name))
        return known[0] if known else None

    async def _post(
        self,
        endpoint: str,
        request: BaseModel | Mapping[str, Any],
        *,
        idempotent: bool = True,
        done_if: type[APIError] | None = None,
    ) -> dict[str, Any]:
        """Send one request; see :meth:`Transport.send` for ``idempotent`` and ``done_if``."""
        self._check_open()
        fields = (
            request.model_dump(exclude_none=True) if isinstance(request, BaseModel) else request
        )
        body = self._transport.encode(fields)
        return await self._transport.send(endpoint, body, idempotent=idempotent, done_if=done_if)

    # ------------------------------------------------------------------ escape hatch

    async def call(self, endpoint: str, **fields: Any) -> dict[str, Any]:
        """POST to any endpoint (e.g. ones VecML adds later) and return the JSON answer.

        The key is added for you; failures raise the same errors as the named methods.
        """
        if not endpoint.isascii() or not endpoint.replace("_", "").isalnum():
            raise InvalidInputError(f"{endpoint!r} is not an endpoint name", field="endpoint")
        return await self._post(endpoint, fields)

    # ------------------------------------------------------------------ projects

    async def create_project(
        self, project_name: str, *, application: str = "Machine Learning", exist_ok: bool = False
    ) -> APIResponse:
        """``/create_project``. With ``exist_ok``, an existing project is not an error."""
        request = _build(CreateProjectRequest, project_name=project_name, application=application)
        try:
            return _parse(
                APIResponse,
                await self._post("create_project", request, done_if=ConflictError),
                "create_project",
            )
        except ConflictError as err:
            if not exist_ok:
                raise
            return APIResponse(success=False, error_message=err.message)

    async def delete_project(self, project_name: str, *, missing_ok: bool = False) -> APIResponse:
        """``/delete_project`` (and everything in it). With ``missing_ok``, a missing project
        is not an error."""
        request = _build(DeleteProjectRequest, project_name=project_name)
        try:
            answer = _parse(
                APIResponse,
                await self._post("delete_project", request, done_if=NotFoundError),
                "delete_project",
            )
        except NotFoundError as err:
            if not missing_ok:
                raise
            answer = APIResponse(success=False, error_message=err.message)
        self._collections = {k: v for k, v in self._collections.items() if k[0] != project_name}
        return answer

    # ------------------------------------------------------------------ collections

    async def init(
        self,
        project_name: str,
        collection_name: str,
        *,
        vector_type: str = "dense",
        vector_dim: int | None = None,
        exist_ok: bool = False,
    ) -> APIResponse:
        """``/init``: create an empty collection. Dense collections need ``vector_dim``."""
        check_choice(vector_type, VECTOR_TYPES, "vector_type")
        if vector_type != "sparse" and vector_dim is None:
            raise InvalidInputError("a dense collection needs vector_dim", field="vector_dim")
        request = _build(
            InitRequest,
            project_name=project_name,
            collection_name=collection_name,
            vector_type=vector_type,
            vector_dim=vector_dim,
        )
        try:
            answer = _parse(
                APIResponse, await self._post("init", request, done_if=ConflictError), "init"
            )
        except ConflictError as err:
            if not exist_ok:
                raise
            answer = APIResponse(success=False, error_message=err.message)
        self._collections[(project_name, collection_name)] = (vector_type, vector_dim)
        return answer

    def _encoder(
        self, project_name: str, collection_name: str, vector_dim: int | None, sparse: bool | None
    ) -> tuple[ChunkEncoder, bool]:
        check_name(project_name, "project_name")
        check_name(collection_name, "collection_name")
        known_type = self.collection_type(project_name, collection_name)
        is_sparse = sparse if sparse is not None else known_type == "sparse"
        dim = (
            vector_dim
            if vector_dim is not None
            else self.collection_dim(project_name, collection_name)
        )
        if is_sparse:
            return ChunkEncoder(random_prefix(), sparse_dim=dim or DEFAULT_SPARSE_DIM), True
        return ChunkEncoder(random_prefix(), dim=dim), False

    async def add_data(
        self,
        project_name: str,
        collection_name: str,
        vector: Sequence[float] | Mapping[int, float] | Any,
        *,
        string_id: str | None = None,
        attributes: Mapping[str, object] | None = None,
        vector_dim: int | None = None,
        sparse: bool | None = None,
    ) -> UploadJob | None:
        """``/add_data``: one vector. Prefer :meth:`add_data_batch` or :meth:`ingest` for many
        (VecML asks not to loop over this endpoint). Returns the upload job when the server
        starts one, else ``None``.

        Without ``string_id`` the client generates one (``job.string_ids`` has it), so a
        retry after a dropped connection replaces the row instead of adding it twice.
        """
        encoder, is_sparse = self._encoder(project_name, collection_name, vector_dim, sparse)
        ids = [string_id] if string_id is not None else None
        chunk = encoder.encode(
            RawChunk(0, [vector], ids, [attributes] if attributes else None, is_sparse)
        )
        fields: dict[str, Any] = {
            "project_name": project_name,
            "collection_name": collection_name,
            "string_id": chunk.ids[0],
            "data": _raw_json(chunk.vec_col.row(0)),
        }
        if chunk.attr_col is not None:
            fields["attributes"] = _raw_json(chunk.attr_col.row(0))
        answer = await self._post("add_data", fields)
        job_id = answer.get("job_id")
        if not (isinstance(job_id, str) and job_id):
            return None
        job = self.upload_job(job_id)
        job.string_ids = list(chunk.ids)
        return job

    async def add_data_batch(
        self,
        project_name: str,
        collection_name: str,
        data: Any,
        *,
        string_ids: Sequence[str] | None = None,
        attributes: Sequence[Mapping[str, object] | None] | None = None,
        vector_dim: int | None = None,
        sparse: bool | None = None,
    ) -> UploadJob:
        """``/add_data_batch``: one request with many vectors; returns its upload job.

        ``data`` is a 2-D numpy array, a list of vectors, or (sparse collections) a
        scipy.sparse matrix or a list of ``{index: value}``. Everything is checked first
        (lengths, dimension, NaN/infinity, duplicate ids, attribute values); a body over the
        request cap is refused here; use :meth:`ingest` to split large inputs.

        Without ``string_ids`` the client generates unique ids (``job.string_ids`` has them)
        and sends them, so a retry after a dropped connection replaces the rows instead of
        adding them twice (VecML also recommends keeping your own ids).
        """
        encoder, is_sparse = self._encoder(project_name, collection_name, vector_dim, sparse)
        if not hasattr(data, "shape") and not isinstance(data, Sequence):
            raise InvalidInputError(
                f"expected a 2-D array or a list of vectors, got {type(data).__name__}; "
                "use ingest() for iterators and other sources",
                field="data",
            )
        if len(data) == 0 if not hasattr(data, "shape") else data.shape[0] == 0:
            raise InvalidInputError("no vectors to add", field="data")
        if string_ids is not None and (
            not (isinstance(string_ids, Sequence) or hasattr(string_ids, "__array__"))
            or isinstance(string_ids, (str, bytes))
        ):
            raise InvalidInputError("string_ids must be a sequence of strings", field="string_ids")
        chunk = encoder.encode(RawChunk(0, data, string_ids, attributes, is_sparse))
        envelope = self._envelope(project_name, collection_name)
        batcher = Batcher(
            envelope,
            max_rows=len(chunk),
            max_bytes=HARD_MAX_REQUEST_BYTES,
        )
        batches = [*batcher.add(chunk), batcher.flush()]
        if len(batches) != 2 or not isinstance(batches[0], Batch) or batches[1] is not None:
            raise InvalidInputError(
                f"the request would exceed the {HARD_MAX_REQUEST_BYTES:,}-byte cap; "
                "use ingest() to split it",
                field="data",
            )
        body = batches[0].body(envelope)
        self._check_open()
        answer = _parse(
            JobStartedResponse,
            await self._transport.send("add_data_batch", body),
            "add_data_batch",
        )
        job = self.upload_job(answer.job_id)
        job.string_ids = list(chunk.ids)
        return job

    async def upload(
        self,
        project_name: str,
        collection_name: str,
        file: str | os.PathLike[str] | bytes,
        *,
        file_format: str | None = None,
        has_field_names: bool | None = None,
        compression_type: str | None = "auto",
        vector_type: str | None = None,
        vector_dim: int | None = None,
        string_id_column: str | int | None = None,
        attribute_columns: Sequence[str | int] | None = None,
        label_attribute: str | None = None,
        **extra_fields: Any,
    ) -> UploadJob:
        """``/upload``: add a data file (csv, json, libsvm or binary) to a collection.

        The collection is created when it does not exist. ``file`` is a path (format from the
        name when ``file_format`` is not given) or bytes. ``compression_type="auto"`` detects
        gzip. The column options and ``**extra_fields`` are sent as given: VecML does not
        document how a file names its id, label and attribute columns (see the README for
        the conventions of the local emulator).
        """
        check_name(project_name, "project_name")
        check_name(collection_name, "collection_name")
        if vector_type is not None:
            check_choice(vector_type, VECTOR_TYPES, "vector_type")
        if vector_dim is not None and (
            not isinstance(vector_dim, int) or isinstance(vector_dim, bool) or vector_dim <= 0
        ):
            raise InvalidInputError(
                f"must be a positive integer, got {vector_dim!r}", field="vector_dim"
            )
        payload = await load_file(
            file,
            file_format=file_format,
            compression_type=compression_type,
            allowed_formats=FILE_FORMATS,
        )
        fields: dict[str, Any] = {
            "project_name": project_name,
            "collection_name": collection_name,
            "file_data": payload.file_data,
            "file_format": payload.file_format,
            "compression_type": payload.compression_type,
            "has_field_names": _csv_header(payload.file_format, has_field_names),
            "vector_type": vector_type,
            "vector_dim": vector_dim,
            "string_id_column": string_id_column,
            "attribute_columns": list(attribute_columns) if attribute_columns else None,
            "label_attribute": label_attribute,
            **extra_fields,
        }
        answer = _parse(
            JobStartedResponse,
            await self._post(
                "upload", {k: v for k, v in fields.items() if v is not None}, idempotent=False
            ),
            "upload",
        )
        return self.upload_job(answer.job_id)

    # ------------------------------------------------------------------ jobs

    async def get_upload_data_status(self, job_id: str) -> UploadStatus:
        """``/get_upload_data_status``: the status of an upload job, polled once."""
        request = _build(JobStatusRequest, job_id=job_id)
        return _parse(
            UploadStatus,
            await self._post("get_upload_data_status", request),
            "get_upload_data_status",
        )

    async def get_automl_training_status(self, job_id: str) -> TrainingStatus:
        """``/get_automl_training_status``: the status of a training job, polled once."""
        request = _build(JobStatusRequest, job_id=job_id)
        return _parse(
            TrainingStatus,
            await self._post("get_automl_training_status", request),
            "get_automl_training_status",
        )

    def upload_job(self, job_id: str) -> UploadJob:
        """A handle on an existing upload job, from its id (e.g. stored by another process)."""
        _build(JobStatusRequest, job_id=job_id)
        return UploadJob(
            job_id,
            self.get_upload_data_status,
            self.poll,
            self.poll.upload_timeout,
            redact=self._key.redact,
        )

    def training_job(self, job_id: str) -> TrainingJob:
        """A handle on an existing training job, from its id."""
        _build(JobStatusRequest, job_id=job_id)
        return TrainingJob(
            job_id,
            self.get_automl_training_status,
            self.poll,
            self.poll.training_timeout,
            redact=self._key.redact,
        )

    # ------------------------------------------------------------------ AutoML

    async def train_automl_model(
        self,
        project_name: str,
        collection_name: str,
        model_name: str,
        *,
        task_type: str,
        label_attribute: str,
        training_mode: str = "balanced",
        categorical_features: Sequence[str] | None = None,
        validation_dataset: str | None = None,
    ) -> TrainingJob:
        """``/train_automl_model``: start training; ``await`` the returned job for the
        validation metric. Upload jobs of the collection should be finished first."""
        check_choice(training_mode, self.training_modes, "training_mode")
        check_choice(task_type, ("classification", "regression"), "task_type")
        if isinstance(categorical_features, str):
            raise InvalidInputError(
                "categorical_features is a list of attribute names", field="categorical_features"
            )
        request = _build(
            TrainRequest,
            project_name=project_name,
            collection_name=collection_name,
            model_name=model_name,
            training_mode=training_mode,
            task_type=task_type,
            label_attribute=label_attribute,
            categorical_features=list(categorical_features) if categorical_features else None,
            validation_dataset=validation_dataset,
        )
        answer = _parse(
            JobStartedResponse,
            await self._post("train_automl_model", request, idempotent=False),
            "train_automl_model",
        )
        return self.training_job(answer.job_id)

    async def automl_predict(
        self,
        project_name: str,
        collection_name: str,
        model_name: str,
        *,
        prediction_dataset: str | None = None,
        file: str | os.PathLike[str] | bytes | None = None,
        file_format: str | None = None,
        has_field_names: bool | None = None,
        compression_type: str | None = "auto",
    ) -> PredictResponse:
        """``/automl_predict`` on a collection (``prediction_dataset``) or on an inline
        ``file`` (csv, json or libsvm; gzip detected). ``collection_name`` is the collection
        the model was trained on. Give exactly one of ``prediction_dataset`` and ``file``."""
        request = _model_request(project_name, collection_name, model_name)
        if (prediction_dataset is None) == (file is None):
            raise InvalidInputError(
                "give exactly one of prediction_dataset and file", field="prediction_dataset"
            )
        fields = request.fields()
        if prediction_dataset is not None:
            fields["prediction_dataset"] = check_name(prediction_dataset, "prediction_dataset")
        else:
            assert file is not None
            payload = await load_file(
                file,
                file_format=file_format,
                compression_type=compression_type,
                allowed_formats=PREDICT_FILE_FORMATS,
            )
            fields["file_data"] = payload.file_data
            fields["file_format"] = payload.file_format
            if payload.file_format == "csv":
                fields["has_field_names"] = _csv_header("csv", has_field_names)
            if payload.compression_type:
                fields["compression_type"] = payload.compression_type
        return _parse(PredictResponse, await self._post("automl_predict", fields), "automl_predict")

    async def delete_automl_model(
        self, project_name: str, collection_name: str, model_name: str
    ) -> APIResponse:
        """``/delete_automl_model`` (irreversible)."""
        request = _model_request(project_name, collection_name, model_name)
        return _parse(
            APIResponse,
            await self._post("delete_automl_model", request, done_if=NotFoundError),
            "delete_automl_model",
        )

    async def get_model_validation_metric(
        self, project_name: str, collection_name: str, model_name: str
    ) -> ValidationMetricResponse:
        """``/get_model_validation_metric``: classification metrics, or a regression MSE."""
        request = _model_request(project_name, collection_name, model_name)
        return _parse(
            ValidationMetricResponse,
            await self._post("get_model_validation_metric", request),
            "get_model_validation_metric",
        )

    async def list_automl_model_infos(
        self, project_name: str, collection_name: str
    ) -> list[ModelInfo]:
        """``/list_automl_model_infos``: the models of a collection."""
        request = _build(
            CollectionRequest, project_name=project_name, collection_name=collection_name
        )
        answer = await self._post("list_automl_model_infos", request)
        return _parse(ModelInfosResponse, answer, "list_automl_model_infos").model_infos

    # ------------------------------------------------------------------ ingestion

    async def ingest(
        self,
        project_name: str,
        collection_name: str,
        data: Any,
        *,
        ids: Sequence[object] | Iterable[object] | None = None,
        attributes: Sequence[Mapping[str, object] | None] | Iterable[Any] | None = None,
        vector_columns: Sequence[str] | str | None = None,
        id_column: str | None = None,
        attribute_columns: Sequence[str] | str = (),
        file_format: str | None = None,
        vector_dim: int | None = None,
        sparse: bool | None = None,
        sparse_format: str = "pairs",
        max_rows: int = DEFAULT_MAX_ROWS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        concurrency: int = DEFAULT_CONCURRENCY,
        wait: bool = False,
        job_timeout: float | None = None,
        raise_on_error: bool = True,
        on_invalid: str = "raise",
        checkpoint: str | os.PathLike[str] | None = None,
        progress: ProgressCallback | str | bool | None = None,
        check_duplicate_ids: bool | None = None,
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> IngestReport:
        """Send any amount of rows to a collection, as concurrent ``add_data_batch`` requests.

        Rows are encoded once, cut into requests of at most ``max_rows`` rows and
        ``max_bytes`` bytes (the whole body counted exactly; never over the 200 MB cap), and
        sent by ``concurrency`` tasks under the client's rate limiter. Retries re-send the
        same bytes with the same ids. Memory stays bounded whatever the input size.

        Args:
            data: a 2-D numpy array; a list of vectors; a scipy.sparse matrix (sparse
                collections); a pandas DataFrame; an iterable or async iterable of rows,
                each ``(id, vector)``, ``(id, vector, attributes)``, a dict with ``id``,
                ``vector`` and ``attributes``, or a bare vector; or a file path (``.csv``,
                ``.jsonl``, ``.json``, ``.npy``, ``.parquet``; CSV and JSON optionally
                ``.gz``).
            ids / attributes: per-row ids and attribute dicts, for any input that does not
                hold its own (sequences, or iterables consumed in step with a stream).
                Row ``k`` of the input gets entry ``k``; a length that does not match the
                rows is refused before the rows concerned are sent (for inputs of known
                length, before anything is sent). Without ids, ids (``report.id_prefix`` +
                row index) are generated before the first send; the prefix is derived from
                the input and the collection where the input has an identity (arrays,
                sparse matrices, frames, files), so ingesting it again upserts.
            vector_columns / id_column / attribute_columns: columns of a frame, a CSV or a
                Parquet file (refused for other inputs).
            file_format: the format of a file whose name does not say it.
            vector_dim / sparse / sparse_format: the collection's dimension (known after
                this client's ``init``), whether it is sparse, and the sparse JSON form.
            max_rows / max_bytes: per-request limits (``max_bytes`` counts the whole body).
            concurrency: requests in flight.
            wait: await every upload job; failed jobs count as failures.
            job_timeout: deadline of each job wait (default: the client's ``PollPolicy``).
            raise_on_error: raise :class:`IngestError` (with the report) when rows failed.
            on_invalid: ``"raise"`` stops at the first invalid row (a row that does not
                encode, or a file line that does not parse; when nothing was sent yet, as
                :class:`InvalidInputError`); ``"skip"`` reports it and goes on.
            checkpoint: a journal path; re-running the same ingest with it resumes. It
                is tied to its input: another input, or a damaged journal, is refused.
            progress: a callback receiving :class:`IngestProgress` after each batch
                (return ``False`` to stop), or ``True``/``"rich"``/``"tqdm"`` for a bar.
            check_duplicate_ids: refuse an id repeated within the input; default: on for
                in-memory inputs, off for streams and files (the set grows with the input).
            max_consecutive_failures: stop after this many batches in a row failed.
            chunk_bytes: about how many encoded bytes of rows are read and encoded at a
                time (the unit of reading ahead; the default suits most inputs).

        Returns:
            An :class:`IngestReport` accounting for every row of the input: sent, skipped
            (resume), failed with its id, or unread (the ingest stopped early).

        Raises:
            InvalidInputError: an option, or the input, was refused before anything was
                sent (naming the option or field).
            IngestError: rows did not land (with ``raise_on_error``); it carries the report.
        """
        options = IngestOptions.create(
            ids=ids,
            attributes=attributes,
            vector_columns=vector_columns,
            id_column=id_column,
            attribute_columns=attribute_columns,
            file_format=file_format,
            vector_dim=vector_dim,
            sparse=sparse,
            sparse_format=sparse_format,
            max_rows=max_rows,
            max_bytes=max_bytes,
            concurrency=concurrency,
            wait=wait,
            job_timeout=job_timeout,
            raise_on_error=raise_on_error,
            on_invalid=on_invalid,
            checkpoint=checkpoint,
            progress=progress,
            check_duplicate_ids=check_duplicate_ids,
            max_consecutive_failures=max_consecutive_failures,
            chunk_bytes=chunk_bytes,
        )
        encoder, is_sparse = self._encoder(project_name, collection_name, vector_dim, sparse)
        self._check_open()
        return await run_ingest(
            _PipelineSender(self),
            project_name,
            collection_name,
            data,
            options,
            dim=encoder.dim,
            sparse=is_sparse,
            sparse_dim=encoder.sparse_dim,
        )


class _PipelineSender:
    """What the ingestion pipeline sees of a client (``_ingest.senders.Sender``)."""

    def __init__(self, client: AsyncVecML) -> None:
        self._client = client

    async def send(self, endpoint: str, body: EncodedBody, stats: SendStats) -> dict[str, Any]:
        return await self._client.transport.send(endpoint, body, stats)

    def envelope(self, project_name: str, collection_name: str) -> Envelope:
        return self._client._envelope(project_name, collection_name)

    def upload_job(self, job_id: str) -> UploadJob:
        return self._client.upload_job(job_id)


def _running_asyncio_loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "AsyncVecML runs on asyncio and found no running asyncio event loop "
            "(call it from 'async def' code run by asyncio.run(), not from trio or a thread)"
        ) from None


def _model_request(project_name: str, collection_name: str, model_name: str) -> ModelRequest:
    return _build(
        ModelRequest,
        project_name=project_name,
        collection_name=collection_name,
        model_name=model_name,
    )


def _csv_header(file_format: str, has_field_names: bool | None) -> bool | None:
    """``has_field_names`` is required for CSV by the docs; default it to ``True`` there."""
    if file_format != "csv":
        return None
    return True if has_field_names is None else has_field_names


def _raw_json(fragment: bytes) -> Any:
    import orjson

    return orjson.Fragment(fragment)
