"""Hooks, tracing spans, per-call options and derived transports."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

import vecml_async._hooks as hooks_module
from vecml_async import (
    AsyncVecML,
    InvalidInputError,
    RateLimitPolicy,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    RetryPolicy,
    ServerError,
)
from vecml_async._hooks import Hooks
from vecml_async._limiter import RateLimiter
from vecml_async._redact import Secret
from vecml_async._transport import SendStats, Transport

OK = httpx.Response(200, json={"success": True})
RL = "Request limit reached, please try again later"


@pytest.fixture
def events() -> list[Any]:
    return []


@pytest.fixture
def hooked(api_key, base_url, http, events):
    """A client whose three hooks append their events (the retry hook is a coroutine)."""

    async def on_retry(event: RetryEvent) -> None:
        events.append(event)

    return AsyncVecML(
        api_key,
        base_url=base_url,
        http_client=http,
        rate_limit=None,
        on_request=events.append,
        on_response=[events.append],
        on_retry=on_retry,
    )


async def test_hooks_see_every_attempt_and_retry(hooked, mock, events, base_url):
    """on_request / on_response per attempt, on_retry per retry, in order, with outcomes."""
    mock.post("/delete_project").mock(
        side_effect=[httpx.Response(500), httpx.Response(400, text=RL), OK]
    )
    await hooked.delete_project("p")
    kinds = [type(e).__name__ for e in events]
    assert kinds == [
        "RequestEvent",
        "ResponseEvent",
        "RetryEvent",
        "RequestEvent",
        "ResponseEvent",
        "RetryEvent",
        "RequestEvent",
        "ResponseEvent",
    ]
    responses = [e for e in events if isinstance(e, ResponseEvent)]
    assert [r.outcome for r in responses] == ["server_error", "rate_limited", "ok"]
    assert [r.status_code for r in responses] == [500, 400, 200]
    assert isinstance(responses[0].error, ServerError)
    assert responses[2].error is None
    retries = [e for e in events if isinstance(e, RetryEvent)]
    assert [(r.attempt, r.rate_limited) for r in retries] == [(1, False), (2, True)]
    requests = [e for e in events if isinstance(e, RequestEvent)]
    assert [r.attempt for r in requests] == [1, 2, 3]
    assert requests[0].url == f"{base_url}/delete_project"
    assert requests[0].body_bytes > 0


async def test_transport_error_reaches_the_response_hook(hooked, mock, events):
    """An attempt without an answer is a response event with outcome transport_error."""
    mock.post("/delete_project").mock(side_effect=[httpx.ReadError("reset"), OK])
    await hooked.delete_project("p")
    first = next(e for e in events if isinstance(e, ResponseEvent))
    assert (first.outcome, first.status_code) == ("transport_error", None)


async def test_a_failing_hook_propagates(api_key, base_url, http, mock):
    """An exception raised by a hook is the caller's to see, not swallowed."""
    mock.post("/delete_project").respond(json={"success": True})

    def broken(event: RequestEvent) -> None:
        raise LookupError("hook bug")

    client = AsyncVecML(
        api_key, base_url=base_url, http_client=http, rate_limit=None, on_request=broken
    )
    with pytest.raises(LookupError, match="hook bug"):
        await client.delete_project("p")


@pytest.mark.parametrize("bad", [42, ["not callable"]])
def test_hooks_must_be_callables(api_key, bad):
    """A hook that is not callable is refused when the client is built."""
    with pytest.raises(InvalidInputError) as info:
        AsyncVecML(api_key, on_retry=bad)
    assert info.value.field == "on_retry"


# ----------------------------------------------------------------------------- tracing


class FakeSpan:
    def __init__(self, name: str, attributes: dict[str, Any]) -> None:
        self.name = name
        self.attributes = dict(attributes)
        self.events: list[tuple[str, Any]] = []
        self.error: BaseException | None = None

    def set_attribute(self, key: str, value: Any) -> None:
        self.attributes[key] = value

    def add_event(self, name: str, attributes: Any = None) -> None:
        self.events.append((name, attributes))


class FakeTracer:
    def __init__(self) -> None:
        self.spans: list[FakeSpan] = []

    @contextlib.contextmanager
    def start_as_current_span(self, name: str, kind: Any, attributes: Any) -> Iterator[FakeSpan]:
        span = FakeSpan(name, attributes)
        self.spans.append(span)
        try:
            yield span
        except BaseException as err:
            span.error = err
            raise


@pytest.fixture
def tracer(monkeypatch: pytest.MonkeyPatch) -> FakeTracer:
    fake = FakeTracer()
    monkeypatch.setattr(hooks_module, "_tracer", fake)
    monkeypatch.setattr(hooks_module, "_tracer_resolved", True)
    return fake


async def test_one_span_per_call_with_its_counts(client, mock, tracer, base_url):
    """A call is one span: endpoint, URL, attempts, retries, rate limits, status, retry events."""
    mock.post("/delete_project").mock(side_effect=[httpx.Response(502), httpx.Response(429), OK])
    await client.delete_project("p")
    (span,) = tracer.spans
    assert span.name == "vecml delete_project"
    assert span.attributes["vecml.endpoint"] == "delete_project"
    assert span.attributes["url.full"] == f"{base_url}/delete_project"
    assert span.attributes["vecml.attempts"] == 3
    assert span.attributes["vecml.retries"] == 1
    assert span.attributes["vecml.rate_limited"] == 1
    assert span.attributes["http.response.status_code"] == 200
    assert [name for name, _ in span.events] == ["retry", "retry"]


async def test_a_failed_call_ends_its_span_with_the_error(client, mock, tracer, api_key):
    """The span sees the (redacted) error the call raises."""
    mock.post("/init").respond(401, json={"success": False, "error_message": f"bad {api_key}"})
    with pytest.raises(Exception, match="bad"):
        await client.init("p", "c", vector_dim=2)
    (span,) = tracer.spans
    assert span.error is not None
    assert api_key not in str(span.error)


async def test_without_opentelemetry_calls_work(client, mock, monkeypatch):
    """Without the package installed nothing is traced, and nothing fails."""
    monkeypatch.setitem(sys.modules, "opentelemetry", None)  # makes the import fail
    monkeypatch.setattr(hooks_module, "_tracer", None)
    monkeypatch.setattr(hooks_module, "_tracer_resolved", False)
    mock.post("/delete_project").respond(json={"success": True})
    await client.delete_project("p")
    assert hooks_module._tracer_resolved is True
    assert hooks_module._tracer is None


async def test_with_the_opentelemetry_api_alone_calls_work(client, mock, monkeypatch):
    """With opentelemetry-api and no SDK configured, the no-op tracer is used."""
    pytest.importorskip("opentelemetry.trace")
    monkeypatch.setattr(hooks_module, "_tracer", None)
    monkeypatch.setattr(hooks_module, "_tracer_resolved", False)
    mock.post("/delete_project").respond(json={"success": True})
    await client.delete_project("p")
    assert hooks_module._tracer is not None


def test_importing_the_package_does_not_import_opentelemetry():
    """The tracer is looked up at the first call, never at import."""
    import subprocess

    code = "import sys, vecml_async; print('opentelemetry' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# ----------------------------------------------------------------------------- derive


def make_transport(base_url: str, api_key: str, http: httpx.AsyncClient, **kw: Any) -> Transport:
    limiter = RateLimiter(RateLimitPolicy(calls_per_second=None, adaptive=False))
    return Transport(
        base_url=base_url,
        api_key=Secret(api_key),
        timeout=5.0,
        retry=RetryPolicy(max_retries=3),
        limiter=limiter,
        http_client=http,
        **kw,
    )


async def test_derive_shares_pool_slots_and_hooks(base_url, api_key, http, mock, events):
    """A derived transport replaces timeout / retry / limiter and shares the rest."""
    mock.post("/x").mock(side_effect=[httpx.Response(500), httpx.Response(500), OK])
    parent = make_transport(base_url, api_key, http, hooks=Hooks.of(on_request=events.append))
    child = parent.derive(retry=RetryPolicy(max_retries=0), timeout=1.0)
    assert child._exchange is parent._exchange
    assert child._slots is parent._slots
    assert child._hooks is parent._hooks
    assert child.limiter is parent.limiter
    with pytest.raises(ServerError):
        await child.send("x", child.encode({}))
    assert len(events) == 1  # one attempt: the child's retry policy
    await parent.send("x", parent.encode({}))  # the parent keeps its own (3 retries)
    assert len(events) == 3
    await child.aclose()
    assert not http.is_closed  # closing a derived transport closes nothing


async def test_derive_keeps_what_is_not_given(base_url, api_key, http):
    """derive() without an option keeps the original one."""
    parent = make_transport(base_url, api_key, http)
    child = parent.derive()
    assert child.retry is parent.retry
    assert child._timeout == parent._timeout


async def test_per_call_extra_headers_are_sent(base_url, api_key, http, mock):
    """extra_headers go out with the request; the framing headers stay the client's."""
    route = mock.post("/x").respond(json={"success": True})
    transport = make_transport(base_url, api_key, http)
    await transport.send("x", transport.encode({}), extra_headers={"X-Trace": "abc"})
    assert route.calls.last.request.headers["x-trace"] == "abc"
    for bad in ({"Content-Length": "1"}, {"X-A": "b\r\nInjected: 1"}):
        with pytest.raises(InvalidInputError):
            await transport.send("x", transport.encode({}), extra_headers=bad)
    assert route.call_count == 1


async def test_stats_count_limiter_wait_and_ambiguity(base_url, api_key, http, mock):
    """SendStats: limiter_wait adds the token waits; ambiguous says an attempt may have
    been applied (a 500), and stays False for a 503 (not applied)."""
    transport = make_transport(base_url, api_key, http)
    mock.post("/a").mock(side_effect=[httpx.Response(503), OK])
    stats = SendStats()
    await transport.send("a", transport.encode({}), stats)
    assert (stats.attempts, stats.retries, stats.ambiguous) == (2, 1, False)
    assert stats.limiter_wait >= 0.0
    mock.post("/b").mock(side_effect=[httpx.Response(500), OK])
    stats = SendStats()
    await transport.send("b", transport.encode({}), stats)
    assert stats.ambiguous is True


async def test_limiter_wait_is_measured(base_url, api_key, http, mock):
    """A limiter of 20 calls/s makes the second of two calls wait about 50 ms for its token."""
    limiter = RateLimiter(RateLimitPolicy(calls_per_second=20.0, adaptive=False))
    transport = make_transport(base_url, api_key, http).derive(limiter=limiter)
    mock.post("/a").respond(json={"success": True})
    stats = SendStats()
    await transport.send("a", transport.encode({}), stats)
    await transport.send("a", transport.encode({}), stats)
    assert 0.02 <= stats.limiter_wait <= 1.0
