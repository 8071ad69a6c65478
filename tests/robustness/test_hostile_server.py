"""Hostile servers: scripted raw HTTP servers on loopback attack the client's public API.

Each case states its bound and asserts it: seconds (a drip-fed answer cannot hold a call
past its attempt timeout), bytes (an endless or huge body cannot grow the process), characters
(a 10 MB error page is not a 10 MB message) and attempts (a request that may have been applied
is not sent again when repeating it is harmful).

Memory is measured with ``tracemalloc`` (peak Python allocations during the call), which is
exact for what the client keeps, unlike process RSS.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
import tracemalloc
import zlib
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from vecml_async import (
    APIError,
    AsyncVecML,
    JobFailedError,
    JobTimeoutError,
    RateLimitError,
    RateLimitPolicy,
    RetryEvent,
    RetryPolicy,
    ServerError,
    TransportError,
)

pytestmark = pytest.mark.integration

NO_LIMIT = RateLimitPolicy(calls_per_second=None, adaptive=False)
MiB = 1024 * 1024
Script = Callable[[Any, asyncio.StreamWriter], Awaitable[bool]]


def head(status: int, headers: dict[str, str] | None = None, length: int | None = None) -> bytes:
    lines = [f"HTTP/1.1 {status} X"]
    for name, value in (headers or {}).items():
        lines.append(f"{name}: {value}")
    if length is not None:
        lines.append(f"Content-Length: {length}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def answer(status: int, body: bytes | str | dict[str, Any], **headers: str) -> bytes:
    if isinstance(body, dict):
        body = json.dumps(body)
        headers.setdefault("Content-Type", "application/json")
    data = body.encode() if isinstance(body, str) else body
    return head(status, {k.replace("_", "-"): v for k, v in headers.items()}, len(data)) + data


def replies(*responses: bytes) -> Script:
    """Answer the n-th request with the n-th response (the last one repeats)."""
    queue = list(responses)

    async def script(request: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(queue.pop(0) if len(queue) > 1 else queue[0])
        await writer.drain()
        return True

    return script


OK = answer(200, {"success": True})
JOB = answer(200, {"success": True, "job_id": "job-1"})


def client(url: str, key: str, **options: Any) -> AsyncVecML:
    options.setdefault("rate_limit", NO_LIMIT)
    return AsyncVecML(key, base_url=url, **options)


@contextmanager
def peak_memory() -> Iterator[list[int]]:
    """Peak bytes allocated by Python inside the block (tracemalloc)."""
    out: list[int] = []
    tracemalloc.start()
    try:
        yield out
    finally:
        out.append(tracemalloc.get_traced_memory()[1])
        tracemalloc.stop()


# ----------------------------------------------------------------------------- time


def dripping(prefix: bytes, every: float = 0.3, total: int = 200) -> Script:
    async def script(request: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(prefix)
        await writer.drain()
        for _ in range(total):
            await asyncio.sleep(every)
            writer.write(b"a")
            await writer.drain()
        return False

    return script


@pytest.mark.parametrize(
    "prefix",
    [head(200, length=1000), b"HTTP/1.1 200 OK\r\nX-Slow: "],
    ids=["body", "headers"],
)
async def test_drip_fed_answer_cannot_hold_a_call_past_its_timeout(scripted, key, prefix):
    """1 byte every 0.3 s (in the body, or in the headers): timeout=1.0, max_retries=0
    ends the call within 1.0 s + 0.8 s of slack (it took 58 s when timeouts bounded reads)."""
    server = await scripted(dripping(prefix))
    async with client(server.url, key, timeout=1.0, max_retries=0) as c:
        started = time.monotonic()
        with pytest.raises(TransportError, match="within 1 s"):
            await c.delete_project("p")
        elapsed = time.monotonic() - started
    assert elapsed < 1.8, elapsed


async def test_a_server_that_never_answers(scripted, key):
    """The request is read and nothing comes back: TransportError at the timeout."""

    async def silent(request: Any, writer: asyncio.StreamWriter) -> bool:
        await asyncio.Event().wait()
        return False

    server = await scripted(silent)
    async with client(server.url, key, timeout=0.5, max_retries=0) as c:
        started = time.monotonic()
        with pytest.raises(TransportError):
            await c.delete_project("p")
    assert time.monotonic() - started < 1.3


async def test_a_server_that_does_not_read_the_body(scripted, key):
    """A server that stops reading: sending a 16 MiB body blocks, the attempt deadline ends it."""
    never = asyncio.Event()
    writers: list[asyncio.StreamWriter] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writers.append(writer)
        await reader.readuntil(b"\r\n\r\n")
        await never.wait()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/api"
    try:
        async with client(url, key, timeout=0.5, max_retries=0) as c:
            started = time.monotonic()
            with pytest.raises(TransportError):
                await c.call("add_data_batch", data="x" * (16 * MiB))
        assert time.monotonic() - started < 1.5
    finally:
        server.close()
        for writer in writers:  # the handler never ends: close its connection here
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()


async def test_overall_deadline_bounds_a_call_across_its_retries(scripted, key):
    """Drip-fed answers with five retries: RetryPolicy(deadline=1.5) ends the call in time."""
    server = await scripted(dripping(head(200, length=1000), every=0.2))
    policy = RetryPolicy(max_retries=5, deadline=1.5)
    async with client(server.url, key, timeout=1.0, retry=policy) as c:
        started = time.monotonic()
        with pytest.raises(TransportError, match="deadline"):
            await c.delete_project("p")
    assert time.monotonic() - started < 2.3
    assert len(server.requests) <= 2


async def test_retry_after_waits_are_bounded(scripted, key):
    """503 with 'Retry-After: 3600' on every answer: each wait is capped at 30 s and the call
    gives up after 5 retries, 150 s of waiting at most (testing mode skips the waits)."""
    server = await scripted(replies(answer(503, "later", Retry_After="3600")))
    delays: list[float] = []
    async with client(server.url, key, on_retry=lambda e: delays.append(e.delay)) as c:
        with pytest.raises(ServerError):
            await c.delete_project("p")
    assert delays == [30.0] * 5
    assert len(server.requests) == 6


async def test_rate_limit_retry_after_is_bounded_by_the_rate_limit_deadline(scripted, key):
    """A server that keeps refusing with 'Retry-After: 3600': waits capped at 30 s, and the
    call ends once the next wait would pass rate_limit_deadline (300 s)."""
    limited = answer(400, "Request limit reached, please try again later", Retry_After="3600")
    server = await scripted(replies(limited))
    events: list[RetryEvent] = []
    async with client(server.url, key, max_retries=0, on_retry=events.append) as c:
        with pytest.raises(RateLimitError, match="rate_limit_deadline"):
            await c.delete_project("p")
    assert all(e.rate_limited and e.delay == 30.0 for e in events)
    assert sum(e.delay for e in events) <= 300.0
    assert len(server.requests) == 10


# ----------------------------------------------------------------------------- size


async def test_a_10_mb_error_page_is_a_short_message(scripted, key):
    """A 10 MB HTML 500: message under 600 characters, body kept up to 64 KiB, and the call
    allocates under 2 MiB while reading it (it was a 10,485,795-character message)."""
    server = await scripted(big(500, 10 * MiB))
    async with client(server.url, key, max_retries=0) as c:
        with peak_memory() as peak, pytest.raises(ServerError) as info:
            await c.delete_project("p")
    err = info.value
    assert len(str(err)) < 600
    assert err.body is not None
    assert len(err.body) <= 64 * 1024 + 100
    assert peak[0] < 2 * MiB, peak


def big(status: int, size: int) -> Script:
    """An HTML error page of ``size`` bytes, written in 64 KiB pieces (the server side of this
    process then holds one piece, not the page: tracemalloc sees both sides)."""

    async def script(request: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(head(status, {"Content-Type": "text/html"}, size) + b"<html>")
        sent = 6
        while sent < size and not writer.is_closing():
            piece = min(65536, size - sent)
            writer.write(b"x" * piece)
            sent += piece
            await writer.drain()
        return False

    return script


def endless(status: int, **headers: str) -> Script:
    async def script(request: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(head(status, {k.replace("_", "-"): v for k, v in headers.items()}))
        chunk = b"y" * 65536
        while not writer.is_closing():
            writer.write(chunk)
            await writer.drain()
        return False

    return script


async def test_an_endless_error_body_is_cut(scripted, key):
    """An error body that never ends (no length, closed by nobody): the call fails at once,
    allocating under 2 MiB (it grew the process by 750 MB on a 256 MB body)."""
    server = await scripted(endless(500))
    async with client(server.url, key, max_retries=0) as c:
        started = time.monotonic()
        with peak_memory() as peak, pytest.raises(ServerError):
            await c.delete_project("p")
    assert time.monotonic() - started < 2.0
    assert peak[0] < 2 * MiB, peak


async def test_an_endless_success_body_stops_at_max_response_bytes(scripted, key):
    """A success answer that never ends: APIError naming max_response_bytes (1 MiB here),
    under 4 MiB allocated, one attempt."""
    server = await scripted(endless(200, Content_Type="application/json"))
    async with client(server.url, key, max_response_bytes=MiB) as c:
        with peak_memory() as peak, pytest.raises(APIError, match="max_response_bytes"):
            await c.delete_project("p")
    assert peak[0] < 4 * MiB, peak
    assert len(server.requests) == 1


async def test_a_declared_huge_success_is_not_read(scripted, key):
    """'Content-Length: 10 GB' on a success: refused before a byte of it is read."""

    async def script(request: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(head(200, length=10 * 1024**3) + b'{"success": true, ')
        await writer.drain()
        await asyncio.Event().wait()
        return False

    server = await scripted(script)
    async with client(server.url, key, max_response_bytes=MiB, timeout=5) as c:
        started = time.monotonic()
        with pytest.raises(APIError, match="max_response_bytes"):
            await c.delete_project("p")
    assert time.monotonic() - started < 1.0


async def test_a_gzip_bomb_stops_at_max_response_bytes(scripted, key):
    """A success body of 250 KB of gzip that inflates to 256 MiB: the decoded answer is cut
    at max_response_bytes (1 MiB), allocating under 4 MiB (httpx alone inflated ~150 MB at once)."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 31)  # 31: the gzip container
    zeros = bytes(MiB)
    bomb = b"".join(squeeze.compress(zeros) for _ in range(256)) + squeeze.flush()
    server = await scripted(
        replies(answer(200, bomb, Content_Encoding="gzip", Content_Type="application/json"))
    )
    async with client(server.url, key, max_response_bytes=MiB) as c:
        with peak_memory() as peak, pytest.raises(APIError, match="max_response_bytes"):
            await c.delete_project("p")
    assert peak[0] < 4 * MiB, peak


# ----------------------------------------------------------------------------- words


@pytest.mark.parametrize(
    "refusal",
    [
        answer(400, "REQUEST LIMIT REACHED, PLEASE TRY AGAIN LATER"),
        answer(400, "request limit reached"),
        answer(400, {"success": False, "error_message": "Request Limit Reached."}),
        answer(200, {"success": False, "message": "request limit reached, slow down"}),
    ],
    ids=["upper", "lower", "json-title", "200-envelope"],
)
async def test_rate_limit_text_in_any_case_is_backpressure(scripted, key, refusal):
    """The rate-limit answer in any letter case: retried and the limiter slowed."""
    server = await scripted(replies(refusal, OK))
    async with client(server.url, key, rate_limit=RateLimitPolicy(calls_per_second=50.0)) as c:
        await c.delete_project("p")
        assert c._limiter.rate_limited_count == 1
    assert len(server.requests) == 2


@pytest.mark.parametrize("success", ["false", "true", 0, 1, None, "yes"])
async def test_success_other_than_json_true_is_a_refusal(scripted, key, success):
    """ "success" must be JSON true: "false", "true", 0, 1, null... are refusals, sent once."""
    server = await scripted(replies(answer(200, {"success": success, "job_id": "j"})))
    async with client(server.url, key) as c:
        with pytest.raises(APIError, match="success="):
            await c.train_automl_model(
                "p", "c", "m", task_type="classification", label_attribute="y"
            )
    assert len(server.requests) == 1


@pytest.mark.parametrize(
    ("final", "outcome"), [("FINISHED", "done"), ("Failed", "failed"), ("Finished ", "done")]
)
async def test_undocumented_status_spellings_end_the_wait(scripted, key, final, outcome):
    """Statuses compared without case: "FINISHED" and "Failed" end the wait at once."""
    server = await scripted(
        replies(
            answer(200, {"success": True, "status": "Pending"}),
            answer(200, {"success": True, "status": final, "error": "boom"}),
        )
    )
    async with client(server.url, key) as c:
        job = c.upload_job("j")
        if outcome == "done":
            await job.wait(timeout=5)
        else:
            with pytest.raises(JobFailedError, match="boom"):
                await job.wait(timeout=5)
    assert len(server.requests) == 2


async def test_an_unknown_status_is_named_at_the_deadline(scripted, key, caplog):
    """An unknown status polls until the deadline; logged once, named in the error."""
    server = await scripted(replies(answer(200, {"success": True, "status": "COMPLETED"})))
    async with client(server.url, key) as c:
        with caplog.at_level("WARNING", "vecml_async"), pytest.raises(JobTimeoutError) as info:
            await c.upload_job("j").wait(timeout=0.3)
    assert "COMPLETED (a status this client does not know)" in str(info.value)
    assert sum("COMPLETED" in r.getMessage() for r in caplog.records) == 1
    assert len(server.requests) > 2


# ----------------------------------------------------------------------------- exceptions


def garbage(data: bytes) -> Script:
    async def script(request: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(data)
        await writer.drain()
        return False

    return script


@pytest.mark.parametrize(
    "data",
    [
        b"HELLO THERE\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: banana\r\n\r\n{}",
        b'HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{"success": true}',
        b"",
        b"HTTP/1.1 999999999999 X\r\n\r\n",
    ],
    ids=["not-http", "bad-length", "short-body", "closed", "bad-status"],
)
async def test_broken_answers_are_transport_errors(scripted, key, data):
    """Whatever a broken server sends, the call raises a TransportError (retried: idempotent)."""
    server = await scripted(garbage(data))
    async with client(server.url, key, max_retries=2) as c:
        with pytest.raises(TransportError):
            await c.delete_project("p")
    assert len(server.requests) == 3


async def test_a_reset_connection_is_a_transport_error(scripted, key, reset):
    """A TCP reset right after the request: TransportError, retried for an idempotent call."""

    async def script(request: Any, writer: asyncio.StreamWriter) -> bool:
        reset(writer)
        return False

    server = await scripted(script)
    async with client(server.url, key, max_retries=3) as c:
        with pytest.raises(TransportError):
            await c.delete_project("p")
    assert len(server.requests) == 4


async def test_an_injected_transport_raising_connection_reset(key):
    """A plain ConnectionResetError from an injected http_client's transport is mapped."""

    def handler(request: httpx.Request) -> httpx.Response:
        raise ConnectionResetError(104, "Connection reset by peer")

    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with client("http://vecml.test/api", key, http_client=http, max_retries=1) as c:
        with pytest.raises(TransportError, match="ConnectionResetError"):
            await c.delete_project("p")
    await http.aclose()


# ----------------------------------------------------------------------------- never re-sent


def reset_script(reset: Callable[[asyncio.StreamWriter], None]) -> Script:
    async def script(request: Any, writer: asyncio.StreamWriter) -> bool:
        reset(writer)
        return False

    return script


def silent_script() -> Script:
    async def script(request: Any, writer: asyncio.StreamWriter) -> bool:
        await asyncio.Event().wait()
        return False

    return script


async def _upload(c: AsyncVecML) -> object:
    return await c.upload("p", "c", b'[{"a": "1"}]', file_format="json")


async def _train(c: AsyncVecML) -> object:
    return await c.train_automl_model(
        "p", "c", "m", task_type="classification", label_attribute="y"
    )


CALLS = {"upload": _upload, "train_automl_model": _train}


@pytest.mark.parametrize("endpoint", sorted(CALLS))
@pytest.mark.parametrize("attack", ["reset", "500", "silence", "garbage", "dropped-body"])
async def test_upload_and_training_are_never_sent_twice(scripted, key, reset, endpoint, attack):
    """An attempt that may have been applied is final for upload and train_automl_model:
    the server sees exactly one request and the error says it may have been applied."""
    script = {
        "reset": reset_script(reset),
        "500": replies(answer(500, "internal error")),
        "silence": silent_script(),
        "garbage": garbage(b"NOT HTTP\r\n\r\n"),
        "dropped-body": garbage(head(200, length=500) + b'{"success": true, "job_id": "j'),
    }[attack]
    server = await scripted(script)
    async with client(server.url, key, max_retries=5, timeout=0.5) as c:
        with pytest.raises((TransportError, ServerError)) as info:
            await CALLS[endpoint](c)
    assert server.sent(endpoint) == 1
    assert info.value.may_have_applied is True
    assert "may have been applied" in str(info.value)


@pytest.mark.parametrize("endpoint", sorted(CALLS))
async def test_upload_and_training_are_retried_when_not_applied(scripted, key, endpoint):
    """A 503 (the server did not act) is retried even for upload and training."""
    server = await scripted(replies(answer(503, "busy"), JOB))
    async with client(server.url, key) as c:
        await CALLS[endpoint](c)
    assert server.sent(endpoint) == 2


# ----------------------------------------------------------------------------- the CLI


async def test_the_cli_prints_one_short_line_for_a_10_mb_error(scripted, key):
    """vecml-async against a server answering a 10 MB error page: one stderr line, short."""
    page = "<html>" + "z" * (10 * MiB) + "</html>"
    server = await scripted(replies(answer(500, page)))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vecml_async.cli", "job", "status", "job-1",
        "--base-url", server.url,
        env={"VECML_API_KEY": key, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode != 0
    assert len(err) < 1000, len(err)
    assert b"zzz" in err
