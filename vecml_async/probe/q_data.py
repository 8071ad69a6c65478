"""Questions about rows: the upload job's status, attribute value types, sparse encodings.

* The upload job: 16 labelled rows (the training data of the AutoML questions) sent with
  ``add_data_batch``; the job is polled until it is final, and every field and status value
  seen is noted.
* Attribute types: one batch whose attribute is a number, one whose attribute is a boolean
  (strings are what the documented example sends, and what the first batch carried).
* Sparse: one row in each of the four candidate JSON forms (spec section 4.3.1) in a sparse
  collection of dimension 8, then, in the first form accepted, a row with index 0 and a row
  with index 8: a 0-based server takes the first, a 1-based one the second.

A batch accepted at the request may still fail in its job: those jobs are checked once more
at the end of the probe, and the answers are settled then.
"""

from __future__ import annotations

from typing import Any, Final

from vecml_async.probe.run import DIM, FINAL, ProbeRun, job_id_of, status_of
from vecml_async.probe.session import Reply

__all__ = [
    "SPARSE_FORMS",
    "ask_attribute_types",
    "ask_sparse",
    "ask_upload_job",
    "conclude_attributes",
    "conclude_sparse",
]

#: Rows of the training data.
TRAIN_ROWS: Final = 16
SPARSE_DIM: Final = 8
#: One sparse row (indices 1 and 3) in each candidate form.
SPARSE_FORMS: Final[dict[str, Any]] = {
    "pairs": [[1, 0.5], [3, 1.5]],
    "dict": {"1": 0.5, "3": 1.5},
    "indices_values": {"indices": [1, 3], "values": [0.5, 1.5]},
    "libsvm": "1:0.5 3:1.5",
}


def training_rows(prefix: str, n: int = TRAIN_ROWS) -> dict[str, Any]:
    """``n`` separable rows with a string label and a string category."""
    data = [[float(k % 2) + 0.1 * (k % 3), float(k % 2) - 0.1 * (k % 5)] for k in range(n)]
    attributes = [{"label": str(k % 2), "cat": "AB"[k % 3 % 2]} for k in range(n)]
    return {
        "data": data,
        "string_ids": [f"{prefix}-{k}" for k in range(n)],
        "attributes": attributes,
    }


async def ask_upload_job(run: ProbeRun) -> bool:
    """Send the training rows and poll their job; True once it finished."""
    title = "Upload job: fields and statuses"
    reply = await run.call(
        "add_data_batch",
        run.fields(run.scratch.dense, **training_rows("row")),
        f"{TRAIN_ROWS} rows of dimension {DIM} with string attributes",
    )
    run.replies["main"] = reply
    job_id = job_id_of(reply)
    if job_id is None:
        run.findings.unknown("upload_status", title, "the batch started no job", [reply])
        return False
    run.jobs["main"] = job_id
    polls = await run.poll("get_upload_data_status", job_id, polls=8)
    seen = [r for r in polls if r.ok]
    fields = sorted({k for r in seen for k in (r.data or {}) if k != "success"})
    values = list(dict.fromkeys(s for r in seen if (s := status_of(r)) is not None))
    final = status_of(polls[-1]) if polls else None
    if not seen:
        run.findings.unknown("upload_status", title, "no status answer", [reply, *polls])
        return False
    run.findings.add(
        "upload_status",
        title,
        f"fields {', '.join(fields)}; statuses seen {' -> '.join(values)}",
        [reply, polls[0], polls[-1]] if len(polls) > 1 else [reply, *polls],
        determined=final in FINAL,
        upload_status_fields=tuple(fields),
        upload_status_values=tuple(values),
    )
    return final == "finished"


async def ask_attribute_types(run: ProbeRun) -> None:
    """A batch with a number attribute, one with a boolean; strings if neither is taken (the
    collection then serves the AutoML questions as data without the category)."""
    s = run.scratch
    init = await run.call(
        "init",
        run.fields(s.attrs, vector_type="dense", vector_dim=DIM),
        "a dense collection for attribute types",
    )
    if not init.ok:
        run.replies["attrs_init"] = init
        return
    rows = [[0.2, 0.9], [0.8, 0.1]]
    for kind, values in (("number", [1.5, 2]), ("boolean", [True, False])):
        attributes = [{"label": str(k), "probe": v} for k, v in enumerate(values)]
        fields = run.fields(
            s.attrs, data=rows, string_ids=[f"{kind}-0", f"{kind}-1"], attributes=attributes
        )
        reply = await run.call("add_data_batch", fields, f"attributes with {kind} values")
        run.replies[f"attr:{kind}"] = reply
        _check_job(run, f"attr:{kind}", reply)
    if not any(run.replies[f"attr:{k}"].ok for k in ("number", "boolean")):
        fields = run.fields(
            s.attrs,
            data=rows,
            string_ids=["string-0", "string-1"],
            attributes=[{"label": "0"}, {"label": "1"}],
        )
        run.replies["attr:string"] = await run.call("add_data_batch", fields, "string attributes")


async def ask_sparse(run: ProbeRun) -> None:
    """Each sparse form, then the index base in the first form accepted."""
    fields = run.fields(run.scratch.sparse, vector_type="sparse", vector_dim=SPARSE_DIM)
    init = await run.call("init", fields, f"a sparse collection of dimension {SPARSE_DIM}")
    run.replies["sparse_init"] = init
    if not init.ok:
        return
    for form, row in SPARSE_FORMS.items():
        reply = await run.call(
            "add_data_batch",
            run.fields(run.scratch.sparse, data=[row], string_ids=[f"sparse-{form}"]),
            f"a sparse row as {form}",
        )
        run.replies[f"sparse:{form}"] = reply
        _check_job(run, f"sparse:{form}", reply)
    chosen = next((f for f in SPARSE_FORMS if run.replies[f"sparse:{f}"].ok), None)
    if chosen is None:
        return
    for label, row, sent in (
        ("base0", _sparse_at(chosen, 0), "index 0"),
        ("base8", _sparse_at(chosen, SPARSE_DIM), f"index {SPARSE_DIM}"),
    ):
        reply = await run.call(
            "add_data_batch",
            run.fields(run.scratch.sparse, data=[row], string_ids=[f"sparse-{label}"]),
            f"a sparse row ({chosen}) with only {sent}, dimension {SPARSE_DIM}",
        )
        run.replies[f"sparse:{label}"] = reply
        _check_job(run, f"sparse:{label}", reply)


def _sparse_at(form: str, index: int) -> Any:
    if form == "pairs":
        return [[index, 1.0]]
    if form == "dict":
        return {str(index): 1.0}
    if form == "indices_values":
        return {"indices": [index], "values": [1.0]}
    return f"{index}:1.0"


def _check_job(run: ProbeRun, label: str, reply: Reply) -> None:
    """Check the job of an accepted batch at the end: a failed job means it was refused."""
    job_id = job_id_of(reply)
    if job_id is None:
        return

    def check(status: dict[str, Any] | None, poll: Reply | None) -> None:
        if poll is not None:
            run.replies[f"{label}:job"] = poll

    run.check_later(label, job_id, check)


def accepted(run: ProbeRun, label: str) -> bool | None:
    """Whether the batch ``label`` was taken: accepted and its job (if checked) did not
    fail; ``None`` when its answer says nothing (not sent, rate limited, lost)."""
    reply = run.replies.get(label)
    if (
        reply is None
        or reply.stopped
        or reply.evidence.outcome in ("rate_limited", "transport_error")
    ):
        return None
    if not reply.ok:
        return False
    job = run.replies.get(f"{label}:job")
    return status_of(job) != "failed"


def _evidence(run: ProbeRun, *labels: str) -> list[Reply]:
    keys = [key for label in labels for key in (label, f"{label}:job")]
    return [run.replies[key] for key in keys if key in run.replies]


def conclude_attributes(run: ProbeRun) -> None:
    """Settle the attribute types once the final job checks are in."""
    title = "Attribute value types accepted"
    if "attr:number" not in run.replies:
        why = "the collection for it could not be made"
        run.findings.unknown("attribute_types", title, why, _evidence(run, "attrs_init"))
        return
    verdicts = {k: accepted(run, f"attr:{k}") for k in ("number", "boolean")}
    strings = accepted(run, "main")
    evidence = _evidence(run, "attr:number", "attr:boolean", "main")
    if strings is None or None in verdicts.values():
        run.findings.unknown("attribute_types", title, "some batches got no answer", evidence)
        return
    types = tuple(t for t, ok in (("string", strings), *verdicts.items()) if ok)
    run.findings.add(
        "attribute_types",
        title,
        ", ".join(types) or "none",
        evidence,
        attribute_types=types or None,
    )


def conclude_sparse(run: ProbeRun) -> None:
    """Settle the sparse encodings and the index base once the final job checks are in."""
    title, base_title = "Sparse encodings accepted", "Sparse index base"
    if "sparse:pairs" not in run.replies:
        why = "the sparse collection could not be made"
        run.findings.unknown("sparse_encodings", title, why, _evidence(run, "sparse_init"))
        return
    verdicts = {form: accepted(run, f"sparse:{form}") for form in SPARSE_FORMS}
    evidence = _evidence(run, *(f"sparse:{f}" for f in SPARSE_FORMS))
    if None in verdicts.values():
        run.findings.unknown("sparse_encodings", title, "some rows got no answer", evidence)
    else:
        forms = tuple(f for f, ok in verdicts.items() if ok)
        run.findings.add(
            "sparse_encodings",
            title,
            ", ".join(forms) or "none of the four",
            evidence,
            sparse_encodings=forms or None,
        )
    zero, top = accepted(run, "sparse:base0"), accepted(run, "sparse:base8")
    evidence = _evidence(run, "sparse:base0", "sparse:base8")
    if zero is True and top is False:
        run.findings.add("sparse_index_base", base_title, "0", evidence, sparse_index_base=0)
    elif zero is False and top is True:
        run.findings.add("sparse_index_base", base_title, "1", evidence, sparse_index_base=1)
    else:
        why = (
            "no sparse form was accepted"
            if zero is None and top is None and not evidence
            else (
                f"index 0 {'accepted' if zero else 'refused'} and index {SPARSE_DIM} "
                f"{'accepted' if top else 'refused'} in dimension {SPARSE_DIM}"
            )
        )
        run.findings.unknown("sparse_index_base", base_title, why, evidence)
