"""The probe's pure parts: the ramp, the rate estimate, the size search, the duplicate-id
counts, the profile format and its text (no I/O)."""

from __future__ import annotations

import itertools

import pytest

from vecml_async.probe import Evidence, ProbeAnswer, ServerProfile
from vecml_async.probe.q_dups import ACROSS, WITHIN, decode_counts
from vecml_async.probe.ramp import (
    MEBI,
    MEGA,
    SIZE_LOW,
    SizeSearch,
    ramp_steps,
    refusal_bound,
    sustained_rate,
)
from vecml_async.probe.report import report_text, table_rows


def test_the_ramp_rises_by_half_up_to_the_maximum() -> None:
    """2 calls/s up by 1.5x each step, each held about a second; 150 calls up to 60/s."""
    steps = ramp_steps(60)
    rates = [rate for rate, _ in steps]
    assert rates[0] == 2
    assert all(b == pytest.approx(a * 1.5) for a, b in itertools.pairwise(rates))
    assert rates[-1] <= 60 < rates[-1] * 1.5
    assert [calls for _, calls in steps][:4] == [2, 3, 4, 7]
    assert sum(calls for _, calls in steps) <= 150


def _bucket_accepts(rate: float, times: list[float]) -> tuple[list[float], float | None]:
    """A token bucket of ``rate`` tokens/s holding ``rate`` tokens: accepted times, and the
    first refused one."""
    tokens, last, accepted = rate, times[0], []
    for t in times:
        tokens = min(rate, tokens + (t - last) * rate)
        last = t
        if tokens < 1:
            return accepted, t
        tokens -= 1
        accepted.append(t)
    return accepted, None


@pytest.mark.parametrize("limit", [3, 5, 8, 13, 20, 40])
def test_the_estimate_finds_a_token_buckets_rate(limit: float) -> None:
    """Calls sent as the ramp sends them, to a bucket of ``limit``: the estimate is within
    5% below the limit and the refusal's bound just above it."""
    times, t = [], 0.0
    for rate, calls in ramp_steps(100):
        for _ in range(calls):
            times.append(t)
            t += 1 / rate
    accepted, refused = _bucket_accepts(limit, times)
    assert refused is not None
    estimate = sustained_rate(accepted)
    assert estimate is not None
    assert 0.95 * limit <= estimate <= limit
    assert limit <= refusal_bound(accepted, refused) * 1.05


def test_the_estimate_of_nothing_is_none() -> None:
    assert sustained_rate([]) is None
    assert sustained_rate([5.0]) == 1.0


def _search(cap: int, **options: int) -> SizeSearch:
    search = SizeSearch(**options)
    while (size := search.next_size()) is not None:
        search.record(size, size <= cap)
    return search


@pytest.mark.parametrize(
    ("cap", "steps", "unit"),
    [(MEGA, 2, "10^6"), (MEBI, 4, "2^20"), (MEGA - 1, None, None), (199_123_456, None, None)],
)
def test_the_size_search(cap: int, steps: int | None, unit: str | None) -> None:
    """The two readings of 200MB take two and four bodies; any other cap is bisected to
    the precision, within the step bound."""
    search = _search(cap)
    assert search.accepted is not None and search.refused is not None
    assert search.accepted <= cap < search.refused
    assert search.refused - search.accepted <= search.precision
    assert search.unit == unit
    if steps is not None:
        assert search.steps == steps
    assert search.steps <= search.max_steps


def test_the_size_search_stops_at_its_bounds() -> None:
    """Below 190,000,000 or above 210,000,000 the search says so and stops."""
    low = _search(SIZE_LOW - 1)
    assert (low.accepted, low.refused, low.steps) == (None, SIZE_LOW, 2)
    high = _search(10**9)
    assert (high.accepted, high.refused) == (210_000_000, None)
    short = _search(199_123_456, max_steps=5)
    assert short.steps == 5


def test_every_pair_of_duplicate_behaviours_leaves_its_own_counts() -> None:
    """Within x across: the (rows, labelled) totals tell every combination apart."""
    seen = {}
    for w, (wr, wl) in WITHIN.items():
        for a, (ar, al) in ACROSS.items():
            counts = (wr + ar, wl + al)
            assert counts not in seen
            seen[counts] = (w, a)
            assert decode_counts(*counts, within_rejected=False, across_rejected=False) == (w, a)
    assert decode_counts(3, 1, within_rejected=True, across_rejected=False) == (
        "reject",
        "overwrite",
    )
    assert decode_counts(3, 3, within_rejected=False, across_rejected=True) == ("ignore", "reject")
    assert decode_counts(9, 9, within_rejected=False, across_rejected=False) is None


def _profile() -> ServerProfile:
    refused = Evidence(
        endpoint="init",
        sent="x",
        status=404,
        outcome="refused",
        excerpt='{"success": false, "error_message": "' + "y" * 200 + '"}',
    )
    return ServerProfile(
        base_url="https://example.test/api",
        library_version="1.2.3",
        calls=50,
        elapsed=7.25,
        error_status="http",
        answers=(
            ProbeAnswer(
                question="error_status",
                title="Status of errors",
                answer="http",
                evidence=(refused,),
            ),
            ProbeAnswer(
                question="calls_per_second",
                title="Rate",
                answer="not determined: not probed",
                determined=False,
            ),
        ),
    )


def test_the_profile_round_trips_through_its_json() -> None:
    """What --json prints is read back as the same profile."""
    profile = _profile()
    assert ServerProfile.from_json(profile.to_json()) == profile
    assert profile.answer("error_status") is profile.answers[0]
    assert profile.answer("nothing") is None


def test_the_table_and_the_report() -> None:
    """One row per answer with one line of evidence; the report lists what is known, then
    what is not."""
    profile = _profile()
    rows = table_rows(profile)
    assert rows[0][:2] == ("Status of errors", "http")
    assert rows[0][2].startswith("/init -> HTTP 404: ")
    assert len(rows[0][2]) <= 110
    assert rows[1][2] == ""
    text = report_text(profile)
    assert text.splitlines()[0] == (
        "vecml-async 1.2.3 probe of https://example.test/api: 50 calls in 7.2 s"
    )
    assert "- Status of errors: http" in text
    assert text.index("Not determined:") > text.index("Status of errors")
    assert "- Rate: not probed" in text


def test_a_profile_keeps_unknown_fields_out_and_checks_values() -> None:
    """Fields a later version adds are ignored; a value out of its range is refused."""
    assert ServerProfile.model_validate({"future_field": 1}).error_status is None
    with pytest.raises(ValueError):
        ServerProfile.model_validate({"calls_per_second": 0})
    with pytest.raises(ValueError):
        ServerProfile.model_validate({"duplicate_ids": "append"})
