"""Success and error envelopes of the project and collection endpoints, auth and bad bodies."""

from __future__ import annotations

from typing import Any

import pytest

OTHER_KEY = "vml_test_key_b"


async def test_create_project_then_conflict(api: Any) -> None:
    """create_project answers success; a second one with that name is 409 'already exists'."""
    assert await api.ok("create_project", project_name="AutoML-Demo", application="ML") == {
        "success": True
    }
    message = await api.fail("create_project", 409, project_name="AutoML-Demo")
    assert message == "Project AutoML-Demo already exists"


async def test_delete_project_missing_is_404_and_cascades(api: Any) -> None:
    """delete_project of a missing project is 404; deleting one removes its collections."""
    assert "does not exist" in await api.fail("delete_project", 404, project_name="nope")
    await api.collection("p", "c")
    await api.ok("delete_project", project_name="p")
    await api.ok("create_project", project_name="p")
    # The old collection went with the project: the name is free again.
    await api.ok("init", project_name="p", collection_name="c", vector_type="dense", vector_dim=4)


async def test_init_success_conflict_and_missing_project(api: Any) -> None:
    """init creates a collection; again is 409; in a missing project it is 404."""
    await api.collection("p", "c", dim=8)
    fields = {"project_name": "p", "collection_name": "c", "vector_type": "dense", "vector_dim": 8}
    assert "already exists" in await api.fail("init", 409, **fields)
    fields["project_name"] = "missing"
    assert "does not exist" in await api.fail("init", 404, **fields)


@pytest.mark.parametrize(
    ("fields", "fragment"),
    [
        ({"vector_type": "dense"}, "vector_dim"),
        ({"vector_type": "dense", "vector_dim": True}, "must be an integer"),
        ({"vector_type": "dense", "vector_dim": "64"}, "must be an integer"),
        ({"vector_type": "dense", "vector_dim": 0}, "between 1"),
        ({"vector_type": "dense", "vector_dim": 10**7}, "between 1"),
        ({"vector_type": "tensor", "vector_dim": 4}, "Unknown vector_type"),
        ({"vector_dim": 4}, "vector_type"),
        ({"vector_type": 5, "vector_dim": 4}, "must be a string"),
    ],
)
async def test_init_refuses_bad_fields(api: Any, fields: dict[str, Any], fragment: str) -> None:
    """init refuses missing or wrongly typed vector fields with a 400 naming them."""
    await api.ok("create_project", project_name="p")
    message = await api.fail("init", 400, project_name="p", collection_name="c", **fields)
    assert fragment in message


async def test_init_accepts_quantized_and_sparse_types(api: Any) -> None:
    """dense8Bit..dense1Bit are dense; sparse needs no vector_dim (2**21)."""
    await api.ok("create_project", project_name="p")
    for kind in ("dense8Bit", "dense4Bit", "dense2Bit", "dense1Bit"):
        await api.ok("init", project_name="p", collection_name=kind, vector_type=kind, vector_dim=3)
    await api.ok("init", project_name="p", collection_name="s", vector_type="sparse")
    described = api.emulator.inspect(api.key)["projects"]["p"]
    assert described["dense8Bit"]["vector_type"] == "dense8Bit"
    assert described["s"]["vector_dim"] == 2**21


@pytest.mark.parametrize("name", ["bad name", "a/b", "", "x" * 129, "ü"])
async def test_names_outside_the_pattern_are_refused(api: Any, name: str) -> None:
    """Project names must match ^[A-Za-z0-9_-]{1,128}$ (400 otherwise)."""
    await api.fail("create_project", 400, project_name=name)


async def test_missing_and_wrongly_typed_fields_are_400(api: Any) -> None:
    """A missing or non-string required field is a 400 naming the field."""
    assert "project_name" in await api.fail("create_project", 400)
    assert "project_name" in await api.fail("create_project", 400, project_name=["p"])
    assert "application" in await api.fail("create_project", 400, project_name="p", application=1)


@pytest.mark.parametrize(
    "content", [b"{not json", b"[1, 2]", b"", b'"text"', b"\xff\xfe", b'{"a": NaN}']
)
async def test_malformed_bodies_are_400_envelopes(api: Any, content: bytes) -> None:
    """Malformed JSON and non-object bodies give a 400 envelope, never a crash."""
    response = await api.client.post("create_project", content=content)
    assert response.status_code == 400
    assert response.json()["success"] is False
    assert api.emulator.stats()["rejections"]["invalid"] == 1


@pytest.mark.parametrize("key", [None, "", 7, ["k"]])
async def test_missing_or_bad_key_is_401(api: Any, key: Any) -> None:
    """A missing, empty or non-string user_api_key is 401 'Invalid API key'."""
    body: dict[str, Any] = {"project_name": "p"}
    if key is not None:
        body["user_api_key"] = key
    response = await api.client.post("create_project", json=body)
    assert response.status_code == 401
    assert response.json() == {"success": False, "error_message": "Invalid API key"}


async def test_api_keys_setting_limits_accepted_keys(start: Any) -> None:
    """With api_keys set, only those keys authenticate; others get 401 and count as auth."""
    api = await start(api_keys=frozenset({api_key := "vml_test_key_a"}))
    assert api.key == api_key
    await api.ok("create_project", project_name="p")
    await api.fail("create_project", 401, key=OTHER_KEY, project_name="p")
    assert api.emulator.stats()["rejections"]["auth"] == 1


async def test_error_status_ok_sends_200_envelopes(start: Any) -> None:
    """error_status='ok' answers ordinary errors with HTTP 200 and the error envelope."""
    api = await start(error_status="ok")
    await api.fail("delete_project", 200, project_name="missing")
    await api.fail("create_project", 200, key="")
    response = await api.client.post("init", content=b"{")
    assert response.status_code == 200
    assert response.json()["success"] is False


async def test_unknown_endpoint_and_wrong_method(api: Any) -> None:
    """An unknown endpoint is a 404 envelope; GET on an endpoint is a 405 envelope."""
    assert "Unknown endpoint" in await api.fail("list_everything", 404)
    response = await api.client.get("create_project")
    assert response.status_code == 405
    assert response.json()["success"] is False


async def test_error_messages_never_contain_the_key(api: Any) -> None:
    """Error envelopes and ids identify tenants by fingerprint, never by the key."""
    await api.collection("p", "c")
    job = await api.ok("add_data_batch", project_name="p", collection_name="c", data=[[1, 2, 3, 4]])
    assert api.key not in job["job_id"]
    assert api.emulator.fingerprint(api.key) in job["job_id"]
    message = await api.fail("get_upload_data_status", 404, job_id="job-1")
    assert api.key not in message
