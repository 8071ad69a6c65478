"""A profile as text: rows of a table (question, answer, evidence) and a short report to paste
into a bug report (pure: no I/O). Both hold only what the profile holds, so no key."""

from __future__ import annotations

from typing import Final

from vecml_async.probe.profile import ProbeAnswer, ServerProfile

__all__ = ["report_text", "table_rows"]

#: Characters of evidence shown per answer.
EVIDENCE_WIDTH: Final = 110
#: Answers that already quote their evidence (status and text): no evidence line in a report.
_SELF_EVIDENT: Final = ("errors.", "error_status", "error_field")


def _evidence(answer: ProbeAnswer, width: int = EVIDENCE_WIDTH) -> str:
    """The first piece of evidence that came back, on one line."""
    shown = next((e for e in answer.evidence if e.outcome != "not_sent"), None)
    if shown is None:
        return ""
    text = shown.summary()
    return text if len(text) <= width else text[: width - 3] + "..."


def table_rows(profile: ServerProfile) -> list[tuple[str, str, str]]:
    """``(question, answer, evidence)`` for every answer, in the order asked."""
    return [(a.title, a.answer, _evidence(a)) for a in profile.answers]


def _header(profile: ServerProfile) -> str:
    where = profile.base_url or "a server"
    when = f" on {profile.probed_at}" if profile.probed_at else ""
    spent = f": {profile.calls} calls" if profile.calls is not None else ""
    took = f" in {profile.elapsed:.1f} s" if profile.elapsed is not None else ""
    return f"vecml-async {profile.library_version or '?'} probe of {where}{when}{spent}{took}"


def report_text(profile: ServerProfile) -> str:
    """A short text for a bug report: what the server answered, with one piece of evidence
    each, then what could not be told."""
    lines = [_header(profile), ""]
    unknown = []
    for answer in profile.answers:
        if not answer.determined:
            unknown.append(answer)
            continue
        lines.append(f"- {answer.title}: {answer.answer}")
        evidence = _evidence(answer)
        if evidence and not answer.question.startswith(_SELF_EVIDENT):
            lines.append(f"    {evidence}")
    if unknown:
        lines += ["", "Not determined:"]
        lines += [f"- {a.title}: {a.answer.removeprefix('not determined: ')}" for a in unknown]
    if profile.left_behind:
        lines += ["", f"Left behind (could not delete): {', '.join(profile.left_behind)}"]
    lines += [
        "",
        f"(profile_version {profile.profile_version}; `vecml-async probe --json` gives all)",
    ]
    return "\n".join(lines)
