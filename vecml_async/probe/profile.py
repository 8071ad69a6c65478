"""``ServerProfile``: what a probe found out about one server, as versioned JSON.

A profile is data: the answers to the open questions about a server (each field ``None``
when the probe could not tell), plus the evidence of every answer (status, a few headers, a
bounded excerpt of the body). ``AsyncVecML(profile=...)`` adapts the client to it and
``EmulatorSettings.from_profile(...)`` builds an emulator that behaves like that server.

The format is versioned by ``profile_version``. A profile written by a later version of the
library (a higher number) is refused with a clear error rather than half understood; fields
this version does not know are ignored.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

__all__ = [
    "PROFILE_VERSION",
    "AttributeType",
    "DuplicateIds",
    "ErrorAnswer",
    "ErrorKind",
    "Evidence",
    "NameKind",
    "NameRules",
    "Outcome",
    "ProbeAnswer",
    "ServerProfile",
    "SparseEncoding",
    "load_profile",
]

#: The version of the profile format this library writes and reads.
PROFILE_VERSION: Final = 1
#: Characters of a body kept in one piece of evidence.
EXCERPT_LIMIT: Final = 300

DuplicateIds = Literal["overwrite", "reject", "ignore"]
AttributeType = Literal["string", "number", "boolean"]
SparseEncoding = Literal["pairs", "dict", "indices_values", "libsvm"]
NameKind = Literal["project", "collection", "model"]
#: The ordinary errors a probe provokes, one request each.
ErrorKind = Literal[
    "missing_project",
    "missing_collection",
    "bad_name",
    "wrong_dimension",
    "project_exists",
    "missing_job",
]
CategoricalField = Literal["categorical_features", "train_categorical_features", "both", "neither"]
Outcome = Literal["ok", "rate_limited", "server_error", "refused", "transport_error", "not_sent"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class Evidence(_Model):
    """One request of the probe and what came back.

    Attributes:
        endpoint: the endpoint called.
        sent: what was sent, in words (``"a batch with the id 'w' twice"``).
        status: the HTTP status of the last answer, ``None`` when none came.
        outcome: how the client classified it (``ok``, ``refused``, ``rate_limited``, ...).
        excerpt: the start of the answer's body (the key masked), at most 300 characters.
        headers: the answer's headers that matter here (``content-type``, ``retry-after``).
    """

    endpoint: str
    sent: str = ""
    status: int | None = None
    outcome: Outcome = "ok"
    excerpt: str = ""
    headers: dict[str, str] = Field(default_factory=dict)

    def summary(self) -> str:
        """One line: ``/init -> HTTP 404: {"success": false, ...}``."""
        status = f"HTTP {self.status}" if self.status is not None else self.outcome
        text = " ".join(self.excerpt.split())
        if len(text) > 120:
            text = text[:117] + "..."
        return f"/{self.endpoint} -> {status}" + (f": {text}" if text else "")


class ProbeAnswer(_Model):
    """The answer to one question.

    Attributes:
        question: a stable id, e.g. ``"duplicate_ids"``.
        title: the question in words.
        answer: the answer in words (``"reject"``, ``"not determined: ..."``).
        determined: whether the evidence settles it.
        evidence: the requests that answer it.
    """

    question: str
    title: str
    answer: str
    determined: bool = True
    evidence: tuple[Evidence, ...] = ()


class ErrorAnswer(_Model):
    """How the server answered one ordinary error.

    Attributes:
        status: the HTTP status.
        field: the JSON field holding the text (``"error_message"``), ``None`` when the body
            is not a JSON object.
        message: the text, the names the probe sent replaced by ``{project}``,
            ``{collection}``, ``{model}`` and ``{job}``.
    """

    status: int
    field: str | None = None
    message: str = ""

    def pattern(self) -> re.Pattern[str] | None:
        """A case-insensitive pattern that matches this message with any names in it, or
        ``None`` when the message is too generic to tell errors apart (under 6 letters)."""
        text = self.message.strip()
        if sum(ch.isalpha() for ch in re.sub(r"\{\w+\}", "", text)) < 6:
            return None
        parts = re.split(r"\{(?:project|collection|model|job)\}", text)
        return re.compile(".+?".join(re.escape(part) for part in parts), re.IGNORECASE)


class NameRules(_Model):
    """Which names the server accepted for one kind of thing (``None``: not tried)."""

    hyphen: bool | None = None
    length_128: bool | None = None
    length_129: bool | None = None
    unicode: bool | None = None


class ServerProfile(_Model):
    """What one server does where VecML's documentation is silent.

    The top-level fields are the answers (``None`` when the probe could not tell, or did not
    ask: ``--rate`` and ``--size`` are opt-in); ``answers`` holds every question with its
    evidence. Produced by :func:`vecml_async.probe`; read with :meth:`load` /
    :meth:`from_json`, written with :meth:`to_json`.
    """

    profile_version: int = PROFILE_VERSION
    base_url: str | None = None
    probed_at: str | None = None
    library_version: str | None = None
    calls: int | None = None
    elapsed: float | None = None

    # Ordinary errors.
    error_status: Literal["http", "ok"] | None = None
    error_field: str | None = None
    errors: dict[ErrorKind, ErrorAnswer] = Field(default_factory=dict)
    # Data.
    duplicate_ids: DuplicateIds | None = None
    duplicate_ids_in_batch: DuplicateIds | None = None
    attribute_types: tuple[AttributeType, ...] | None = None
    sparse_encodings: tuple[SparseEncoding, ...] | None = None
    sparse_index_base: Literal[0, 1] | None = None
    names: dict[NameKind, NameRules] = Field(default_factory=dict)
    upload_status_fields: tuple[str, ...] | None = None
    upload_status_values: tuple[str, ...] | None = None
    # AutoML.
    accepts_auto_training_mode: bool | None = None
    categorical_features_field: CategoricalField | None = None
    model_infos_shape: Literal["list", "dict"] | None = None
    # Limits (opt-in probes).
    rate_limit_status: int | None = None
    rate_limit_body: Literal["text", "json"] | None = None
    rate_limit_text: str | None = None
    rate_limit_retry_after: float | None = None
    calls_per_second: float | None = Field(default=None, gt=0)
    max_body_bytes: int | None = Field(default=None, gt=0)
    oversize_status: int | None = None

    answers: tuple[ProbeAnswer, ...] = ()
    #: Projects the probe created and could not delete (empty when it cleaned up).
    left_behind: tuple[str, ...] = ()

    @field_validator("profile_version")
    @classmethod
    def _known_version(cls, value: int) -> int:
        if value > PROFILE_VERSION:
            raise ValueError(
                f"profile_version {value} was written by a newer vecml-async (this one reads "
                f"up to {PROFILE_VERSION}); upgrade, or probe the server again"
            )
        if value < 1:
            raise ValueError(f"profile_version must be >= 1, got {value}")
        return value

    @classmethod
    def from_json(cls, text: str | bytes) -> ServerProfile:
        """A profile from its JSON text (``ValueError`` when it is not one)."""
        return cls.model_validate_json(text)

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ServerProfile:
        """A profile from a JSON file (written by ``vecml-async probe --json``)."""
        return cls.from_json(Path(path).read_bytes())

    def to_json(self) -> str:
        """The profile as indented JSON (what ``vecml-async probe --json`` prints)."""
        return self.model_dump_json(indent=2)

    def answer(self, question: str) -> ProbeAnswer | None:
        """The answer to ``question`` (its id), if the probe asked it."""
        return next((a for a in self.answers if a.question == question), None)


def load_profile(
    value: ServerProfile | Mapping[str, Any] | str | os.PathLike[str],
) -> ServerProfile:
    """A profile given as itself, a mapping of its fields, or the path of a JSON file.

    Raises ``ValueError`` (pydantic's ``ValidationError``) for a malformed profile and
    ``OSError`` for an unreadable file.
    """
    if isinstance(value, ServerProfile):
        return value
    if isinstance(value, Mapping):
        return ServerProfile.model_validate(dict(value))
    if isinstance(value, (str, os.PathLike)):
        return ServerProfile.load(value)
    raise TypeError(
        f"a profile is a ServerProfile, a mapping or a path, got {type(value).__name__}"
    )
