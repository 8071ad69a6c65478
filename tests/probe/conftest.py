"""Fixtures of the probe suites: an emulator served over loopback, probed by a client.

``probe_emulator(settings, **probe_options)`` serves an emulator with ``settings`` (a dict of
:class:`EmulatorSettings` fields, or the settings themselves), probes it with a client of
its own and returns a :class:`Probed`: the profile, the emulator (to inspect what the probe
did to it) and the key. Test modules reach it through the fixture (importlib import mode).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import pytest

from vecml_async import AsyncVecML
from vecml_async.emulator import Emulator, EmulatorSettings, serve
from vecml_async.probe import ServerProfile, probe
from vecml_async.testing import TEST_API_KEY


@dataclass
class Probed:
    profile: ServerProfile
    emulator: Emulator
    key: str

    def requests(self) -> int:
        """Requests the emulator received from this key."""
        return sum(self.emulator.stats(self.key)["requests"].values())

    def projects(self) -> dict[str, Any]:
        """The key's projects left on the emulator."""
        return dict(self.emulator.inspect(self.key)["projects"])


ProbeEmulator = Callable[..., Awaitable[Probed]]


@pytest.fixture
async def probe_emulator() -> AsyncIterator[ProbeEmulator]:
    """Factory: ``await probe_emulator(settings, client_options=..., **probe_options)``."""
    async with contextlib.AsyncExitStack() as stack:

        async def run(
            settings: EmulatorSettings | dict[str, Any] | None = None,
            *,
            client_options: dict[str, Any] | None = None,
            key: str = TEST_API_KEY,
            **options: Any,
        ) -> Probed:
            if not isinstance(settings, EmulatorSettings):
                settings = EmulatorSettings(**(settings or {}))
            emulator = Emulator(settings)
            url = await stack.enter_async_context(serve(emulator))
            extra = {"rate_limit": None, **(client_options or {})}
            async with AsyncVecML(key, base_url=url, **extra) as client:
                profile = await probe(client, **options)
            return Probed(profile, emulator, key)

        yield run
