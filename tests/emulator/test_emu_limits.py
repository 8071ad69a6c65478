"""The rate limit (per key, plain text or JSON) and the request size cap (declared or streamed)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from vecml_async.emulator import RATE_LIMIT_TEXT


async def test_rate_limit_answers_400_with_the_exact_plain_text(start: Any) -> None:
    """Over the bucket, the answer is HTTP 400 with exactly the documented plain text."""
    api = await start(rate_limit=0.2, rate_limit_burst=2)
    for _ in range(2):
        await api.call("create_project", project_name="p")
    response = await api.call("create_project", project_name="q")
    assert response.status_code == 400
    assert response.text == RATE_LIMIT_TEXT
    assert response.headers["content-type"].startswith("text/plain")
    stats = api.emulator.stats()
    assert stats["rejections"]["rate_limited"] == 1
    assert api.emulator.inspect(api.key)["projects"] == {"p": {}}  # "q" was never created


async def test_rate_limit_json_body_and_per_key_buckets(start: Any) -> None:
    """rate_limit_body='json' wraps the text in the envelope; each key has its own bucket."""
    api = await start(rate_limit=0.2, rate_limit_burst=1, rate_limit_body="json")
    await api.ok("create_project", project_name="p")
    response = await api.call("create_project", project_name="q")
    assert response.status_code == 400
    assert response.json() == {"success": False, "error_message": RATE_LIMIT_TEXT}
    other = await api.call("create_project", key="vml_test_key_b", project_name="p")
    assert other.status_code == 200
    assert api.emulator.stats(api.key)["rejections"]["rate_limited"] == 1
    assert api.emulator.stats("vml_test_key_b")["rejections"]["rate_limited"] == 0


async def test_max_requests_in_window_counts_arrivals(api: Any) -> None:
    """max_requests_in_window sees every arrival, per key when asked."""
    for _ in range(3):
        await api.call("create_project", project_name="p")
    await api.call("create_project", key="vml_test_key_b", project_name="p")
    assert api.emulator.max_requests_in_window(60.0) == 4
    assert api.emulator.max_requests_in_window(60.0, api_key=api.key) == 3
    assert api.emulator.stats()["requests"] == {"create_project": 4}


@pytest.mark.parametrize("status", [413, 400])
async def test_oversize_declared_body_is_refused_and_server_keeps_serving(
    start: Any, status: int
) -> None:
    """A body over max_body_bytes gets the plain-text refusal; the connection stays usable."""
    api = await start(max_body_bytes=1000, oversize_status=status)
    await api.ok("create_project", project_name="p")
    response = await api.call("create_project", project_name="q", padding="x" * 5000)
    assert response.status_code == status
    assert response.text == "Request body exceeds 1000 bytes"
    await api.ok("create_project", project_name="r")
    assert api.emulator.stats()["rejections"]["too_large"] == 1


async def test_oversize_chunked_body_is_refused(start: Any) -> None:
    """A chunked body (no Content-Length) is cut off once it passes the cap."""
    api = await start(max_body_bytes=1000)

    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"user_api_key": "k", "pad": "'
        for _ in range(20):
            yield b"x" * 256
        yield b'"}'

    response = await api.client.post("create_project", content=chunks())
    assert response.status_code == 413
    await api.ok("create_project", project_name="p")


async def _raw_exchange(base_url: str, head: bytes, body: bytes) -> bytes:
    """Send a request head and part of a body, then read the answer without finishing."""
    parts = urlsplit(base_url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port)
    try:
        writer.write(head + body)
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    finally:
        writer.close()
        await writer.wait_closed()


async def test_cap_is_enforced_before_the_body_arrives(start: Any) -> None:
    """Declared-over-cap and streamed-over-cap bodies are refused without waiting for the end."""
    api = await start(max_body_bytes=1000)
    declared = (
        b"POST /api/init HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1000000000\r\n\r\n"
    )
    assert b" 413 " in await _raw_exchange(api.base_url, declared, b"{")
    chunked = (
        b"POST /api/init HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n"
    )
    chunk = b"800\r\n" + b" " * 0x800 + b"\r\n"  # one 2 KiB chunk, then the stream stays open
    assert b" 413 " in await _raw_exchange(api.base_url, chunked, chunk)
    await api.ok("create_project", project_name="still-serving")
    assert api.emulator.stats()["rejections"]["too_large"] == 2
