"""Unit tests run with backoff and poll delays off, and never leave loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

import vecml_async

API_KEY = "vml_unit-test-key-0123456789abcdef"
BASE_URL = "http://vecml.test/api"


@pytest.fixture(autouse=True)
def _no_delays() -> Iterator[None]:
    """Retries and polls happen as in production, without waiting between attempts."""
    with vecml_async.testing_mode():
        yield


@pytest.fixture
def api_key() -> str:
    return API_KEY


@pytest.fixture
def base_url() -> str:
    return BASE_URL
