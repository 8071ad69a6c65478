"""Fixtures for the emulator tests: an emulator served over real loopback plus an httpx client.

Test modules cannot import from here (importlib import mode); they reach the helpers through
the fixtures: ``api`` is an :class:`Api`, ``start(**settings)`` makes more of them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from vecml_async.emulator import Emulator, EmulatorSettings, serve

KEY = "vml_test_key_a"
OTHER_KEY = "vml_test_key_b"


@dataclass
class Api:
    """A served emulator and a client that speaks its wire format."""

    emulator: Emulator
    client: httpx.AsyncClient
    base_url: str
    key: str = KEY

    async def call(self, endpoint: str, *, key: str | None = None, **fields: Any) -> httpx.Response:
        body = {"user_api_key": self.key if key is None else key, **fields}
        return await self.client.post(endpoint, json=body)

    async def ok(self, endpoint: str, **fields: Any) -> dict[str, Any]:
        """Call and assert the success envelope."""
        response = await self.call(endpoint, **fields)
        assert response.status_code == 200, response.text
        payload: dict[str, Any] = response.json()
        assert payload["success"] is True, payload
        return payload

    async def fail(self, endpoint: str, status: int, **fields: Any) -> str:
        """Call and assert the error envelope with ``status``; return the message."""
        response = await self.call(endpoint, **fields)
        assert response.status_code == status, response.text
        payload = response.json()
        assert payload["success"] is False
        assert isinstance(payload["error_message"], str)
        return str(payload["error_message"])

    async def collection(
        self, project: str = "p", collection: str = "c", *, dim: int = 4, vector_type: str = "dense"
    ) -> None:
        """Create a project (if needed) and a collection."""
        await self.call("create_project", project_name=project)
        fields: dict[str, Any] = {"vector_type": vector_type, "vector_dim": dim}
        await self.ok("init", project_name=project, collection_name=collection, **fields)

    async def wait_job(
        self, job_id: str, endpoint: str = "get_upload_data_status", timeout: float = 30.0
    ) -> dict[str, Any]:
        """Poll a job until it finishes or fails (with a deadline)."""
        deadline = time.monotonic() + timeout
        while True:
            status = await self.ok(endpoint, job_id=job_id)
            if status["status"] in ("finished", "failed"):
                return status
            assert time.monotonic() < deadline, f"job {job_id} still {status['status']}"
            await asyncio.sleep(0.02)

    @staticmethod
    async def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        """Poll ``predicate`` until it holds, failing after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while not predicate():
            assert time.monotonic() < deadline, "condition not reached in time"
            await asyncio.sleep(0.01)


Start = Callable[..., Awaitable[Api]]


@pytest.fixture
async def start() -> AsyncIterator[Start]:
    """Factory: ``await start(**settings)`` serves a fresh emulator and returns an Api."""
    async with contextlib.AsyncExitStack() as stack:

        async def _start(**settings: Any) -> Api:
            emulator = Emulator(EmulatorSettings(**settings))
            url = await stack.enter_async_context(serve(emulator))
            client = await stack.enter_async_context(
                httpx.AsyncClient(base_url=url + "/", timeout=30.0, trust_env=False)
            )
            return Api(emulator, client, url)

        yield _start


@pytest.fixture
async def api(start: Start) -> Api:
    """An emulator with default settings."""
    return await start()
