"""Probing a server: the answers VecML's documentation does not give, as a ``ServerProfile``."""

from vecml_async.probe.profile import (
    PROFILE_VERSION,
    ErrorAnswer,
    Evidence,
    NameRules,
    ProbeAnswer,
    ServerProfile,
    load_profile,
)

__all__ = [
    "PROFILE_VERSION",
    "ErrorAnswer",
    "Evidence",
    "NameRules",
    "ProbeAnswer",
    "ServerProfile",
    "load_profile",
]
