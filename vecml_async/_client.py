"""``AsyncVecML``: the client. One method per endpoint, plus ``ingest`` and ``with_options``.

One client holds one connection pool and one rate limiter; share it between any number of
tasks of one event loop (for example, open it in a FastAPI lifespan). Use ``async with`` or
call ``aclose()``.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from vecml_async._adapt import Adaptation
from vecml_async._client_automl import AutoMLEndpoints, FileInput, csv_header
from vecml_async._client_core import CallOptions, build_request, parse_answer
from vecml_async._client_data import DataEndpoints
from vecml_async._config import (
    PollPolicy,
    RateLimitPolicy,
    RetryPolicy,
    check_positive_int,
    key_and_url,
    retry_policy,
)
from vecml_async._files import load_file
from vecml_async._hooks import HookArg, Hooks
from vecml_async._jobs import UploadJob
from vecml_async._limiter import Budget, budget_from_option
from vecml_async._redact import Secret
from vecml_async._transport import DEFAULT_MAX_RESPONSE_BYTES, Transport
from vecml_async.errors import (
    ConflictError,
    InvalidInputError,
    NotFoundError,
)
from vecml_async.models import (
    FILE_FORMATS,
    VECTOR_TYPES,
    APIResponse,
    CompressionType,
    CreateProjectRequest,
    DeleteProjectRequest,
    FileFormat,
    InitRequest,
    JobStartedResponse,
    VectorType,
    check_choice,
    check_name,
)
from vecml_async.probe.profile import ServerProfile, load_profile

if TYPE_CHECKING:
    import httpx


_UNSET: Any = object()


def _read_profile(
    value: ServerProfile | Mapping[str, Any] | str | os.PathLike[str] | None,
) -> ServerProfile | None:
    """``profile=`` as a :class:`ServerProfile`; a bad one is an :class:`InvalidInputError`."""
    if value is None:
        return None
    try:
        return load_profile(value)
    except ValidationError as err:
        first = err.errors(include_url=False, include_input=False)[0]
        where = ".".join(str(part) for part in first["loc"]) or "the profile"
        raise InvalidInputError(
            f"not a server profile: {where}: {first['msg']}", field="profile"
        ) from None
    except (ValueError, TypeError) as err:
        raise InvalidInputError(f"not a server profile: {err}", field="profile") from None
    except OSError as err:
        raise InvalidInputError(
            f"cannot read the profile {value}: {err.strerror or err}", field="profile"
        ) from None


def _existed(answer: APIResponse | None, existed: bool) -> APIResponse:
    """A success answer saying whether the project or collection existed before the call."""
    fields = answer.model_dump() if answer is not None else {}
    fields.update(success=True, existed=existed)
    return APIResponse.model_validate(fields)


class AsyncVecML(DataEndpoints, AutoMLEndpoints):
    """Async client of the VecML REST API.

    Args:
        api_key: the key; defaults to the ``VECML_API_KEY`` environment variable.
        base_url: defaults to ``VECML_BASE_URL``, then ``https://aidb.vecml.com/api``.
        timeout: seconds per HTTP attempt, a deadline for the whole attempt (connect, send,
            headers, body); an ``httpx.Timeout`` keeps its phases and bounds the attempt by
            the largest of them.
        max_retries: shorthand for ``retry=RetryPolicy(max_retries=...)``.
        retry: the retry policy (backoff, jitter, Retry-After).
        poll: how job futures poll, and their default deadlines.
        rate_limit: calls per second (a float), a full :class:`RateLimitPolicy`, ``None``
            for no client-side ceiling (the client still slows down when the server refuses),
            or a :class:`Budget` shared with other clients or processes (e.g.
            :class:`vecml_async.budget.RedisBudget`); every call of the client spends it.
        http_client: an ``httpx.AsyncClient`` to use instead of the client's own (it is not
            closed by ``aclose()``).
        allow_auto_training_mode: accept ``training_mode="auto"`` (it appears in one VecML
            example request, not in the documented list); refused before sending otherwise.
            Default: what the profile says, else ``False``.
        max_connections: size of the connection pool.
        deadline: seconds one call may take in total, across its attempts, backoff and
            rate-limit waits; shorthand for ``retry=RetryPolicy(deadline=...)``.
        max_response_bytes: the largest success answer read (a clear ``APIError`` past it).
        on_request: hook(s) called with a :class:`RequestEvent` before every attempt.
        on_response: hook(s) called with a :class:`ResponseEvent` after every attempt.
        on_retry: hook(s) called with a :class:`RetryEvent` before every retry.
        profile: a :class:`~vecml_async.probe.ServerProfile` (what ``vecml-async probe``
            found out about the server), a mapping of its fields or the path of its JSON
            file. The client adapts to it: the rate-limit answer's status and text, the
            texts and statuses of ordinary errors (what ``exist_ok`` / ``missing_ok`` and the
            retries of creations read), the request cap, the sparse encoding, duplicate ids
            after a retry, ``training_mode="auto"`` and the rate ceiling (unless
            ``rate_limit`` / ``allow_auto_training_mode`` are given).

    Every endpoint method also takes the per-call options ``timeout=`` (seconds per
    attempt), ``extra_body=`` (more JSON fields) and ``extra_headers=``;
    :meth:`with_options` makes a client with other defaults on the same connection pool.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | None = None,
        timeout: float | httpx.Timeout | None = 120.0,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        poll: PollPolicy | None = None,
        rate_limit: float | RateLimitPolicy | Budget | None = _UNSET,
        http_client: httpx.AsyncClient | None = None,
        allow_auto_training_mode: bool | None = None,
        max_connections: int = 64,
        deadline: float | None = None,
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        on_request: HookArg = None,
        on_response: HookArg = None,
        on_retry: HookArg = None,
        profile: ServerProfile | Mapping[str, Any] | str | os.PathLike[str] | None = None,
    ) -> None:
        key, url = key_and_url(api_key, base_url)
        retry = retry_policy(retry, max_retries, deadline)
        self._profile = _read_profile(profile)
        adapt = Adaptation.of(self._profile)
        if rate_limit is _UNSET:
            ceiling = adapt.calls_per_second
            rate_limit = RateLimitPolicy(ceiling) if ceiling is not None else RateLimitPolicy()
        self._limiter = budget_from_option(rate_limit)
        self._key = Secret(key)
        self.base_url = url.rstrip("/")
        self.poll = poll or PollPolicy()
        if allow_auto_training_mode is None:
            allow_auto_training_mode = bool(adapt.allow_auto_training_mode)
        self._allow_auto_training_mode = bool(allow_auto_training_mode)
        self._adapt = adapt
        self._transport = Transport(
            base_url=self.base_url,
            api_key=self._key,
            timeout=timeout,
            retry=retry,
            limiter=self._limiter,
            http_client=http_client,
            max_connections=max_connections,
            hooks=Hooks.of(on_request=on_request, on_response=on_response, on_retry=on_retry),
            max_response_bytes=max_response_bytes,
            answer_rules=adapt.rules,
        )
        self._root = self
        self._closed = False
        self._loop = None
        # (project, collection) -> (vector_type, dim), learnt from init() calls.
        self._collections: dict[tuple[str, str], tuple[str, int | None]] = {}

    # ------------------------------------------------------------------ lifecycle

    @property
    def profile(self) -> ServerProfile | None:
        """The server profile this client adapts to (``profile=``), if any."""
        return self._profile

    async def __aenter__(self) -> AsyncVecML:
        self._check_open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def with_options(
        self,
        *,
        timeout: float = _UNSET,
        max_retries: int = _UNSET,
        rate_limit: float | RateLimitPolicy | Budget | None = _UNSET,
    ) -> AsyncVecML:
        """A client like this one with some options changed, sharing its connection pool.

        ``timeout`` (seconds per attempt) and ``max_retries`` apply to the new client's calls;
        without ``rate_limit`` it shares this client's rate limiter (one budget for both),
        with it, it gets a limiter of its own. It shares the pool, the collections learnt
        from ``init``, the key and the poll policy. Closing it closes only it; closing the
        client the pool belongs to closes both.

        >>> fast = client.with_options(timeout=5, max_retries=0)
        """
        self._check_open()
        changes: dict[str, Any] = {}
        if timeout is not _UNSET:
            changes["timeout"] = CallOptions(timeout=timeout).timeout
        if max_retries is not _UNSET:
            if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
                raise InvalidInputError(
                    f"must be an integer >= 0, got {max_retries!r}", field="max_retries"
                )
            changes["retry"] = dataclasses.replace(self._transport.retry, max_retries=max_retries)
        clone = copy.copy(self)
        if rate_limit is not _UNSET:
            clone._limiter = changes["limiter"] = budget_from_option(rate_limit)
        clone._transport = self._transport.derive(**changes)
        clone._closed = False
        return clone

    # ------------------------------------------------------------------ projects

    async def create_project(
        self,
        project_name: str,
        *,
        application: str = "Machine Learning",
        exist_ok: bool = False,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> APIResponse:
        """``/create_project``. The answer's ``existed`` says whether the project was there
        before; with ``exist_ok``, an existing project is a success (``existed=True``)
        instead of a :class:`ConflictError`."""
        options = CallOptions(timeout, extra_body, extra_headers)
        request = build_request(
            CreateProjectRequest, project_name=project_name, application=application
        )
        try:
            answer = await self._post("create_project", request, options, done_if=ConflictError)
        except ConflictError:
            if not exist_ok:
                raise
            return _existed(None, True)
        return _existed(parse_answer(APIResponse, answer, "create_project"), False)

    async def delete_project(
        self,
        project_name: str,
        *,
        missing_ok: bool = False,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> APIResponse:
        """``/delete_project`` (and everything in it). The answer's ``existed`` says whether
        there was a project to delete; with ``missing_ok``, a missing project is a success
        (``existed=False``) instead of a :class:`NotFoundError`."""
        options = CallOptions(timeout, extra_body, extra_headers)
        request = build_request(DeleteProjectRequest, project_name=project_name)
        try:
            answer = await self._post("delete_project", request, options, done_if=NotFoundError)
        except NotFoundError:
            if not missing_ok:
                raise
            result = _existed(None, False)
        else:
            result = _existed(parse_answer(APIResponse, answer, "delete_project"), True)
        self._collections = {k: v for k, v in self._collections.items() if k[0] != project_name}
        return result

    # ------------------------------------------------------------------ collections

    async def init(
        self,
        project_name: str,
        collection_name: str,
        *,
        vector_type: VectorType = "dense",
        vector_dim: int | None = None,
        exist_ok: bool = False,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> APIResponse:
        """``/init``: create an empty collection. Dense collections need ``vector_dim``.

        The answer's ``existed`` says whether the collection was there before; with
        ``exist_ok``, an existing one is a success (``existed=True``)."""
        check_choice(vector_type, VECTOR_TYPES, "vector_type")
        if vector_type != "sparse" and vector_dim is None:
            raise InvalidInputError("a dense collection needs vector_dim", field="vector_dim")
        options = CallOptions(timeout, extra_body, extra_headers)
        request = build_request(
            InitRequest,
            project_name=project_name,
            collection_name=collection_name,
            vector_type=vector_type,
            vector_dim=vector_dim,
        )
        try:
            answer = await self._post("init", request, options, done_if=ConflictError)
        except ConflictError:
            if not exist_ok:
                raise
            result = _existed(None, True)
        else:
            result = _existed(parse_answer(APIResponse, answer, "init"), False)
        self._collections[(project_name, collection_name)] = (vector_type, vector_dim)
        return result

    async def upload(
        self,
        project_name: str,
        collection_name: str,
        file: FileInput,
        *,
        file_format: FileFormat | None = None,
        has_field_names: bool | None = None,
        compression_type: CompressionType | None = "auto",
        vector_type: VectorType | None = None,
        vector_dim: int | None = None,
        string_id_column: str | int | None = None,
        attribute_columns: Sequence[str | int] | None = None,
        label_attribute: str | None = None,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> UploadJob:
        """``/upload``: add a data file (csv, json, libsvm or binary) to a collection.

        The collection is created when it does not exist. ``file`` is a path (format from the
        name when ``file_format`` is not given) or bytes. ``compression_type="auto"`` detects
        gzip. A file too large for the request cap once in base64 is refused from its size,
        before it is read; the body is built in pieces (no copy of the whole file beside its
        base64 text). The column options are sent as given: VecML does not document how a
        file names its id, label and attribute columns (see the README for the conventions of
        the local emulator); ``extra_body`` sends any other field.
        """
        check_name(project_name, "project_name")
        check_name(collection_name, "collection_name")
        if vector_type is not None:
            check_choice(vector_type, VECTOR_TYPES, "vector_type")
        if vector_dim is not None:
            check_positive_int(vector_dim, "vector_dim")
        options = CallOptions(timeout, extra_body, extra_headers)
        payload = await load_file(
            file,
            file_format=file_format,
            compression_type=compression_type,
            allowed_formats=FILE_FORMATS,
            max_request_bytes=self._adapt.max_request_bytes,
        )
        fields: dict[str, Any] = {
            "project_name": project_name,
            "collection_name": collection_name,
            "file_format": payload.file_format,
            "compression_type": payload.compression_type,
            "has_field_names": csv_header(payload.file_format, has_field_names),
            "vector_type": vector_type,
            "vector_dim": vector_dim,
            "string_id_column": string_id_column,
            "attribute_columns": list(attribute_columns) if attribute_columns else None,
            "label_attribute": label_attribute,
        }
        answer = await self._post_file(
            "upload", fields, "file_data", payload, options, idempotent=False
        )
        return self.upload_job(parse_answer(JobStartedResponse, answer, "upload").job_id)
