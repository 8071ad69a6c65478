"""Keeping the API key out of logs, messages, reprs and printouts.

What the server sends back passes through :meth:`Secret.scrub` once, at the boundary (the
transport, right after reading an answer), before it is stored in any object, message, log
line or printout: every string is masked and echoed ``user_api_key`` fields are dropped.

The masking rule (:meth:`Secret.redact`):

* a key of at least :data:`MIN_SUBSTRING_KEY` characters is masked wherever it occurs, even
  glued to other text (a long key inside a longer word is still the key);
* a shorter key is masked only where it stands as a token: not preceded or followed by a
  letter, a digit, ``_`` or ``-``. With the key ``local``, ``Project local_proj exists`` and
  ``'localhost:8766'`` stay as they are, and ``Invalid key 'local'`` reads
  ``Invalid key '***'``. (A short key that is also an ordinary word is masked where that word
  stands alone: leaking is worse than an odd message.)

The JSON-escaped and percent-encoded spellings of the key are masked the same way.

httpx and httpcore log what the server sent (httpcore's DEBUG lines hold every response
header, httpx's INFO line the reason phrase): while a client is open, :func:`guard_http_logs`
masks its key in their records too.
"""

from __future__ import annotations

import json
import logging
import re
import urllib.parse
from collections.abc import Mapping
from typing import Any, Final

MASK: Final = "***"
#: Keys at least this long are masked anywhere; shorter ones only as whole tokens.
MIN_SUBSTRING_KEY: Final = 16
#: The request field that carries the key; a server that echoes it back has it dropped.
KEY_FIELD: Final = "user_api_key"
#: Response headers never kept, whatever their value.
SENSITIVE_HEADERS: Final = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)
_TOKEN_CHARS = r"[\w-]"
_KEY_FIELD_BYTES = re.compile(rb"(?i)user_api_key")


def _spellings(secret: str) -> list[str]:
    """The key as it may appear in text: as is, JSON-escaped, percent-encoded."""
    forms = {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        urllib.parse.quote(secret, safe=""),
    }
    return sorted((f for f in forms if f), key=len, reverse=True)


def _pattern(secret: str) -> re.Pattern[str] | None:
    if not secret:
        return None
    alternatives = "|".join(re.escape(form) for form in _spellings(secret))
    if len(secret) >= MIN_SUBSTRING_KEY:
        return re.compile(alternatives)
    return re.compile(f"(?<!{_TOKEN_CHARS})(?:{alternatives})(?!{_TOKEN_CHARS})")


class Secret:
    """Holds the API key; its ``repr`` and ``str`` never show it."""

    __slots__ = ("_forms", "_needles", "_pattern", "_value")

    def __init__(self, value: str) -> None:
        self._value = value
        # Kept on the object, never bound to a local name: a compiled pattern's repr shows
        # its source, and tracebacks rendered with locals show reprs.
        self._pattern = _pattern(value)
        self._forms = tuple(_spellings(value)) if value else ()
        self._needles = tuple(form.encode() for form in self._forms)

    def get(self) -> str:
        """The key itself, for the request body and nothing else."""
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with the key masked as ``***`` (see the module docstring for the rule)."""
        if self._pattern is None or not any(form in text for form in self._forms):
            return text
        return self._pattern.sub(MASK, text)

    def mentioned_in(self, content: bytes | bytearray) -> bool:
        """Whether raw answer bytes may carry the key or an echoed key field.

        A cheap pre-check (C substring searches) that lets :meth:`scrub` be skipped for the
        usual answer; JSON escapes (``\\u``) could spell either, so they count as a mention.
        """
        return (
            any(needle in content for needle in self._needles)
            or b"\\u" in content
            or _KEY_FIELD_BYTES.search(content) is not None
        )

    def scrub(self, value: Any) -> Any:
        """``value`` (decoded JSON) with the key masked in every string, mapping keys
        included, and every ``user_api_key`` field dropped, at any depth."""
        if isinstance(value, str):
            return self.redact(value)
        if isinstance(value, Mapping):
            return {
                (self.redact(k) if isinstance(k, str) else k): self.scrub(v)
                for k, v in value.items()
                if not (isinstance(k, str) and k.lower() == KEY_FIELD)
            }
        if isinstance(value, list):
            return [self.scrub(v) for v in value]
        if isinstance(value, tuple):
            return tuple(self.scrub(v) for v in value)
        return value

    def redact_headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        """Response headers with credentials dropped and the key masked in the rest."""
        return {
            name.lower(): self.redact(value)
            for name, value in headers.items()
            if name.lower() not in SENSITIVE_HEADERS
        }

    def __repr__(self) -> str:
        return f"Secret({MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Secret cannot be pickled")


def redact(text: str, secret: str) -> str:
    """``text`` with ``secret`` masked by the rule of :meth:`Secret.redact`."""
    return Secret(secret).redact(text) if secret else text


#: The loggers of the HTTP stack that write server-supplied text (filters apply to the logger
#: a record is created on, so each one is listed, not their parents).
HTTP_LOGGERS: Final = (
    "httpx",
    "httpcore.connection",
    "httpcore.http11",
    "httpcore.http2",
    "httpcore.proxy",
    "httpcore.socks",
)


class KeyLogFilter(logging.Filter):
    """Masks one key in the records of the HTTP stack's loggers."""

    def __init__(self, secret: Secret) -> None:
        super().__init__()
        self._secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self._secret.redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        return True


def guard_http_logs(secret: Secret) -> KeyLogFilter:
    """Mask ``secret`` in what httpx and httpcore log, until :func:`unguard_http_logs`."""
    guard = KeyLogFilter(secret)
    for name in HTTP_LOGGERS:
        logging.getLogger(name).addFilter(guard)
    return guard


def unguard_http_logs(guard: KeyLogFilter) -> None:
    """Remove a guard (removing it twice is harmless)."""
    for name in HTTP_LOGGERS:
        logging.getLogger(name).removeFilter(guard)
