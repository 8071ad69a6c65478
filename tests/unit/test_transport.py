"""The transport: what goes on the wire, how answers are classified, options and env fallbacks."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vecml_async import (
    APIError,
    AsyncVecML,
    AuthenticationError,
    ConflictError,
    InvalidInputError,
    NotFoundError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
)
from vecml_async._http_errors import classify, error_class

RL = "Request limit reached, please try again later"


# ----------------------------------------------------------------------------- classify


@pytest.mark.parametrize(
    ("status", "content", "kind", "message"),
    [
        (200, b'{"success": true, "job_id": "j"}', "ok", ""),
        (200, b'{"job_id": "j"}', "ok", ""),
        (400, RL.encode(), "rate_limited", RL),
        (400, RL.encode() + b"\n", "rate_limited", RL),
        (429, RL.encode(), "rate_limited", RL),
        (429, b"Too Many Requests", "rate_limited", "Too Many Requests"),
        (429, b"", "rate_limited", "HTTP 429"),
        (400, json.dumps({"success": False, "error_message": RL}).encode(), "rate_limited", RL),
        (200, json.dumps({"success": False, "error_message": RL}).encode(), "rate_limited", RL),
        (400, b'{"success": false, "error_message": "bad dim"}', "fatal", "bad dim"),
        (404, b"Not Found", "fatal", "Not Found"),
        (401, b"", "fatal", "HTTP 401"),
        (500, b"", "retryable", "HTTP 500"),
        (503, b'{"success": false, "error": "down"}', "retryable", "down"),
        (500, RL.encode(), "retryable", RL),
        (200, b"[1, 2]", "fatal", "the answer is not a JSON object"),
        (200, b"<html>", "fatal", "the answer is not a JSON object"),
        (
            200,
            b'{"success": false}',
            "fatal",
            "the server answered success=False without an error message",
        ),
        (400, b"REQUEST LIMIT REACHED", "rate_limited", "REQUEST LIMIT REACHED"),
        (400, b'{"error": "request limit reached"}', "rate_limited", "request limit reached"),
        (
            200,
            b'{"success": "false"}',
            "fatal",
            "the server answered success='false' without an error message",
        ),
        (
            200,
            b'{"success": "true"}',
            "fatal",
            "the server answered success='true' without an error message",
        ),
        (200, b'{"success": 0}', "fatal", "the server answered success=0 without an error message"),
        (200, b'{"success": 1}', "fatal", "the server answered success=1 without an error message"),
        (200, b'{"success": null, "error_message": "no"}', "fatal", "no"),
        (
            200,
            b'{"success": "false", "error_message": "Request limit reached"}',
            "rate_limited",
            "Request limit reached",
        ),
        (500, b"x" * 100_000, "retryable", "x" * 500 + "... (65,036 more characters)"),
    ],
)
def test_classify(status, content, kind, message):
    """Answers are classified ok / rate_limited / retryable / fatal with the right text."""
    outcome = classify(status, content)
    assert outcome.kind == kind
    assert outcome.message == message


@pytest.mark.parametrize(
    ("status", "message", "cls"),
    [
        (401, "whatever", AuthenticationError),
        (403, "whatever", AuthenticationError),
        (404, "whatever", NotFoundError),
        (409, "whatever", ConflictError),
        (413, "whatever", RequestTooLargeError),
        (429, "whatever", RateLimitError),
        (500, "Project p already exists", ServerError),
        (502, "", ServerError),
        (400, "Invalid API key", AuthenticationError),
        (400, "Project p already exists", ConflictError),
        (400, "Collection c does not exist in project p", NotFoundError),
        (400, "Request body exceeds 10 bytes", RequestTooLargeError),
        (200, "Request limit reached", RateLimitError),
        (400, "vector has 3 values, expected 4", APIError),
    ],
)
def test_error_class(status, message, cls):
    """The status decides where it is specific; otherwise the message does."""
    assert error_class(status, message) is cls


# ----------------------------------------------------------------------------- the wire


async def test_request_shape(client, mock, api_key, base_url):
    """A POST to <base_url>/<endpoint>, JSON content type, exact Content-Length, key in body."""
    route = mock.post("/delete_project").respond(json={"success": True})
    await client.delete_project("p")
    request = route.calls.last.request
    assert request.method == "POST"
    assert str(request.url) == f"{base_url}/delete_project"
    assert request.headers["content-type"] == "application/json"
    assert int(request.headers["content-length"]) == len(request.content)
    assert json.loads(request.content)["user_api_key"] == api_key
    assert "authorization" not in request.headers


async def test_trailing_slash_in_base_url(api_key, base_url, http, mock):
    """A base URL ending in '/' does not produce '//endpoint'."""
    route = mock.post("/delete_project").respond(json={"success": True})
    async with AsyncVecML(
        api_key, base_url=base_url + "/", rate_limit=None, http_client=http
    ) as client:
        await client.delete_project("p")
    assert str(route.calls.last.request.url) == f"{base_url}/delete_project"


async def test_env_fallbacks(monkeypatch, api_key, base_url, http, mock):
    """VECML_API_KEY and VECML_BASE_URL are used when the arguments are not given."""
    monkeypatch.setenv("VECML_API_KEY", api_key)
    monkeypatch.setenv("VECML_BASE_URL", base_url)
    route = mock.post("/delete_project").respond(json={"success": True})
    async with AsyncVecML(rate_limit=None, http_client=http) as client:
        assert client.base_url == base_url
        await client.delete_project("p")
    assert json.loads(route.calls.last.request.content)["user_api_key"] == api_key


def test_default_base_url(monkeypatch, api_key):
    """Without argument or env the base URL is the documented one."""
    monkeypatch.delenv("VECML_BASE_URL", raising=False)
    assert AsyncVecML(api_key).base_url == "https://aidb.vecml.com/api"


def test_explicit_arguments_win_over_env(monkeypatch, api_key):
    """api_key= and base_url= take precedence over the environment."""
    monkeypatch.setenv("VECML_API_KEY", "vml_env_key_should_not_be_used")
    monkeypatch.setenv("VECML_BASE_URL", "http://env.invalid/api")
    client = AsyncVecML(api_key, base_url="http://arg.test/api")
    assert client.base_url == "http://arg.test/api"


async def test_call_with_numpy_values(client, mock):
    """call() fields may hold numpy arrays and scalars."""
    route = mock.post("/custom").respond(json={"success": True})
    await client.call("custom", vec=np.array([1.5, 2.0], dtype=np.float32), n=np.int64(3))
    body = json.loads(route.calls.last.request.content)
    assert body["vec"] == [1.5, 2.0]
    assert body["n"] == 3


async def test_call_unserializable_field_is_invalid_input(client, mock):
    """A field JSON cannot carry is an InvalidInputError naming it, and nothing is sent."""
    route = mock.post("/custom").respond(json={"success": True})
    with pytest.raises(InvalidInputError) as info:
        await client.call("custom", fine=1, odd={1, 2})
    assert info.value.field == "odd"
    assert route.call_count == 0


async def test_call_cannot_override_the_key(client, mock):
    """A user_api_key field is refused: the key is the client's, and the key is redacted."""
    route = mock.post("/custom").respond(json={"success": True})
    with pytest.raises(InvalidInputError) as info:
        await client.call("custom", user_api_key="vml_other")
    assert info.value.field == "user_api_key"
    assert route.call_count == 0


async def test_upload_extra_fields_cannot_override_the_key(client, mock):
    """upload(extra_body=...) cannot replace user_api_key either."""
    route = mock.post("/upload").respond(json={"success": True, "job_id": "j"})
    with pytest.raises(InvalidInputError):
        await client.upload(
            "p", "c", b"[]", file_format="json", extra_body={"user_api_key": "vml_other"}
        )
    assert route.call_count == 0


async def test_unexpected_success_shape_is_api_error(client, mock):
    """A success answer missing a documented field raises APIError naming the field."""
    mock.post("/get_upload_data_status").respond(json={"success": True})
    with pytest.raises(APIError, match="status") as info:
        await client.get_upload_data_status("j")
    assert info.value.endpoint == "get_upload_data_status"
    assert info.value.status_code == 200


async def test_unexpected_metric_shape_is_api_error(client, mock):
    """A metric that is neither the documented object nor a number raises APIError."""
    mock.post("/get_model_validation_metric").respond(
        json={"success": True, "validation_metric": {"accuracy": "high"}}
    )
    with pytest.raises(APIError, match="validation_metric"):
        await client.get_model_validation_metric("p", "c", "m")
