"""A client given the profile its probe found works where the same client without it fails:
the ceiling, the sparse encoding, a retry on a server that rejects duplicate ids."""

from __future__ import annotations

from typing import Any

import anyio
import pytest

from vecml_async import AsyncVecML, ConflictError, RateLimitPolicy, RetryPolicy
from vecml_async.emulator import Emulator, EmulatorSettings, serve

pytestmark = pytest.mark.integration

KEY = "vml_probe_adapted_key"


async def test_the_probed_ceiling_keeps_a_client_under_the_servers_limit(
    probe_emulator: Any,
) -> None:
    """Probed at 5 calls/s, a client paces itself under it: 15 calls, no refusal; the same
    client at its default ceiling (10/s) is refused."""
    settings = {"rate_limit": 5}
    probed = await probe_emulator(settings, rate=True, questions=())
    assert probed.profile.calls_per_second is not None
    for profile, refused in ((probed.profile, False), (None, True)):
        emulator = Emulator(EmulatorSettings(**settings))
        async with serve(emulator) as url:
            await anyio.sleep(1.0)  # a full bucket, as a server that was idle
            options: dict[str, Any] = {"retry": RetryPolicy(rate_limit_deadline=60)}
            async with AsyncVecML(KEY, base_url=url, profile=profile, **options) as client:
                for _ in range(15):
                    await client.delete_project("absent", missing_ok=True)
        rejections = emulator.stats(KEY)["rejections"]["rate_limited"]
        assert (rejections > 0) is refused, rejections


async def test_sparse_rows_go_in_the_form_the_server_takes(probe_emulator: Any) -> None:
    """A server taking only {"i": v}: with the profile the rows land; without, refused."""
    settings = {"sparse_formats": ("dict",)}
    probed = await probe_emulator(settings, questions=("sparse",))
    assert probed.profile.sparse_encodings == ("dict",)
    emulator = Emulator(EmulatorSettings(**settings))
    async with serve(emulator) as url:
        async with AsyncVecML(KEY, base_url=url, rate_limit=None, profile=probed.profile) as c:
            await c.create_project("p")
            await c.init("p", "s", vector_type="sparse", vector_dim=8)
            report = await c.ingest("p", "s", [{1: 0.5}, {2: 1.5}], ids=["a", "b"], wait=True)
            assert report.rows_sent == 2
        async with AsyncVecML(KEY, base_url=url, rate_limit=None) as plain:
            with pytest.raises(Exception, match="pairs form are not accepted"):
                await plain.add_data_batch("p", "s", [{1: 0.5}], sparse=True, string_ids=["c"])
    assert emulator.collection_ids(KEY, "p", "s") == ["a", "b"]


@pytest.mark.parametrize("with_profile", [True, False])
async def test_a_retry_refused_as_its_own_duplicate_says_the_rows_are_stored(
    probe_emulator: Any, with_profile: bool
) -> None:
    """The first attempt lands, its answer is lost, the retry is refused as a duplicate of
    exactly its ids: with the profile (duplicate ids rejected) the error says the rows are
    stored; without it, the plain refusal."""
    probed = await probe_emulator({"duplicate_ids": "reject"}, questions=("training", "duplicates"))
    assert probed.profile.duplicate_ids == "reject"
    faults = {"endpoints": {"add_data_batch"}, "schedule": {1: "drop_after_apply"}}
    emulator = Emulator(EmulatorSettings(duplicate_ids="reject", faults=faults))
    profile = probed.profile if with_profile else None
    async with (
        serve(emulator) as url,
        AsyncVecML(KEY, base_url=url, rate_limit=RateLimitPolicy(None), profile=profile) as client,
    ):
        await client.create_project("p")
        await client.init("p", "c", vector_dim=2)
        with pytest.raises(ConflictError) as info:
            await client.add_data_batch("p", "c", [[1, 2], [3, 4]], string_ids=["a", "b"])
    assert info.value.may_have_applied
    assert ("the rows are stored" in info.value.message) is with_profile
    assert emulator.collection_ids(KEY, "p", "c") == ["a", "b"]
