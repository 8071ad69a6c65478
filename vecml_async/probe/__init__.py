"""Probing a server: the answers VecML's documentation does not give, as a ``ServerProfile``.

>>> async with AsyncVecML() as client:
...     profile = await probe(client)            # about 50 small calls, under a minute
...     print(profile.duplicate_ids, profile.error_status)
...     Path("server.json").write_text(profile.to_json())
>>> client = AsyncVecML(profile="server.json")   # adapts to what the server does
>>> EmulatorSettings.from_profile("server.json")  # an emulator that does the same

The probe works in a project of its own, ``vecml-async-probe-<8 hex digits>``, and deletes
it when done, interrupted or not. ``vecml-async probe`` runs it from a shell.

``vecml_async.probe`` (the package's attribute) is the :func:`probe` function itself; take
this package's other names with ``from vecml_async.probe import ServerProfile, ...``.
"""

from vecml_async.probe.profile import (
    PROFILE_VERSION,
    ErrorAnswer,
    Evidence,
    NameRules,
    ProbeAnswer,
    ServerProfile,
    load_profile,
)
from vecml_async.probe.runner import DEFAULT_MAX_CALLS, QUESTIONS, probe

__all__ = [
    "DEFAULT_MAX_CALLS",
    "PROFILE_VERSION",
    "QUESTIONS",
    "ErrorAnswer",
    "Evidence",
    "NameRules",
    "ProbeAnswer",
    "ServerProfile",
    "load_profile",
    "probe",
]
