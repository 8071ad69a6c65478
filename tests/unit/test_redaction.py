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
