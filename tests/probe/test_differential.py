"""The proof: emulators configured to answer a question differently, probed.

For each configuration the probe's answers must match it, and an emulator built from the
probe's profile (``EmulatorSettings.from_profile``) must answer the same way: the probe run
against both gives the same profile (the rate within a tolerance: it is measured).
"""

from __future__ import annotations

from typing import Any

import pytest

from vecml_async.emulator import EmulatorSettings
from vecml_async.probe import ServerProfile

pytestmark = pytest.mark.integration

#: The defaults' answers: what a documented emulator says to the default probe.
DOCUMENTED: dict[str, Any] = {
    "error_status": "http",
    "error_field": "error_message",
    "duplicate_ids": "overwrite",
    "duplicate_ids_in_batch": "overwrite",
    "attribute_types": ("string",),
    "sparse_encodings": ("pairs", "dict", "indices_values", "libsvm"),
    "sparse_index_base": 0,
    "accepts_auto_training_mode": False,
    "categorical_features_field": "both",
    "model_infos_shape": "list",
    "upload_status_values": ("finished",),
}
RATE = {"rate": True, "questions": ()}
SIZE = {"size": True, "questions": ()}

CELLS = [
    pytest.param({}, {}, DOCUMENTED, id="documented"),
    pytest.param({"error_status": "ok"}, {}, {**DOCUMENTED, "error_status": "ok"}, id="errors-200"),
    pytest.param(
        {"duplicate_ids": "reject"},
        {},
        {**DOCUMENTED, "duplicate_ids": "reject", "duplicate_ids_in_batch": "reject"},
        id="duplicates-reject",
    ),
    pytest.param(
        {"duplicate_ids": "ignore"},
        {},
        {**DOCUMENTED, "duplicate_ids": "ignore", "duplicate_ids_in_batch": "ignore"},
        id="duplicates-ignore",
    ),
    pytest.param(
        {"allow_auto_training_mode": True},
        {},
        {**DOCUMENTED, "accepts_auto_training_mode": True},
        id="auto-accepted",
    ),
    pytest.param(
        {"rate_limit": 5},
        RATE,
        {"rate_limit_status": 400, "rate_limit_body": "text", "rate_limit_retry_after": None},
        id="rate-5-text",
    ),
    pytest.param(
        {"rate_limit": 20, "rate_limit_body": "json"},
        RATE,
        {"rate_limit_status": 400, "rate_limit_body": "json"},
        id="rate-20-json",
    ),
    pytest.param(
        {"max_body_bytes": 200_000_000},
        SIZE,
        {"max_body_bytes": 200_000_000, "oversize_status": 413},
        id="cap-10^6-413",
    ),
    pytest.param(
        {"max_body_bytes": 209_715_200, "oversize_status": 400},
        SIZE,
        {"max_body_bytes": 209_715_200, "oversize_status": 400},
        id="cap-2^20-400",
    ),
    # The settings added for profiles, one question each.
    pytest.param(
        {"rate_limit": 3, "rate_limit_status": 429, "rate_limit_retry_after": 1},
        RATE,
        {"rate_limit_status": 429, "rate_limit_body": "text", "rate_limit_retry_after": 1.0},
        id="rate-429-retry-after",
    ),
    pytest.param(
        {"sparse_formats": ("dict", "libsvm"), "sparse_index_base": 1},
        {"questions": ("sparse",)},
        {"sparse_encodings": ("dict", "libsvm"), "sparse_index_base": 1},
        id="sparse-dict-libsvm-base-1",
    ),
    pytest.param(
        {"attribute_types": ("string", "number", "boolean")},
        {"questions": ("uploads", "attributes")},
        {"attribute_types": ("string", "number", "boolean")},
        id="attributes-any-scalar",
    ),
    pytest.param(
        {"categorical_features_field": "train_categorical_features", "model_infos_shape": "dict"},
        {"questions": ("training", "attributes", "duplicates")},
        {
            "categorical_features_field": "train_categorical_features",
            "model_infos_shape": "dict",
            "duplicate_ids": "overwrite",
        },
        id="alias-only-infos-as-objects",
    ),
    pytest.param(
        {"duplicate_ids": "ignore", "duplicate_ids_in_batch": "reject"},
        {"questions": ("training", "duplicates")},
        {"duplicate_ids": "ignore", "duplicate_ids_in_batch": "reject"},
        id="duplicates-ignored-across-refused-within",
    ),
]

#: Fields that describe the run, not the server.
RUN_FIELDS = {"base_url", "probed_at", "library_version", "calls", "elapsed", "answers"}


def _answers(profile: ServerProfile) -> dict[str, Any]:
    return profile.model_dump(exclude=RUN_FIELDS)


def _same(first: ServerProfile, second: ServerProfile) -> None:
    a, b = _answers(first), _answers(second)
    rate_a, rate_b = a.pop("calls_per_second"), b.pop("calls_per_second")
    assert a == b
    assert (rate_a is None) == (rate_b is None)
    if rate_a is not None:
        assert rate_b == pytest.approx(rate_a, rel=0.2)


@pytest.mark.parametrize(("settings", "options", "expected"), CELLS)
async def test_the_probe_finds_the_configuration_and_the_profile_reproduces_it(
    probe_emulator: Any, settings: dict[str, Any], options: dict[str, Any], expected: dict[str, Any]
) -> None:
    """The probe's answers match the configuration; an emulator built from its profile
    answers the probe the same way; both probes clean up."""
    first = await probe_emulator(settings, **options)
    found = first.profile
    assert {name: getattr(found, name) for name in expected} == expected, [
        a.answer for a in found.answers
    ]
    if "rate_limit" in settings:
        assert found.calls_per_second == pytest.approx(settings["rate_limit"], rel=0.2)
    assert first.projects() == {}
    assert found.left_behind == ()
    second = await probe_emulator(EmulatorSettings.from_profile(found), **options)
    _same(found, second.profile)
    assert second.projects() == {}
