"""Keeping the API key out of logs, messages and reprs."""

from __future__ import annotations

from typing import Final

MASK: Final = "***"


class Secret:
    """Holds the API key; its ``repr`` and ``str`` never show it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get(self) -> str:
        """The key itself, for the request body and nothing else."""
        return self._value

    def redact(self, text: str) -> str:
        """``text`` with every occurrence of the key replaced by ``***``."""
        return redact(text, self._value)

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
    """Replace every occurrence of ``secret`` in ``text`` with ``***``."""
    if secret and secret in text:
        return text.replace(secret, MASK)
    return text
