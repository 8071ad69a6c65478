"""Retries: what is retried, how often, the rate-limit answer, Retry-After, backoff and jitter."""

from __future__ import annotations

import email.utils
import json
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import httpx
import pytest

import vecml_async
from vecml_async import (
    APIError,
    AsyncVecML,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RateLimitError,
    RateLimitPolicy,
    RequestTooLargeError,
    RetryPolicy,
    ServerError,
    TransportError,
)
from vecml_async._http_errors import parse_retry_after

RATE_LIMIT_TEXT = "Request limit reached, please try again later"
OK = httpx.Response(200, json={"success": True})
# The client-side limiter is off, so only the retry logic decides the number of attempts.
NO_LIMIT = RateLimitPolicy(calls_per_second=None, adaptive=False)


def rate_limited_plain() -> httpx.Response:
    return httpx.Response(400, text=RATE_LIMIT_TEXT)


def rate_limited_json() -> httpx.Response:
    return httpx.Response(400, json={"success": False, "error_message": RATE_LIMIT_TEXT})


@dataclass(frozen=True)
class RecordingPolicy(RetryPolicy):
    """A RetryPolicy that records the backoffs the retry decision asks it for."""

    calls: list[int] = field(default_factory=list, compare=False)

    def backoff(self, n: int, u: float) -> float:
        self.calls.append(n)
        return super().backoff(n, u)


@pytest.fixture
def make_client(api_key, base_url, http):
    def make(**options: object) -> AsyncVecML:
        options.setdefault("rate_limit", NO_LIMIT)
        return AsyncVecML(api_key, base_url=base_url, http_client=http, **options)  # type: ignore[arg-type]

    return make


@pytest.fixture
def delays_on() -> Iterator[None]:
    """Real delays for the duration of a test (the autouse fixture turns them off)."""
    vecml_async.set_testing(False)
    try:
        yield
    finally:
        vecml_async.set_testing(True)


# ----------------------------------------------------------------------------- what is retried


async def test_5xx_then_success(make_client, mock):
    """A 5xx answer is retried and the later success is returned."""
    route = mock.post("/delete_project").mock(
        side_effect=[httpx.Response(500), httpx.Response(503, text="busy"), OK]
    )
    answer = await make_client(max_retries=5).delete_project("p")
    assert answer.success is True
    assert route.call_count == 3


async def test_connection_error_then_success(make_client, mock):
    """A connection error is retried and the later success is returned."""
    route = mock.post("/delete_project").mock(side_effect=[httpx.ConnectError("refused"), OK])
    await make_client().delete_project("p")
    assert route.call_count == 2


async def test_timeouts_then_success(make_client, mock):
    """Timeouts (read and connect) are retried."""
    route = mock.post("/delete_project").mock(
        side_effect=[httpx.ReadTimeout("slow"), httpx.ConnectTimeout("slow"), OK]
    )
    await make_client().delete_project("p")
    assert route.call_count == 3


async def test_retries_resend_identical_bytes(make_client, mock):
    """Every attempt sends exactly the same body (same ids, same bytes)."""
    route = mock.post("/add_data_batch").mock(
        side_effect=[
            httpx.Response(502),
            httpx.ReadError("reset"),
            httpx.Response(200, json={"success": True, "job_id": "j"}),
        ]
    )
    await make_client().add_data_batch("p", "c", [[1.0, 2.0]] * 3, string_ids=["a", "b", "c"])
    bodies = [call.request.content for call in route.calls]
    assert len(bodies) == 3
    assert bodies[0] == bodies[1] == bodies[2]
    assert json.loads(bodies[0])["string_ids"] == ["a", "b", "c"]


async def test_large_streamed_body_is_resent_whole(make_client, mock):
    """A body above the streaming threshold is sent whole, with its length, on every attempt."""
    route = mock.post("/add_data_batch").mock(
        side_effect=[
            httpx.Response(500),
            httpx.Response(200, json={"success": True, "job_id": "j"}),
        ]
    )
    rows = [[float(i) + 0.123456789] * 64 for i in range(3000)]  # well over 1 MiB of JSON
    await make_client().add_data_batch("p", "c", rows)
    first, second = (call.request for call in route.calls)
    assert len(first.content) > 1 << 20
    assert first.content == second.content
    assert int(first.headers["content-length"]) == len(first.content)
    assert json.loads(first.content)["data"] == rows


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, APIError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, RequestTooLargeError),
        (422, APIError),
    ],
)
async def test_other_4xx_never_retried(make_client, mock, status, cls):
    """Refusals other than the rate-limit answer are raised after exactly one attempt."""
    route = mock.post("/delete_project").respond(
        status, json={"success": False, "error_message": "no"}
    )
    with pytest.raises(cls):
        await make_client(max_retries=5).delete_project("p")
    assert route.call_count == 1


async def test_200_refusal_not_retried(make_client, mock):
    """A 200 with success false is a refusal: one attempt."""
    route = mock.post("/delete_project").respond(
        200, json={"success": False, "error_message": "bad"}
    )
    with pytest.raises(APIError):
        await make_client(max_retries=5).delete_project("p")
    assert route.call_count == 1


@pytest.mark.parametrize("max_retries", [0, 1, 3])
async def test_max_retries_respected_for_5xx(make_client, mock, max_retries):
    """Total attempts are max_retries + 1, then ServerError."""
    route = mock.post("/delete_project").respond(500)
    with pytest.raises(ServerError):
        await make_client(max_retries=max_retries).delete_project("p")
    assert route.call_count == max_retries + 1


@pytest.mark.parametrize("max_retries", [0, 2])
async def test_max_retries_respected_for_connection_errors(make_client, mock, max_retries):
    """Total attempts are max_retries + 1, then TransportError."""
    route = mock.post("/delete_project").mock(side_effect=httpx.ConnectError("refused"))
    with pytest.raises(TransportError):
        await make_client(retry=RetryPolicy(max_retries=max_retries)).delete_project("p")
    assert route.call_count == max_retries + 1


async def test_max_retries_overrides_retry_policy(make_client, mock):
    """max_retries= replaces the policy's count and keeps its other settings."""
    route = mock.post("/delete_project").respond(500)
    client = make_client(retry=RetryPolicy(max_retries=9, initial_delay=0.1), max_retries=1)
    with pytest.raises(ServerError):
        await client.delete_project("p")
    assert route.call_count == 2


async def test_max_retries_keeps_a_policy_subclass(make_client, mock):
    """max_retries= applied to a RetryPolicy subclass keeps the subclass (and its delay())."""
    mock.post("/delete_project").mock(side_effect=[httpx.Response(500), OK])
    policy = RecordingPolicy(max_retries=9)
    await make_client(retry=policy, max_retries=2).delete_project("p")
    assert policy.calls == [1]


# ----------------------------------------------------------------------------- rate limit


@pytest.mark.parametrize("answer", [rate_limited_plain, rate_limited_json], ids=["text", "json"])
async def test_rate_limit_retried_then_success(make_client, mock, answer):
    """The rate-limit answer (plain text or JSON envelope) is retried."""
    route = mock.post("/delete_project").mock(side_effect=[answer(), answer(), OK])
    client = make_client(max_retries=3)
    answer_ = await client.delete_project("p")
    assert answer_.success is True
    assert route.call_count == 3
    assert client._limiter.rate_limited_count == 2


async def test_rate_limit_answers_do_not_spend_retries(make_client, mock):
    """Rate-limit answers are backpressure: with max_retries=0 a call still waits through
    ten of them, and the stats count them apart from retries."""
    from vecml_async._transport import SendStats

    route = mock.post("/delete_project").mock(side_effect=[rate_limited_plain()] * 10 + [OK])
    client = make_client(max_retries=0)
    stats = SendStats()
    body = client._transport.encode({"project_name": "p"})
    await client._transport.send("delete_project", body, stats)
    assert route.call_count == 11
    assert (stats.attempts, stats.retries, stats.rate_limited) == (11, 0, 10)


@pytest.mark.parametrize("answer", [rate_limited_plain, rate_limited_json], ids=["text", "json"])
async def test_rate_limit_until_the_deadline_is_rate_limit_error(make_client, mock, answer):
    """A server that never stops refusing: RateLimitError (HTTP 400) once the rate-limit
    deadline passes. Testing mode skips the waits but counts them, so the number of attempts
    is production's: backoff 0.5 s doubling to 20 s, capped, no jitter, until 60 s."""
    route = mock.post("/delete_project").mock(side_effect=lambda request: answer())
    policy = RetryPolicy(max_retries=0, jitter=0.0, rate_limit_deadline=60.0)
    with pytest.raises(RateLimitError) as info:
        await make_client(retry=policy).delete_project("p")
    # waits 0.5 + 1 + 2 + 4 + 8 + 16 + 20 = 51.5 s; the next 20 s would pass 60 s
    assert route.call_count == 8
    assert info.value.status_code == 400
    assert info.value.message.startswith(RATE_LIMIT_TEXT)
    assert "rate_limit_deadline" in info.value.message


async def test_429_from_a_proxy_is_retried(make_client, mock):
    """Any HTTP 429 (e.g. from a proxy, without VecML's text) is retried like a rate limit."""
    route = mock.post("/delete_project").mock(
        side_effect=[httpx.Response(429, text="Too Many Requests"), OK]
    )
    await make_client().delete_project("p")
    assert route.call_count == 2
    route.mock(side_effect=None, return_value=httpx.Response(429, text="Too Many Requests"))
    policy = RetryPolicy(jitter=0.0, rate_limit_deadline=1.0)  # 0.5 s, then 1 s passes it
    with pytest.raises(RateLimitError) as info:
        await make_client(retry=policy).delete_project("p")
    assert info.value.status_code == 429
    assert route.call_count == 4


@pytest.mark.parametrize(
    "text",
    ["request limit reached", "REQUEST LIMIT REACHED, TRY LATER", "Request Limit Reached."],
)
async def test_rate_limit_text_in_any_case(make_client, mock, text):
    """The rate-limit text is recognised in any letter case (retried, limiter slowed)."""
    route = mock.post("/delete_project").mock(side_effect=[httpx.Response(400, text=text), OK])
    client = make_client()
    await client.delete_project("p")
    assert route.call_count == 2
    assert client._limiter.rate_limited_count == 1


async def test_rate_limit_in_200_envelope_retried(make_client, mock):
    """A 200 with success false and the rate-limit text is also a rate-limit answer."""
    route = mock.post("/delete_project").mock(
        side_effect=[
            httpx.Response(200, json={"success": False, "error_message": RATE_LIMIT_TEXT}),
            OK,
        ]
    )
    await make_client().delete_project("p")
    assert route.call_count == 2


async def test_rate_limit_with_adaptive_limiter_lowers_rate(make_client, mock):
    """A rate-limit answer lowers the client's own rate (adaptive limiter)."""
    mock.post("/delete_project").mock(side_effect=[rate_limited_plain(), OK])
    client = make_client(rate_limit=RateLimitPolicy(calls_per_second=100.0))
    await client.delete_project("p")
    assert client._limiter.current_rate is not None
    assert client._limiter.current_rate < 100.0


# ----------------------------------------------------------------------------- Retry-After


async def test_retry_after_header_sets_the_wait(make_client, mock):
    """Retry-After (seconds or HTTP date) of 5xx and rate-limit answers is the wait (capped
    at max_retry_after); without it the backoff applies."""
    future = email.utils.formatdate(time.time() + 25, usegmt=True)
    mock.post("/delete_project").mock(
        side_effect=[
            httpx.Response(503, headers={"Retry-After": "7"}),
            httpx.Response(400, text=RATE_LIMIT_TEXT, headers={"Retry-After": "2.5"}),
            httpx.Response(503, headers={"Retry-After": future}),
            httpx.Response(503, headers={"Retry-After": "3600"}),
            httpx.Response(500),
            OK,
        ]
    )
    delays: list[float] = []
    policy = RetryPolicy(max_retries=5, jitter=0.0, max_retry_after=30.0)
    client = make_client(retry=policy, on_retry=lambda event: delays.append(event.delay))
    await client.delete_project("p")
    assert delays[0] == 7.0
    assert delays[1] == 2.5
    assert 20.0 <= delays[2] <= 25.5
    assert delays[3] == 30.0
    assert delays[4] == 4.0  # no header: the backoff of the 4th real-failure retry


def test_parse_retry_after_values():
    """Retry-After parses delta-seconds and HTTP dates; junk and absence give None."""
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after(None) is None
    assert parse_retry_after("") is None
    assert parse_retry_after("soon") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past
    in_a_minute = email.utils.formatdate(time.time() + 60, usegmt=True)
    seconds = parse_retry_after(in_a_minute)
    assert seconds is not None
    assert 55.0 <= seconds <= 60.5


@pytest.fixture
def new_york_time(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process's local timezone is not UTC for the duration of a test."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_parse_retry_after_date_without_zone_name_is_utc(new_york_time):
    """An HTTP date written with '-0000' is UTC too, whatever the local timezone."""
    when = email.utils.formatdate(time.time() + 120)  # '-0000' form
    assert when.endswith("-0000")
    seconds = parse_retry_after(when)
    assert seconds is not None
    assert 115.0 <= seconds <= 120.5


def test_delay_honours_retry_after(delays_on):
    """With a Retry-After, delay() returns it, capped at max_retry_after; else backoff."""
    rng = random.Random(1)
    policy = RetryPolicy(jitter=0.0, max_retry_after=10.0)
    assert policy.delay(1, rng, retry_after=4.0) == 4.0
    assert policy.delay(1, rng, retry_after=400.0) == 10.0
    assert policy.delay(3, rng, retry_after=0.0) == 0.0
    ignoring = RetryPolicy(jitter=0.0, respect_retry_after=False, initial_delay=0.5)
    assert ignoring.delay(1, rng, retry_after=30.0) == 0.5


def test_delay_backoff_grows_and_is_capped(delays_on):
    """Without jitter the delay doubles from initial_delay and stops at max_delay."""
    rng = random.Random(0)
    policy = RetryPolicy(initial_delay=0.5, multiplier=2.0, max_delay=5.0, jitter=0.0)
    assert [policy.delay(n, rng) for n in range(1, 8)] == [0.5, 1.0, 2.0, 4.0, 5.0, 5.0, 5.0]


def test_delay_jitter_within_bounds(delays_on):
    """With jitter j each delay lies in [(1 - j) * base, base], and it does vary."""
    rng = random.Random(1234)
    policy = RetryPolicy(initial_delay=1.0, multiplier=3.0, max_delay=9.0, jitter=0.5)
    for retry, base in [(1, 1.0), (2, 3.0), (3, 9.0), (6, 9.0)]:
        samples = [policy.delay(retry, rng) for _ in range(200)]
        assert all(0.5 * base <= s <= base for s in samples)
        assert max(samples) - min(samples) > 0.3 * base


def test_delay_is_reproducible_with_a_seed(delays_on):
    """The same seed gives the same jittered delays."""
    policy = RetryPolicy()
    first = [policy.delay(n, random.Random(7)) for n in range(1, 6)]
    second = [policy.delay(n, random.Random(7)) for n in range(1, 6)]
    assert first == second


def test_delay_zero_in_testing_mode():
    """In testing mode every delay is 0, Retry-After included; backoff() stays pure."""
    policy = RetryPolicy(jitter=0.0)
    assert policy.delay(1, random.Random(0)) == 0.0
    assert policy.delay(5, random.Random(0), retry_after=30.0) == 0.0
    assert policy.backoff(2, 0.5) == 1.0


@pytest.mark.parametrize(
    "options",
    [
        {"max_retries": -1},
        {"initial_delay": -0.1},
        {"max_delay": -1.0},
        {"multiplier": 0.5},
        {"jitter": 1.5},
        {"max_retry_after": -1},
        {"max_retries": True},
        {"max_retries": 2.5},
        {"initial_delay": float("nan")},
        {"max_delay": float("inf")},
        {"rate_limit_deadline": 0},
        {"deadline": -5},
        {"respect_retry_after": "yes"},
    ],
)
def test_retry_policy_refuses_nonsense(options):
    """RetryPolicy refuses negative counts and delays, shrinking growth and jitter outside
    0..1, with an InvalidInputError naming the field."""
    with pytest.raises(InvalidInputError) as info:
        RetryPolicy(**options)
    assert info.value.field == next(iter(options))


async def test_backoff_sleeps_between_attempts(make_client, mock, delays_on):
    """Outside testing mode the transport really waits the policy's delay between attempts."""
    route = mock.post("/delete_project").mock(side_effect=[httpx.Response(500), OK])
    client = make_client(retry=RetryPolicy(initial_delay=0.2, jitter=0.0))
    started = time.monotonic()
    await client.delete_project("p")
    assert time.monotonic() - started >= 0.2
    assert route.call_count == 2
