"""What every endpoint method of the client shares: the lifecycle, one request, the per-call
options, and the job status endpoints.

:class:`ClientCore` is the base of :class:`~vecml_async.AsyncVecML`; it holds no endpoint of
its own except the job status polls and the ``call`` escape hatch. Every endpoint method takes
the same keyword-only per-call options, gathered here in :class:`CallOptions`:

* ``timeout``: seconds per HTTP attempt for this call (instead of the client's);
* ``extra_body``: more JSON fields, merged over the ones the method builds (an escape hatch
  for fields VecML adds later); ``user_api_key`` is refused there, the client sends its own;
* ``extra_headers``: more HTTP headers for this call.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel, ValidationError

from vecml_async._config import PollPolicy
from vecml_async._files import FilePayload, file_body
from vecml_async._jobs import TrainingJob, UploadJob
from vecml_async._limiter import Budget
from vecml_async._redact import Secret
from vecml_async._transport import Transport
from vecml_async.errors import APIError, ClientClosedError, InvalidInputError
from vecml_async.models import JobStatusRequest, TrainingStatus, UploadStatus

if TYPE_CHECKING:
    from vecml_async._adapt import Adaptation
    from vecml_async._body import EncodedBody

ModelT = TypeVar("ModelT", bound=BaseModel)


def build_request(model: type[ModelT], **fields: Any) -> ModelT:
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


def parse_answer(model: type[ModelT], answer: Mapping[str, Any], endpoint: str) -> ModelT:
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


@dataclass(frozen=True)
class CallOptions:
    """The per-call options of one endpoint call, checked when made."""

    timeout: float | None = None
    extra_body: Mapping[str, Any] | None = None
    extra_headers: Mapping[str, str] | None = None

    def __post_init__(self) -> None:
        timeout = self.timeout
        if timeout is not None and (
            isinstance(timeout, bool)
            or not isinstance(timeout, (int, float))
            or not math.isfinite(timeout)
            or timeout <= 0
        ):
            raise InvalidInputError(
                f"must be a positive number of seconds, got {timeout!r}", field="timeout"
            )
        if self.extra_body is not None:
            if not isinstance(self.extra_body, Mapping):
                raise InvalidInputError("must be a mapping of JSON fields", field="extra_body")
            if "user_api_key" in self.extra_body:
                raise InvalidInputError(
                    "the client sends its own key; do not pass user_api_key", field="extra_body"
                )
        headers = self.extra_headers
        if headers is not None and (
            not isinstance(headers, Mapping)
            or not all(isinstance(k, str) and isinstance(v, str) for k, v in headers.items())
        ):
            raise InvalidInputError("must map header names to strings", field="extra_headers")

    def merged(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``fields`` with ``extra_body`` merged over them."""
        return {**fields, **(self.extra_body or {})}


NO_OPTIONS = CallOptions()


def _running_asyncio_loop() -> asyncio.AbstractEventLoop:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        raise RuntimeError(
            "AsyncVecML runs on asyncio and found no running asyncio event loop "
            "(call it from 'async def' code run by asyncio.run(), not from trio or a thread)"
        ) from None


class ClientCore:
    """Lifecycle, requests and job handles of a client (set up by ``AsyncVecML.__init__``).

    A client made by ``with_options`` shares its parent's connection pool (and, unless told
    otherwise, its rate limiter); ``_root`` is the client that owns the pool. Closing a
    derived client closes only that client; closing the root closes the pool for all of them.
    """

    base_url: str
    poll: PollPolicy
    _key: Secret
    _transport: Transport
    _limiter: Budget
    _adapt: Adaptation
    _root: ClientCore
    _closed: bool
    _loop: asyncio.AbstractEventLoop | None

    # ------------------------------------------------------------------ lifecycle

    def __repr__(self) -> str:
        state = "closed" if self.closed else "open"
        return f"{type(self).__name__}(base_url={self.base_url!r}, {state})"

    async def aclose(self) -> None:
        """Close the client. Calls made afterwards raise :class:`ClientClosedError`.

        The client created by ``AsyncVecML(...)`` also closes its connection pool (unless it
        was passed in as ``http_client``), which ends every client ``with_options`` made from
        it; closing one of those closes only that one.
        """
        if not self._closed:
            self._closed = True
            if self._root is self:
                await self._transport.aclose()

    @property
    def closed(self) -> bool:
        """Whether this client (or the one whose pool it shares) is closed."""
        return self._closed or self._root._closed

    def _check_open(self) -> None:
        if self.closed:
            raise ClientClosedError("this AsyncVecML client is closed")
        root = self._root
        loop = _running_asyncio_loop()
        if root._loop is None:
            root._loop = loop
        elif root._loop is not loop:
            raise RuntimeError(
                "this AsyncVecML client was first used on another event loop; "
                "create one client per event loop"
            )

    def _open_transport(self) -> Transport:
        """The transport, once the client is known to be open (for the ingestion pipeline)."""
        self._check_open()
        return self._transport

    # ------------------------------------------------------------------ requests

    async def _post(
        self,
        endpoint: str,
        request: BaseModel | Mapping[str, Any],
        options: CallOptions = NO_OPTIONS,
        *,
        idempotent: bool = True,
        done_if: type[APIError] | None = None,
    ) -> dict[str, Any]:
        """Send one request; see :meth:`Transport.send` for ``idempotent`` and ``done_if``."""
        self._check_open()
        fields = (
            request.model_dump(exclude_none=True) if isinstance(request, BaseModel) else request
        )
        body = self._transport.encode(options.merged(fields))
        return await self._send(endpoint, body, options, idempotent=idempotent, done_if=done_if)

    async def _send(
        self,
        endpoint: str,
        body: EncodedBody,
        options: CallOptions,
        *,
        idempotent: bool = True,
        done_if: type[APIError] | None = None,
    ) -> dict[str, Any]:
        """Send an encoded body with this call's timeout and headers."""
        self._check_open()
        return await self._transport.send(
            endpoint,
            body,
            idempotent=idempotent,
            done_if=done_if,
            timeout=options.timeout,
            extra_headers=options.extra_headers,
        )

    async def _post_file(
        self,
        endpoint: str,
        fields: Mapping[str, Any],
        file_field: str,
        payload: FilePayload,
        options: CallOptions,
        *,
        idempotent: bool,
    ) -> dict[str, Any]:
        """Send ``fields`` plus a file's base64 text under ``file_field`` (not joined first)."""
        self._check_open()
        merged = options.merged({k: v for k, v in fields.items() if v is not None})
        if file_field in merged:
            raise InvalidInputError(
                f"{file_field!r} carries the file; pass the file itself", field="extra_body"
            )
        body = file_body(self._transport.encode(merged), file_field, payload)
        cap = self._adapt.max_request_bytes
        if body.length > cap:
            raise InvalidInputError(
                f"the request would be {body.length:,} bytes, over the {cap:,}-byte cap",
                field=file_field,
            )
        return await self._send(endpoint, body, options, idempotent=idempotent)

    async def call(
        self,
        endpoint: str,
        *,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        **fields: Any,
    ) -> dict[str, Any]:
        """POST ``fields`` to any endpoint (e.g. ones VecML adds later); the JSON answer.

        The key is added for you; failures raise the same errors as the named methods. A
        field named like an option (``timeout``) goes in ``extra_body``.
        """
        if not endpoint.isascii() or not endpoint.replace("_", "").isalnum():
            raise InvalidInputError(f"{endpoint!r} is not an endpoint name", field="endpoint")
        options = CallOptions(timeout, extra_body, extra_headers)
        return await self._post(endpoint, fields, options)

    # ------------------------------------------------------------------ jobs

    async def get_upload_data_status(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> UploadStatus:
        """``/get_upload_data_status``: the status of an upload job, polled once."""
        request = build_request(JobStatusRequest, job_id=job_id)
        options = CallOptions(timeout, extra_body, extra_headers)
        answer = await self._post("get_upload_data_status", request, options)
        return parse_answer(UploadStatus, answer, "get_upload_data_status")

    async def get_automl_training_status(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> TrainingStatus:
        """``/get_automl_training_status``: the status of a training job, polled once."""
        request = build_request(JobStatusRequest, job_id=job_id)
        options = CallOptions(timeout, extra_body, extra_headers)
        answer = await self._post("get_automl_training_status", request, options)
        return parse_answer(TrainingStatus, answer, "get_automl_training_status")

    def upload_job(self, job_id: str) -> UploadJob:
        """A handle on an existing upload job, from its id (e.g. stored by another process)."""
        build_request(JobStatusRequest, job_id=job_id)
        return UploadJob(
            job_id,
            self.get_upload_data_status,
            self.poll,
            self.poll.upload_timeout,
            redact=self._key.redact,
        )

    def training_job(self, job_id: str) -> TrainingJob:
        """A handle on an existing training job, from its id."""
        build_request(JobStatusRequest, job_id=job_id)
        return TrainingJob(
            job_id,
            self.get_automl_training_status,
            self.poll,
            self.poll.training_timeout,
            redact=self._key.redact,
        )
