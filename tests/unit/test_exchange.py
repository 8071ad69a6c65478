"""One attempt on the wire: every exception mapped, deadlines, bounded answers, hints.

The HTTP client is an ``httpx.AsyncClient`` over ``httpx.MockTransport`` (what an application
injecting its own transport looks like); the refused-connection cases use a real closed port.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from vecml_async import (
    APIError,
    AsyncVecML,
    NotFoundError,
    RateLimitPolicy,
    RetryPolicy,
    ServerError,
    TransportError,
)

NO_LIMIT = RateLimitPolicy(calls_per_second=None, adaptive=False)


def client_over(
    handler: Callable[[httpx.Request], Any], api_key: str, base_url: str, **options: Any
) -> AsyncVecML:
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    options.setdefault("rate_limit", NO_LIMIT)
    return AsyncVecML(api_key, base_url=base_url, http_client=http, **options)


class Counter:
    """A handler that raises or answers, counting its calls."""

    def __init__(self, outcome: Callable[[], Any]) -> None:
        self.calls = 0
        self.outcome = outcome

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.calls += 1
        result = self.outcome()
        if isinstance(result, BaseException):
            raise result
        return result


# ----------------------------------------------------------------------------- exceptions


@pytest.mark.parametrize(
    "exc",
    [ConnectionResetError(104, "reset"), BrokenPipeError(32, "pipe"), OSError("odd")],
    ids=lambda e: type(e).__name__,
)
async def test_raw_oserror_from_a_custom_transport_is_a_transport_error(api_key, base_url, exc):
    """A plain OSError escaping an injected transport is mapped (and retried), never raw."""
    handler = Counter(lambda: exc)
    async with client_over(handler, api_key, base_url, max_retries=2) as client:
        with pytest.raises(TransportError) as info:
            await client.delete_project("p")
    assert handler.calls == 3
    assert type(exc).__name__ in str(info.value)
    assert isinstance(info.value.__cause__, type(exc))
    assert info.value.may_have_applied is True


async def test_any_exception_from_a_custom_transport_is_a_transport_error(api_key, base_url):
    """An unexpected exception type is mapped too, not retried (a bug is not transient), and
    said to have maybe been applied."""
    handler = Counter(lambda: KeyError("weird"))
    async with client_over(handler, api_key, base_url, max_retries=5) as client:
        with pytest.raises(TransportError, match="unexpected error from the HTTP client") as info:
            await client.delete_project("p")
    assert handler.calls == 1
    assert info.value.may_have_applied is True


async def test_cancellation_propagates_untouched(api_key, base_url):
    """Cancelling the calling task cancels the attempt: CancelledError, not TransportError."""
    entered = asyncio.Event()

    async def handler(request: httpx.Request) -> httpx.Response:
        entered.set()
        await asyncio.Event().wait()  # never answers
        raise AssertionError("unreachable")

    async with client_over(handler, api_key, base_url) as client:
        task = asyncio.create_task(client.delete_project("p"))
        await entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_refused_loopback_names_the_url_and_gives_up_fast(api_key):
    """Nothing listens on a loopback port: the error names the URL, asks whether the server
    is running, and the call gives up after one retry (not five)."""
    url = f"http://127.0.0.1:{closed_port()}/api"
    async with AsyncVecML(api_key, base_url=url, rate_limit=NO_LIMIT, max_retries=5) as client:
        with pytest.raises(TransportError) as info:
            await client.delete_project("p")
    assert f"connection refused by {url}/delete_project: is the server running?" in str(info.value)
    assert info.value.url == f"{url}/delete_project"


async def test_refused_loopback_attempts_are_two(api_key):
    """The count behind 'gives up fast': two attempts on loopback against six remotely."""
    attempts: list[int] = []
    url = f"http://127.0.0.1:{closed_port()}/api"
    async with AsyncVecML(
        api_key,
        base_url=url,
        rate_limit=NO_LIMIT,
        max_retries=5,
        on_request=lambda e: attempts.append(e.attempt),
    ) as client:
        with pytest.raises(TransportError):
            await client.delete_project("p")
    assert attempts == [1, 2]


async def test_refused_remote_connection_is_retried_in_full(api_key):
    """A refused connection to a remote host may be a flaky network: all retries are used."""

    def refuse() -> Exception:
        err = httpx.ConnectError("All connection attempts failed")
        err.__cause__ = ConnectionRefusedError(111, "Connection refused")
        return err

    handler = Counter(refuse)
    async with client_over(handler, api_key, "https://vecml.example/api", max_retries=5) as c:
        with pytest.raises(TransportError, match="is the server running"):
            await c.delete_project("p")
    assert handler.calls == 6


# ----------------------------------------------------------------------------- hints and bodies


@pytest.mark.parametrize(
    ("base_url", "answer", "hinted"),
    [
        ("http://vecml.test", httpx.Response(404, text="Not Found"), True),
        ("http://vecml.test/", httpx.Response(404, text="<html>404</html>"), True),
        ("http://vecml.test/api", httpx.Response(404, text="Not Found"), False),
        (
            "http://vecml.test",
            httpx.Response(404, json={"success": False, "error_message": "Project p not found"}),
            False,
        ),
    ],
)
async def test_404_hints_at_a_base_url_without_api(api_key, base_url, answer, hinted):
    """A generic 404 with a base URL lacking /api says so; the API's own 404 does not."""
    async with client_over(lambda r: answer, api_key, base_url) as client:
        with pytest.raises(NotFoundError) as info:
            await client.delete_project("p")
    assert ("missing '/api'" in info.value.message) is hinted


async def test_huge_error_body_is_bounded(api_key, base_url):
    """A 10 MB HTML 500: the message holds a few hundred characters, the body 64 KiB."""
    page = "<html>" + "x" * 10_000_000 + "</html>"
    answer = httpx.Response(500, text=page, headers={"Retry-After": "0", "Set-Cookie": "s=1"})
    async with client_over(lambda r: answer, api_key, base_url, max_retries=0) as client:
        with pytest.raises(ServerError) as info:
            await client.delete_project("p")
    err = info.value
    assert len(str(err)) < 600
    assert err.body is not None
    assert len(err.body) <= 64 * 1024 + 100
    assert err.body.startswith("<html>xxx")
    assert err.headers["retry-after"] == "0"
    assert "set-cookie" not in err.headers


async def test_endless_error_body_is_not_read_to_the_end(api_key, base_url):
    """An error body that never ends: the answer is cut at 64 KiB and the call fails."""
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += 65536
            yield b"e" * 65536

    answer = httpx.Response(500, content=endless())
    async with client_over(lambda r: answer, api_key, base_url, max_retries=0) as client:
        with pytest.raises(ServerError):
            await client.delete_project("p")
    assert sent <= 3 * 65536


async def test_success_over_max_response_bytes_is_a_clear_error(api_key, base_url):
    """A success answer past max_response_bytes: APIError naming the setting, one attempt."""
    handler = Counter(lambda: httpx.Response(200, json={"success": True, "pad": "p" * 5000}))
    async with client_over(handler, api_key, base_url, max_response_bytes=1000) as client:
        with pytest.raises(APIError, match="max_response_bytes") as info:
            await client.delete_project("p")
    assert handler.calls == 1
    assert info.value.may_have_applied is True


async def test_success_under_max_response_bytes_is_read(api_key, base_url):
    """The cap is a cap: an answer below it is read whole."""
    answer = httpx.Response(200, json={"success": True, "pad": "p" * 500})
    async with client_over(lambda r: answer, api_key, base_url, max_response_bytes=1000) as c:
        assert (await c.delete_project("p")).model_extra == {"pad": "p" * 500}


# ----------------------------------------------------------------------------- deadlines


def drip(every: float, total: int = 1000) -> Callable[[httpx.Request], httpx.Response]:
    """An answer whose body arrives one byte every ``every`` seconds."""

    async def body() -> AsyncIterator[bytes]:
        yield b'{"success": true, "x": "'
        for _ in range(total):
            await asyncio.sleep(every)
            yield b"a"
        yield b'"}'

    return lambda request: httpx.Response(200, content=body())


async def test_timeout_bounds_the_whole_attempt(api_key, base_url):
    """A body dripping one byte per 50 ms never trips a per-read timeout; the attempt
    deadline (timeout=0.3) ends it anyway, within a bound."""
    async with client_over(drip(0.05), api_key, base_url, timeout=0.3, max_retries=0) as c:
        started = time.monotonic()
        with pytest.raises(TransportError, match=r"within 0.3 s") as info:
            await c.delete_project("p")
    assert time.monotonic() - started < 2.0
    assert info.value.may_have_applied is True


async def test_per_call_timeout_replaces_the_clients(api_key, base_url):
    """send(timeout=...) bounds that call's attempts instead of the client's timeout."""
    async with client_over(drip(0.05), api_key, base_url, timeout=60, max_retries=0) as c:
        body = c._transport.encode({"project_name": "p"})
        with pytest.raises(TransportError, match=r"within 0.2 s"):
            await c._transport.send("delete_project", body, timeout=0.2)


async def test_overall_deadline_bounds_attempts_and_retries(api_key, base_url):
    """RetryPolicy(deadline=...) cuts a slow attempt at the call's deadline and makes no
    retry that could not start before it."""
    policy = RetryPolicy(max_retries=5, deadline=0.3)
    async with client_over(drip(0.05), api_key, base_url, timeout=60, retry=policy) as c:
        started = time.monotonic()
        with pytest.raises(TransportError, match="deadline"):
            await c.delete_project("p")
    assert time.monotonic() - started < 2.0


async def test_overall_deadline_stops_retries_counted_in_testing_mode(api_key, base_url):
    """With deadline 1 s and backoff 0.5 s doubling, a failing call makes 2 attempts."""
    handler = Counter(lambda: httpx.Response(500))
    policy = RetryPolicy(max_retries=5, jitter=0.0, deadline=1.0)
    async with client_over(handler, api_key, base_url, retry=policy) as c:
        with pytest.raises(ServerError, match=r"RetryPolicy.deadline"):
            await c.delete_project("p")
    assert handler.calls == 2  # waits 0.5 s, then 1 s would pass the deadline


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate", "identity"])
async def test_compressed_answers_are_decoded(api_key, base_url, encoding):
    """gzip, zlib deflate, raw deflate and plain answers all read the same."""
    import zlib

    payload = json.dumps({"success": True, "pad": "q" * 10_000}).encode()
    wbits = {"gzip": 31, "deflate": 15, "raw-deflate": -15}.get(encoding)
    if wbits is None:
        content, header = payload, {}
    else:
        squeeze = zlib.compressobj(6, zlib.DEFLATED, wbits)
        content = squeeze.compress(payload) + squeeze.flush()
        header = {"Content-Encoding": encoding.replace("raw-", "")}

    async def streamed() -> AsyncIterator[bytes]:  # not read ahead by httpx, as on the wire
        for start in range(0, len(content), 100):
            yield content[start : start + 100]

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=streamed(), headers=header)

    async with client_over(respond, api_key, base_url) as c:
        assert (await c.delete_project("p")).model_extra == {"pad": "q" * 10_000}


async def test_a_corrupt_gzip_answer_is_a_transport_error(api_key, base_url):
    """An answer that claims gzip and is not: TransportError, not a crash."""

    async def streamed() -> AsyncIterator[bytes]:
        yield b"not gzip at all"

    def respond(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=streamed(), headers={"Content-Encoding": "gzip"})

    async with client_over(respond, api_key, base_url, max_retries=0) as c:
        with pytest.raises(TransportError, match="inflate"):
            await c.delete_project("p")
