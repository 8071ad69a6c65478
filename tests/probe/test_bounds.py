"""The probe's bounds: calls, time, the client's limiter and hooks, the scratch project."""

from __future__ import annotations

from typing import Any

import pytest

from vecml_async import AsyncVecML, InvalidInputError, RateLimitPolicy, RequestEvent
from vecml_async.emulator import serve
from vecml_async.probe import DEFAULT_MAX_CALLS, QUESTIONS, probe

pytestmark = pytest.mark.integration


async def test_the_default_probe_stays_under_its_bounds(probe_emulator: Any) -> None:
    """At most 60 calls (the emulator's count, which is the profile's), under a minute, every
    question answered, the scratch project gone."""
    probed = await probe_emulator({}, client_options={"rate_limit": 20})
    profile = probed.profile
    assert probed.requests() == profile.calls
    assert profile.calls is not None and profile.calls <= DEFAULT_MAX_CALLS
    assert profile.elapsed is not None and profile.elapsed < 60
    undetermined = {a.question for a in profile.answers if not a.determined}
    assert undetermined == {"rate_limit", "calls_per_second", "max_body_bytes"}  # opt-in
    assert probed.projects() == {}
    assert probed.emulator.max_requests_in_window(1.0, probed.key) <= 21  # the client's 20/s


async def test_every_call_goes_through_the_clients_limiter_and_hooks() -> None:
    """The client's own hooks see every probe request; its limiter spaces them."""
    seen: list[RequestEvent] = []
    async with (
        serve() as url,
        AsyncVecML(
            "vml_probe_hooks_key",
            base_url=url,
            rate_limit=RateLimitPolicy(10, adaptive=False),
            on_request=seen.append,
        ) as client,
    ):
        profile = await probe(client, questions=("errors",))
    assert len(seen) == profile.calls
    starts = [e for e in seen if e.attempt == 1]
    assert {e.endpoint for e in starts} >= {"create_project", "init", "delete_project"}


async def test_a_tight_bound_stops_the_questions_not_the_cleanup(probe_emulator: Any) -> None:
    """max_calls=20: the questions past it are not determined, nothing is sent past the
    bound, and the cleanup still runs (its reserve is inside the bound)."""
    probed = await probe_emulator({}, max_calls=20)
    assert probed.requests() == probed.profile.calls
    assert probed.profile.calls is not None and probed.profile.calls <= 20
    assert probed.projects() == {}
    assert any("bound" in a.answer for a in probed.profile.answers if not a.determined)


async def test_the_opt_in_probes_add_their_own_bounded_calls(probe_emulator: Any) -> None:
    """The ramp stops at the first refusal; the size search sends a few bodies."""
    probed = await probe_emulator({"rate_limit": 5}, rate=True, size=True, questions=())
    rejections = probed.emulator.stats()["rejections"]  # a body too large has no tenant
    assert rejections["rate_limited"] == 1  # stopped at the first refusal
    assert rejections["too_large"] == 1  # 200,000,001 bytes; 200,000,000 passed
    assert probed.profile.max_body_bytes == 200_000_000
    assert probed.profile.calls is not None and probed.profile.calls < 40


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"questions": ("errors", "everything")}, "questions"),
        ({"max_calls": 5}, "max_calls"),
        ({"max_rate": 1}, "max_rate"),
    ],
)
async def test_bad_options_are_refused_before_anything_is_sent(
    options: dict[str, Any], field: str
) -> None:
    """An unknown question or a bound too small is an InvalidInputError; nothing is sent."""
    seen: list[RequestEvent] = []
    async with AsyncVecML("k", base_url="http://127.0.0.1:9/api", on_request=seen.append) as c:
        with pytest.raises(InvalidInputError) as info:
            await probe(c, **options)
    assert info.value.field == field
    assert seen == []


def test_the_questions_are_listed() -> None:
    """The names ``questions=`` takes."""
    assert QUESTIONS == (
        "errors",
        "uploads",
        "training",
        "names",
        "attributes",
        "duplicates",
        "sparse",
    )


async def test_an_opt_in_probe_does_not_lend_its_share_to_the_questions(
    probe_emulator: Any,
) -> None:
    """A ramp that ends early (no refusal up to 4.6 calls/s: 9 calls) leaves the default
    questions their 60 calls, no more: the total is at most 60 plus what the ramp spent."""
    probed = await probe_emulator({}, rate=True, max_rate=4.6)
    ramp = probed.emulator.stats(probed.key)["requests"]["list_automl_model_infos"] - 1
    assert ramp == 9
    assert probed.profile.calls is not None
    assert probed.profile.calls == probed.requests() <= DEFAULT_MAX_CALLS + ramp
    answer = probed.profile.answer("calls_per_second")
    assert answer is not None and not answer.determined
    assert "no rate-limit answer up to 4.5 calls/s" in answer.answer


@pytest.mark.parametrize(
    ("adaptive", "why"),
    [
        (False, "first call of the ramp was refused"),
        (True, "the client's own limiter holds it at"),  # slowed down by the setup's refusal
    ],
)
async def test_a_key_with_no_call_to_spare_gives_the_answer_but_no_rate(
    probe_emulator: Any, adaptive: bool, why: str
) -> None:
    """0.5 calls/s, drained by the setup: the ramp's first call is refused, or the client,
    slowed down by the setup's refusal, holds the ramp back; either way the answer's shape is
    known, the rate is not, and nothing breaks."""
    probed = await probe_emulator(
        {"rate_limit": 0.5},
        client_options={"rate_limit": RateLimitPolicy(None, adaptive=adaptive)},
        rate=True,
        questions=(),
    )
    assert probed.profile.rate_limit_status == 400
    assert probed.profile.calls_per_second is None
    answer = probed.profile.answer("calls_per_second")
    assert answer is not None and why in answer.answer
    assert probed.projects() == {}


async def test_the_ramp_goes_through_the_clients_limiter_too(probe_emulator: Any) -> None:
    """A client held at 8 calls/s never sends more, ramp included, and the answer says the
    client's limiter held the ramp (probe with rate_limit=None to go higher)."""
    probed = await probe_emulator(
        {"rate_limit": 20},
        client_options={"rate_limit": RateLimitPolicy(8, adaptive=False)},
        rate=True,
        questions=(),
        max_rate=15,
    )
    assert probed.emulator.max_requests_in_window(1.0, probed.key) <= 9
    answer = probed.profile.answer("calls_per_second")
    assert answer is not None and not answer.determined
    assert "no rate-limit answer up to 6.75 calls/s" in answer.answer
    assert "the client's own limiter holds it at 8 calls/s" in answer.answer
