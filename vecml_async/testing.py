"""pytest fixtures for testing code that calls VecML, against the local emulator.

Enable them in a ``conftest.py``::

    pytest_plugins = ["vecml_async.testing"]

Fixtures (function scope, async; they need pytest-asyncio). Under pytest-asyncio's default
strict mode, the plugin marks every ``async def`` test that asks for ``vecml_client`` or
``vecml_emulator`` with ``@pytest.mark.asyncio``, so such tests run without a marker or an
``asyncio_mode = auto`` setting:

* ``vecml_emulator_settings``: a dict of :class:`~vecml_async.emulator.EmulatorSettings`
  keywords, empty by default. Override it (in a conftest, a module, or with
  ``@pytest.mark.parametrize(..., indirect=True)``) to test rate limits, faults, delays;
  ``faults`` may be a dict of :class:`~vecml_async.emulator.FaultConfig` fields.
* ``vecml_emulator``: an emulator served on a free loopback port for the test; an
  :class:`EmulatorFixture` with ``base_url``, ``emulator`` (for inspection) and ``api_key``.
* ``vecml_client``: an :class:`~vecml_async.AsyncVecML` bound to that emulator, closed after
  the test.

Example::

    async def test_upload(vecml_client, vecml_emulator):
        await vecml_client.create_project("p")
        await vecml_client.init("p", "c", vector_dim=2)
        await (await vecml_client.add_data_batch("p", "c", [[1.0, 2.0]], string_ids=["a"]))
        assert vecml_emulator.emulator.collection_ids(vecml_emulator.api_key, "p", "c") == ["a"]
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pytest
import pytest_asyncio

from vecml_async.emulator import Emulator, EmulatorSettings, serve

if TYPE_CHECKING:
    from vecml_async import AsyncVecML

__all__ = [
    "TEST_API_KEY",
    "EmulatorFixture",
    "vecml_client",
    "vecml_emulator",
    "vecml_emulator_settings",
]

#: The key the fixtures use unless the settings restrict ``api_keys``.
TEST_API_KEY = "vml_test_key"
#: Tests asking for one of these are run by pytest-asyncio even in its strict mode.
ASYNC_FIXTURES = frozenset({"vecml_client", "vecml_emulator"})


def _wants_our_fixtures(obj: object) -> bool:
    if not inspect.iscoroutinefunction(obj):
        return False
    try:
        names = inspect.signature(obj).parameters
    except (TypeError, ValueError):
        return False
    return not ASYNC_FIXTURES.isdisjoint(names)


@pytest.hookimpl(hookwrapper=True)
def pytest_pycollect_makeitem(
    collector: pytest.Collector, name: str, obj: object
) -> Generator[None, Any, None]:
    """Mark ``async def`` tests that use this plugin's fixtures with ``pytest.mark.asyncio``
    before they are collected: pytest-asyncio's strict mode (its default) then runs them
    instead of failing with "async def functions are not natively supported"."""
    if _wants_our_fixtures(obj):
        marks = getattr(obj, "pytestmark", [])
        if not any(getattr(mark, "name", None) == "asyncio" for mark in marks):
            pytest.mark.asyncio(obj)
    yield


@dataclass(frozen=True)
class EmulatorFixture:
    """A served emulator: where it listens, the object to inspect, and a key it accepts."""

    base_url: str
    emulator: Emulator
    api_key: str


@pytest.fixture
def vecml_emulator_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """Settings for ``vecml_emulator``: the indirect parameter if any, else none."""
    return dict(getattr(request, "param", {}))


@pytest_asyncio.fixture
async def vecml_emulator(
    vecml_emulator_settings: dict[str, Any],
) -> AsyncIterator[EmulatorFixture]:
    """An emulator served in-process for one test (stopped, with its port closed, after)."""
    settings = EmulatorSettings(**vecml_emulator_settings)  # faults: a FaultConfig or a dict
    # With api_keys set, use one of them so the client authenticates.
    api_key = min(settings.api_keys) if settings.api_keys else TEST_API_KEY
    emulator = Emulator(settings)
    async with serve(emulator) as base_url:
        yield EmulatorFixture(base_url, emulator, api_key)


@pytest_asyncio.fixture
async def vecml_client(vecml_emulator: EmulatorFixture) -> AsyncIterator[AsyncVecML]:
    """An ``AsyncVecML`` client pointed at ``vecml_emulator``, closed at teardown."""
    from vecml_async import AsyncVecML

    async with AsyncVecML(vecml_emulator.api_key, base_url=vecml_emulator.base_url) as client:
        yield client
