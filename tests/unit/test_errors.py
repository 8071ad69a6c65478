"""The error tree: classes, attributes, pickling, and how server answers map onto it."""

from __future__ import annotations

import json
import pickle
import ssl
from collections.abc import AsyncIterator

import httpx
import pytest

from vecml_async import (
    APIError,
    AsyncVecML,
    AuthenticationError,
    ClientClosedError,
    ConflictError,
    IngestError,
    InvalidInputError,
    JobError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    TransportError,
    VecMLError,
)

SSL_CONTEXT = ssl.create_default_context()


@pytest.fixture
async def client(api_key: str, base_url: str) -> AsyncIterator[AsyncVecML]:
    async with (
        httpx.AsyncClient(verify=SSL_CONTEXT) as http,
        AsyncVecML(
            api_key, base_url=base_url, rate_limit=None, http_client=http, max_retries=2
        ) as c,
    ):
        yield c


# ----------------------------------------------------------------------------- the tree


@pytest.mark.parametrize(
    ("cls", "bases"),
    [
        (APIError, (VecMLError,)),
        (AuthenticationError, (APIError,)),
        (NotFoundError, (APIError,)),
        (ConflictError, (APIError,)),
        (RateLimitError, (APIError,)),
        (RequestTooLargeError, (APIError,)),
        (ServerError, (APIError,)),
        (TransportError, (VecMLError,)),
        (ClientClosedError, (VecMLError, RuntimeError)),
        (JobError, (VecMLError,)),
        (JobFailedError, (JobError,)),
        (JobTimeoutError, (JobError, TimeoutError)),
        (IngestError, (VecMLError,)),
        (InvalidInputError, (VecMLError, ValueError)),
    ],
)
def test_hierarchy(cls, bases):
    """Every error class sits where the error tree puts it (and under the stdlib bases)."""
    for base in bases:
        assert issubclass(cls, base)
    assert issubclass(cls, VecMLError)


def test_api_error_attributes_and_text():
    """APIError carries endpoint, status_code and message, and says all three."""
    err = NotFoundError("Project p does not exist", endpoint="init", status_code=404)
    assert (err.endpoint, err.status_code, err.message) == ("init", 404, "Project p does not exist")
    assert str(err) == "/init failed (HTTP 404): Project p does not exist"


def test_job_errors_attributes():
    """JobFailedError has the server's error text; JobTimeoutError the deadline and status."""
    failed = JobFailedError(job_id="j1", error="Training failed")
    assert (failed.job_id, failed.status, failed.error) == ("j1", "failed", "Training failed")
    assert "Training failed" in str(failed)
    late = JobTimeoutError(job_id="j2", status="in_progress", timeout=0.5)
    assert (late.job_id, late.status, late.timeout) == ("j2", "in_progress", 0.5)
    assert str(late) == "job j2 still in_progress after 0.5 s"


def test_job_timeout_names_an_unknown_status():
    """A status the client does not know is named as such in the timeout message."""
    late = JobTimeoutError(job_id="j", status="DONE-ISH", timeout=2, known_status=False)
    assert str(late) == "job j still DONE-ISH (a status this client does not know) after 2 s"
    odd = JobTimeoutError(job_id="j", status="done, really\n", timeout=2, known_status=False)
    assert "still 'done, really\\n' (a status" in str(odd)


def test_job_error_messages_bound_server_values():
    """An id or status echoed by the server cannot make a message long."""
    late = JobTimeoutError(job_id="j" * 10_000, status="s" * 1_000_000, timeout=1)
    failed = JobFailedError(job_id="j", error="e" * 1_000_000)
    assert len(str(late)) < 400
    assert len(str(failed)) < 700
    assert late.status == "s" * 1_000_000  # the attribute keeps the value


@pytest.mark.parametrize(
    "err",
    [
        APIError("m", endpoint="e", status_code=400),
        TransportError("m", endpoint="e"),
        ClientClosedError("m"),
        JobError("m", job_id="j", status=None),
        JobFailedError("m", job_id="j", error="x"),
        JobTimeoutError("m", job_id="j", status=None, timeout=1),
        InvalidInputError("m", field="f"),
        VecMLError("m"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_every_error_has_message(err):
    """One shape: every error has .message (the text without the context prefix)."""
    assert err.message == "m"
    assert "m" in str(err)


def test_api_error_keyword_constructor_headers_and_body():
    """APIError takes every field by keyword and keeps headers and a bounded body."""
    err = ServerError(
        message="down",
        endpoint="init",
        status_code=502,
        headers={"retry-after": "3"},
        body="x" * 200_000,
        may_have_applied=True,
    )
    assert err.headers == {"retry-after": "3"}
    assert err.body is not None
    assert len(err.body) < 64 * 1024 + 100
    assert err.body.startswith("x" * 1000)
    assert err.may_have_applied is True
    assert str(err) == "/init failed (HTTP 502): down"


def test_invalid_input_error_names_field_row_and_id():
    """InvalidInputError says which field, row index and row id are at fault."""
    err = InvalidInputError("duplicate id", field="string_ids", index=3, row_id="a")
    assert (err.field, err.index, err.row_id) == ("string_ids", 3, "a")
    assert str(err) == "string_ids[3] (id 'a'): duplicate id"


@pytest.mark.parametrize(
    "err",
    [
        APIError("boom", endpoint="init", status_code=400),
        RateLimitError("Request limit reached", endpoint="add_data_batch", status_code=400),
        ServerError("HTTP 503", endpoint="init", status_code=503),
        TransportError("timed out: ReadTimeout: x", endpoint="upload"),
        ClientClosedError("closed"),
        JobError("job j: odd", job_id="j", status="pending"),
        JobFailedError(job_id="j", error="Training failed"),
        JobTimeoutError(job_id="j", status=None, timeout=3.0),
        JobTimeoutError(job_id="j", status="odd", timeout=3.0, known_status=False),
        ServerError(
            "x", endpoint="e", status_code=500, headers={"a": "b"}, body="t", may_have_applied=True
        ),
        TransportError("refused", endpoint="e", url="http://h/api/e", may_have_applied=True),
        VecMLError("plain"),
        InvalidInputError("bad", field="data", index=2, row_id="r: 2"),
        InvalidInputError("must not be empty", field="project_name"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_errors_pickle_round_trip(err):
    """Errors survive pickling (multiprocessing, task queues) with text and attributes intact."""
    clone = pickle.loads(pickle.dumps(err))
    assert type(clone) is type(err)
    assert str(clone) == str(err)
    assert clone.__dict__ == err.__dict__


# ----------------------------------------------------------------------------- mapping


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, NotFoundError),
        (409, ConflictError),
        (413, RequestTooLargeError),
        (400, APIError),
        (422, APIError),
        (418, APIError),
    ],
)
async def test_http_status_maps_to_class(client, mock, status, cls):
    """Each refusal status maps to its class, is not retried, and carries status and message."""
    route = mock.post("/init").respond(
        status, json={"success": False, "error_message": "refused for a reason"}
    )
    with pytest.raises(APIError) as info:
        await client.init("p", "c", vector_dim=2)
    assert type(info.value) is cls
    assert info.value.status_code == status
    assert info.value.endpoint == "init"
    assert info.value.message == "refused for a reason"
    assert route.call_count == 1


async def test_plain_text_refusal_message(client, mock):
    """A non-JSON error body becomes the message as text (e.g. the 413 of the emulator)."""
    mock.post("/add_data_batch").respond(413, text="Request body exceeds 1000 bytes\n")
    with pytest.raises(RequestTooLargeError) as info:
        await client.add_data_batch("p", "c", [[1.0]])
    assert info.value.message == "Request body exceeds 1000 bytes"


@pytest.mark.parametrize(
    ("message", "cls"),
    [
        ("Invalid API key", AuthenticationError),
        ("Project p already exists", ConflictError),
        ("Project p does not exist", NotFoundError),
        ("Job j not found", NotFoundError),
        ("Request body exceeds 100 bytes", RequestTooLargeError),
        ("vector_dim must be positive", APIError),
    ],
)
async def test_success_false_with_200_maps_by_message(client, mock, message, cls):
    """A 200 answer with success false is a refusal; its class follows the message."""
    route = mock.post("/create_project").respond(
        200, json={"success": False, "error_message": message}
    )
    with pytest.raises(APIError) as info:
        await client.create_project("p")
    assert type(info.value) is cls
    assert info.value.status_code == 200
    assert info.value.message == message
    assert route.call_count == 1


@pytest.mark.parametrize("field", ["error_message", "message", "error", "detail"])
async def test_error_text_from_any_common_field(client, mock, field):
    """The refusal text is read from error_message, message, error or detail."""
    mock.post("/init").respond(400, json={"success": False, field: "the text"})
    with pytest.raises(APIError, match="the text"):
        await client.init("p", "c", vector_dim=2)


async def test_success_false_without_message(client, mock):
    """A refusal without any text still raises APIError with a useful message."""
    mock.post("/init").respond(200, json={"success": False})
    with pytest.raises(APIError, match="without an error message"):
        await client.init("p", "c", vector_dim=2)


@pytest.mark.parametrize(
    "response",
    [
        httpx.Response(200, text="<html>gateway</html>"),
        httpx.Response(200, json=[1, 2]),
        httpx.Response(200, content=b""),
        httpx.Response(204),
    ],
    ids=["html", "json-list", "empty", "204"],
)
async def test_non_json_success_is_api_error(client, mock, response):
    """A 2xx whose body is not a JSON object is an APIError, not a crash."""
    route = mock.post("/delete_project").mock(return_value=response)
    with pytest.raises(APIError) as info:
        await client.delete_project("p")
    assert type(info.value) is APIError
    assert route.call_count == 1


async def test_5xx_after_retries_is_server_error(client, mock):
    """5xx is retried; when retries run out it raises ServerError with the last status."""
    route = mock.post("/init").mock(
        side_effect=[
            httpx.Response(500, text="oops"),
            httpx.Response(502, text="bad gateway"),
            httpx.Response(503, json={"success": False, "error_message": "overloaded"}),
        ]
    )
    with pytest.raises(ServerError) as info:
        await client.init("p", "c", vector_dim=2)
    assert info.value.status_code == 503
    assert info.value.message == "overloaded"
    assert route.call_count == 3


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("connection refused"),
        httpx.ReadError("connection reset"),
        httpx.RemoteProtocolError("server disconnected"),
        httpx.ConnectTimeout("connect timed out"),
        httpx.ReadTimeout("read timed out"),
        httpx.WriteTimeout("write timed out"),
        httpx.PoolTimeout("pool timed out"),
    ],
    ids=lambda e: type(e).__name__,
)
async def test_transport_failures_become_transport_error(client, mock, exc):
    """Connection failures and timeouts are retried, then TransportError wrapping the cause."""
    route = mock.post("/init").mock(side_effect=exc)
    with pytest.raises(TransportError) as info:
        await client.init("p", "c", vector_dim=2)
    assert not isinstance(info.value, httpx.HTTPError)
    assert isinstance(info.value.__cause__, type(exc))
    assert info.value.endpoint == "init"
    assert type(exc).__name__ in str(info.value)
    assert route.call_count == 3


async def test_timeouts_say_timed_out(client, mock):
    """A timeout's message says it timed out (not that the connection failed)."""
    mock.post("/init").mock(side_effect=httpx.ReadTimeout("slow"))
    with pytest.raises(TransportError, match="timed out"):
        await client.init("p", "c", vector_dim=2)


@pytest.mark.parametrize("url", ["ftp://vecml.test/api", "vecml.test/api", "file:///tmp/x"])
def test_bad_base_url_scheme(api_key, url):
    """A base URL that is not http(s) is refused at construction, naming base_url."""
    with pytest.raises(InvalidInputError) as info:
        AsyncVecML(api_key, base_url=url)
    assert info.value.field == "base_url"


@pytest.mark.parametrize("url", ["http://[::1/api", "http://exa mple.test:99999/api"])
def test_malformed_base_url(api_key, url):
    """A malformed http URL is refused at construction (httpx.InvalidURL never escapes)."""
    with pytest.raises(InvalidInputError) as info:
        AsyncVecML(api_key, base_url=url)
    assert info.value.field == "base_url"


async def test_json_error_body_is_decoded(client, mock):
    """The message is the JSON field's text, not the raw JSON document."""
    mock.post("/init").respond(400, content=json.dumps({"error": "x"}).encode())
    with pytest.raises(APIError) as info:
        await client.init("p", "c", vector_dim=2)
    assert info.value.message == "x"


def test_ingest_error_pickles_with_its_report():
    """IngestError pickles with its report (what landed and what failed, with ids)."""
    from vecml_async._ingest.report import BatchFailure, IngestReport

    report = IngestReport("p", "c", rows_total=3, rows_sent=1)
    failure = ServerError("boom", endpoint="add_data_batch", status_code=500)
    report.failures.append(BatchFailure("send", 0, ["a", "b"], 1, "boom", failure))
    err = IngestError(report)
    clone = pickle.loads(pickle.dumps(err))
    assert str(clone) == str(err)
    assert clone.report.failed_ids == ["a", "b"]
    assert clone.report.rows_total == 3


@pytest.mark.parametrize(("unread", "said"), [(40, "40 rows unread"), (None, "an unknown number")])
def test_ingest_error_names_the_unread_rows(unread, said):
    """An ingest that stopped early says where reading stopped and how many rows are unread,
    so the message accounts for the whole input, not only the failed batches."""
    from vecml_async._ingest.report import BatchFailure, IngestReport

    report = IngestReport("p", "c", rows_total=100, rows_sent=50, rows_unread=unread)
    report.stopped_at = 60
    report.failures.append(BatchFailure("send", 5, ["a"] * 10, 50, "boom"))
    text = str(IngestError(report))
    assert "reading stopped at row 60" in text and said in text
    assert "first error: boom" in text
