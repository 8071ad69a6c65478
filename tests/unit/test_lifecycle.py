"""Client lifecycle: closing, injected HTTP clients, sharing between tasks, one event loop."""

from __future__ import annotations

import asyncio
import json
import ssl

import anyio
import httpx
import pytest

from vecml_async import AsyncVecML, ClientClosedError

SSL_CONTEXT = ssl.create_default_context()
OK = {"success": True}


@pytest.fixture
def aclose_calls(monkeypatch: pytest.MonkeyPatch) -> list[httpx.AsyncClient]:
    """Records every httpx.AsyncClient.aclose() call."""
    calls: list[httpx.AsyncClient] = []
    original = httpx.AsyncClient.aclose

    async def recording(self: httpx.AsyncClient) -> None:
        calls.append(self)
        await original(self)

    monkeypatch.setattr(httpx.AsyncClient, "aclose", recording)
    return calls


async def test_async_with_closes(api_key, base_url, mock, aclose_calls):
    """Leaving 'async with' closes the client and its own connection pool."""
    mock.post("/delete_project").respond(json=OK)
    async with AsyncVecML(api_key, base_url=base_url, rate_limit=None) as client:
        assert not client.closed
        assert "open" in repr(client)
        await client.delete_project("p")
    assert client.closed
    assert "closed" in repr(client)
    assert len(aclose_calls) == 1
    with pytest.raises(ClientClosedError, match="closed"):
        await client.delete_project("p")


async def test_async_with_closes_on_error(api_key, base_url, aclose_calls):
    """An exception inside the block still closes the client."""
    with pytest.raises(KeyError):
        async with AsyncVecML(api_key, base_url=base_url) as client:
            raise KeyError("boom")
    assert client.closed
    assert len(aclose_calls) == 1


async def test_aclose_idempotent(api_key, base_url, aclose_calls):
    """aclose() may be called any number of times; the pool is closed once."""
    client = AsyncVecML(api_key, base_url=base_url)
    await client.aclose()
    await client.aclose()
    await client.__aexit__(None, None, None)
    assert client.closed
    assert len(aclose_calls) == 1


async def test_enter_after_close_refused(api_key, base_url):
    """'async with' on a closed client raises ClientClosedError."""
    client = AsyncVecML(api_key, base_url=base_url)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        async with client:
            pass


async def test_closed_client_error_is_runtime_error(api_key, base_url):
    """ClientClosedError is also a RuntimeError (what 'use after close' usually raises)."""
    client = AsyncVecML(api_key, base_url=base_url)
    await client.aclose()
    with pytest.raises(RuntimeError):
        await client.call("anything")


async def test_injected_http_client_not_closed(api_key, base_url, mock, aclose_calls):
    """An http_client passed in stays open after aclose() and keeps working."""
    mock.post("/delete_project").respond(json=OK)
    async with httpx.AsyncClient(verify=SSL_CONTEXT) as http:
        async with AsyncVecML(
            api_key, base_url=base_url, http_client=http, rate_limit=None
        ) as client:
            await client.delete_project("p")
        assert client.closed
        assert not http.is_closed
        assert aclose_calls == []
        response = await http.post(f"{base_url}/delete_project", json={})
        assert response.status_code == 200


async def test_injected_http_client_is_used(api_key, base_url, mock):
    """Requests go through the injected client (its headers, for example, are sent)."""
    route = mock.post("/delete_project").respond(json=OK)
    async with (
        httpx.AsyncClient(verify=SSL_CONTEXT, headers={"X-Trace": "abc"}) as http,
        AsyncVecML(api_key, base_url=base_url, http_client=http, rate_limit=None) as client,
    ):
        await client.delete_project("p")
    assert route.calls.last.request.headers["x-trace"] == "abc"


async def test_shared_by_50_concurrent_tasks(api_key, base_url, mock):
    """One client serves 50 concurrent tasks; every request is sent once, intact."""
    route = mock.post("/create_project").respond(json=OK)
    results: list[bool] = []

    async with AsyncVecML(api_key, base_url=base_url, rate_limit=None) as client:

        async def work(i: int) -> None:
            answer = await client.create_project(f"project_{i}")
            results.append(answer.success)

        async with anyio.create_task_group() as group:
            for i in range(50):
                group.start_soon(work, i)
    assert results == [True] * 50
    assert route.call_count == 50
    names = sorted(json.loads(c.request.content)["project_name"] for c in route.calls)
    assert names == sorted(f"project_{i}" for i in range(50))


async def test_shared_by_concurrent_tasks_with_failures(api_key, base_url, mock):
    """Failures in some tasks do not disturb the others sharing the client."""

    def answer(request: httpx.Request) -> httpx.Response:
        name = json.loads(request.content)["project_name"]
        if int(name.split("_")[1]) % 3 == 0:
            return httpx.Response(409, json={"success": False, "error_message": "exists"})
        return httpx.Response(200, json=OK)

    mock.post("/create_project").mock(side_effect=answer)
    async with AsyncVecML(api_key, base_url=base_url, rate_limit=None) as client:
        outcomes = await asyncio.gather(
            *(client.create_project(f"p_{i}") for i in range(30)), return_exceptions=True
        )
    failures = [i for i, o in enumerate(outcomes) if isinstance(o, Exception)]
    assert failures == list(range(0, 30, 3))


def test_second_event_loop_is_a_clear_error(api_key, base_url, mock):
    """Using one client from a second event loop raises a RuntimeError that says so."""
    mock.post("/delete_project").respond(json=OK)
    client = AsyncVecML(api_key, base_url=base_url, rate_limit=None)
    asyncio.run(client.delete_project("p"))
    with pytest.raises(RuntimeError, match="event loop") as info:
        asyncio.run(client.delete_project("p"))
    assert not isinstance(info.value, ClientClosedError)
    assert mock.calls.call_count == 1
    asyncio.run(client.aclose())
    assert client.closed


def test_client_can_be_built_outside_a_loop(api_key, base_url, mock):
    """Building the client needs no running loop; it binds to the loop that first uses it."""
    mock.post("/delete_project").respond(json=OK)
    client = AsyncVecML(api_key, base_url=base_url, rate_limit=None)

    async def use() -> bool:
        async with client:
            answer = await client.delete_project("p")
        return answer.success

    assert asyncio.run(use()) is True


def test_outside_asyncio_is_a_clear_error(api_key, base_url, mock):
    """Driving a call without a running asyncio loop (e.g. from trio) says asyncio is needed."""
    route = mock.post("/delete_project").respond(json=OK)
    client = AsyncVecML(api_key, base_url=base_url, rate_limit=None)
    coro = client.delete_project("p")
    with pytest.raises(RuntimeError, match="asyncio") as info:
        coro.send(None)
    assert not isinstance(info.value, ClientClosedError)
    assert route.call_count == 0
