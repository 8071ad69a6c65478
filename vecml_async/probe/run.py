"""The state one probe shares between its questions: the scratch names, the session, what was
found, and the jobs still to check.

A question is a small async function of a :class:`ProbeRun`: it sends its requests through
``run.session``, notes what later questions need (job ids, replies) and adds its answers to
``run.findings`` (a :class:`~vecml_async.probe.profile.ProbeAnswer` each, plus the profile
fields they settle).
"""

from __future__ import annotations

import dataclasses
import secrets
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Final

import anyio

from vecml_async.errors import NotFoundError
from vecml_async.probe.profile import Evidence, NameKind, ProbeAnswer
from vecml_async.probe.session import ProbeSession, Reply

__all__ = ["APPLICATION", "DIM", "Findings", "ProbeRun", "Scratch"]

#: The ``application`` of the projects the probe creates.
APPLICATION: Final = "Machine Learning"
#: The dimension of the probe's dense collections.
DIM: Final = 2
#: Job statuses after which a job does not change.
FINAL: Final = ("finished", "failed")


@dataclass(frozen=True)
class Scratch:
    """The names of one probe: a project of its own, and everything inside it."""

    token: str = field(default_factory=lambda: secrets.token_hex(4))
    dense: str = "probe-dense"
    dups: str = "probe-dups"
    attrs: str = "probe-attrs"
    sparse: str = "probe-sparse"
    model_doc: str = "probe-model-doc"
    model_alias: str = "probe-model-alias"
    model_auto: str = "probe-model-auto"

    def underscored(self) -> Scratch:
        """The same names with ``_`` for ``-``, for a server that refuses hyphens."""
        names = {
            f.name: getattr(self, f.name).replace("-", "_")
            for f in dataclasses.fields(self)
            if f.name != "token"
        }
        return dataclasses.replace(self, **names)

    @property
    def prefix(self) -> str:
        return f"vecml-async-probe-{self.token}"

    @property
    def project(self) -> str:
        return self.prefix

    @property
    def fallback_project(self) -> str:
        """The project's name without hyphens, for a server that refuses them."""
        return self.prefix.replace("-", "_")

    def templated(self, text: str, project: str) -> str:
        """``text`` with the names the probe sent replaced by ``{project}``, ``{collection}``,
        ``{model}`` and ``{job}`` (longest first, so a name inside another is not cut)."""
        names = {
            project: "{project}",
            self.missing_project: "{project}",
            self.missing_collection: "{collection}",
            self.missing_job: "{job}",
            self.dense: "{collection}",
        }
        for name in sorted(names, key=len, reverse=True):
            text = text.replace(name, names[name])
        return text

    @property
    def missing_project(self) -> str:
        return f"{self.prefix}-missing"

    @property
    def missing_collection(self) -> str:
        return "probe-missing"

    @property
    def missing_job(self) -> str:
        return f"{self.prefix}-missing_UploadJob"


@dataclass
class Findings:
    """The answers so far, and the profile fields they settle."""

    fields: dict[str, Any] = field(default_factory=dict)
    answers: list[ProbeAnswer] = field(default_factory=list)

    def add(
        self,
        question: str,
        title: str,
        answer: str,
        evidence: Iterable[Evidence | Reply] = (),
        *,
        determined: bool = True,
        **profile_fields: Any,
    ) -> None:
        """Record one answer; ``profile_fields`` are set only when it is ``determined``."""
        kept = tuple(e.evidence if isinstance(e, Reply) else e for e in evidence)
        if not determined and any(e.outcome == "not_sent" for e in kept):
            answer += " (some requests were not sent: the probe's bound on calls was reached)"
        self.answers.append(
            ProbeAnswer(
                question=question, title=title, answer=answer, determined=determined, evidence=kept
            )
        )
        if determined:
            self.fields.update(profile_fields)

    def unknown(
        self, question: str, title: str, why: str, evidence: Iterable[Evidence | Reply] = ()
    ) -> None:
        """Record a question the probe could not settle, and why."""
        self.add(question, title, f"not determined: {why}", evidence, determined=False)


#: Called with the final status of a job once the sweep sees it (``None``: never final).
JobCheck = Callable[[dict[str, Any] | None, Reply | None], None]


@dataclass
class ProbeRun:
    """Everything one probe's questions share."""

    session: ProbeSession
    scratch: Scratch
    findings: Findings = field(default_factory=Findings)
    project: str = ""
    #: Projects the probe created and has not deleted yet (deleted by the cleanup).
    projects: list[str] = field(default_factory=list)
    #: Replies that later questions read, by a short label.
    replies: dict[str, Reply] = field(default_factory=dict)
    #: Job ids by label (``"main"``, ``"train:doc"``, ...).
    jobs: dict[str, str] = field(default_factory=dict)
    #: Final job statuses seen, by job id.
    job_status: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Jobs to check once before the end, each with what to do with its status.
    checks: list[tuple[str, JobCheck]] = field(default_factory=list)
    training_timeout: float = 30.0
    #: Whether the probe's own names with hyphens were taken, per kind of name.
    hyphens: dict[NameKind, bool | None] = field(default_factory=dict)

    def fields(self, collection: str | None = None, **more: Any) -> dict[str, Any]:
        """Request fields naming the scratch project (and ``collection``)."""
        base: dict[str, Any] = {"project_name": self.project}
        if collection is not None:
            base["collection_name"] = collection
        return {**base, **more}

    async def call(self, endpoint: str, fields: dict[str, Any], sent: str) -> Reply:
        return await self.session.call(endpoint, fields, sent=sent)

    async def delete_project(self, name: str, *, cleanup: bool = False) -> Reply:
        """Delete a project the probe made; forget it once it is gone."""
        reply = await self.session.call(
            "delete_project",
            {"project_name": name},
            sent="a project the probe made",
            cleanup=cleanup,
        )
        gone = reply.ok or isinstance(reply.error, NotFoundError)
        if gone and name in self.projects:
            self.projects.remove(name)
        return reply

    def check_later(self, label: str, job_id: str, check: JobCheck) -> None:
        """Check job ``job_id`` in the final sweep and pass its status to ``check``."""
        self.jobs[label] = job_id
        self.checks.append((job_id, check))

    async def poll(
        self, endpoint: str, job_id: str, *, polls: int, first_wait: float = 0.0
    ) -> list[Reply]:
        """Poll a job until it is final, at most ``polls`` times, the interval growing from
        0.25 s to 2 s; the replies in order (the last one holds the latest status)."""
        replies: list[Reply] = []
        wait = first_wait
        for _ in range(polls):
            if wait > 0:
                await anyio.sleep(wait)
            reply = await self.call(endpoint, {"job_id": job_id}, "the job's id")
            replies.append(reply)
            status = status_of(reply)
            if status in FINAL or not reply.ok:
                if reply.ok:
                    self.job_status[job_id] = dict(reply.data or {})
                break
            wait = min(2.0, max(0.25, wait * 2))
        return replies


def status_of(reply: Reply | None) -> str | None:
    """The ``status`` of a job status answer, lower case, or ``None``."""
    if reply is None or reply.data is None:
        return None
    value = reply.data.get("status")
    return value.lower() if isinstance(value, str) else None


def job_id_of(reply: Reply) -> str | None:
    """The ``job_id`` of an answer that started a job, or ``None``."""
    value = (reply.data or {}).get("job_id")
    return value if isinstance(value, str) and value else None


Question = Callable[[ProbeRun], Awaitable[None]]
