"""What one server's refusals look like, beyond the documented defaults (pure).

:class:`AnswerRules` is what the classification of answers (:mod:`vecml_async._http_errors`)
learns from a server profile: statuses and texts that mark the rate-limit answer there, and
the messages and statuses of its ordinary errors with the error class each one means. The
default rules add nothing: the rate-limit answer is HTTP 400 (or 429) with ``Request limit
reached``, and refusals are classified by their status, then by their words.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from vecml_async.errors import APIError

__all__ = ["DEFAULT_RULES", "RATE_LIMIT_TEXT", "AnswerRules"]

RATE_LIMIT_TEXT: Final = "Request limit reached"
_RATE_LIMIT_LOWER: Final = RATE_LIMIT_TEXT.lower()


@dataclass(frozen=True)
class AnswerRules:
    """How to read one server's refusals.

    Attributes:
        rate_limit_statuses: statuses whose body, carrying a rate-limit text, is the
            rate-limit answer (429 always is).
        rate_limit_texts: texts (lower case) that mark the rate-limit answer besides
            ``request limit reached``.
        messages: error messages of this server (as patterns) and the class each means;
            the first that matches a refusal's whole text decides.
        statuses: HTTP statuses that mean one error class on this server.
    """

    rate_limit_statuses: frozenset[int] = frozenset({400})
    rate_limit_texts: tuple[str, ...] = ()
    messages: tuple[tuple[re.Pattern[str], type[APIError]], ...] = ()
    statuses: tuple[tuple[int, type[APIError]], ...] = ()

    def is_rate_limit_text(self, text: str) -> bool:
        """Whether ``text`` carries a rate-limit answer, in any letter case."""
        lowered = text.lower()
        return _RATE_LIMIT_LOWER in lowered or any(t in lowered for t in self.rate_limit_texts)

    def is_rate_limit(self, status: int, text: str) -> bool:
        """Whether an answer of ``status`` with ``text`` is the rate-limit answer."""
        return status == 429 or (
            status in self.rate_limit_statuses and self.is_rate_limit_text(text)
        )

    def refusal_class(self, status: int, message: str) -> type[APIError] | None:
        """The class this server's own rules give a refusal, or ``None`` (the defaults
        decide)."""
        text = message.strip()
        for pattern, cls in self.messages:
            if pattern.fullmatch(text):
                return cls
        return next((cls for code, cls in self.statuses if code == status), None)


DEFAULT_RULES: Final = AnswerRules()
