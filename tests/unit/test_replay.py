"""Which failed attempts are repeated: ambiguous failures (the server may have applied the
request) are replayed only for calls that are safe to repeat."""

from __future__ import annotations

import httpx
import pytest
import respx

from vecml_async import AsyncVecML, ConflictError, NotFoundError, TransportError


def ok(**fields: object) -> httpx.Response:
    return httpx.Response(200, json={"success": True, **fields})


async def test_upload_is_not_repeated_after_an_ambiguous_drop(
    client: AsyncVecML, base_url: str
) -> None:
    """A connection lost after sending an upload is reported, not replayed (rows would double)."""
    with respx.mock(base_url=base_url) as mock:
        route = mock.post("/upload").mock(
            side_effect=[httpx.RemoteProtocolError("peer closed"), ok(job_id="j")]
        )
        with pytest.raises(TransportError, match="may have been applied"):
            await client.upload("p", "c", b"a,b\n1,2\n", file_format="csv")
    assert route.call_count == 1


async def test_upload_is_repeated_when_the_connection_never_opened(
    client: AsyncVecML, base_url: str
) -> None:
    """A refused connection cannot have reached the server: the upload is retried."""
    with respx.mock(base_url=base_url) as mock:
        route = mock.post("/upload").mock(
            side_effect=[httpx.ConnectError("refused"), httpx.Response(503), ok(job_id="j")]
        )
        job = await client.upload("p", "c", b"a,b\n1,2\n", file_format="csv")
    assert job.job_id == "j" and route.call_count == 3


async def test_training_is_not_repeated_after_a_500(client: AsyncVecML, base_url: str) -> None:
    """A 500 may come after the work started: training is not started twice."""
    from vecml_async import ServerError

    with respx.mock(base_url=base_url) as mock:
        route = mock.post("/train_automl_model").mock(
            side_effect=[httpx.Response(500, json={"success": False, "error_message": "x"})]
        )
        with pytest.raises(ServerError):
            await client.train_automl_model(
                "p", "c", "m", task_type="classification", label_attribute="y"
            )
    assert route.call_count == 1


@pytest.mark.parametrize(
    ("method", "endpoint", "refusal", "status"),
    [
        ("create_project", "create_project", "Project p already exists", 409),
        ("delete_project", "delete_project", "Project p does not exist", 404),
    ],
)
async def test_a_refusal_after_an_ambiguous_attempt_means_the_first_attempt_worked(
    client: AsyncVecML, base_url: str, method: str, endpoint: str, refusal: str, status: int
) -> None:
    """'already exists' / 'does not exist' on a replay is the earlier attempt's own effect."""
    with respx.mock(base_url=base_url) as mock:
        mock.post(f"/{endpoint}").mock(
            side_effect=[
                httpx.ReadError("connection reset"),
                httpx.Response(status, json={"success": False, "error_message": refusal}),
            ]
        )
        answer = await getattr(client, method)("p")
    assert answer.success


async def test_the_same_refusal_without_an_earlier_attempt_is_an_error(
    client: AsyncVecML, base_url: str
) -> None:
    """Without an ambiguous attempt before it, 'already exists' is the caller's problem."""
    with respx.mock(base_url=base_url) as mock:
        mock.post("/create_project").mock(
            return_value=httpx.Response(
                409, json={"success": False, "error_message": "Project p already exists"}
            )
        )
        mock.post("/delete_project").mock(
            side_effect=[
                httpx.ConnectError("refused"),
                httpx.Response(404, json={"success": False, "error_message": "no project"}),
            ]
        )
        with pytest.raises(ConflictError):
            await client.create_project("p")
        with pytest.raises(NotFoundError):  # the first attempt never reached the server
            await client.delete_project("p")
