"""The data endpoints of the client: ``add_data``, ``add_data_batch`` and ``ingest``.

:class:`DataEndpoints` is a base of :class:`~vecml_async.AsyncVecML`. Its methods encode rows
with the pipeline's encoder (``vecml_async._ingest``), so one call and a whole ingest check and
encode rows the same way; ``ingest`` hands the pipeline a narrow sender (send a body, build the
envelope, make an upload-job handle), not the client.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import orjson

from vecml_async._body import EncodedBody
from vecml_async._client_core import CallOptions, ClientCore, parse_answer
from vecml_async._config import HARD_MAX_REQUEST_BYTES, PollPolicy
from vecml_async._ingest.batching import Batch, Batcher, Envelope
from vecml_async._ingest.chunks import CHUNK_BYTES, RawChunk
from vecml_async._ingest.defaults import (
    DEFAULT_CONCURRENCY,
    DEFAULT_MAX_BYTES,
    DEFAULT_MAX_CONSECUTIVE_FAILURES,
    DEFAULT_MAX_MEMORY,
    DEFAULT_MAX_ROWS,
)
from vecml_async._ingest.encoder import DEFAULT_SPARSE_DIM, ChunkEncoder
from vecml_async._ingest.executor import run_ingest
from vecml_async._ingest.fingerprint import random_prefix
from vecml_async._ingest.options import IngestOptions
from vecml_async._ingest.progress import ProgressCallback
from vecml_async._ingest.report import IngestReport
from vecml_async._ingest.senders import conflicting_ids
from vecml_async._ingest.sparse import SparseFormat
from vecml_async._jobs import UploadJob
from vecml_async._limiter import Budget
from vecml_async._transport import SendStats
from vecml_async.errors import APIError, InvalidInputError
from vecml_async.models import JobStartedResponse, OnInvalid, check_name


class DataEndpoints(ClientCore):
    """``add_data``, ``add_data_batch`` and ``ingest`` (set up by ``AsyncVecML.__init__``)."""

    # (project, collection) -> (vector_type, dim), learnt from init() calls.
    _collections: dict[tuple[str, str], tuple[str, int | None]]

    def _envelope(
        self,
        project_name: str,
        collection_name: str,
        extra_body: Mapping[str, Any] | None = None,
    ) -> Envelope:
        return Envelope.create(self._key.get(), project_name, collection_name, extra_body)

    def collection_dim(self, project_name: str, collection_name: str) -> int | None:
        """The vector dimension of a collection created by this client's ``init``, if known."""
        return self._collections.get((project_name, collection_name), ("", None))[1]

    def collection_type(self, project_name: str, collection_name: str) -> str | None:
        """The vector type of a collection created by this client's ``init``, if known."""
        known = self._collections.get((project_name, collection_name))
        return known[0] if known else None

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
            encoder = ChunkEncoder(
                random_prefix(),
                sparse_dim=dim or DEFAULT_SPARSE_DIM,
                sparse_format=self._adapt.sparse_format,
            )
            return encoder, True
        return ChunkEncoder(random_prefix(), dim=dim), False

    def _own_duplicates(self, err: APIError, ids: Sequence[str]) -> APIError:
        """``err`` again, saying the rows are stored, when it is the refusal of a retry as a
        duplicate of exactly this call's ids on a server whose profile says it rejects
        duplicate ids: the earlier attempt, whose answer was lost, stored them."""
        if self._adapt.duplicate_ids != "reject" or not err.may_have_applied:
            return err
        if conflicting_ids(err) != frozenset(ids):
            return err
        note = (
            "the rows are stored: an earlier attempt of this call, whose answer was lost, "
            "added them (the server rejects duplicate ids)"
        )
        return type(err)(
            f"{err.message}; {note}",
            endpoint=err.endpoint,
            status_code=err.status_code,
            headers=err.headers,
            body=err.body,
            may_have_applied=True,
        )

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
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> UploadJob | None:
        """``/add_data``: one vector. Prefer :meth:`add_data_batch` or :meth:`ingest` for many
        (VecML asks not to loop over this endpoint). Returns the upload job when the server
        starts one, else ``None``.

        Without ``string_id`` the client generates one (``job.string_ids`` has it), so a
        retry after a dropped connection replaces the row instead of adding it twice.
        """
        options = CallOptions(timeout, extra_body, extra_headers)
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
        try:
            answer = await self._post("add_data", fields, options)
        except APIError as err:
            raise self._own_duplicates(err, chunk.ids) from err.__cause__
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
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
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
        options = CallOptions(timeout, extra_body, extra_headers)
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
        envelope = self._envelope(project_name, collection_name, options.extra_body)
        cap = self._adapt.max_request_bytes
        batcher = Batcher(envelope, max_rows=len(chunk), max_bytes=cap)
        batches = [*batcher.add(chunk), batcher.flush()]
        if len(batches) != 2 or not isinstance(batches[0], Batch) or batches[1] is not None:
            raise InvalidInputError(
                f"the request would exceed the {cap:,}-byte cap; use ingest() to split it",
                field="data",
            )
        body = batches[0].body(envelope)
        try:
            sent = await self._send("add_data_batch", body, options)
        except APIError as err:
            raise self._own_duplicates(err, chunk.ids) from err.__cause__
        answer = parse_answer(JobStartedResponse, sent, "add_data_batch")
        job = self.upload_job(answer.job_id)
        job.string_ids = list(chunk.ids)
        return job

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
        sparse_format: SparseFormat | None = None,
        max_rows: int = DEFAULT_MAX_ROWS,
        max_bytes: int = DEFAULT_MAX_BYTES,
        batch_bytes: int | None = None,
        max_memory: int = DEFAULT_MAX_MEMORY,
        concurrency: int = DEFAULT_CONCURRENCY,
        wait: bool = False,
        job_timeout: float | None = None,
        raise_on_error: bool = True,
        on_invalid: OnInvalid = "raise",
        checkpoint: str | os.PathLike[str] | None = None,
        progress: ProgressCallback | str | bool | None = None,
        check_duplicate_ids: bool | None = None,
        max_consecutive_failures: int = DEFAULT_MAX_CONSECUTIVE_FAILURES,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> IngestReport:
        """Send any amount of rows to a collection, as concurrent ``add_data_batch`` requests.

        Rows are encoded once, cut into requests (the whole body counted exactly; never
        over ``max_bytes``, itself under the 200 MB cap), and sent by ``concurrency`` tasks
        under the client's rate limiter. Retries re-send the same bytes with the same ids.
        Memory stays within ``max_memory`` whatever the input size.

        Body sizes adapt: from 1 MiB they grow while ready batches wait for the rate limiter
        (calls are the bottleneck), until the calls keep up with it; a size the server
        refuses (413) or that times out is cut smaller. ``batch_bytes=`` fixes the size.

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
                this client's ``init``), whether it is sparse, and the sparse JSON form
                (default: the one the client's profile says the server takes, else
                ``"pairs"``).
            max_rows / max_bytes: hard per-request limits (``max_bytes`` counts the whole
                body; default: the 198 MB hard cap, 1,000,000 rows).
            batch_bytes: cut every body at this size (``<= max_bytes`` and a quarter of
                ``max_memory``) instead of adapting the size; ``None`` (default): adaptive,
                within ``max_bytes`` and a quarter of ``max_memory``.
            max_memory: the memory the ingest may take (default 256 MiB). The encoded rows
                it holds, the bodies being sent and the rows read ahead, stay under half
                of it (``report.peak_memory`` says how much was held); the other half is
                room for the process around them.
            concurrency: requests in flight at most.
            wait: await every upload job; failed jobs count as failures. Jobs are polled
                while later batches still go out, on the rate limiter's spare calls, so
                only the last few remain once everything is sent
                (``report.waited_after_send``).
            job_timeout: how long a job may stay unfinished once sending is over (counted
                from its first poll or the last send, whichever is later; default: the
                client's ``PollPolicy.upload_timeout``).
            raise_on_error: raise :class:`IngestError` (with the report) when rows failed.
            on_invalid: ``"raise"`` stops at the first invalid row (a row that does not
                encode, or a file line that does not parse; when nothing was sent yet, as
                :class:`InvalidInputError`); ``"skip"`` reports it and goes on.
            checkpoint: a journal path; re-running the same ingest with it resumes. It
                is tied to its input: another input, or a damaged journal, is refused.
            progress: a callback receiving :class:`IngestProgress` after each batch and,
                with ``wait``, each job seen final (return ``False`` to stop sending), or
                ``True``/``"rich"``/``"tqdm"`` for a bar on stderr.
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
        cap = self._adapt.max_request_bytes
        if cap < HARD_MAX_REQUEST_BYTES:  # the profile's server takes less than the library
            max_bytes = min(max_bytes, cap)
        options = IngestOptions.create(
            ids=ids,
            attributes=attributes,
            vector_columns=vector_columns,
            id_column=id_column,
            attribute_columns=attribute_columns,
            file_format=file_format,
            vector_dim=vector_dim,
            sparse=sparse,
            sparse_format=sparse_format or self._adapt.sparse_format,
            max_rows=max_rows,
            max_bytes=max_bytes,
            batch_bytes=batch_bytes,
            max_memory=max_memory,
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
    """What the ingestion pipeline sees of a client (``_ingest.senders.Sender``).

    Its calls use the client's connection pool with the budget the pipeline gives them
    (views of the client's budget, see ``_ingest.turns``).
    """

    def __init__(self, client: DataEndpoints) -> None:
        self._client = client
        self._pollers: dict[int, tuple[Budget, DataEndpoints]] = {}

    @property
    def budget(self) -> Budget:
        return self._client._limiter

    @property
    def poll(self) -> PollPolicy:
        return self._client.poll

    async def send(
        self, endpoint: str, body: EncodedBody, stats: SendStats, budget: Budget
    ) -> dict[str, Any]:
        transport = self._client._open_transport().derive(limiter=budget)
        return await transport.send(endpoint, body, stats)

    def envelope(self, project_name: str, collection_name: str) -> Envelope:
        return self._client._envelope(project_name, collection_name)

    def upload_job(self, job_id: str, budget: Budget) -> UploadJob:
        known = self._pollers.get(id(budget))
        if known is None:
            poller = copy.copy(self._client)
            poller._transport = self._client._open_transport().derive(limiter=budget)
            known = self._pollers[id(budget)] = (budget, poller)
        return known[1].upload_job(job_id)


def _raw_json(fragment: bytes) -> Any:
    return orjson.Fragment(fragment)
