"""The sizer: pure decisions of the next body size from scripted measurements, on a fake
clock (no I/O, no timing). Rules one by one, the bounds under any sequence (property-based),
and convergence in a simulated world: a call budget, a server with a bandwidth, senders."""

from __future__ import annotations

import heapq
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vecml_async._ingest.sizing import (
    INITIAL_BYTES,
    MAX_STEP,
    AdaptiveSize,
    FixedSize,
    Measurement,
)

MIB = 1 << 20


def call(
    sizer: AdaptiveSize,
    at: float,
    *,
    latency: float = 0.05,
    wait: float = 0.0,
    target: int | None = None,
    body: int | None = None,
    cut: str = "bytes",
    outcome: str = "ok",
) -> None:
    """One finished call of a batch cut at ``target`` (default: the current target)."""
    size = sizer.target if target is None else target
    sizer.observe(
        Measurement(
            at=at,
            target=size,
            body_bytes=size if body is None else body,
            rows=1000,
            latency=latency,
            wait=wait,
            cut=cut,  # type: ignore[arg-type]
            outcome=outcome,  # type: ignore[arg-type]
        )
    )


def test_it_starts_at_the_initial_size_within_its_bounds() -> None:
    """1 MiB first, unless the maximum is smaller."""
    assert AdaptiveSize(64 * MIB).target == INITIAL_BYTES
    assert AdaptiveSize(300_000).target == 300_000


def test_calls_that_wait_for_their_token_make_it_grow() -> None:
    """Batches ready to go that wait 0.5 s for a token while a call takes 0.05 s: calls are
    the bottleneck, so the next size is several times bigger."""
    sizer = AdaptiveSize(64 * MIB, senders=4)
    call(sizer, 0.55, wait=0.5, target=INITIAL_BYTES)
    call(sizer, 1.05, wait=0.5, target=INITIAL_BYTES)  # cut before the size moved
    assert sizer.target == INITIAL_BYTES * MAX_STEP
    assert sizer.state == "grow"


def test_calls_that_do_not_wait_keep_the_size() -> None:
    """No waiting for tokens (nothing limits the calls): the size stays where it is."""
    sizer = AdaptiveSize(64 * MIB, senders=4)
    for k in range(10):
        call(sizer, 0.06 * (k + 1), latency=0.05, wait=0.0)
    assert sizer.target == INITIAL_BYTES
    assert sizer.state == "steady"
    assert sizer.history == [INITIAL_BYTES]


def test_one_call_of_a_size_is_not_enough_to_stop_there() -> None:
    """The first call of an ingest finds a token at once: that alone does not end growth."""
    sizer = AdaptiveSize(64 * MIB)
    call(sizer, 0.05, wait=0.0)
    assert sizer.state == "grow"


def test_a_refused_size_becomes_a_ceiling_never_passed_again() -> None:
    """413 on an 8 MiB body: the target drops to 4 MiB at most and, however much batches
    wait for tokens afterwards, never goes above it again."""
    sizer = AdaptiveSize(64 * MIB, initial=8 * MIB, senders=4)
    call(sizer, 1.0, outcome="too_large")
    assert sizer.ceiling == 4 * MIB and sizer.target == 4 * MIB
    for k in range(20):
        call(sizer, 2.0 + k, wait=0.9, latency=0.05)
    assert sizer.target <= 4 * MIB


def test_a_timed_out_call_halves_the_size_and_caps_it() -> None:
    """A timeout of a 16 MiB body: 8 MiB from then on, at most."""
    sizer = AdaptiveSize(64 * MIB, initial=16 * MIB)
    call(sizer, 30.0, latency=30.0, outcome="timeout")
    assert sizer.target == 8 * MIB and sizer.ceiling == 8 * MIB


def test_rate_limit_answers_grow_the_size_once_per_size() -> None:
    """The server asks for fewer calls: 4x at once; two refusals at one size count once."""
    sizer = AdaptiveSize(64 * MIB)
    call(sizer, 0.1, outcome="rate_limited", target=INITIAL_BYTES)
    assert sizer.target == 4 * INITIAL_BYTES
    call(sizer, 0.2, outcome="rate_limited", target=INITIAL_BYTES)  # a batch cut earlier
    assert sizer.target == 16 * INITIAL_BYTES  # the 4 MiB size had not grown yet
    call(sizer, 0.3, outcome="rate_limited", target=16 * INITIAL_BYTES)
    call(sizer, 0.4, outcome="rate_limited", target=16 * INITIAL_BYTES)
    assert sizer.target == 64 * MIB


def test_failures_and_bodies_cut_at_an_earlier_size_do_not_move_it() -> None:
    """A call that failed for another reason says nothing about the size; a call cut at an
    older size counts for that size only."""
    sizer = AdaptiveSize(64 * MIB, senders=4)
    for k in range(5):
        call(sizer, k + 1.0, wait=0.9, outcome="failed")
    assert sizer.history == [INITIAL_BYTES]
    for k in range(5):
        call(sizer, k + 10.0, wait=0.9, target=256 * 1024)
    assert sizer.history == [INITIAL_BYTES]


def test_bodies_cut_by_max_rows_stop_the_growth() -> None:
    """When max_rows cuts the batches, more bytes per body would not be used."""
    sizer = AdaptiveSize(64 * MIB, senders=4)
    call(sizer, 0.5, wait=0.45, cut="rows", body=300_000)
    assert sizer.ceiling == INITIAL_BYTES
    for k in range(10):
        call(sizer, 1.0 + k, wait=0.9)
    assert sizer.target == INITIAL_BYTES


def test_the_last_partial_batch_is_no_evidence() -> None:
    """A batch cut short by the end of the input tells nothing about the size."""
    sizer = AdaptiveSize(64 * MIB, senders=4)
    for k in range(4):
        call(sizer, 1.0 + k, wait=0.9, cut="end", body=10_000)
    assert sizer.history == [INITIAL_BYTES]


def test_a_saturating_server_makes_it_step_back() -> None:
    """At 16 MiB the bytes/s fell below what 8 MiB moved while latency per MB tripled:
    back to 8 MiB, and it stays there."""
    sizer = AdaptiveSize(64 * MIB, initial=8 * MIB, senders=4)
    # 8 MiB: 0.1 s per call, calls waiting for tokens 0.2 s: bound, grows 2x.
    for k in range(2):
        call(sizer, 0.3 * (k + 1), latency=0.1, wait=0.2)
    assert sizer.target > 8 * MIB
    bigger = sizer.target
    # The bigger size: each call 1.2 s, still waiting 0.6 s: fewer bytes/s than before.
    for k in range(2):
        call(sizer, 2.0 + 1.8 * k, latency=1.2 * bigger / (16 * MIB), wait=0.6)
    assert sizer.target == 8 * MIB and sizer.state == "steady"


@pytest.mark.parametrize("knee", [3 * MIB, 6 * MIB, 11 * MIB, 40 * MIB])
def test_it_settles_on_a_size_whose_calls_do_not_wait(knee: int) -> None:
    """Bodies under ``knee`` wait for tokens, bodies over it do not (and cost the server
    the same per byte): the sizer ends on a size that is not bound, within one growth step
    of the knee (or at its maximum), and stays there."""
    sizer = _settle_at_knee(knee)
    assert sizer.state == "steady"
    highest = min(sizer.maximum, MAX_STEP * knee)
    assert knee <= sizer.target <= highest, [h / MIB for h in sizer.history]


def _settle_at_knee(knee: int) -> AdaptiveSize:
    sizer = AdaptiveSize(64 * MIB, senders=4)
    at = 0.0
    for _ in range(200):
        latency = sizer.target / 80e6
        wait = 2 * latency if sizer.target < knee else 0.0
        at += latency + wait
        call(sizer, at, latency=latency, wait=wait)
        if sizer.state == "steady":
            break
    return sizer


def test_an_overshoot_checks_twice_the_last_size_that_waited() -> None:
    """Growth jumped from 8 MiB (calls waited) to 64 MiB (they do not): 16 MiB is checked
    and kept when its calls keep up; when they wait too, the sizer goes back to 64 MiB."""
    kept = _settle_at_knee(11 * MIB)
    assert kept.history[-3:] == [8 * MIB, 64 * MIB, 16 * MIB] and kept.state == "steady"
    back = _settle_at_knee(40 * MIB)
    assert back.history[-3:] == [64 * MIB, 16 * MIB, 64 * MIB] and back.state == "steady"


def test_a_steady_size_grows_again_when_calls_start_waiting() -> None:
    """The budget slowed down (the server's limit turned out lower): batches wait for their
    tokens most of the time again, so bodies grow again."""
    sizer = AdaptiveSize(64 * MIB, senders=4)
    for k in range(4):
        call(sizer, 0.06 * (k + 1), latency=0.05)
    assert sizer.state == "steady"
    for k in range(12):  # two windows of the steady size: the first one mixes in the past
        call(sizer, 1.0 + 0.5 * k, latency=0.02, wait=0.48)
    assert sizer.target > INITIAL_BYTES


def test_a_fixed_size_ignores_every_measurement() -> None:
    sizer = FixedSize(3 * MIB)
    sizer.observe(Measurement(1.0, 3 * MIB, 3 * MIB, 10, 0.1, wait=5.0, outcome="too_large"))
    assert sizer.target == 3 * MIB


measurement = st.tuples(
    st.floats(0.0, 2.0),  # latency
    st.floats(0.0, 2.0),  # wait
    st.sampled_from(["bytes", "bytes", "bytes", "rows", "end"]),
    st.sampled_from(["ok", "ok", "ok", "rate_limited", "too_large", "timeout", "failed"]),
    st.booleans(),  # cut at the current target (else at an older one)
    st.floats(0.01, 1.0),  # body size as a fraction of its target
)


@settings(max_examples=200, deadline=None)
@given(
    maximum=st.integers(1, 256 * MIB),
    initial=st.integers(1, 64 * MIB),
    steps=st.lists(measurement, max_size=60),
)
def test_the_target_always_stays_within_its_bounds(
    maximum: int, initial: int, steps: list[tuple[float, float, str, str, bool, float]]
) -> None:
    """Whatever the calls report, minimum <= target <= ceiling <= maximum, and a size the
    server refused is never reached again."""
    sizer = AdaptiveSize(maximum, initial=initial, senders=4)
    at, refused = 0.0, None
    for latency, wait, cut, outcome, current, fraction in steps:
        at += latency + wait + 0.001
        target = sizer.target if current else max(1, sizer.history[0] // 2)
        body = max(1, int(target * fraction))
        call(
            sizer,
            at,
            latency=latency,
            wait=wait,
            target=target,
            body=body,
            cut=cut,
            outcome=outcome,
        )
        if outcome == "too_large":
            refused = body if refused is None else min(refused, body)
        assert sizer.minimum <= sizer.target <= sizer.ceiling <= maximum
        if refused is not None and refused > sizer.minimum:
            assert sizer.target < refused
    assert all(sizer.minimum <= size <= maximum for size in sizer.history)


# ----------------------------------------------------------------------------- a world


@dataclass
class World:
    """A call budget of ``rate`` calls/s (``None``: none), a server that handles bodies one
    at a time at ``bandwidth`` bytes/s plus ``latency`` s, and ``senders`` sender tasks of
    which one at a time waits for a token, as in the executor. Time is simulated."""

    rate: float | None
    bandwidth: float
    senders: int = 4
    latency: float = 0.02

    def run(self, sizer: AdaptiveSize, calls: int) -> list[tuple[float, int]]:
        """``calls`` calls; each call's (end, bytes). The sizer learns of a call when it
        ends, and a batch is cut at the target in force when its token is given."""
        free: list[float] = [0.0] * self.senders  # when each sender is free again
        token = 0.0  # when the next token is given
        server = 0.0  # when the server is free again
        ends: list[tuple[float, int]] = []
        pending: list[tuple[float, int, Measurement]] = []  # calls not ended yet
        waiter_free = 0.0  # one sender waits for a token at a time
        for n in range(calls):
            ready = max(heapq.heappop(free), waiter_free)
            granted = ready if self.rate is None else max(ready, token)
            while pending and pending[0][0] <= granted:
                sizer.observe(heapq.heappop(pending)[2])
            if self.rate is not None:
                token = granted + 1.0 / self.rate
            waiter_free = granted
            size = sizer.target
            start = max(granted, server)
            server = start + size / self.bandwidth
            end = server + self.latency
            heapq.heappush(free, end)
            ends.append((end, size))
            m = Measurement(end, size, size, 1000, end - granted, granted - ready)
            heapq.heappush(pending, (end, n, m))
        while pending:
            sizer.observe(heapq.heappop(pending)[2])
        return ends


def _throughput(ends: list[tuple[float, int]], last: int) -> float:
    tail = sorted(ends)[-last:]
    return sum(size for _, size in tail[1:]) / (tail[-1][0] - tail[0][0])


@pytest.mark.parametrize(
    ("rate", "bandwidth", "lowest", "highest"),
    [
        (2.0, 60e6, 16 * MIB, 64 * MIB),  # few calls: big bodies
        (10.0, 80e6, 4 * MIB, 32 * MIB),
        (50.0, 80e6, 1 * MIB, 8 * MIB),
    ],
)
def test_under_a_call_budget_it_converges_to_the_servers_pace(
    rate: float, bandwidth: float, lowest: int, highest: int
) -> None:
    """Bodies grow until the server, not the budget, sets the pace: the last calls move at
    least 85% of the server's bandwidth, with bodies no bigger than needed for it."""
    sizer = AdaptiveSize(64 * MIB, senders=4)
    ends = World(rate, bandwidth).run(sizer, 60)
    assert lowest <= sizer.target <= highest, sizer.history
    assert _throughput(ends, 20) >= 0.85 * bandwidth


def test_without_a_budget_the_first_size_stays() -> None:
    """Nothing limits calls: no token wait, no reason to grow."""
    sizer = AdaptiveSize(64 * MIB, senders=4)
    World(None, 80e6).run(sizer, 60)
    assert sizer.history == [INITIAL_BYTES]


def test_it_gets_there_within_a_few_calls() -> None:
    """Two calls per second: the server's pace within about ten calls (a few seconds)."""
    sizer = AdaptiveSize(64 * MIB, senders=4)
    ends = World(2.0, 60e6).run(sizer, 10)
    assert sizer.target >= 16 * MIB
    assert ends[-1][1] >= 16 * MIB
