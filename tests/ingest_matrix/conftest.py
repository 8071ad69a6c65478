"""Fixtures of the ingest contract suites: emulators served over loopback, one per settings.

Each emulator runs on its own thread and loop (``run_in_thread``), so the client under test
has the test's loop to itself, and the emulator's Python inspection view
(``collection_data``, ``collection_counters``, ``stats``) reads what was stored. Emulators
are shared by the tests of a session, keyed by their settings; every test uses collections
of its own, so they do not see each other's rows.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import vecml_async
from vecml_async.emulator import Emulator, EmulatorSettings, run_in_thread

KEY = "vml_ingest_matrix_key_5d0c81e2"


@pytest.fixture(autouse=True)
def _no_delays() -> Iterator[None]:
    """Retries and polls happen as in production, without the waits between them."""
    with vecml_async.testing_mode():
        yield


_KEYS = itertools.count()


@pytest.fixture
def key() -> str:
    """An API key of this test alone: the emulator keeps each key's data and counters apart."""
    return f"{KEY}-{next(_KEYS)}"


_NAMES = itertools.count()


@pytest.fixture
def fresh_name() -> Callable[[str], str]:
    """A collection name no other test of the session uses."""
    return lambda prefix="c": f"{prefix}{next(_NAMES)}"


@pytest.fixture(scope="session")
def emulators() -> Iterator[Callable[..., tuple[Emulator, str]]]:
    """Factory: ``emulators(**settings)`` gives ``(emulator, base_url)``, one per settings."""
    served: dict[str, tuple[Emulator, str]] = {}
    with contextlib.ExitStack() as stack:

        def get(**settings: Any) -> tuple[Emulator, str]:
            name = repr(sorted(settings.items()))
            if name not in served:
                emulator = Emulator(EmulatorSettings(**settings))
                served[name] = emulator, stack.enter_context(run_in_thread(emulator))
            return served[name]

        yield get


@pytest.fixture
def private_emulator() -> Iterator[Callable[..., tuple[Emulator, str]]]:
    """Factory: an emulator of this test alone (for fault schedules, which count requests)."""
    with contextlib.ExitStack() as stack:

        def start(**settings: Any) -> tuple[Emulator, str]:
            emulator = Emulator(EmulatorSettings(**settings))
            return emulator, stack.enter_context(run_in_thread(emulator))

        yield start
