"""What the senders read from a refusal: the ids a duplicate-id answer names, what a failed
call says about its size, and errors kept without the tracebacks that would hold the
request alive."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import respx

from vecml_async import AsyncVecML
from vecml_async._ingest.senders import conflicting_ids, detached, outcome_of
from vecml_async.errors import ConflictError, TransportError, VecMLError


def _conflict(message: str) -> ConflictError:
    return ConflictError(message, endpoint="add_data_batch", status_code=400)


@pytest.mark.parametrize(
    ("message", "named"),
    [
        ('Duplicate string_ids: 2 already exist in the collection: ["a","b"]', {"a", "b"}),
        ('Duplicate string_id \'x["y\' already exists in the collection: ["x[\\"y"]', {'x["y'}),
        ("Duplicate string_id 'a': it already exists in the collection", None),
        ("already exists: [1, 2]", None),
    ],
)
def test_conflicting_ids_are_read_from_the_message(message: str, named: set[str] | None) -> None:
    """A JSON array of ids in the message names them; an answer naming none gives None."""
    found = conflicting_ids(_conflict(message))
    assert (set(found) if found is not None else None) == named


def test_conflicting_ids_are_read_from_the_envelope_when_the_error_carries_it() -> None:
    """A ``duplicate_ids`` list in the answer's body wins over the message."""
    error = _conflict("Duplicate ids")
    error.body = b'{"success": false, "duplicate_ids": ["p", "q"]}'  # type: ignore[attr-defined]
    assert conflicting_ids(error) == frozenset({"p", "q"})


def test_detached_errors_drop_their_tracebacks_and_their_causes_tracebacks() -> None:
    def fail() -> None:
        try:
            raise OSError("inner")
        except OSError as inner:
            raise _conflict("outer") from inner

    with pytest.raises(ConflictError) as info:
        fail()
    error = detached(info.value)
    assert error.__traceback__ is None and error.__cause__ is not None
    assert error.__cause__.__traceback__ is None


@pytest.mark.parametrize(
    ("answer", "outcome"),
    [
        (httpx.Response(413, text="Request body exceeds 200000000 bytes"), "too_large"),
        (httpx.ReadTimeout("read timed out"), "timeout"),
        (httpx.Response(500, json={"success": False, "error_message": "boom"}), "failed"),
        (
            httpx.Response(401, json={"success": False, "error_message": "Invalid API key"}),
            "failed",
        ),
    ],
)
async def test_a_failed_call_says_whether_its_size_was_the_reason(
    base_url: str, api_key: str, answer: Any, outcome: str
) -> None:
    """What the sizer learns from a failed call: refused as too large (413), timed out (the
    HTTP client's timeout, through the transport's error), or neither."""
    with respx.mock(base_url=base_url) as mock:
        route = mock.post("/add_data_batch")
        if isinstance(answer, Exception):
            route.mock(side_effect=answer)
        else:
            route.mock(return_value=answer)
        async with AsyncVecML(api_key, base_url=base_url, rate_limit=None, max_retries=0) as c:
            with pytest.raises(VecMLError) as info:
                await c.add_data_batch("p", "c", [[1.0, 2.0]])
    assert outcome_of(info.value) == outcome


def test_a_call_without_an_answer_in_time_is_a_timeout() -> None:
    """The transport's own whole-attempt deadline (no httpx exception behind it)."""
    error = TransportError(
        "no complete answer from http://h/api/add_data_batch within 5 s", endpoint="add_data_batch"
    )
    assert outcome_of(error) == "timeout"
