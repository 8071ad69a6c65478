"""Questions about ordinary errors: the HTTP status and the envelope of six refusals.

One request each: the scratch project created again, a collection in a project that does not
exist, rows for a collection that does not exist, a project name with a space and a slash, a
vector of the wrong dimension, the status of a job that does not exist. Then whether errors
come with HTTP error statuses (``"http"``) or as HTTP 200 with ``"success": false``
(``"ok"``), and which JSON field holds their text.
"""

from __future__ import annotations

from typing import Any, Final

import orjson

from vecml_async.probe.profile import ErrorAnswer, ErrorKind
from vecml_async.probe.run import APPLICATION, DIM, ProbeRun
from vecml_async.probe.session import Reply

__all__ = ["ERROR_FIELDS", "ask_errors", "error_answer"]

#: The JSON fields a refusal's text may be in, in the order they are looked for.
ERROR_FIELDS: Final = ("error_message", "message", "error", "detail")

TITLES: Final[dict[ErrorKind, str]] = {
    "project_exists": "Error: creating a project that exists",
    "missing_project": "Error: a project that does not exist",
    "missing_collection": "Error: a collection that does not exist",
    "bad_name": "Error: a name with a space and a slash",
    "wrong_dimension": "Error: a vector of the wrong dimension",
    "missing_job": "Error: a job that does not exist",
}


def _requests(run: ProbeRun) -> list[tuple[ErrorKind, str, dict[str, Any], str]]:
    s = run.scratch
    row: dict[str, Any] = {"data": [[0.0] * DIM], "string_ids": ["probe-error"]}
    return [
        (
            "project_exists",
            "create_project",
            {"project_name": run.project, "application": APPLICATION},
            "the probe's project again",
        ),
        (
            "missing_project",
            "init",
            {
                "project_name": s.missing_project,
                "collection_name": s.dense,
                "vector_type": "dense",
                "vector_dim": DIM,
            },
            "a collection in a project that does not exist",
        ),
        (
            "missing_collection",
            "add_data_batch",
            run.fields(s.missing_collection, **row),
            "one row for a collection that does not exist",
        ),
        (
            "bad_name",
            "create_project",
            {"project_name": f"{s.prefix} bad/name", "application": APPLICATION},
            "a project name with a space and a slash",
        ),
        (
            "wrong_dimension",
            "add_data_batch",
            run.fields(s.dense, data=[[0.0] * (DIM + 1)], string_ids=["probe-error"]),
            f"a vector of {DIM + 1} values in a collection of dimension {DIM}",
        ),
        (
            "missing_job",
            "get_upload_data_status",
            {"job_id": s.missing_job},
            "the status of a job id that does not exist",
        ),
    ]


def error_answer(reply: Reply, run: ProbeRun) -> ErrorAnswer | None:
    """The status, field and text (names replaced by placeholders) of a refusal."""
    if not reply.refused or reply.status is None or reply.error is None:
        return None
    body = getattr(reply.error, "body", None) or ""
    try:
        parsed = orjson.loads(body) if body else None
    except orjson.JSONDecodeError:
        parsed = None
    field = None
    text = body.strip()
    if isinstance(parsed, dict):
        field = next((f for f in ERROR_FIELDS if isinstance(parsed.get(f), str)), None)
        text = parsed[field] if field is not None else ""
    message = run.scratch.templated(text[:300], run.project)
    return ErrorAnswer(status=reply.status, field=field, message=message)


async def ask_errors(run: ProbeRun) -> None:
    """Provoke the six ordinary errors; answer each, then the status and the field."""
    found: dict[ErrorKind, ErrorAnswer] = {}
    replies: list[Reply] = []
    for kind, endpoint, fields, sent in _requests(run):
        reply = await run.call(endpoint, fields, sent)
        replies.append(reply)
        if kind == "bad_name" and reply.ok:  # the server took it: delete it at once
            run.projects.append(fields["project_name"])
            await run.delete_project(fields["project_name"])
        answer = error_answer(reply, run)
        if answer is not None:
            found[kind] = answer
            where = f", {answer.field}" if answer.field else ", plain text"
            run.findings.add(
                f"errors.{kind}",
                TITLES[kind],
                f"HTTP {answer.status}{where}: {answer.message}",
                [reply],
            )
        elif reply.ok:
            run.findings.add(f"errors.{kind}", TITLES[kind], "accepted: no error", [reply])
        else:
            run.findings.unknown(f"errors.{kind}", TITLES[kind], _why(reply), [reply])
    run.findings.fields["errors"] = found
    _conclude_status(run, found, replies)


def _why(reply: Reply) -> str:
    if reply.stopped:
        return "the call bound was reached"
    return f"no refusal came back ({reply.evidence.outcome})"


def _conclude_status(
    run: ProbeRun, found: dict[ErrorKind, ErrorAnswer], replies: list[Reply]
) -> None:
    title = "Status of ordinary errors"
    if not found:
        run.findings.unknown("error_status", title, "no ordinary error came back", replies)
        return
    statuses = sorted({a.status for a in found.values()})
    refused = [r for r in replies if r.refused]
    if all(s == 200 for s in statuses):
        status: str | None = "ok"
    elif all(s >= 400 for s in statuses):
        status = "http"
    else:
        status = None
    listed = ", ".join(map(str, statuses))
    if status is None:
        run.findings.unknown("error_status", title, f"mixed statuses ({listed})", refused)
    else:
        words = (
            "HTTP 200 with success=false" if status == "ok" else f"HTTP error statuses ({listed})"
        )
        run.findings.add("error_status", title, f"{status}: {words}", refused, error_status=status)
    fields = {a.field for a in found.values()}
    title = "Field holding the error text"
    if len(fields) > 1:
        shown = ", ".join(sorted(f or "plain text" for f in fields))
        run.findings.unknown("error_field", title, f"it differs ({shown})", refused)
        return
    field = fields.pop()
    run.findings.add(
        "error_field", title, field or "none: plain text", refused[:1], error_field=field
    )
