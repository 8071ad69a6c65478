"""What the senders read from a refusal: the ids a duplicate-id answer names, and errors
kept without the tracebacks that would hold the request alive."""

from __future__ import annotations

import pytest

from vecml_async._ingest.senders import conflicting_ids, detached
from vecml_async.errors import ConflictError


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
