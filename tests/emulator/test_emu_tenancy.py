"""Tenancy isolation and the inspection API (Python and HTTP)."""

from __future__ import annotations

from typing import Any

OTHER = "vml_test_key_b"
P = {"project_name": "p", "collection_name": "c"}


async def test_keys_have_separate_namespaces(api: Any) -> None:
    """Two keys may use the same names; neither sees nor changes the other's data."""
    await api.collection(dim=2)
    await api.ok("add_data_batch", **P, data=[[1, 2]], string_ids=["a"])
    # The other key has no project p: every access is 404, nothing of key A changes.
    assert "does not exist" in await api.fail("add_data_batch", 404, key=OTHER, **P, data=[[3, 4]])
    await api.fail("delete_project", 404, key=OTHER, project_name="p")
    response = await api.call("create_project", key=OTHER, project_name="p")
    assert response.status_code == 200
    response = await api.call("init", key=OTHER, **P, vector_type="dense", vector_dim=3)
    assert response.status_code == 200
    assert api.emulator.collection_ids(api.key, "p", "c") == ["a"]
    assert api.emulator.collection_ids(OTHER, "p", "c") == []
    assert api.emulator.inspect(api.key)["projects"]["p"]["c"]["vector_dim"] == 2
    assert api.emulator.inspect(OTHER)["projects"]["p"]["c"]["vector_dim"] == 3


async def test_inspect_endpoint_reports_only_the_callers_key(api: Any) -> None:
    """POST /_emulator/inspect answers for its key only and never mentions another tenant."""
    await api.collection(dim=2)
    await api.ok("add_data_batch", **P, data=[[1, 2], [3, 4]])
    await api.call("create_project", key=OTHER, project_name="theirs")
    response = await api.client.post("_emulator/inspect", json={"user_api_key": OTHER})
    assert response.status_code == 200
    report = response.json()
    assert report["success"] is True
    assert list(report["projects"]) == ["theirs"]
    assert report["requests"] == {"create_project": 1}
    assert report["id_writes"] == 0
    assert api.emulator.fingerprint(api.key) not in response.text
    assert api.key not in response.text
    mine = (await api.client.post("_emulator/inspect", json={"user_api_key": api.key})).json()
    assert mine["projects"]["p"]["c"]["rows"] == 2
    assert mine["id_writes"] == 2
    assert mine["tenant"] == api.emulator.fingerprint(api.key)


async def test_inspect_endpoint_is_exempt_from_rate_limit_and_uncounted(start: Any) -> None:
    """The inspection endpoint works while the key is rate limited and is not counted."""
    api = await start(rate_limit=0.2, rate_limit_burst=1)
    await api.ok("create_project", project_name="p")
    assert (await api.call("create_project", project_name="q")).status_code == 400
    root = api.base_url.removesuffix("/api")
    response = await api.client.post(f"{root}/_emulator/inspect", json={"user_api_key": api.key})
    assert response.status_code == 200
    assert response.json()["requests"] == {"create_project": 2}
    assert response.json()["rejections"]["rate_limited"] == 1


async def test_inspect_endpoint_refuses_bad_keys_and_bodies(start: Any) -> None:
    """The inspection endpoint needs a valid key (401) and a JSON object (400)."""
    api = await start(api_keys=frozenset({"vml_test_key_a"}))
    for body in ({"user_api_key": OTHER}, {}):
        response = await api.client.post("_emulator/inspect", json=body)
        assert response.status_code == 401
    response = await api.client.post("_emulator/inspect", content=b"[")
    assert response.status_code == 400


async def test_reset_forgets_data_and_counters(api: Any) -> None:
    """reset() empties the store and the counters."""
    await api.collection(dim=2)
    api.emulator.reset()
    assert api.emulator.inspect(api.key)["projects"] == {}
    assert api.emulator.stats()["requests"] == {}
    assert api.emulator.max_requests_in_window() == 0
