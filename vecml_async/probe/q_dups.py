"""Questions about duplicate ids, within one batch and across batches.

In a collection of its own, the probe sends a batch with the id ``w`` twice (the first row
labelled, the second not), then a batch ``a1, a2`` (labelled) and the same ids again
(unlabelled). A refusal says ``reject`` (a refused ``w`` batch is sent again with ``w`` once,
labelled). What an accepted repeat did cannot be read back (no endpoint returns rows), so a
prediction over the collection with the model trained by the AutoML questions counts them:
the predictions are the rows, ``num_samples`` the rows that carry a label. Each behaviour
leaves its own pair of counts:

=============  ========  ======
               ``w``     ``a*``
=============  ========  ======
overwrite      (1, 0)    (2, 0)
ignore         (1, 1)    (2, 2)
both kept      (2, 1)    (4, 2)
rejected       (1, 1)    (2, 2)
=============  ========  ======

so every combination of an accepted repeat's behaviour gives different totals.
"""

from __future__ import annotations

import itertools
from typing import Any, Final

from vecml_async.probe.run import DIM, ProbeRun, job_id_of, status_of
from vecml_async.probe.session import Reply

__all__ = ["ask_duplicates", "conclude_duplicates", "decode_counts", "settle_dup_jobs"]

WITHIN: Final = {"overwrite": (1, 0), "ignore": (1, 1), "both": (2, 1)}
ACROSS: Final = {"overwrite": (2, 0), "ignore": (2, 2), "both": (4, 2)}
_REJECTED: Final = {"within": (1, 1), "across": (2, 2)}
WORDS: Final = {
    "overwrite": "overwrite: the new row replaces the stored one",
    "ignore": "ignore: the stored row stays, the new one is dropped",
    "reject": "reject: the batch is refused",
    "both": "both rows are stored",
}


def _row(label: str | None) -> dict[str, str]:
    return {"cat": "A", **({"label": label} if label is not None else {})}


async def ask_duplicates(run: ProbeRun) -> None:
    """Send the three batches (and the single ``w`` after a refused one)."""
    c = run.scratch.dups
    init = await run.call(
        "init",
        run.fields(c, vector_type="dense", vector_dim=DIM),
        "a dense collection for duplicate ids",
    )
    run.replies["dups_init"] = init
    if not init.ok:
        return
    batches: list[tuple[str, list[str], list[str | None], str]] = [
        ("dup:within", ["w", "w"], ["1", None], "the id 'w' twice in one batch"),
        ("dup:first", ["a1", "a2"], ["0", "1"], "the ids 'a1', 'a2'"),
        ("dup:again", ["a1", "a2"], [None, None], "the ids 'a1', 'a2' again, in a second batch"),
    ]
    for label, ids, labels, sent in batches:
        data = [[0.5 + 0.1 * k, 0.5] for k in range(len(ids))]
        fields = run.fields(c, data=data, string_ids=ids, attributes=[_row(x) for x in labels])
        reply = await run.call("add_data_batch", fields, sent)
        run.replies[label] = reply
        if label == "dup:within" and reply.refused:
            fields = run.fields(c, data=[[0.5, 0.5]], string_ids=["w"], attributes=[_row("1")])
            run.replies["dup:single"] = await run.call("add_data_batch", fields, "the id 'w' once")


async def settle_dup_jobs(run: ProbeRun) -> None:
    """Poll the jobs of the two repeating batches until final (a job may fail, which is a
    refusal too), so the counts are read once everything applied."""
    for label in ("dup:within", "dup:again", "dup:first"):
        reply = run.replies.get(label)
        job_id = job_id_of(reply) if reply is not None else None
        if job_id is not None:
            polls = await run.poll("get_upload_data_status", job_id, polls=4)
            if polls:
                run.replies[f"{label}:job"] = polls[-1]


def _mode(run: ProbeRun, label: str) -> str | None:
    """``reject`` when the batch (or its job) was refused, ``accepted``, or ``None``."""
    reply = run.replies.get(label)
    if (
        reply is None
        or reply.stopped
        or reply.evidence.outcome in ("rate_limited", "transport_error")
    ):
        return None
    if reply.refused or status_of(run.replies.get(f"{label}:job")) == "failed":
        return "reject"
    return "accepted" if reply.ok else None


def decode_counts(
    rows: int, labelled: int, *, within_rejected: bool, across_rejected: bool
) -> tuple[str, str] | None:
    """The (within, across) behaviours that leave ``rows`` rows, ``labelled`` labelled."""
    withins = {"reject": _REJECTED["within"]} if within_rejected else WITHIN
    acrosses = {"reject": _REJECTED["across"]} if across_rejected else ACROSS
    fits = [
        (w, a)
        for (w, wc), (a, ac) in itertools.product(withins.items(), acrosses.items())
        if (wc[0] + ac[0], wc[1] + ac[1]) == (rows, labelled)
    ]
    return fits[0] if len(fits) == 1 else None


def conclude_duplicates(run: ProbeRun, counted: Reply | None) -> None:
    """Answer both questions from the refusals and, for accepted repeats, the counts of the
    prediction ``counted`` (``None`` when no model could predict)."""
    titles = {"within": "Duplicate ids within a batch", "across": "Duplicate ids across batches"}
    labels = {"within": "dup:within", "across": "dup:again"}
    evidence = [
        run.replies[k]
        for k in (
            "dup:within",
            "dup:single",
            "dup:first",
            "dup:again",
            "dup:within:job",
            "dup:again:job",
        )
        if k in run.replies
    ]
    modes = {where: _mode(run, label) for where, label in labels.items()}
    if "dup:within" not in run.replies or None in modes.values():
        shown = evidence or [r for k, r in run.replies.items() if k == "dups_init"]
        for where in titles:
            why = "the batches got no answer"
            run.findings.unknown(f"duplicates.{where}", titles[where], why, shown)
        return
    decoded = _decoded(modes, counted)
    if counted is not None:
        evidence.append(counted)
    for where, title in titles.items():
        field = "duplicate_ids_in_batch" if where == "within" else "duplicate_ids"
        question = f"duplicates.{where}"
        mode = modes[where] if modes[where] == "reject" else (decoded or {}).get(where)
        if mode is None:
            why = (
                "accepted; no trained model could count the rows"
                if counted is None
                else ("the counts fit no single behaviour")
            )
            run.findings.unknown(question, title, why, evidence)
        elif mode == "both":
            run.findings.add(question, title, WORDS[mode], evidence)
        else:
            run.findings.add(question, title, WORDS[mode], evidence)
            run.findings.fields[field] = mode


def _decoded(modes: dict[str, str | None], counted: Reply | None) -> dict[str, str] | None:
    if counted is None or counted.data is None:
        return None
    predictions: Any = counted.data.get("predictions")
    labelled = counted.data.get("num_samples")
    if not isinstance(predictions, list) or not isinstance(labelled, int):
        return None
    fit = decode_counts(
        len(predictions),
        labelled,
        within_rejected=modes["within"] == "reject",
        across_rejected=modes["across"] == "reject",
    )
    return None if fit is None else {"within": fit[0], "across": fit[1]}
