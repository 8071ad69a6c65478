"""Unit tests of the emulator's pure parts: settings, faults, token buckets, stats, parsing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import orjson
import pytest

from vecml_async.emulator import EmulatorSettings, FaultConfig
from vecml_async.emulator.command import (
    api_keys_env,
    build_parser,
    settings_from_args,
    settings_to_argv,
)
from vecml_async.emulator.faults import FaultInjector
from vecml_async.emulator.limits import TokenBuckets
from vecml_async.emulator.parsing import RequestError, parse_add_data_batch, sparse_rows
from vecml_async.emulator.stats import Stats


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    "kwargs",
    [
        {"rate_limit": 0},
        {"rate_limit": -1.0},
        {"rate_limit_burst": 0},
        {"rate_limit_body": "xml"},
        {"max_body_bytes": 0},
        {"oversize_status": 200},
        {"oversize_status": 600},
        {"oversize_status": True},
        {"rate_limit_status": 302},
        {"rate_limit_retry_after": -1.0},
        {"error_status": "sometimes"},
        {"duplicate_ids": "append"},
        {"duplicate_ids_in_batch": "keep"},
        {"attribute_types": ()},
        {"attribute_types": ("string", "date")},
        {"attribute_types": "string"},
        {"sparse_formats": ("csr",)},
        {"sparse_index_base": 2},
        {"categorical_features_field": "all"},
        {"model_infos_shape": "table"},
        {"upload_delay": -0.1},
        {"training_delay": float("inf")},
        {"api_keys": frozenset()},
        {"api_keys": frozenset({""})},
        {"name_pattern": "("},
    ],
)
def test_settings_reject_invalid_values(kwargs: dict[str, object]) -> None:
    """Every invalid setting fails at construction, before any server starts."""
    with pytest.raises((ValueError, TypeError)):
        EmulatorSettings(**kwargs)  # type: ignore[arg-type]


def test_settings_bucket_capacity_defaults_to_ceil_rate() -> None:
    """The bucket holds max(1, ceil(rate)) tokens unless rate_limit_burst says otherwise."""
    assert EmulatorSettings().bucket_capacity is None
    assert EmulatorSettings(rate_limit=2.5).bucket_capacity == 3
    assert EmulatorSettings(rate_limit=0.2).bucket_capacity == 1
    assert EmulatorSettings(rate_limit=10, rate_limit_burst=1).bucket_capacity == 1


def test_settings_api_keys_accept_any_iterable_and_names_follow_pattern() -> None:
    """api_keys is normalised to a frozenset; names are checked against name_pattern."""
    settings = EmulatorSettings(api_keys=["a", "b"])  # type: ignore[arg-type]
    assert settings.api_keys == frozenset({"a", "b"})
    assert settings.key_ok("a")
    assert not settings.key_ok("c")
    assert not settings.key_ok("")
    assert settings.name_ok("AutoML-Demo")
    assert not settings.name_ok("bad name")
    assert not settings.name_ok("x" * 129)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"error_500": 1.5},
        {"error_500": 0.6, "error_503": 0.6},
        {"latency": -1.0},
        {"rate_limit_burst_length": 0},
        {"schedule": {0: "error_500"}},
        {"schedule": {1: "explode"}},
    ],
)
def test_fault_config_rejects_invalid_values(kwargs: dict[str, object]) -> None:
    """Fault probabilities, durations and schedules are validated at construction."""
    with pytest.raises((ValueError, TypeError)):
        FaultConfig(**kwargs)  # type: ignore[arg-type]


def test_fault_injector_is_reproducible_from_its_seed() -> None:
    """Two injectors with the same seed make the same decisions; reset replays them."""
    config = FaultConfig(seed=7, error_500=0.3, drop_before_apply=0.2, latency_jitter=0.01)
    first = [FaultInjector(config).decide("init") for _ in range(1)]
    a, b = FaultInjector(config), FaultInjector(config)
    seq_a = [a.decide("init") for _ in range(50)]
    seq_b = [b.decide("init") for _ in range(50)]
    assert seq_a == seq_b
    assert {d.kind for d in seq_a} >= {"error_500", "drop_before_apply"}
    a.reset()
    assert [a.decide("init") for _ in range(50)] == seq_a
    assert first[0] == seq_a[0]


def test_fault_schedule_and_endpoint_filter() -> None:
    """A schedule pins faults to request numbers counted over eligible endpoints only."""
    config = FaultConfig(
        schedule={2: "error_503", 3: "rate_limit"}, endpoints=frozenset({"add_data_batch"})
    )
    injector = FaultInjector(config)
    assert injector.decide("init").kind is None  # not eligible, not counted
    kinds = [injector.decide("add_data_batch").kind for _ in range(4)]
    assert kinds == [None, "error_503", "rate_limit", None]


def test_fault_burst_answers_consecutive_requests() -> None:
    """A rate-limit burst covers rate_limit_burst_length consecutive requests."""
    injector = FaultInjector(FaultConfig(rate_limit_burst_prob=1.0, rate_limit_burst_length=3))
    assert [injector.decide("init").kind for _ in range(3)] == ["rate_limit"] * 3


def test_token_bucket_refills_at_rate() -> None:
    """A bucket of capacity 2 at 1 call/s allows 2 at once, then 1 per second, per key."""
    clock = FakeClock()
    buckets = TokenBuckets(1.0, 2, clock)
    assert [buckets.allow("k") for _ in range(3)] == [True, True, False]
    assert buckets.allow("other")
    clock.now += 0.5
    assert not buckets.allow("k")
    clock.now += 0.5
    assert buckets.allow("k")
    assert not buckets.allow("k")


def test_stats_max_in_window_uses_half_open_windows() -> None:
    """max_in_window counts arrivals in any [t, t+window) interval, per tenant if asked."""
    clock = FakeClock()
    stats = Stats(clock)
    for offset, fp in [(0.0, "a"), (0.5, "b"), (0.9, "a"), (1.0, "a"), (1.5, "a"), (1.95, "a")]:
        clock.now = 100.0 + offset
        stats.identify(stats.arrival("init"), "init", fp)
    assert stats.max_in_window(1.0) == 3
    assert stats.max_in_window(1.0, "a") == 3  # 0.9, 1.0, 1.5 (and 1.0, 1.5, 1.95)
    assert stats.max_in_window(1.0, "b") == 1
    assert stats.snapshot("a")["requests"] == {"init": 5}


def test_parse_add_data_batch_builds_float32_matrix() -> None:
    """The hot path returns a float32 (n, dim) matrix, the ids and the attribute dicts."""
    body = orjson.dumps(
        {
            "user_api_key": "k",
            "data": [[1, 2.5], [3, -4]],
            "string_ids": ["a", "b"],
            "attributes": [{"label": "1"}, {}],
        }
    )
    batch = parse_add_data_batch(body, vector_dim=2)
    assert batch.dense is not None
    assert batch.dense.dtype == np.float32
    np.testing.assert_array_equal(batch.dense, [[1, 2.5], [3, -4]])
    assert batch.ids == ["a", "b"]
    assert batch.attributes == [{"label": "1"}, {}]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        ([[1, 2], [3]], "data[1] has 1 values"),
        ([[1, None]], "data[0][1] must be a number, got null"),
        ([[1, "2"]], "data[0][1] must be a number, got string"),
        ([[1, True]], "data[0][1] must be a number, got boolean"),
        ([[1, 1e39]], "data[0][1] is not a finite float32"),
        ([[1, [2]]], "data[0][1] must be a number, got array"),
        ([{"0": 1}], "data[0] must be an array"),
        ([], "at least one vector"),
        ({"a": 1}, "must be an array of vectors"),
    ],
)
def test_dense_parse_names_the_bad_element(data: object, fragment: str) -> None:
    """Ragged rows, nulls, strings, booleans and overflow are refused with their position."""
    body = orjson.dumps({"data": data})
    with pytest.raises(RequestError) as info:
        parse_add_data_batch(body, vector_dim=2)
    assert info.value.status == 400
    assert fragment in info.value.message


def test_sparse_encodings_all_parse_to_the_same_row() -> None:
    """[[i, v]], {"i": v}, {"indices", "values"} and "i:v" strings give sorted equal rows."""
    rows = sparse_rows(
        [
            [[5, 0.5], [1, 2.0]],
            {"5": 0.5, "1": 2.0},
            {"indices": [5, 1], "values": [0.5, 2.0]},
            "5:0.5 1:2",
        ],
        dim=10,
    )
    for indices, values in rows:
        assert indices.tolist() == [1, 5]
        assert values.tolist() == [2.0, 0.5]


@pytest.mark.parametrize(
    "row", [[[10, 1.0]], {"-1": 1.0}, "3", [[1, 1.0], [1, 2.0]], {"indices": [1], "values": []}]
)
def test_sparse_parse_refuses_bad_rows(row: object) -> None:
    """Out-of-range, negative, repeated or malformed sparse entries are refused."""
    with pytest.raises(RequestError):
        sparse_rows([row], dim=10)


def test_settings_survive_the_command_line_round_trip() -> None:
    """settings_to_argv and the option parser rebuild equal settings (for spawn)."""
    settings = EmulatorSettings(
        rate_limit=2.5,
        rate_limit_burst=4,
        rate_limit_body="json",
        rate_limit_status=429,
        rate_limit_retry_after=1.5,
        oversize_status=400,
        error_status="ok",
        duplicate_ids="reject",
        duplicate_ids_in_batch="ignore",
        attribute_types=("string", "boolean"),
        sparse_formats=("dict", "libsvm"),
        sparse_index_base=1,
        categorical_features_field="train_categorical_features",
        model_infos_shape="dict",
        allow_auto_training_mode=True,
        allow_missing_has_field_names=True,
        observed_endpoints=False,
        api_keys=frozenset({"k1", "k2"}),
        upload_delay=0.25,
        sink=True,
        data_dir=Path("/tmp/vecml-emulator-roundtrip"),
        name_pattern=r"^[a-z]+$",
        max_reading_bytes=1_000_000,
        header_timeout=2.5,
        body_timeout=7.0,
        max_header_bytes=4096,
        faults=FaultConfig(
            seed=3,
            error_503=0.1,
            latency=0.01,
            endpoints=frozenset({"init", "add_data_batch"}),
            schedule={2: "drop_after_apply"},
        ),
    )
    args = build_parser().parse_args(settings_to_argv(settings))
    assert all("k1" not in arg for arg in settings_to_argv(settings))
    assert settings_from_args(args, api_keys_env(settings)) == settings
    assert "k1" not in repr(settings)


@pytest.mark.parametrize(
    "options",
    [
        {"max_reading_bytes": 0},
        {"max_header_bytes": True},
        {"header_timeout": 0},
        {"body_timeout": -1.0},
        {"body_timeout": float("inf")},
    ],
)
def test_abuse_limits_refuse_bad_values(options: dict[str, object]) -> None:
    """The abuse limits must be positive (an emulator without them would be unprotected)."""
    with pytest.raises(ValueError):
        EmulatorSettings(**options)  # type: ignore[arg-type]
