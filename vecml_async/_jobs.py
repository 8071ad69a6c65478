"""Job futures: awaitable handles on server work (uploads and AutoML training).

``await job`` polls the job's status endpoint (through the client's limiter) with a growing,
jittered interval until the job is ``finished`` (returns the final status) or ``failed``
(raises :class:`JobFailedError`); statuses are compared without regard to letter case, and a
status none of ``pending``, ``in_progress``, ``finished``, ``failed`` is logged once (a warning)
and named in the :class:`JobTimeoutError` if the deadline passes. Every wait has a deadline
(:class:`JobTimeoutError`; the job itself goes on). Cancelling the awaiting task stops the
polling: nothing runs in the background. A job is rebuilt from its id alone, e.g. in another
process, with ``client.upload_job(job_id)`` / ``client.training_job(job_id)``.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Awaitable, Callable, Generator
from typing import Any, Generic, TypeVar

import anyio

from vecml_async._config import PollPolicy
from vecml_async.errors import JobFailedError, JobTimeoutError, excerpt
from vecml_async.models import JOB_STATUSES, TrainingStatus, UploadStatus

logger = logging.getLogger("vecml_async")

StatusT = TypeVar("StatusT", UploadStatus, TrainingStatus)


class _Unset:
    def __repr__(self) -> str:
        return "<default>"


DEFAULT: Any = _Unset()


class Job(Generic[StatusT]):
    """A handle on one server job. Await it, or call :meth:`wait` with a deadline."""

    kind = "job"

    def __init__(
        self,
        job_id: str,
        fetch: Callable[[str], Awaitable[StatusT]],
        poll: PollPolicy,
        default_timeout: float,
        *,
        redact: Callable[[str], str] | None = None,
    ) -> None:
        self.job_id = job_id
        self._fetch: Callable[[str], Awaitable[StatusT]] = fetch
        self._poll = poll
        self._default_timeout = default_timeout
        # Masks the key in the server's failure text before it goes into a JobFailedError.
        self._redact: Callable[[str], str] = redact if redact is not None else str
        self._rng = random.Random()
        self._told_unknown = False
        self.last_status: StatusT | None = None

    def __repr__(self) -> str:
        status = self.last_status.status if self.last_status is not None else None
        return f"{type(self).__name__}(job_id={self.job_id!r}, status={status!r})"

    def __await__(self) -> Generator[Any, None, StatusT]:
        return self.wait().__await__()

    @property
    def done(self) -> bool:
        """Whether the last status seen was final (``finished`` or ``failed``)."""
        return self.last_status is not None and self.last_status.is_done

    async def refresh(self) -> StatusT:
        """Poll the status once and return it (``failed`` is returned, not raised)."""
        status = await self._fetch(self.job_id)
        self.last_status = status
        return status

    async def wait(self, timeout: float | None = DEFAULT) -> StatusT:
        """Poll until the job is final; return the ``finished`` status.

        Args:
            timeout: deadline in seconds. Defaults to the client's ``PollPolicy`` value for
                this kind of job; ``None`` waits without a deadline (not recommended).

        Raises:
            JobFailedError: the server reported ``failed`` (with its error text).
            JobTimeoutError: the deadline passed first; the job goes on on the server.
            APIError / TransportError: a status request failed after its retries.
        """
        limit = self._default_timeout if timeout is DEFAULT else timeout
        if limit is None:
            return await self._poll_until_done()
        with anyio.move_on_after(limit) as scope:
            return await self._poll_until_done()
        assert scope.cancelled_caught
        last = self.last_status
        raise JobTimeoutError(
            job_id=self.job_id,
            status=last.status if last is not None else None,
            timeout=limit,
            known_status=last is None or last.is_known,
        )

    async def _poll_until_done(self) -> StatusT:
        polls = 0
        while True:
            status = await self.refresh()
            polls += 1
            if status.is_finished:
                return status
            if status.is_failed:
                text = status.error or status.error_message or "no error text given"
                raise JobFailedError(job_id=self.job_id, error=self._redact(text))
            if not status.is_known and not self._told_unknown:
                self._told_unknown = True
                logger.warning(
                    "job %r: status %r is none of %s; polling on until the deadline",
                    excerpt(self.job_id, 100),
                    excerpt(status.status, 100),
                    ", ".join(JOB_STATUSES),
                )
            await anyio.sleep(self._poll.interval(polls, self._rng))


class UploadJob(Job[UploadStatus]):
    """An upload job (``add_data_batch``, ``add_data``, ``upload``); polls
    ``get_upload_data_status``."""

    kind = "upload"
    #: The ids of the rows this job adds, when the client generated or sent them
    #: (``add_data_batch``, ``add_data``); ``None`` for jobs rebuilt from an id or ``upload``.
    string_ids: list[str] | None = None


class TrainingJob(Job[TrainingStatus]):
    """An AutoML training job; polls ``get_automl_training_status``. Its final status carries
    ``validation_metric``."""

    kind = "training"
