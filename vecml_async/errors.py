"""The exception hierarchy of vecml_async.

Every failure the library reports is a :class:`VecMLError`::

    VecMLError
      APIError                 the server refused: endpoint, status_code, message
        AuthenticationError    the key was refused
        NotFoundError          project, collection, model or job does not exist
        ConflictError          the thing to create already exists
        RateLimitError         'Request limit reached' after the retries ran out
        RequestTooLargeError   the server refused the body size
        ServerError            5xx after the retries ran out
      TransportError           connection failures and timeouts
      ClientClosedError        the client was used after aclose()
      JobError                 job_id, last status
        JobFailedError         the server reported the job failed
        JobTimeoutError        the deadline passed first (also a TimeoutError)
      IngestError              carries the IngestReport of a partly failed ingest
      InvalidInputError        raised before anything is sent (also a ValueError)

Messages never contain the API key: text that comes from the server is passed through
:func:`vecml_async._redact.redact` before it is stored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from vecml_async._ingest.report import IngestReport


class VecMLError(Exception):
    """Base class of every error raised by vecml_async."""


class APIError(VecMLError):
    """The server answered, and the answer was a refusal.

    Attributes:
        endpoint: the endpoint called, e.g. ``"init"``.
        status_code: the HTTP status of the answer.
        message: the server's error text (``error_message`` or the plain-text body).
    """

    def __init__(self, message: str, *, endpoint: str, status_code: int) -> None:
        self.endpoint = endpoint
        self.status_code = status_code
        self.message = message
        super().__init__(f"/{endpoint} failed (HTTP {status_code}): {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_api_error, (type(self), self.message, self.endpoint, self.status_code))


def _rebuild_api_error(
    cls: type[APIError], message: str, endpoint: str, status_code: int
) -> APIError:
    return cls(message, endpoint=endpoint, status_code=status_code)


class AuthenticationError(APIError):
    """The API key was missing, unknown or refused."""


class NotFoundError(APIError):
    """A project, collection, model or job named in the request does not exist."""


class ConflictError(APIError):
    """The project, collection or model to create already exists."""


class RateLimitError(APIError):
    """The server kept answering ``Request limit reached`` until the retries ran out."""


class RequestTooLargeError(APIError):
    """The server refused the request body as too large (the documented cap is 200 MB)."""


class ServerError(APIError):
    """The server kept failing (HTTP 5xx) until the retries ran out."""


class TransportError(VecMLError):
    """The request could not be completed: connection refused or dropped, or a timeout.

    Attributes:
        endpoint: the endpoint being called.
    """

    def __init__(self, message: str, *, endpoint: str) -> None:
        self.endpoint = endpoint
        super().__init__(f"/{endpoint}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        text = str(self).split(": ", 1)[-1]
        return (_rebuild_transport_error, (text, self.endpoint))


def _rebuild_transport_error(message: str, endpoint: str) -> TransportError:
    return TransportError(message, endpoint=endpoint)


class ClientClosedError(VecMLError, RuntimeError):
    """The client was used after ``aclose()`` (or after its ``async with`` block ended)."""


class JobError(VecMLError):
    """Base class of job outcomes that are not success.

    Attributes:
        job_id: the job's id.
        status: the last status the server reported (``"failed"``, ``"in_progress"``, ...),
            or ``None`` when no status was read yet.
    """

    def __init__(self, message: str, *, job_id: str, status: str | None) -> None:
        self.job_id = job_id
        self.status = status
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_job_error, (type(self), str(self), self.job_id, self.status))


def _rebuild_job_error(
    cls: type[JobError], message: str, job_id: str, status: str | None
) -> JobError:
    return cls(message, job_id=job_id, status=status)


class JobFailedError(JobError):
    """The server reported the job as ``failed``.

    Attributes:
        error: the server's error text for the job.
    """

    def __init__(self, job_id: str, error: str) -> None:
        self.error = error
        super().__init__(f"job {job_id} failed: {error}", job_id=job_id, status="failed")

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.job_id, self.error))


class JobTimeoutError(JobError, TimeoutError):
    """The job did not reach a final status before the deadline. The job itself goes on."""

    def __init__(self, job_id: str, status: str | None, timeout: float) -> None:
        self.timeout = timeout
        super().__init__(
            f"job {job_id} still {status or 'unknown'} after {timeout:g} s",
            job_id=job_id,
            status=status,
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.job_id, self.status, self.timeout))


class IngestError(VecMLError):
    """An ingest finished with failures. ``report`` says what landed and what did not.

    ``report.failed_ids`` lists every row id that is not known to be on the server, and
    ``report.failed_rows()`` gives those rows back so they can be passed to ``ingest`` again.
    """

    def __init__(self, report: IngestReport) -> None:
        self.report = report
        failed = report.failed_row_count
        first = report.failures[0].error if report.failures else "unknown error"
        super().__init__(
            f"ingest into {report.project_name}/{report.collection_name}: {failed} of "
            f"{report.rows_total} rows failed in {len(report.failures)} batch(es); "
            f"first error: {first}"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.report,))


class InvalidInputError(VecMLError, ValueError):
    """Input was refused before anything was sent.

    Attributes:
        message: what is wrong, without the field and row prefix.
        field: the request field at fault (``"data"``, ``"model_name"``, ...).
        index: the row index at fault, when the error concerns one row.
        row_id: the row's string id, when it has one.
    """

    def __init__(
        self,
        message: str,
        *,
        field: str,
        index: int | None = None,
        row_id: str | None = None,
    ) -> None:
        self.field = field
        self.index = index
        self.row_id = row_id
        self.message = message
        where = field
        if index is not None:
            where += f"[{index}]"
        if row_id is not None:
            where += f" (id {row_id!r})"
        super().__init__(f"{where}: {message}")

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_invalid, (self.message, self.field, self.index, self.row_id))


def _rebuild_invalid(
    message: str, field: str, index: int | None, row_id: str | None
) -> InvalidInputError:
    return InvalidInputError(message, field=field, index=index, row_id=row_id)


__all__ = [
    "APIError",
    "AuthenticationError",
    "ClientClosedError",
    "ConflictError",
    "IngestError",
    "InvalidInputError",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "NotFoundError",
    "RateLimitError",
    "RequestTooLargeError",
    "ServerError",
    "TransportError",
    "VecMLError",
]
