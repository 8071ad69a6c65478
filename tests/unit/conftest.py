"""Unit tests run with backoff and poll delays off, and never leave loopback."""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
import respx

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


#: One TLS context for the suite: building one per client costs about 0.1 s.
SSL_CONTEXT = ssl.create_default_context()


@pytest.fixture
def mock(base_url: str) -> Iterator[respx.MockRouter]:
    """A respx router for the test base URL (unused routes are fine)."""
    with respx.mock(base_url=base_url, assert_all_called=False) as router:
        yield router


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client sharing the suite's TLS context."""
    async with httpx.AsyncClient(verify=SSL_CONTEXT) as client:
        yield client


@pytest.fixture
async def client(
    api_key: str, base_url: str, http: httpx.AsyncClient
) -> AsyncIterator[vecml_async.AsyncVecML]:
    """A client without a client-side rate limit, on the shared httpx client."""
    async with vecml_async.AsyncVecML(
        api_key, base_url=base_url, rate_limit=None, http_client=http
    ) as c:
        yield c
