"""Questions about names: hyphens, 128 and 129 characters, a non-ASCII letter.

Projects are tried by creating them (one the server accepts is deleted at once),
collections by creating them in the scratch project, models by asking for the validation
metric of a model of that name: a server that refuses the name answers differently from one
that says the model does not exist (VecML documents the model rule; a model cannot be made
without training it). The hyphen is answered by the probe's own names (``vecml-async-probe-``,
``probe-dense``, ``probe-model-doc``).
"""

from __future__ import annotations

from typing import Final

from vecml_async.errors import NotFoundError
from vecml_async.probe.profile import NameKind, NameRules
from vecml_async.probe.run import APPLICATION, DIM, ProbeRun
from vecml_async.probe.session import Reply

__all__ = ["ask_names"]

#: A letter outside ASCII, in every unicode name tried.
UNICODE_PART: Final = "ñame"
TITLES: Final[dict[NameKind, str]] = {
    "project": "Project names",
    "collection": "Collection names",
    "model": "Model names",
}


def _padded(prefix: str, length: int) -> str:
    return (prefix + "-" + "x" * length)[:length]


def _verdict(kind: NameKind, reply: Reply) -> bool | None:
    """Whether the name passed: created (projects, collections) or looked up as missing
    (models); ``None`` when the answer says nothing about the name."""
    if reply.stopped or reply.evidence.outcome in ("rate_limited", "transport_error"):
        return None
    if kind == "model":
        return reply.ok or isinstance(reply.error, NotFoundError)
    return reply.ok


async def _try(run: ProbeRun, kind: NameKind, name: str, sent: str) -> Reply:
    if kind == "project":
        reply = await run.call(
            "create_project", {"project_name": name, "application": APPLICATION}, sent
        )
        if reply.ok:
            run.projects.append(name)
            await run.delete_project(name)
        return reply
    if kind == "collection":
        fields = run.fields(name, vector_type="dense", vector_dim=DIM)
        return await run.call("init", fields, sent)
    fields = run.fields(run.scratch.dense, model_name=name)
    return await run.call("get_model_validation_metric", fields, sent)


def _describe(rules: NameRules) -> str:
    def word(value: bool | None) -> str:
        return "?" if value is None else ("yes" if value else "no")

    return (
        f"hyphen {word(rules.hyphen)}, 128 characters {word(rules.length_128)}, "
        f"129 characters {word(rules.length_129)}, non-ASCII letter {word(rules.unicode)}"
    )


async def ask_names(run: ProbeRun) -> None:
    """For each kind: 128 and 129 characters and a non-ASCII letter; the hyphen is what the
    probe's own names showed (``run.hyphens``)."""
    hyphens = run.hyphens
    found: dict[NameKind, NameRules] = {}
    stems: dict[NameKind, str] = {
        "project": run.scratch.prefix,
        "collection": "probe",
        "model": "probe",
    }
    for kind in ("project", "collection", "model"):
        tried: dict[str, bool | None] = {}
        replies: list[Reply] = []
        for trait, name, sent in (
            ("length_128", _padded(stems[kind], 128), f"a {kind} name of 128 characters"),
            ("length_129", _padded(stems[kind], 129), f"a {kind} name of 129 characters"),
            ("unicode", f"{stems[kind]}-{UNICODE_PART}", f"a {kind} name with the letter 'ñ'"),
        ):
            reply = await _try(run, kind, name, sent)
            replies.append(reply)
            tried[trait] = _verdict(kind, reply)
        rules = NameRules(hyphen=hyphens.get(kind), **tried)
        found[kind] = rules
        determined = all(v is not None for v in tried.values())
        run.findings.add(
            f"names.{kind}", TITLES[kind], _describe(rules), replies, determined=determined
        )
    run.findings.fields["names"] = found
