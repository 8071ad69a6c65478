"""What a server profile changes in the client (``AsyncVecML(profile=...)``).

:class:`Adaptation` is read once from a :class:`~vecml_async.probe.ServerProfile`; each
field is the client's default wherever the profile holds no answer:

* ``rules``: the rate-limit answer's status and text, and the messages and statuses of the
  server's ordinary errors with the error class each means (so ``exist_ok``,
  ``missing_ok`` and the retries of creations read that server's answers right);
* ``max_request_bytes``: the request cap, 1% under the largest body the server took, never
  above the library's own cap;
* ``sparse_format``: the JSON form of sparse vectors, the first the server took among
  ``pairs``, ``dict``, ``indices_values``, ``libsvm``;
* ``allow_auto_training_mode``: whether ``training_mode="auto"`` is sent;
* ``calls_per_second``: the client's ceiling;
* ``duplicate_ids``: what a repeated id does on that server (it names a refused retry of
  ``add_data_batch`` / ``add_data`` as its own first attempt's rows).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from vecml_async._config import HARD_MAX_REQUEST_BYTES
from vecml_async._server_rules import DEFAULT_RULES, AnswerRules
from vecml_async.errors import APIError, ConflictError, NotFoundError

if TYPE_CHECKING:
    from vecml_async.probe.profile import ServerProfile

__all__ = ["NO_ADAPTATION", "Adaptation"]

#: The error class each ordinary error the probe provokes means.
_KIND_CLASSES: Final[dict[str, type[APIError]]] = {
    "missing_project": NotFoundError,
    "missing_collection": NotFoundError,
    "missing_job": NotFoundError,
    "project_exists": ConflictError,
    "bad_name": APIError,
    "wrong_dimension": APIError,
}
#: Statuses a profile does not remap: too generic to mean one class, or authentication's.
_KEPT_STATUSES: Final = frozenset({200, 400, 401, 403})
_SPARSE_PREFERENCE: Final = ("pairs", "dict", "indices_values", "libsvm")


@dataclass(frozen=True)
class Adaptation:
    """The client's settings a profile determines (see the module docstring)."""

    rules: AnswerRules = DEFAULT_RULES
    max_request_bytes: int = HARD_MAX_REQUEST_BYTES
    sparse_format: str = "pairs"
    allow_auto_training_mode: bool | None = None
    calls_per_second: float | None = None
    duplicate_ids: str | None = None

    @classmethod
    def of(cls, profile: ServerProfile | None) -> Adaptation:
        if profile is None:
            return NO_ADAPTATION
        cap = HARD_MAX_REQUEST_BYTES
        if profile.max_body_bytes is not None:
            cap = min(cap, profile.max_body_bytes - profile.max_body_bytes // 100)
        forms = profile.sparse_encodings or ()
        return cls(
            rules=_rules(profile),
            max_request_bytes=cap,
            sparse_format=next((f for f in _SPARSE_PREFERENCE if f in forms), "pairs"),
            allow_auto_training_mode=profile.accepts_auto_training_mode,
            calls_per_second=profile.calls_per_second,
            duplicate_ids=profile.duplicate_ids,
        )


NO_ADAPTATION: Final = Adaptation()


def _rules(profile: ServerProfile) -> AnswerRules:
    """The answer rules of a profile: its rate-limit answer, its errors' texts and statuses."""
    statuses = set(DEFAULT_RULES.rate_limit_statuses)
    texts: tuple[str, ...] = ()
    if profile.rate_limit_status is not None:
        statuses.add(profile.rate_limit_status)
    if profile.rate_limit_text:
        texts = (profile.rate_limit_text.strip().rstrip(".!").lower(),)
    messages = []
    by_status: dict[int, set[type[APIError]]] = {}
    for kind, answer in profile.errors.items():
        cls = _KIND_CLASSES[kind]
        pattern = answer.pattern()
        if pattern is not None:
            messages.append((pattern, cls))
        by_status.setdefault(answer.status, set()).add(cls)
    specific = tuple(
        (status, classes.pop())
        for status, classes in sorted(by_status.items())
        if len(classes) == 1 and status not in _KEPT_STATUSES and status < 500
    )
    return AnswerRules(
        rate_limit_statuses=frozenset(statuses),
        rate_limit_texts=texts,
        messages=tuple(messages),
        statuses=specific,
    )
