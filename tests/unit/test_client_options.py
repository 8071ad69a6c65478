"""Per-call options (timeout, extra_body, extra_headers) and with_options()."""

from __future__ import annotations

import inspect
import json
import typing
from typing import Any

import httpx
import pytest
import respx

from vecml_async import AsyncVecML, ClientClosedError, InvalidInputError, ServerError
from vecml_async.models import (
    TRAINING_MODES,
    VECTOR_TYPES,
    DocumentedTrainingMode,
    FileFormat,
    PredictFileFormat,
    TaskType,
    TrainingMode,
    VectorType,
)

#: Every endpoint method, with arguments that make a valid call.
CALLS: dict[str, tuple[tuple[Any, ...], dict[str, Any], str]] = {
    "create_project": (("p",), {}, "create_project"),
    "delete_project": (("p",), {}, "delete_project"),
    "init": (("p", "c"), {"vector_dim": 2}, "init"),
    "upload": (("p", "c", b"a,b\n1,2\n"), {"file_format": "csv"}, "upload"),
    "get_upload_data_status": (("j",), {}, "get_upload_data_status"),
    "get_automl_training_status": (("j",), {}, "get_automl_training_status"),
    "train_automl_model": (
        ("p", "c", "m"),
        {"task_type": "classification", "label_attribute": "y"},
        "train_automl_model",
    ),
    "automl_predict": (("p", "c", "m"), {"prediction_dataset": "d"}, "automl_predict"),
    "delete_automl_model": (("p", "c", "m"), {}, "delete_automl_model"),
    "get_model_validation_metric": (("p", "c", "m"), {}, "get_model_validation_metric"),
    "list_automl_model_infos": (("p", "c"), {}, "list_automl_model_infos"),
    "upload_automl_x": (("p", "c", b"a,b\n1,2\n"), {"file_format": "csv"}, "upload_automl_X"),
    "attach_automl_label": (("p", "c", [0, 1]), {"attribute_name": "y"}, "attach_automl_label"),
    "get_feature_importance": (("p", "c", "m"), {}, "get_feature_importance"),
    "call": (("custom_endpoint",), {"a": 1}, "custom_endpoint"),
    "add_data": (("p", "c", [1.0, 2.0]), {"string_id": "a"}, "add_data"),
    "add_data_batch": (("p", "c", [[1.0, 2.0]]), {"string_ids": ["a"]}, "add_data_batch"),
}
#: A success answer every endpoint above accepts.
ANSWER = {
    "success": True,
    "job_id": "j",
    "status": "finished",
    "validation_metric": 0.5,
    "model_infos": [],
    "predictions": [],
    "feature_importance": [],
}


@pytest.mark.parametrize("method", sorted(CALLS))
def test_every_endpoint_takes_the_per_call_options(method: str) -> None:
    """timeout=, extra_body= and extra_headers= are keyword-only on every endpoint method."""
    params = inspect.signature(getattr(AsyncVecML, method)).parameters
    for name in ("timeout", "extra_body", "extra_headers"):
        assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, (method, name)


@pytest.mark.parametrize("method", sorted(CALLS))
async def test_per_call_options_reach_the_request(
    client: AsyncVecML, mock: respx.MockRouter, method: str
) -> None:
    """The call's timeout is the attempt's timeout, extra_headers are sent and extra_body is
    merged into the JSON body, on every endpoint method."""
    args, kwargs, endpoint = CALLS[method]
    route = mock.post(f"/{endpoint}").respond(json=ANSWER)
    await getattr(client, method)(
        *args,
        **kwargs,
        timeout=7.5,
        extra_body={"later_field": [1, 2]},
        extra_headers={"X-Request-Tag": "abc"},
    )
    request = route.calls.last.request
    assert request.extensions["timeout"]["read"] == 7.5
    assert request.headers["x-request-tag"] == "abc"
    body = json.loads(request.content)
    assert body["later_field"] == [1, 2]
    assert request.headers["content-type"] == "application/json"


async def test_extra_body_overrides_a_built_field(client: AsyncVecML, mock: respx.MockRouter):
    """extra_body wins over a field the method builds (the escape hatch for new fields)."""
    route = mock.post("/create_project").respond(json={"success": True})
    await client.create_project("p", extra_body={"application": "autoML"})
    assert json.loads(route.calls.last.request.content)["application"] == "autoML"


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"extra_body": {"user_api_key": "vml_other"}}, "extra_body"),
        ({"extra_body": ["not", "a", "mapping"]}, "extra_body"),
        ({"extra_headers": {"X-N": 3}}, "extra_headers"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"timeout": True}, "timeout"),
    ],
)
async def test_bad_per_call_options_are_refused_before_sending(
    client: AsyncVecML, mock: respx.MockRouter, options: dict[str, Any], field: str
) -> None:
    """A key in extra_body, a non-string header or a bad timeout: InvalidInputError naming
    the option, nothing sent."""
    route = mock.post("/create_project").respond(json={"success": True})
    with pytest.raises(InvalidInputError) as info:
        await client.create_project("p", **options)
    assert info.value.field == field
    assert route.call_count == 0


@pytest.mark.parametrize("field", ["string_ids", "data", "attributes", "collection_name"])
async def test_add_data_batch_extra_body_cannot_replace_the_rows(
    client: AsyncVecML, mock: respx.MockRouter, field: str
) -> None:
    """The rows and names of an add_data_batch body are the call's own: extra_body may add
    fields, not replace those (refused, nothing sent)."""
    route = mock.post("/add_data_batch").respond(json=ANSWER)
    with pytest.raises(InvalidInputError, match=field) as info:
        await client.add_data_batch("p", "c", [[1.0, 2.0]], extra_body={field: "x"})
    assert info.value.field == "extra_body"
    assert route.call_count == 0


async def test_file_field_cannot_come_from_extra_body(client: AsyncVecML, mock: respx.MockRouter):
    """The file's own field is the file: extra_body may not replace it."""
    route = mock.post("/upload").respond(json=ANSWER)
    with pytest.raises(InvalidInputError, match="file_data"):
        await client.upload("p", "c", b"[]", file_format="json", extra_body={"file_data": "x"})
    assert route.call_count == 0


# ----------------------------------------------------------------------------- with_options


async def test_with_options_shares_the_pool_and_budget(client: AsyncVecML, mock: respx.MockRouter):
    """A derived client uses the same connection pool and rate limiter, with its own timeout;
    the parent keeps its own."""
    route = mock.post("/create_project").respond(json={"success": True})
    fast = client.with_options(timeout=2.0)
    assert fast._transport._exchange.http is client._transport._exchange.http
    assert fast._limiter is client._limiter
    await fast.create_project("p")
    assert route.calls.last.request.extensions["timeout"]["read"] == 2.0
    await client.create_project("q")
    assert route.calls.last.request.extensions["timeout"]["read"] != 2.0


async def test_with_options_rate_limit_makes_a_budget_of_its_own(client: AsyncVecML):
    """with_options(rate_limit=R) gives the derived client its own limiter at R calls/s."""
    slow = client.with_options(rate_limit=3.0)
    assert slow._limiter is not client._limiter
    assert slow._limiter.current_rate == 3.0
    assert client._limiter.current_rate is None


async def test_with_options_max_retries(client: AsyncVecML, mock: respx.MockRouter):
    """max_retries applies to the derived client only."""
    route = mock.post("/get_upload_data_status").respond(
        500, json={"success": False, "error_message": "boom"}
    )
    with pytest.raises(ServerError):
        await client.with_options(max_retries=0).get_upload_data_status("j")
    assert route.call_count == 1
    with pytest.raises(ServerError):
        await client.get_upload_data_status("j")
    assert route.call_count == 1 + 1 + client._transport.retry.max_retries


async def test_closing_a_derived_client_leaves_the_parent_open(
    api_key: str, base_url: str, mock: respx.MockRouter
) -> None:
    """Closing what with_options made closes only it; closing the parent ends both."""
    mock.post("/create_project").respond(json={"success": True})
    parent = AsyncVecML(api_key, base_url=base_url, rate_limit=None)
    async with parent.with_options(timeout=1.0) as child:
        await child.create_project("p")
    assert child.closed and not parent.closed
    await parent.create_project("p")
    other = parent.with_options(max_retries=1)
    await parent.aclose()
    assert other.closed
    with pytest.raises(ClientClosedError):
        await other.create_project("p")


@pytest.mark.parametrize(
    ("options", "field"),
    [({"timeout": -1}, "timeout"), ({"max_retries": -1}, "max_retries"),
     ({"max_retries": 1.5}, "max_retries")],
)  # fmt: skip
async def test_with_options_refuses_bad_values(
    client: AsyncVecML, options: dict[str, Any], field: str
) -> None:
    """Bad option values are InvalidInputError naming the option."""
    with pytest.raises(InvalidInputError) as info:
        client.with_options(**options)
    assert info.value.field == field


async def test_with_options_on_a_closed_client(api_key: str, base_url: str):
    """A closed client makes no derived clients."""
    client = AsyncVecML(api_key, base_url=base_url)
    await client.aclose()
    with pytest.raises(ClientClosedError):
        client.with_options(timeout=1.0)


# ----------------------------------------------------------------------------- surface


def test_transport_and_limiter_are_private() -> None:
    """The client shows no transport or limiter attribute: plumbing stays private."""
    public = {name for name in dir(AsyncVecML) if not name.startswith("_")}
    assert not public & {"transport", "limiter", "training_modes"}


def test_choice_parameters_use_the_literal_types() -> None:
    """task_type, training_mode, vector_type and file_format are typed with the Literal types
    of vecml_async.models."""
    hints = {
        name: typing.get_type_hints(getattr(AsyncVecML, name))
        for name in ("train_automl_model", "init", "upload", "automl_predict", "upload_automl_x")
    }
    assert hints["train_automl_model"]["task_type"] == TaskType
    assert hints["train_automl_model"]["training_mode"] == TrainingMode
    assert hints["init"]["vector_type"] == VectorType
    assert hints["upload"]["file_format"] == FileFormat | None
    assert hints["automl_predict"]["file_format"] == PredictFileFormat | None
    assert hints["upload_automl_x"]["vector_type"] == VectorType


def test_runtime_lists_are_the_literal_values() -> None:
    """The tuples checked at run time are derived from the Literal types (one definition)."""
    assert typing.get_args(DocumentedTrainingMode) == TRAINING_MODES
    assert typing.get_args(VectorType) == VECTOR_TYPES
    assert set(typing.get_args(TrainingMode)) == {*TRAINING_MODES, "auto"}


async def test_injected_http_client_timeout_is_per_request(api_key: str, base_url: str):
    """Against an injected httpx client, with_options(timeout=) still sets each attempt's
    timeout; other calls keep the client's own attempt deadline (120 s by default), which
    bounds every attempt whatever the injected client's setting."""
    seen: list[Any] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.extensions["timeout"])
        return httpx.Response(200, json={"success": True})

    http = httpx.AsyncClient(transport=httpx.MockTransport(answer), timeout=30.0)
    async with AsyncVecML(api_key, base_url=base_url, http_client=http, rate_limit=None) as c:
        await c.with_options(timeout=4.0).create_project("p")
        await c.create_project("q")
    assert seen[0]["read"] == 4.0 and seen[1]["read"] == 120.0
    await http.aclose()
