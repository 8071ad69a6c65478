"""``AsyncVecML(profile=...)``: what a server profile changes in the client, with respx."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import pytest

from vecml_async import (
    APIError,
    AsyncVecML,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RateLimitError,
)
from vecml_async._adapt import NO_ADAPTATION, Adaptation
from vecml_async._config import HARD_MAX_REQUEST_BYTES
from vecml_async._http_errors import classify, error_class
from vecml_async._server_rules import DEFAULT_RULES
from vecml_async.probe import ErrorAnswer, ServerProfile

TOO_MANY = "Too many requests for this key"


def _client(api_key, base_url, http, **options):
    return AsyncVecML(api_key, base_url=base_url, rate_limit=None, http_client=http, **options)


def test_no_profile_changes_nothing():
    """Without a profile the adaptation is the library's defaults."""
    assert Adaptation.of(None) == NO_ADAPTATION
    assert NO_ADAPTATION.rules == DEFAULT_RULES
    assert NO_ADAPTATION.max_request_bytes == HARD_MAX_REQUEST_BYTES
    assert NO_ADAPTATION.sparse_format == "pairs"


def test_an_empty_profile_changes_nothing():
    """A profile with no answers keeps every default."""
    adapt = Adaptation.of(ServerProfile())
    assert adapt.max_request_bytes == HARD_MAX_REQUEST_BYTES
    assert adapt.sparse_format == "pairs"
    assert (adapt.calls_per_second, adapt.allow_auto_training_mode) == (None, None)
    assert classify(400, b"Request limit reached", rules=adapt.rules).kind == "rate_limited"


@pytest.mark.parametrize(
    ("status", "text", "kind"),
    [
        (503, TOO_MANY, "rate_limited"),  # without the profile: a retryable 5xx
        (400, TOO_MANY + ".", "rate_limited"),  # without the profile: a refusal
        (200, json.dumps({"success": False, "error": TOO_MANY}), "rate_limited"),
        (400, "Request limit reached", "rate_limited"),  # the documented text still counts
        (503, "Service Unavailable", "retryable"),
        (400, "bad vector", "fatal"),
    ],
)
def test_the_profiles_rate_limit_answer_is_recognised(status, text, kind):
    """The status and text of the probed rate-limit answer classify as rate limited."""
    profile = ServerProfile(rate_limit_status=503, rate_limit_text=TOO_MANY + ".")
    rules = Adaptation.of(profile).rules
    assert classify(status, text.encode(), rules=rules).kind == kind


def test_without_the_profile_those_answers_are_not_rate_limits():
    """The control: the same answers, default rules."""
    assert classify(503, TOO_MANY.encode()).kind == "retryable"
    assert classify(400, TOO_MANY.encode()).kind == "fatal"


def _errors_profile() -> ServerProfile:
    return ServerProfile(
        error_status="ok",
        errors={
            "project_exists": ErrorAnswer(
                status=200, field="message", message="{project} is taken"
            ),
            "missing_project": ErrorAnswer(
                status=200, field="message", message="No such project: {project}"
            ),
            "missing_job": ErrorAnswer(status=410, field="message", message="gone"),
            "bad_name": ErrorAnswer(status=422, field="message", message="Bad name {project} x"),
        },
    )


@pytest.mark.parametrize(
    ("status", "message", "cls"),
    [
        (200, "shop is taken", ConflictError),  # by default: a plain APIError
        (200, "No such project: shop", NotFoundError),  # by default: a plain APIError
        (410, "whatever", NotFoundError),  # the status only missing things got
        (422, "anything", APIError),
        (200, "shop is taken, and more", APIError),  # the whole text must match
        (401, "shop is taken", ConflictError),  # its own message still decides first
        (401, "no", error_class(401, "no")),  # authentication's statuses are not remapped
        (200, "Request limit reached", RateLimitError),
    ],
)
def test_the_profiles_error_messages_and_statuses_decide(status, message, cls):
    """Messages (with the names as wildcards) and specific statuses give the error class."""
    rules = Adaptation.of(_errors_profile()).rules
    assert error_class(status, message, rules) is cls


def test_generic_messages_are_not_patterns():
    """A message too short to tell errors apart is not used (it would match everything)."""
    rules = Adaptation.of(_errors_profile()).rules
    assert error_class(200, "gone", rules) is APIError
    assert ErrorAnswer(status=400, message="{project}").pattern() is None


async def test_exist_ok_reads_the_servers_own_conflict_answer(api_key, base_url, http, mock):
    """A server answering 'X is taken' (HTTP 200): with its profile, exist_ok works."""
    mock.post("/create_project").respond(json={"success": False, "message": "shop is taken"})
    async with _client(api_key, base_url, http) as plain:
        with pytest.raises(APIError) as info:
            await plain.create_project("shop", exist_ok=True)
        assert type(info.value) is APIError
    async with _client(api_key, base_url, http, profile=_errors_profile()) as adapted:
        answer = await adapted.create_project("shop", exist_ok=True)
    assert answer.success and answer.existed is True


async def test_a_rate_limit_answer_of_the_profile_is_waited_out(api_key, base_url, http, mock):
    """503 'Too many requests' is backpressure with the profile (max_retries is not spent)."""
    route = mock.post("/delete_project")
    route.side_effect = [*([_answer(503, TOO_MANY)] * 3), _answer(200, '{"success": true}')]
    profile = {"rate_limit_status": 503, "rate_limit_text": TOO_MANY}
    async with _client(api_key, base_url, http, profile=profile, max_retries=0) as client:
        await client.delete_project("p")
        assert client._limiter.current_rate is not None  # refusals slowed the client down
    assert route.call_count == 4


def _answer(status, text):
    import httpx

    return httpx.Response(status, text=text)


async def test_the_ceiling_and_auto_mode_follow_the_profile(api_key, base_url, http):
    """calls_per_second sets the limiter; accepts_auto_training_mode lets "auto" through;
    options given explicitly win."""
    profile = ServerProfile(calls_per_second=4.5, accepts_auto_training_mode=True)
    async with AsyncVecML(api_key, base_url=base_url, http_client=http, profile=profile) as c:
        assert c._limiter.current_rate == 4.5
        assert c._allow_auto_training_mode is True
        assert c.profile is profile
        assert c.with_options(timeout=5).profile is profile
    async with AsyncVecML(
        api_key,
        base_url=base_url,
        http_client=http,
        profile=profile,
        rate_limit=8,
        allow_auto_training_mode=False,
    ) as c:
        assert c._limiter.current_rate == 8
        assert c._allow_auto_training_mode is False
    async with AsyncVecML(api_key, base_url=base_url, http_client=http) as c:
        assert c._limiter.current_rate == 10.0


async def test_sparse_rows_go_in_the_form_the_server_takes(api_key, base_url, http, mock):
    """A server that took only the dict form gets sparse rows as {"i": v}."""
    route = mock.post("/add_data_batch").respond(json={"success": True, "job_id": "j"})
    profile = {"sparse_encodings": ["dict", "libsvm"]}
    async with _client(api_key, base_url, http, profile=profile) as client:
        await client.add_data_batch("p", "c", [{3: 0.5, 1: 2.0}], sparse=True, string_ids=["a"])
        await client.ingest("p", "c", [{1: 1.0}], sparse=True, ids=["b"])
    bodies = [orjson.loads(call.request.content) for call in route.calls]
    assert bodies[0]["data"] == [{"1": 2.0, "3": 0.5}]
    assert bodies[1]["data"] == [{"1": 1.0}]


async def test_a_lower_cap_bounds_ingest_bodies(api_key, base_url, http, mock):
    """A server taking 20,000 bytes: ingest cuts its requests under 19,800 whatever max_bytes."""
    route = mock.post("/add_data_batch").respond(json={"success": True, "job_id": "j"})
    rows = [[0.123456789] * 16 for _ in range(400)]
    async with _client(api_key, base_url, http, profile={"max_body_bytes": 20_000}) as client:
        report = await client.ingest("p", "c", rows, max_bytes=1 << 20)
    sizes = [len(call.request.content) for call in route.calls]
    assert report.rows_sent == 400
    assert len(sizes) > 1
    assert max(sizes) <= 19_800


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ({"profile_version": 7}, "newer vecml-async"),
        ({"error_status": "sometimes"}, "not a server profile"),
        (42, "not a server profile"),
        ("/nonexistent/profile.json", "cannot read the profile"),
    ],
)
def test_a_bad_profile_is_refused_before_anything_is_sent(api_key, base_url, value, fragment):
    """A malformed, too new or missing profile is an InvalidInputError naming profile."""
    with pytest.raises(InvalidInputError, match=fragment) as info:
        AsyncVecML(api_key, base_url=base_url, profile=value)
    assert info.value.field == "profile"


async def test_a_profile_file(api_key, base_url, http, tmp_path: Path):
    """The path of the JSON a probe printed is a profile."""
    path = tmp_path / "server.json"
    path.write_text(ServerProfile(calls_per_second=3.0).to_json())
    async with AsyncVecML(api_key, base_url=base_url, http_client=http, profile=path) as c:
        assert c._limiter.current_rate == 3.0
        assert c.profile is not None and c.profile.calls_per_second == 3.0
