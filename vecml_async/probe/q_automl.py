"""Questions about AutoML: ``training_mode="auto"``, the categorical field, ``model_infos``.

Three trainings on the 16 rows of the upload question (``high_speed``, the smallest
documented mode): one naming the category in ``categorical_features`` (documented), one in
``train_categorical_features`` (seen in third-party code), one with ``training_mode="auto"``
(accepted or refused at the request; it is not waited for). Once the first two are trained:
``/list_automl_model_infos`` shows the shape of an entry; a prediction over the rows of the
attribute question, which carry no category, fails for a model that took the category as a
feature (the documentation requires every categorical attribute in prediction data), so each
model says whether its field was honoured; a prediction over the duplicate-id collection
counts its rows for the duplicate questions.
"""

from __future__ import annotations

import time
from typing import Any, Final

import anyio

from vecml_async.probe.q_dups import conclude_duplicates, settle_dup_jobs
from vecml_async.probe.run import FINAL, ProbeRun, job_id_of, status_of
from vecml_async.probe.session import Reply

__all__ = ["finish_automl", "start_training"]

_TRAIN: Final[dict[str, Any]] = {"task_type": "classification", "label_attribute": "label"}


async def start_training(run: ProbeRun) -> bool | None:
    """Start the three trainings; whether the server took a model name with hyphens."""
    s = run.scratch
    plans: list[tuple[str, str, dict[str, Any], str]] = [
        (
            "doc",
            s.model_doc,
            {"training_mode": "high_speed", "categorical_features": ["cat"]},
            "training with categorical_features=['cat']",
        ),
        (
            "alias",
            s.model_alias,
            {"training_mode": "high_speed", "train_categorical_features": ["cat"]},
            "training with train_categorical_features=['cat']",
        ),
        ("auto", s.model_auto, {"training_mode": "auto"}, 'training with training_mode="auto"'),
    ]
    for label, model, extra, sent in plans:
        fields = run.fields(s.dense, model_name=model, **_TRAIN, **extra)
        reply = await run.call("train_automl_model", fields, sent)
        run.replies[f"train:{label}"] = reply
        job_id = job_id_of(reply)
        if job_id is not None:
            run.jobs[f"train:{label}"] = job_id
    doc, auto = run.replies["train:doc"], run.replies["train:auto"]
    title = 'training_mode="auto"'
    if auto.ok:
        run.findings.add(
            "training_mode_auto", title, "accepted", [auto], accepts_auto_training_mode=True
        )
    elif auto.refused and doc.ok:
        run.findings.add(
            "training_mode_auto", title, "refused", [auto, doc], accepts_auto_training_mode=False
        )
    else:
        why = "the documented training was refused as well" if auto.refused else "no answer"
        run.findings.unknown("training_mode_auto", title, why, [auto, doc])
    return True if doc.ok else None


async def _wait_trained(run: ProbeRun) -> dict[str, Reply]:
    """Poll the two trainings until final or ``run.training_timeout``; the last polls."""
    pending = {
        label: run.jobs[f"train:{label}"]
        for label in ("doc", "alias")
        if f"train:{label}" in run.jobs
    }
    last: dict[str, Reply] = {}
    deadline = time.monotonic() + run.training_timeout
    wait = 0.0
    while pending and time.monotonic() < deadline and run.session.left > 0:
        await anyio.sleep(wait)
        for label, job_id in list(pending.items()):
            reply = await run.call(
                "get_automl_training_status", {"job_id": job_id}, "the training job's id"
            )
            last[label] = reply
            if status_of(reply) in FINAL or not reply.ok:
                del pending[label]
        wait = min(3.0, max(0.5, wait * 1.5))
    return last


def _trained(last: dict[str, Reply], label: str) -> bool:
    return status_of(last.get(label)) == "finished"


async def finish_automl(run: ProbeRun) -> None:
    """Wait for the trainings, then the listing and the three predictions."""
    s = run.scratch
    last = await _wait_trained(run)
    await _ask_model_infos(run)
    await settle_dup_jobs(run)
    counted = None
    if _trained(last, "doc") and "dups_init" in run.replies and run.replies["dups_init"].ok:
        counted = await _predict(
            run, s.model_doc, s.dups, "a prediction over the duplicate-id rows"
        )
    conclude_duplicates(run, counted if counted is not None and counted.ok else None)
    await _ask_categorical(run, last, counted)


async def _predict(run: ProbeRun, model: str, dataset: str, sent: str) -> Reply:
    fields = run.fields(run.scratch.dense, model_name=model, prediction_dataset=dataset)
    return await run.call("automl_predict", fields, sent)


async def _ask_model_infos(run: ProbeRun) -> None:
    title = "Shape of a model_infos entry"
    if not any(
        run.replies.get(f"train:{k}", None) and run.replies[f"train:{k}"].ok
        for k in ("doc", "alias")
    ):
        run.findings.unknown("model_infos_shape", title, "no model could be trained")
        return
    reply = await run.call(
        "list_automl_model_infos", run.fields(run.scratch.dense), "the training collection"
    )
    infos = (reply.data or {}).get("model_infos")
    if not isinstance(infos, list) or not infos:
        run.findings.unknown("model_infos_shape", title, "no entry came back", [reply])
        return
    if all(isinstance(e, list) for e in infos):
        widths = sorted({len(e) for e in infos})
        words = f"list: positional entries of {'/'.join(map(str, widths))} elements"
        run.findings.add("model_infos_shape", title, words, [reply], model_infos_shape="list")
    elif all(isinstance(e, dict) for e in infos):
        keys = sorted({k for e in infos for k in e})
        words = f"dict: objects with {', '.join(keys)}"
        run.findings.add("model_infos_shape", title, words, [reply], model_infos_shape="dict")
    else:
        run.findings.unknown("model_infos_shape", title, "entries of mixed shapes", [reply])


_FIELDS: Final = {
    (True, True): "both",
    (True, False): "categorical_features",
    (False, True): "train_categorical_features",
    (False, False): "neither",
}


async def _ask_categorical(run: ProbeRun, last: dict[str, Reply], counted: Reply | None) -> None:
    """Predictions over rows without the category, once a prediction over rows with it
    (``counted``) showed that predicting works."""
    title = "categorical_features vs train_categorical_features"
    question = "categorical_features_field"
    s = run.scratch
    rows = any(r.ok for k, r in run.replies.items() if k.startswith("attr:") and ":job" not in k)
    if counted is None or not counted.ok or not rows:
        why = "no rows without the category" if rows else "no trained model could predict"
        run.findings.unknown(question, title, why, list(last.values()))
        return
    found: dict[str, Reply] = {}
    for label, model in (("doc", s.model_doc), ("alias", s.model_alias)):
        if _trained(last, label):
            sent = f"a prediction by the {label} model over rows without the category"
            found[label] = await _predict(run, model, s.attrs, sent)
    evidence = [*found.values(), counted]
    if len(found) < 2 or not all(r.ok or r.refused for r in found.values()):
        run.findings.unknown(
            question, title, "a model did not train, or a prediction got no answer", evidence
        )
        return
    field = _FIELDS[(found["doc"].refused, found["alias"].refused)]
    words = {"both": "both honoured", "neither": "neither honoured"}.get(field, f"{field} only")
    run.findings.add(question, title, words, evidence, categorical_features_field=field)
