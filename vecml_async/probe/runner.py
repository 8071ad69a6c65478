"""``probe()``: run the questions in a scratch project, clean up, return the profile.

The probe creates a project of its own, ``vecml-async-probe-<8 hex digits>``, asks its
questions with a bounded number of small requests inside it, and deletes it (and the few
projects the name questions create, each deleted at once) in a ``finally`` shielded from
cancellation, so it is gone even when the probe is interrupted. Every request goes through the
client's transport and rate limiter; the bound counts every attempt sent, and the cleanup has
a reserve of its own within it.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import time
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Final

import anyio

from vecml_async._version import __version__
from vecml_async.errors import InvalidInputError, VecMLError
from vecml_async.probe.profile import NameKind, ServerProfile
from vecml_async.probe.q_automl import finish_automl, start_training
from vecml_async.probe.q_data import (
    ask_attribute_types,
    ask_sparse,
    ask_upload_job,
    conclude_attributes,
    conclude_sparse,
)
from vecml_async.probe.q_dups import ask_duplicates, conclude_duplicates
from vecml_async.probe.q_errors import ask_errors
from vecml_async.probe.q_limits import ask_rate, ask_size, rate_limit_answer
from vecml_async.probe.q_names import ask_names
from vecml_async.probe.ramp import ramp_steps
from vecml_async.probe.run import (
    APPLICATION,
    DIM,
    FINAL,
    ProbeRun,
    Question,
    Scratch,
    status_of,
)
from vecml_async.probe.session import ProbeClient, ProbeSession, Reply

__all__ = ["DEFAULT_MAX_CALLS", "QUESTIONS", "probe"]

logger = logging.getLogger("vecml_async")

#: The bound on the default probe's calls, cleanup included.
DEFAULT_MAX_CALLS: Final = 60
#: Calls kept for the cleanup within the bound.
CLEANUP_RESERVE: Final = 6
#: The most calls the size search makes.
SIZE_CALLS: Final = 16
#: Seconds the cleanup may take, whatever happens.
CLEANUP_SECONDS: Final = 60.0
#: The default questions, in the order they are asked (``questions=`` picks among them).
QUESTIONS: Final = ("errors", "uploads", "training", "names", "attributes", "duplicates", "sparse")

Progress = Callable[[str], object]
#: The answer of an opt-in question that was not asked.
NOT_PROBED: Final = "not probed (opt in: %s)"


def _selected(questions: Iterable[str] | None) -> frozenset[str]:
    chosen = frozenset(QUESTIONS if questions is None else questions)
    unknown = chosen - set(QUESTIONS)
    if unknown:
        raise InvalidInputError(
            f"unknown question(s) {', '.join(sorted(unknown))}; "
            f"choose among {', '.join(QUESTIONS)}",
            field="questions",
        )
    if "training" in chosen:
        chosen |= {"uploads"}  # training needs the rows
    return chosen


async def probe(
    client: ProbeClient,
    *,
    rate: bool = False,
    size: bool = False,
    questions: Iterable[str] | None = None,
    max_calls: int = DEFAULT_MAX_CALLS,
    max_rate: float = 60.0,
    training_timeout: float = 30.0,
    size_precision: int = 4096,
    progress: Progress | None = None,
) -> ServerProfile:
    """Ask the server the questions VecML's documentation leaves open; its profile.

    Args:
        client: the client to probe with (its key, URL, transport, rate limiter and hooks).
        rate: also find the rate-limit answer and the calls per second where it starts, with
            a ramp from 2 calls/s up to ``max_rate`` that stops at the first refusal (up to
            150 calls more with the default ``max_rate``). Like every call it goes through
            the client's limiter, so it cannot find a limit above the client's ceiling:
            probe with a client made with ``rate_limit=None`` for that (the command does).
        size: also find the size cap and its answer, with bodies of 190,000,000 to
            210,000,000 bytes (at most 16 of them: up to 3.4 GB sent).
        questions: the default questions to ask (names from :data:`QUESTIONS`); all by
            default, none with ``()`` (then only ``rate`` / ``size`` run).
        max_calls: the bound on the default questions' calls, cleanup included (attempts
            sent, retries counted); a question that would pass it is not determined.
        training_timeout: seconds to wait for the probe's two small trainings.
        size_precision: bytes to which the size search narrows the cap when it is not one of
            the two readings of 200MB.
        progress: called with the name of each step as it starts (for a status line), and
            at the very end with ``"cleaned up"`` or ``"left behind: <projects>"``.

    Returns:
        The :class:`ServerProfile`: every answer with its evidence, ``None`` fields where
        the probe could not tell. The key appears nowhere in it.

    Raises:
        APIError / TransportError: the scratch project could not be created (a refused key,
            an unreachable server). Cancellation propagates, after the cleanup.
    """
    _check_bounds(max_calls, max_rate)
    selected = _selected(questions)
    bound = max_calls + (_ramp_calls(max_rate) if rate else 0) + (SIZE_CALLS if size else 0)
    started = time.monotonic()
    session = ProbeSession(client, max_calls=bound, reserve=CLEANUP_RESERVE)
    run = ProbeRun(session, Scratch(), training_timeout=training_timeout)
    say = progress or (lambda step: None)
    ask = functools.partial(
        _questions,
        run,
        selected,
        say,
        rate=rate,
        size=size,
        max_rate=max_rate,
        size_precision=size_precision,
    )
    await _ask_then_clean_up(run, say, ask)
    return _profile(client, run, started)


def _check_bounds(max_calls: int, max_rate: float) -> None:
    """InvalidInputError unless ``max_calls`` is an integer >= 20 and ``max_rate`` is over 2."""
    if isinstance(max_calls, bool) or not isinstance(max_calls, int) or max_calls < 20:
        raise InvalidInputError("must be an integer >= 20", field="max_calls")
    if not max_rate > 2:
        raise InvalidInputError("must be more than 2 calls per second", field="max_rate")


async def _ask_then_clean_up(
    run: ProbeRun, say: Progress, ask: Callable[[], Awaitable[None]]
) -> None:
    """Set up and ``ask`` the questions; then, whatever happened, clean up (shielded from
    cancellation, within :data:`CLEANUP_SECONDS`) and tell ``say`` what is left behind."""
    try:
        say("setup")
        await _setup(run)
        await ask()
    finally:
        with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_SECONDS):
            say("cleanup")
            await _cleanup(run)
        say("left behind: " + ", ".join(run.projects) if run.projects else "cleaned up")


async def _setup(run: ProbeRun) -> None:
    """The scratch project and its dense collection; hyphens refused: underscores."""
    hyphens: dict[NameKind, bool | None] = {}
    for name, hyphen in ((run.scratch.project, True), (run.scratch.fallback_project, False)):
        fields = {"project_name": name, "application": APPLICATION}
        reply = await run.call("create_project", fields, "the probe's scratch project")
        if reply.ok:
            run.project, hyphens["project"] = name, hyphen
            run.projects.append(name)
            break
        if not reply.refused or reply.status in (401, 403):
            raise _setup_error(reply)
    else:
        raise _setup_error(reply)
    for scratch, hyphen in ((run.scratch, True), (run.scratch.underscored(), False)):
        fields = run.fields(scratch.dense, vector_type="dense", vector_dim=DIM)
        reply = await run.call("init", fields, f"a dense collection of dimension {DIM}")
        if reply.ok:
            run.scratch, hyphens["collection"] = scratch, hyphen
            break
        if not reply.refused:
            raise _setup_error(reply)
    else:
        raise _setup_error(reply)
    run.replies["setup"] = reply
    run.hyphens = hyphens


def _setup_error(reply: Reply) -> VecMLError:
    assert reply.error is not None
    return reply.error


async def _questions(
    run: ProbeRun,
    selected: frozenset[str],
    say: Progress,
    *,
    rate: bool,
    size: bool,
    max_rate: float,
    size_precision: int,
) -> None:
    if "errors" in selected:
        say("errors")
        await ask_errors(run)
    if rate:
        say("rate")
        async with _spending(run, _ramp_calls(max_rate)):
            await ask_rate(run, max_rate)
    ready = False
    if "uploads" in selected:
        say("uploads")
        ready = await ask_upload_job(run)
    if "training" in selected and ready:
        say("training")
        run.hyphens["model"] = await start_training(run)
    steps: list[tuple[str, Question]] = [
        ("names", ask_names),
        ("attributes", ask_attribute_types),
        ("duplicates", ask_duplicates),
        ("sparse", ask_sparse),
    ]
    for name, ask in steps:
        if name in selected:
            say(name)
            await ask(run)
    if size:
        say("size")
        async with _spending(run, SIZE_CALLS):
            await ask_size(run, size_precision)
    await _conclude(run, selected, ready, rate=rate, size=size)


async def _conclude(
    run: ProbeRun, selected: frozenset[str], ready: bool, *, rate: bool, size: bool
) -> None:
    if "training" in selected and ready and "train:doc" in run.replies:
        await finish_automl(run)
    elif "duplicates" in selected:
        conclude_duplicates(run, None)
    await _sweep(run)
    if "attributes" in selected:
        conclude_attributes(run)
    if "sparse" in selected:
        conclude_sparse(run)
    if not rate:
        answers = run.session.rate_limit_answers
        if answers:
            rate_limit_answer(run, answers[0], "met during the probe", [])
        else:
            run.findings.unknown(
                "rate_limit", "The rate-limit answer", NOT_PROBED % "--rate, rate=True"
            )
        run.findings.unknown(
            "calls_per_second",
            "Calls per second before the rate-limit answer",
            NOT_PROBED % "--rate, rate=True",
        )
    if not size:
        run.findings.unknown(
            "max_body_bytes", "Largest request body accepted", NOT_PROBED % "--size, size=True"
        )


async def _sweep(run: ProbeRun) -> None:
    """One more look at the jobs of accepted batches that were not seen final."""
    for job_id, check in run.checks:
        if job_id in run.job_status or run.session.left <= 0:
            check(run.job_status.get(job_id), None)
            continue
        reply = await run.call("get_upload_data_status", {"job_id": job_id}, "the job's id")
        final = status_of(reply) in FINAL
        if final and reply.data is not None:
            run.job_status[job_id] = reply.data
        check(reply.data if final else None, reply)


async def _cleanup(run: ProbeRun) -> None:
    """Delete every project the probe made; what cannot be deleted is reported."""
    for name in list(reversed(run.projects)):
        reply = await run.delete_project(name, cleanup=True)
        if not reply.ok and name in run.projects:
            logger.warning(
                "the probe could not delete its project %s: %s", name, reply.evidence.summary()
            )


@contextlib.asynccontextmanager
async def _spending(run: ProbeRun, allowance: int) -> AsyncIterator[None]:
    """An opt-in probe spends at most ``allowance`` calls of the bound; what it leaves is
    taken off the bound, so the default questions keep exactly their own share."""
    before = run.session.spent
    try:
        yield
    finally:
        unused = allowance - (run.session.spent - before)
        run.session.max_calls -= max(0, unused)


def _ramp_calls(max_rate: float) -> int:
    return sum(calls for _, calls in ramp_steps(max_rate))


def _public_url(url: str) -> str:
    """``url`` without user, password, query or fragment."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _profile(client: ProbeClient, run: ProbeRun, started: float) -> ServerProfile:
    now = datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)
    profile = ServerProfile(
        base_url=_public_url(client.base_url),
        probed_at=now.isoformat().replace("+00:00", "Z"),
        library_version=__version__,
        calls=run.session.spent,
        elapsed=round(time.monotonic() - started, 2),
        answers=tuple(run.findings.answers),
        left_behind=tuple(run.projects),
        **run.findings.fields,
    )
    # The transport masked the key in everything it read; this is the last line of defence.
    return ServerProfile.model_validate(client._key.scrub(profile.model_dump(mode="json")))
