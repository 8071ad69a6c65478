"""The API key never shows: not in logs (ours, httpx's, httpcore's), errors, reprs or tracebacks."""

from __future__ import annotations

import logging
import pickle
import traceback

import httpx
import pytest
import respx

from vecml_async import (
    APIError,
    AsyncVecML,
    JobFailedError,
    RateLimitPolicy,
    TransportError,
    VecMLError,
)
from vecml_async._redact import Secret, redact

RL = "Request limit reached, please try again later"
LOGGERS = ("vecml_async", "httpx", "httpcore")


@pytest.fixture
def logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    for name in LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    return caplog


def everything_logged(caplog: pytest.LogCaptureFixture) -> str:
    """Every logged message, its raw template and arguments, and any exception text."""
    parts = [caplog.text]
    for record in caplog.records:
        parts.extend([record.getMessage(), str(record.msg), repr(record.args)])
        if record.exc_info and record.exc_info[1] is not None:
            parts.extend(traceback.format_exception(record.exc_info[1]))
    return "\n".join(parts)


def exposures(err: BaseException) -> str:
    """Every way an error is commonly shown: str, repr, args, a formatted traceback."""
    texts = [str(err), repr(err), repr(err.args), "".join(traceback.format_exception(err))]
    for value in vars(err).values():
        if isinstance(value, str):
            texts.append(value)
    return "\n".join(texts)


async def test_key_absent_from_logs_errors_and_reprs(api_key, base_url, logs):
    """A run with successes, retries, refusals and transport failures never shows the key."""
    echo = {"success": False, "error_message": f"Invalid API key {api_key}"}
    errors: list[BaseException] = []
    with respx.mock(base_url=base_url, assert_all_called=False) as mock:
        mock.post("/create_project").mock(
            side_effect=[
                httpx.Response(500, text=f"internal error for {api_key}"),
                httpx.ConnectError("connection refused"),
                httpx.Response(400, text=RL),
                httpx.Response(200, json={"success": True}),
            ]
        )
        mock.post("/init").respond(401, json=echo)
        mock.post("/delete_project").respond(200, json=echo)
        mock.post("/add_data_batch").mock(side_effect=httpx.ReadTimeout(f"timed out {api_key}"))
        mock.post("/automl_predict").respond(503, text=f"busy {api_key}")
        mock.post("/list_automl_model_infos").respond(
            400, json={"success": False, "error_message": f"{RL} ({api_key})"}
        )
        mock.post("/get_upload_data_status").respond(
            json={"success": True, "status": "failed", "error": f"bad key {api_key} in file"}
        )
        mock.post("/get_model_validation_metric").respond(200, text=f"<html>{api_key}</html>")
        mock.post("/delete_automl_model").respond(
            json={"success": True, "validation": {"user_api_key": api_key}, "x": 1}
        )
        rate_limit = RateLimitPolicy(calls_per_second=None, adaptive=False)
        async with AsyncVecML(
            api_key, base_url=base_url, max_retries=3, rate_limit=rate_limit
        ) as client:
            await client.create_project("p")
            calls = [
                client.init("p", "c", vector_dim=2),
                client.delete_project("p"),
                client.add_data_batch("p", "c", [[1.0, 2.0]], string_ids=["a"]),
                client.automl_predict("p", "c", "m", prediction_dataset="d"),
                client.list_automl_model_infos("p", "c"),
                client.upload_job("job-1").wait(timeout=5),
                client.get_model_validation_metric("p", "c", "m"),
            ]
            for call in calls:
                with pytest.raises(VecMLError) as info:
                    await call
                errors.append(info.value)
            await client.delete_automl_model("p", "c", "m")
            job = client.upload_job("job-2")
            assert api_key not in repr(job)
            assert api_key not in repr(client)
            assert api_key not in str(client)
    assert [type(e).__name__ for e in errors] == [
        "AuthenticationError",
        "AuthenticationError",
        "TransportError",
        "ServerError",
        "RateLimitError",
        "JobFailedError",
        "APIError",
    ]
    for err in errors:
        text = exposures(err)
        assert api_key not in text, type(err).__name__
        assert "***" in str(err) or isinstance(err, APIError), type(err).__name__
    logged = everything_logged(logs)
    assert {"vecml_async", "httpx"} <= {r.name for r in logs.records}
    assert "create_project" in logged
    assert logged.count(api_key) == 0


async def test_server_echo_is_redacted_in_messages(api_key, base_url):
    """A server error message quoting the key keeps its text with the key masked."""
    with respx.mock(base_url=base_url) as mock:
        mock.post("/init").respond(
            400, json={"success": False, "error_message": f"key {api_key} has no project p"}
        )
        async with AsyncVecML(api_key, base_url=base_url, rate_limit=None) as client:
            with pytest.raises(APIError) as info:
                await client.init("p", "c", vector_dim=2)
    assert info.value.message == "key *** has no project p"
    assert str(info.value) == "/init failed (HTTP 400): key *** has no project p"


async def test_job_failure_text_is_redacted(api_key, base_url):
    """A failed job whose error text quotes the key raises JobFailedError with it masked."""
    with respx.mock(base_url=base_url) as mock:
        mock.post("/get_automl_training_status").respond(
            json={"success": True, "status": "failed", "error": f"user {api_key}: no labels"}
        )
        async with AsyncVecML(api_key, base_url=base_url, rate_limit=None) as client:
            with pytest.raises(JobFailedError) as info:
                await client.training_job("t")
    assert info.value.error == "user ***: no labels"
    assert api_key not in exposures(info.value)


async def test_transport_cause_is_redacted(api_key, base_url):
    """Even the chained httpx error of a TransportError does not show the key."""
    with respx.mock(base_url=base_url) as mock:
        mock.post("/init").mock(side_effect=httpx.ConnectError(f"proxy refused {api_key}"))
        async with AsyncVecML(api_key, base_url=base_url, rate_limit=None, max_retries=0) as c:
            with pytest.raises(TransportError) as info:
                await c.init("p", "c", vector_dim=2)
    assert isinstance(info.value.__cause__, httpx.ConnectError)
    assert api_key not in exposures(info.value)
    assert "proxy refused ***" in str(info.value)


async def test_transport_cause_holds_no_request(api_key, base_url):
    """The chained httpx error keeps type and text, not its request or httpx's frames."""
    with respx.mock(base_url=base_url) as mock:
        mock.post("/init").mock(side_effect=httpx.ReadTimeout("read timed out"))
        async with AsyncVecML(api_key, base_url=base_url, rate_limit=None, max_retries=1) as c:
            with pytest.raises(TransportError) as info:
                await c.init("p", "c", vector_dim=2)
    cause = info.value.__cause__
    assert type(cause) is httpx.ReadTimeout
    assert str(cause) == "read timed out"
    with pytest.raises(RuntimeError):
        _ = cause.request  # httpx: "The .request property has not been set."
    rendered = "".join(
        traceback.TracebackException.from_exception(cause, capture_locals=True).format()
    )
    assert api_key not in rendered


def test_errors_pickled_stay_redacted(api_key):
    """A redacted error stays redacted through pickling (e.g. sent to another process)."""
    err = APIError(redact(f"no {api_key}", api_key), endpoint="init", status_code=400)
    clone = pickle.loads(pickle.dumps(err))
    assert api_key not in str(clone)


def test_secret_never_shows(api_key):
    """Secret's str/repr mask the key, it refuses pickling, and redact() masks every copy."""
    secret = Secret(api_key)
    assert api_key not in str(secret)
    assert api_key not in repr(secret)
    assert api_key not in f"{secret!s} {secret!r} {[secret]}"
    with pytest.raises(TypeError):
        pickle.dumps(secret)
    assert secret.redact(f"{api_key}/{api_key}") == "***/***"
    assert secret.get() == api_key
    assert redact("nothing here", api_key) == "nothing here"
    assert redact("text", "") == "text"


async def test_client_vars_do_not_show_the_key(api_key, base_url):
    """Debug-printing the client's attributes (vars) shows no key."""
    async with AsyncVecML(api_key, base_url=base_url) as client:
        assert api_key not in repr(vars(client))
        assert api_key not in repr(vars(client._transport))


# ----------------------------------------------------------------------------- the masking rule


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Project local_proj already exists", "Project local_proj already exists"),
        (
            "'localhost:8766/api' is not an http(s) URL",
            "'localhost:8766/api' is not an http(s) URL",
        ),
        ("file 'nofile.csv' does not exist", "file 'nofile.csv' does not exist"),
        ("project local-proj", "project local-proj"),
        ("Invalid API key local", "Invalid API key ***"),
        ("key='local'.", "key='***'."),
        ('{"user_api_key": "local"}', '{"user_api_key": "***"}'),
        ("local", "***"),
        ("local/local", "***/***"),
    ],
)
def test_a_short_key_is_masked_only_as_a_token(text, masked):
    """A key under 16 characters is masked where it stands alone, never inside a word."""
    assert Secret("local").redact(text) == masked


def test_a_one_letter_key_leaves_words_alone():
    """Even a one-character key does not mangle text: only the standalone token is masked."""
    assert Secret("x").redact("file 'nofile.csv' does not exist: x") == (
        "file 'nofile.csv' does not exist: ***"
    )


def test_a_long_key_is_masked_anywhere():
    """A key of 16 characters or more is masked even glued to other text."""
    key = "vml_0123456789abcdef"
    assert Secret(key).redact(f"xx{key}yy {key}") == "xx***yy ***"


def test_escaped_spellings_of_the_key_are_masked():
    """The JSON-escaped and percent-encoded forms of a key are masked too."""
    key = 'k"ey/with spaces+é_0123456789'
    secret = Secret(key)
    import json
    import urllib.parse

    for form in (json.dumps(key)[1:-1], json.dumps(key, ensure_ascii=False)[1:-1],
                 urllib.parse.quote(key, safe="")):  # fmt: skip
        assert secret.redact(f"echo: {form}!") == "echo: ***!"


def test_scrub_masks_every_string_and_drops_echoed_key_fields(api_key):
    """One redaction step for decoded answers: strings (and mapping keys) masked at any depth,
    every user_api_key field dropped whatever its case."""
    secret = Secret(api_key)
    answer = {
        "success": True,
        "user_api_key": api_key,
        "nested": [{"User_Api_Key": "x", "note": f"for {api_key}"}, 1.5, None],
        api_key: "as a key",
    }
    assert secret.scrub(answer) == {
        "success": True,
        "nested": [{"note": "for ***"}, 1.5, None],
        "***": "as a key",
    }


async def test_success_answers_are_redacted_before_the_models_see_them(client, mock, api_key):
    """An echoing success answer: the model keeps no user_api_key and no key anywhere."""
    mock.post("/get_upload_data_status").respond(
        json={"success": True, "status": "finished", "user_api_key": api_key, "by": api_key}
    )
    status = await client.get_upload_data_status("j")
    assert "user_api_key" not in (status.model_extra or {})
    assert api_key not in repr(status)
    assert status.model_extra == {"by": "***"}


async def test_unicode_escaped_key_in_an_answer_is_redacted(client, mock, api_key):
    """A key spelled with JSON \\u escapes in the answer is still masked once decoded."""
    escaped = "".join(f"\\u{ord(c):04x}" for c in api_key)
    mock.post("/get_upload_data_status").respond(
        content=f'{{"success": true, "status": "pending", "note": "{escaped}"}}'.encode()
    )
    status = await client.get_upload_data_status("j")
    assert status.model_extra == {"note": "***"}


def test_response_headers_drop_credentials_and_mask_the_key(api_key):
    """Kept headers: lower-case names, cookies and authorization dropped, key masked."""
    kept = Secret(api_key).redact_headers(
        {"Set-Cookie": "s=1", "Authorization": "x", "X-Echo": f"k={api_key}", "Retry-After": "2"}
    )
    assert kept == {"x-echo": "k=***", "retry-after": "2"}


def test_models_built_by_hand_drop_an_echoed_key(api_key):
    """APIResponse and its subclasses never keep a user_api_key field, however built."""
    from vecml_async import APIResponse, UploadStatus

    assert "user_api_key" not in repr(APIResponse(success=True, user_api_key=api_key))
    status = UploadStatus.model_validate({"status": "x", "USER_API_KEY": api_key})
    assert api_key not in repr(status)
