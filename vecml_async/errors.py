"""The exception hierarchy of vecml_async.

Every failure the library reports is a :class:`VecMLError`::

    VecMLError
      APIError                 the server refused: endpoint, status_code, headers, body
        AuthenticationError    the key was refused
        NotFoundError          project, collection, model or job does not exist
        ConflictError          the thing to create already exists
        RateLimitError         'Request limit reached' until the rate-limit deadline passed
        RequestTooLargeError   the server refused the body size
        ServerError            5xx after the retries ran out
      TransportError           connection failures and timeouts
      ClientClosedError        the client was used after aclose()
      JobError                 job_id, last status
        JobFailedError         the server reported the job failed
        JobTimeoutError        the deadline passed first (also a TimeoutError)
      IngestError              carries the IngestReport of a partly failed ingest
      InvalidInputError        raised before anything is sent (also a ValueError)

One shape: every error has ``.message`` (what went wrong, without the prefix ``str(err)``
adds), its constructor takes the message first and every other field by keyword, and every
error pickles with its attributes (multiprocessing, task queues).

Messages never contain the API key: what the server sends back is redacted once, when the
transport reads it, before any error is built from it. Text is bounded: a message holds at
most :data:`MESSAGE_LIMIT` characters of server text, ``APIError.body`` at most
:data:`BODY_LIMIT` characters.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    from vecml_async._ingest.report import IngestReport

#: Characters of server text kept in a message (the rest is cut, and the cut is said).
MESSAGE_LIMIT: Final = 500
#: Characters of an answer's body kept on an :class:`APIError` (the transport reads at most
#: this many bytes of a refusal).
BODY_LIMIT: Final = 64 * 1024
#: Characters of an id or status shown in a job error's message.
_VALUE_LIMIT: Final = 100
_PLAIN: Final = re.compile(r"[\w.:-]+")


def excerpt(text: str, limit: int = MESSAGE_LIMIT) -> str:
    """``text`` cut to ``limit`` characters, saying how much was cut."""
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text) - limit:,} more characters)"


def _shown(value: str | None) -> str:
    """A server-supplied id or status as it appears in a message: as is when it is a plain
    word (``in_progress``), else quoted and bounded."""
    if value is None:
        return "unknown"
    if len(value) <= _VALUE_LIMIT and _PLAIN.fullmatch(value):
        return value
    return repr(excerpt(value, _VALUE_LIMIT))


def _rebuild(cls: type[VecMLError], args: tuple[Any, ...]) -> VecMLError:
    """Unpickling: a bare instance; ``__dict__`` (every attribute) is restored by pickle."""
    obj = cls.__new__(cls, *args)
    obj.args = args  # OSError subclasses (JobTimeoutError) set args in __init__, not __new__
    return obj


class VecMLError(Exception):
    """Base class of every error raised by vecml_async.

    Attributes:
        message: what went wrong (``str(err)`` may add where: the endpoint, the field).
    """

    def __init__(self, message: str = "") -> None:
        self.message = message
        super().__init__(self._text())

    def _text(self) -> str:
        """The full text of ``str(err)`` (subclasses add their context)."""
        return self.message

    def __reduce__(self) -> tuple[Any, ...]:
        # Keyword-only constructors cannot be called with ``args``: rebuild an instance and
        # let pickle restore its attributes.
        return (_rebuild, (type(self), self.args), self.__dict__)


class APIError(VecMLError):
    """The server answered, and the answer was a refusal.

    Attributes:
        endpoint: the endpoint called, e.g. ``"init"``.
        status_code: the HTTP status of the answer.
        message: the server's error text (``error_message`` or the plain-text body), at most
            :data:`MESSAGE_LIMIT` characters, plus a hint where one helps.
        headers: the answer's headers, lower-case names, credentials dropped, key masked.
        body: the answer's body as text, key masked, at most :data:`BODY_LIMIT` characters
            (``None`` when there was none).
        may_have_applied: an earlier attempt of this call may have been applied by the server
            (a dropped connection or a 5xx before this answer).
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        status_code: int,
        headers: Mapping[str, str] | None = None,
        body: str | None = None,
        may_have_applied: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.status_code = status_code
        self.headers = dict(headers) if headers is not None else {}
        self.body = excerpt(body, BODY_LIMIT) if body is not None else None
        self.may_have_applied = may_have_applied
        super().__init__(message)

    def _text(self) -> str:
        return f"/{self.endpoint} failed (HTTP {self.status_code}): {self.message}"


class AuthenticationError(APIError):
    """The API key was missing, unknown or refused."""


class NotFoundError(APIError):
    """A project, collection, model or job named in the request does not exist."""


class ConflictError(APIError):
    """The project, collection or model to create already exists."""


class RateLimitError(APIError):
    """The server kept answering ``Request limit reached`` until the call's rate-limit
    deadline (``RetryPolicy.rate_limit_deadline``) passed."""


class RequestTooLargeError(APIError):
    """The server refused the request body as too large (the documented cap is 200 MB)."""


class ServerError(APIError):
    """The server kept failing (HTTP 5xx) until the retries ran out."""


class TransportError(VecMLError):
    """The request could not be completed: connection refused or dropped, or a timeout.

    Attributes:
        endpoint: the endpoint being called.
        url: the URL called (``None`` when unknown).
        may_have_applied: the request may have reached the server and been applied.
    """

    def __init__(
        self,
        message: str,
        *,
        endpoint: str,
        url: str | None = None,
        may_have_applied: bool = False,
    ) -> None:
        self.endpoint = endpoint
        self.url = url
        self.may_have_applied = may_have_applied
        super().__init__(message)

    def _text(self) -> str:
        return f"/{self.endpoint}: {self.message}"


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


class JobFailedError(JobError):
    """The server reported the job as ``failed``.

    Attributes:
        error: the server's error text for the job.
    """

    def __init__(self, message: str | None = None, *, job_id: str, error: str) -> None:
        self.error = error
        text = message or f"job {_shown(job_id)} failed: {excerpt(error)}"
        super().__init__(text, job_id=job_id, status="failed")


class JobTimeoutError(JobError, TimeoutError):
    """The job did not reach a final status before the deadline. The job itself goes on.

    Attributes:
        timeout: the deadline, in seconds.
        known_status: whether ``status`` is one of the documented statuses (an unknown one
            is named as such in the message).
    """

    def __init__(
        self,
        message: str | None = None,
        *,
        job_id: str,
        status: str | None,
        timeout: float,
        known_status: bool = True,
    ) -> None:
        self.timeout = timeout
        self.known_status = known_status
        if message is None:
            unknown = "" if known_status else " (a status this client does not know)"
            message = f"job {_shown(job_id)} still {_shown(status)}{unknown} after {timeout:g} s"
        super().__init__(message, job_id=job_id, status=status)


class IngestError(VecMLError):
    """An ingest finished with failures. ``report`` says what landed and what did not.

    ``report.failed_ids`` lists every row id that is not known to be on the server, and
    ``report.failed_rows()`` gives those rows back so they can be passed to ``ingest`` again.
    """

    def __init__(self, report: IngestReport, *, message: str | None = None) -> None:
        self.report = report
        super().__init__(message or _ingest_summary(report))


def _ingest_summary(report: IngestReport) -> str:
    first = report.failures[0].error if report.failures else "unknown error"
    text = (
        f"ingest into {report.project_name}/{report.collection_name}: "
        f"{report.failed_row_count} of {report.rows_total} rows failed in "
        f"{len(report.failures)} batch(es)"
    )
    if report.stopped_at is not None:
        unread = "an unknown number of" if report.rows_unread is None else report.rows_unread
        text += f"; reading stopped at row {report.stopped_at}, {unread} rows unread"
    return f"{text}; first error: {first}"


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
        super().__init__(message)

    def _text(self) -> str:
        where = self.field
        if self.index is not None:
            where += f"[{self.index}]"
        if self.row_id is not None:
            where += f" (id {self.row_id!r})"
        return f"{where}: {self.message}"


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
