"""Hostile clients against the emulator in a child process: memory from /proc, time per attack.

Each attack asserts its bound on the emulator process's resident memory (``VmRSS`` in
``/proc/<pid>/status``) or on the time the emulator holds a connection, and then checks the
emulator still answers correctly: a small ingest lands, verified by the stored ids.

Synchronisation is causal, never a sleep: after an attack's bytes are sent, one ordinary
request is answered on a fresh connection, so the server has handled what came before it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from vecml_async import AsyncVecML

pytestmark = [pytest.mark.integration]

MB = 1_000_000
MiB = 1 << 20


def rss(pid: int) -> int:
    """Resident memory of a process, in bytes."""
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def host_port(url: str) -> tuple[str, int]:
    hostport = httpx.URL(url)
    return str(hostport.host), int(hostport.port or 80)


async def answered(url: str) -> int:
    """One ordinary request on a new connection; its status (the causal barrier: once it is
    answered, the server has handled the bytes sent before it)."""
    async with httpx.AsyncClient(timeout=30) as http:
        body = {"user_api_key": "barrier", "job_id": "none"}
        return (await http.post(f"{url}/get_upload_data_status", json=body)).status_code


async def still_correct(url: str, proc: Any, key: str, tag: str) -> None:
    """A small ingest lands exactly: the emulator works after the attack."""
    ids = [f"{tag}-{i}" for i in range(50)]
    async with AsyncVecML(key, base_url=url, rate_limit=None) as client:
        await client.create_project(tag)
        await client.init(tag, "c", vector_dim=4)
        report = await client.ingest(
            tag, "c", [[float(i)] * 4 for i in range(50)], ids=ids, wait=True
        )
    assert report.complete
    assert sorted(proc.ids(key, tag, "c")) == sorted(ids)


async def open_conn(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = host_port(url)
    return await asyncio.open_connection(host, port)


async def test_declared_huge_bodies_do_not_reserve_memory(
    emulator_process: Callable[..., Any], key: str
) -> None:
    """8 connections declare 199 MB bodies and send 100 bytes: the emulator's RSS grows by
    less than 30 MB (it was 65 -> 1,579 MB when the buffer followed the declared length)."""
    proc = emulator_process()
    pid = proc.proc.pid
    assert await answered(proc.url) == 404
    before = rss(pid)
    conns = []
    try:
        for _ in range(8):
            _, writer = await open_conn(proc.url)
            conns.append(writer)
            writer.write(
                b"POST /api/add_data_batch HTTP/1.1\r\nHost: x\r\n"
                b"Content-Length: 199000000\r\n\r\n" + b" " * 100
            )
            await writer.drain()
        assert await answered(proc.url) == 404
        grown = rss(pid) - before
    finally:
        for writer in conns:
            writer.close()
    print(f"\nRSS growth, 8 x 199 MB declared: {grown / MB:.1f} MB")
    assert grown < 30 * MB, grown
    await still_correct(proc.url, proc, key, "declared")


async def test_bodies_being_read_share_a_memory_bound(
    emulator_process: Callable[..., Any], key: str
) -> None:
    """8 connections each send 8 MiB of a declared 100 MB body, with a 16 MiB bound on the
    bodies being read: the ones past it get 503 with Retry-After, and RSS grows by less than
    the bound plus 40 MB (not by the 64 MiB sent)."""
    proc = emulator_process(max_reading_bytes=16 * MiB)
    pid = proc.proc.pid
    assert await answered(proc.url) == 404
    before = rss(pid)
    conns = []
    chunk = b" " * MiB
    for _ in range(8):
        reader, writer = await open_conn(proc.url)
        writer.write(
            b"POST /api/add_data_batch HTTP/1.1\r\nHost: x\r\nContent-Length: 100000000\r\n\r\n"
        )
        conns.append((reader, writer))
    for _, writer in conns:
        try:
            for _ in range(8):
                writer.write(chunk)
                await writer.drain()
        except ConnectionError:
            pass  # refused: the server closed the connection
    assert await answered(proc.url) in (404, 503)  # busy too, while the bodies are held
    grown = rss(pid) - before
    for _, writer in conns:
        writer.close()
    # The refused connections are closed with unread data (a reset on the client's side may
    # swallow the 503), so the server's own count says how many were refused.
    refused = proc.stats()["rejections"].get("busy", 0)
    print(f"\nRSS growth, 8 x 8 MiB bodies, 16 MiB bound: {grown / MB:.1f} MB, {refused} refused")
    assert refused >= 5
    assert grown < 16 * MiB + 40 * MB, grown
    await still_correct(proc.url, proc, key, "bounded")


async def trickle(
    url: str, prefix: bytes, every: float, closed: list[float], started: float
) -> None:
    """Send ``prefix``, then one byte every ``every`` seconds until the server closes."""
    try:
        reader, writer = await open_conn(url)
    except OSError:
        closed.append(-1.0)
        return
    try:
        writer.write(prefix)
        await writer.drain()
        while True:
            if reader.at_eof():
                break
            writer.write(b"a")
            await writer.drain()
            try:
                data = await asyncio.wait_for(reader.read(4096), every)
            except TimeoutError:
                continue
            if not data or data.startswith(b"HTTP/1.1 408"):
                break
    except ConnectionError:
        pass
    finally:
        closed.append(time.monotonic() - started)
        writer.close()


async def test_slowloris_heads_are_cut_after_the_header_timeout(
    emulator_process: Callable[..., Any], key: str
) -> None:
    """200 connections trickling a request head, one byte per 0.2 s: every one is closed
    within header_timeout (1 s here) + 2 s (they were all still held after 8 s)."""
    proc = emulator_process(header_timeout=1.0)
    started = time.monotonic()
    closed: list[float] = []
    prefix = b"POST /api/init HTTP/1.1\r\nHost: x\r\nX-Slow: "
    await asyncio.wait_for(
        asyncio.gather(*(trickle(proc.url, prefix, 0.2, closed, started) for _ in range(200))),
        30,
    )
    print(f"\nslowloris heads: 200 connections closed after at most {max(closed):.2f} s")
    assert len(closed) == 200
    assert -1.0 not in closed
    assert max(closed) < 3.0
    await still_correct(proc.url, proc, key, "slowloris")


async def test_slow_bodies_get_408_after_the_body_timeout(
    emulator_process: Callable[..., Any], key: str
) -> None:
    """50 requests trickling their bodies: each gets 408 and its connection is closed
    within body_timeout (1 s here) + 2 s."""
    proc = emulator_process(body_timeout=1.0)
    started = time.monotonic()
    closed: list[float] = []
    prefix = b"POST /api/init HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{"
    await asyncio.wait_for(
        asyncio.gather(*(trickle(proc.url, prefix, 0.2, closed, started) for _ in range(50))),
        30,
    )
    print(f"\nslow bodies: 50 requests cut after at most {max(closed):.2f} s")
    assert max(closed) < 3.0
    assert proc.stats()["rejections"].get("slow_body", 0) == 50
    await still_correct(proc.url, proc, key, "slowbody")


async def test_a_huge_request_head_is_refused_without_growing(
    emulator_process: Callable[..., Any], key: str
) -> None:
    """A 32 MiB request head (one endless header): the connection is closed after 64 KiB and
    the emulator's RSS grows by less than 20 MB."""
    proc = emulator_process()
    pid = proc.proc.pid
    assert await answered(proc.url) == 404
    before = rss(pid)
    _, writer = await open_conn(proc.url)
    sent = 0
    try:
        writer.write(b"POST /api/init HTTP/1.1\r\nX-Long: ")
        while sent < 32 * MiB:
            writer.write(b"b" * 65536)
            await writer.drain()
            sent += 65536
    except ConnectionError:
        pass
    finally:
        writer.close()
    assert await answered(proc.url) == 404
    grown = rss(pid) - before
    print(f"\nhuge head: stopped after {sent / MiB:.1f} MiB sent, RSS growth {grown / MB:.1f} MB")
    assert sent < 32 * MiB
    assert grown < 20 * MB, grown
    await still_correct(proc.url, proc, key, "longhead")


async def test_unknown_endpoint_names_are_counted_under_one_entry(
    emulator_process: Callable[..., Any], key: str
) -> None:
    """300 distinct 60 KB endpoint names: one '<unknown>' stats entry counting 300, 404s whose
    message is bounded, and RSS growth under 10 MB (about 46 KB stayed per name)."""
    proc = emulator_process()
    pid = proc.proc.pid
    assert await answered(proc.url) == 404
    before = rss(pid)
    messages = []
    async with httpx.AsyncClient(timeout=30) as http:
        for i in range(300):
            name = f"{i:05d}" + "n" * 60_000
            answer = await http.post(f"{proc.url}/{name}", json={"user_api_key": key})
            assert answer.status_code == 404
            messages.append(answer.json()["error_message"])
    grown = rss(pid) - before
    requests = proc.stats()["requests"]
    print(f"\n300 unknown 60 KB names: RSS growth {grown / MB:.1f} MB, stats {sorted(requests)}")
    assert requests["<unknown>"] == 300
    assert len(requests) <= 3  # <unknown> and the barrier's create_project
    assert max(len(m) for m in messages) < 200
    assert grown < 10 * MB, grown
    await still_correct(proc.url, proc, key, "unknown")


async def test_the_busy_answer_is_a_503_with_retry_after(
    emulator_process: Callable[..., Any], key: str
) -> None:
    """While another body holds the reading bound, a request gets 503, Retry-After: 1, and
    the client library retries it until the bound frees (it is not applied, so safe)."""
    proc = emulator_process(max_reading_bytes=4096)
    _, holder = await open_conn(proc.url)
    try:
        holder.write(b"POST /api/init HTTP/1.1\r\nHost: x\r\nContent-Length: 9000\r\n\r\n")
        holder.write(b" " * 4000)
        await holder.drain()
        assert await answered(proc.url) == 404  # the 4000 bytes have arrived
        async with httpx.AsyncClient(timeout=30) as http:
            body = {"user_api_key": key, "project_name": "p", "pad": "x" * 500}
            busy = await http.post(f"{proc.url}/create_project", json=body)
        assert busy.status_code == 503
        assert busy.headers["retry-after"] == "1"
        assert busy.headers["connection"] == "close"
    finally:
        holder.close()
    await still_correct(proc.url, proc, key, "afterbusy")
