"""The opt-in questions: the rate limit (``--rate``) and the size cap (``--size``).

**Rate.** After a pause of a second (the server's bucket refills), the ramp of
:mod:`~vecml_async.probe.ramp` sends ``/list_automl_model_infos`` on the scratch collection
(a small read), paced by a schedule of its own and, like every call, by the client's limiter
(so it never goes past the client's ceiling: probe with a client made with
``rate_limit=None`` to find a server limit above it), at most ``max_rate`` calls/s, and stops
at the first rate-limit answer. That answer is the evidence of its status, body and headers;
the accepted calls' send times give the rate (see :func:`~vecml_async.probe.ramp.sustained_rate`).
The rest of the probe then runs at no more than 90% of it.

**Size.** ``add_data_batch`` bodies of an exact size: one row (a new id each time) and JSON
whitespace up to the size, so the server parses almost nothing and stores one row; the pieces
of whitespace are one buffer sent again and again, so the client holds no 200 MB copy. No
retries (a refused body is not sent twice).
"""

from __future__ import annotations

import time
from typing import Final

import anyio
import orjson

from vecml_async._body import EncodedBody
from vecml_async._config import RateLimitPolicy, RetryPolicy
from vecml_async._http_errors import parse_retry_after
from vecml_async._limiter import Budget, RateLimiter
from vecml_async.probe.profile import Evidence
from vecml_async.probe.q_errors import ERROR_FIELDS
from vecml_async.probe.ramp import SizeSearch, ramp_steps, refusal_bound, rounded, sustained_rate
from vecml_async.probe.run import DIM, ProbeRun
from vecml_async.probe.session import Reply

__all__ = ["ChainedBudget", "RampSchedule", "ask_rate", "ask_size", "rate_limit_answer"]

#: The first rate-limit answer is final: the ramp stops there.
_RAMP_RETRY: Final = RetryPolicy(max_retries=0, rate_limit_deadline=1e-6)
_SIZE_RETRY: Final = RetryPolicy(max_retries=0, rate_limit_deadline=30.0)
_SPACES: Final = memoryview(b" " * (1 << 20))
RATE_TITLE: Final = "Calls per second before the rate-limit answer"


class RampSchedule:
    """A budget that lets calls start at the ramp's current rate, evenly spaced."""

    def __init__(self) -> None:
        self.rate = 1.0
        self._next = 0.0

    async def acquire(self) -> None:
        now = time.monotonic()
        slot = max(self._next, now)
        self._next = slot + 1.0 / self.rate
        if slot > now:
            await anyio.sleep(slot - now)

    def on_rate_limited(self) -> None:
        return None

    def on_success(self) -> None:
        return None

    @property
    def current_rate(self) -> float | None:
        return self.rate


class ChainedBudget:
    """Every call waits for both budgets: one of the probe's, and the client's."""

    def __init__(self, first: Budget, second: Budget) -> None:
        self._budgets = (first, second)

    async def acquire(self) -> None:
        for budget in self._budgets:
            await budget.acquire()

    def on_rate_limited(self) -> None:
        for budget in self._budgets:
            budget.on_rate_limited()

    def on_success(self) -> None:
        for budget in self._budgets:
            budget.on_success()

    @property
    def current_rate(self) -> float | None:
        rates = [r for b in self._budgets if (r := b.current_rate) is not None]
        return min(rates) if rates else None


def rate_limit_answer(run: ProbeRun, answer: Evidence, how: str, extra: list[Reply]) -> None:
    """Record the shape of a rate-limit answer: status, body kind, text, Retry-After."""
    try:
        parsed = orjson.loads(answer.excerpt) if answer.excerpt else None
    except orjson.JSONDecodeError:
        parsed = None
    body = "json" if isinstance(parsed, dict) else "text"
    text = answer.excerpt.strip()
    if isinstance(parsed, dict):
        text = next((parsed[f] for f in ERROR_FIELDS if isinstance(parsed.get(f), str)), text)
    retry_after = parse_retry_after(answer.headers.get("retry-after"))
    shown = f"HTTP {answer.status}, {body}: {text!r}; Retry-After: "
    shown += "none" if retry_after is None else f"{retry_after:g} s"
    run.findings.add(
        "rate_limit",
        "The rate-limit answer",
        f"{shown} ({how})",
        [answer, *extra],
        rate_limit_status=answer.status,
        rate_limit_body=body,
        rate_limit_text=text,
        rate_limit_retry_after=retry_after,
    )


async def ask_rate(run: ProbeRun, max_rate: float) -> float | None:
    """The ramp; returns the rate the server sustained when it refused at all."""
    await anyio.sleep(1.0)  # the calls before the ramp are forgotten by a per-second bucket
    schedule = RampSchedule()
    client = run.session.transport.limiter
    transport = run.session.derive(retry=_RAMP_RETRY, limiter=ChainedBudget(schedule, client))
    accepted: list[float] = []
    refusal: Reply | None = None
    other: list[Reply] = []
    fields = run.fields(run.scratch.dense)
    sent = "a small read, at a rising rate"

    async def one(scope: anyio.CancelScope) -> None:
        nonlocal refusal
        reply = await run.session.call(
            "list_automl_model_infos", fields, sent=sent, transport=transport
        )
        if reply.ok and reply.sent_at is not None:
            accepted.append(reply.sent_at)
        elif reply.evidence.outcome == "rate_limited" and refusal is None:
            refusal = reply
            scope.cancel()
        elif not reply.ok:
            other.append(reply)
            if reply.stopped or len(other) > 3:
                scope.cancel()

    rate = 0.0
    for step, calls in ramp_steps(max_rate):
        ceiling = client.current_rate
        if ceiling is not None and step > ceiling * 1.05:
            break  # the client's limiter would hold this step: it would only repeat the last
        rate = schedule.rate = step
        async with anyio.create_task_group() as tg:
            for _ in range(calls):
                tg.start_soon(one, tg.cancel_scope)
        if refusal is not None or len(other) > 3 or any(r.stopped for r in other):
            break
    if refusal is None:
        why = f"no rate-limit answer up to {rate:.3g} calls/s ({len(accepted)} calls accepted)"
        ceiling = client.current_rate
        if ceiling is not None and ceiling < max_rate:
            why += f"; the client's own limiter holds it at {ceiling:.3g} calls/s"
        if len(other) > 3 or any(r.stopped for r in other):
            why = f"the ramp stopped on other failures ({other[0].evidence.summary()})"
        run.findings.unknown("calls_per_second", RATE_TITLE, why, other[:3])
        if run.session.rate_limit_answers:  # refused before the ramp: the answer is known
            rate_limit_answer(run, run.session.rate_limit_answers[0], "met before the ramp", [])
        return None
    return _conclude_rate(run, refusal, accepted, rate)


def _conclude_rate(
    run: ProbeRun, refusal: Reply, accepted: list[float], rate: float
) -> float | None:
    """The answers of a ramp that ended in a refusal at ``rate``; the pace of the rest."""
    rate_limit_answer(run, refusal.evidence, "at the end of the ramp", [])
    estimate = sustained_rate(accepted)
    if estimate is None or refusal.sent_at is None:
        why = "the first call of the ramp was refused (is the key busy elsewhere?)"
        run.findings.unknown("calls_per_second", RATE_TITLE, why, [refusal])
        return None
    upper = refusal_bound(accepted, refusal.sent_at)
    value = rounded(estimate)
    words = (
        f"about {value:g} calls/s (refused at {rate:.3g} calls/s after {len(accepted)} "
        f"accepted calls; the refusal bounds it below {upper:.1f})"
    )
    run.findings.add("calls_per_second", RATE_TITLE, words, [refusal], calls_per_second=value)
    pace = RateLimiter(RateLimitPolicy(max(0.5, 0.9 * value), adaptive=False))
    client = run.session.transport.limiter
    run.session.transport = run.session.transport.derive(limiter=ChainedBudget(client, pace))
    return value


def padded_body(run: ProbeRun, size: int, row_id: str) -> EncodedBody:
    """An ``add_data_batch`` body of exactly ``size`` bytes: one row, then whitespace."""
    fields = run.fields(run.scratch.dense, data=[[0.0] * DIM], string_ids=[row_id])
    head = run.session.transport.encode(fields).to_bytes()
    pad = size - len(head)
    if pad < 0 or not head.endswith(b"}"):
        raise ValueError(f"a body of {size} bytes cannot hold the request")
    whole, rest = divmod(pad, len(_SPACES))
    pieces: tuple[bytes | memoryview, ...] = (head[:-1], *([_SPACES] * whole), _SPACES[:rest], b"}")
    return EncodedBody(pieces, size)


async def ask_size(run: ProbeRun, precision: int = 4096) -> None:
    """The bounded search for the largest body accepted, and the answer to a larger one."""
    title = "Largest request body accepted"
    search = SizeSearch(precision=precision)
    transport = run.session.derive(retry=_SIZE_RETRY)
    refusals: list[Reply] = []
    last_ok: Reply | None = None
    while (size := search.next_size()) is not None:
        body = padded_body(run, size, f"size-{search.steps}")
        sent = f"a body of {size:,} bytes (one row and whitespace)"
        reply = await run.session.send("add_data_batch", body, sent=sent, transport=transport)
        if reply.stopped or reply.evidence.outcome == "rate_limited":
            break
        search.record(size, reply.ok)
        if reply.ok:
            last_ok = reply
        else:
            refusals.append(reply)
    evidence = [r for r in (last_ok, *refusals[:2]) if r is not None]
    status = next((r.status for r in refusals if r.status is not None), None)
    if search.accepted is None or search.refused is None:
        where = "below 190,000,000" if search.accepted is None else "above 210,000,000 or not found"
        run.findings.unknown("max_body_bytes", title, f"the cap is {where} bytes", evidence)
        if status is not None:
            run.findings.fields["oversize_status"] = status
        return
    unit = {"10^6": " (200 MB, MB = 10^6 bytes)", "2^20": " (200 MiB, MB = 2^20 bytes)"}
    words = f"{search.accepted:,} bytes{unit.get(search.unit or '', '')}"
    if search.refused > search.accepted + 1:
        words += f" or a little more (refused at {search.refused:,})"
    words += "; larger: "
    words += f"HTTP {status}" if status is not None else "the connection was closed"
    run.findings.add(
        "max_body_bytes",
        title,
        words,
        evidence,
        max_body_bytes=search.accepted,
        oversize_status=status,
    )
