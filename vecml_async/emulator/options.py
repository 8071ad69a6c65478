"""The emulator's command-line options: the parser, and settings to options and back.

:func:`build_parser` makes the option parser (argparse, no extra dependency, reusable by a
wrapping CLI under its own ``prog``; defined in :mod:`~vecml_async.emulator._parser`, one
function per group of options); :func:`settings_from_args` builds the settings from
parsed options (``--profile`` first, then any option given); :func:`settings_to_argv` is
their inverse, so settings survive the trip to a child process unchanged. Accepted API keys
travel in ``VECML_EMULATOR_API_KEYS`` (one per line, :func:`api_keys_env`) rather than on the
command line, where any local user could read them.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from vecml_async.emulator._parser import API_KEYS_ENV, FAULT_PROBS, PROG, build_parser
from vecml_async.emulator.faults import FaultConfig
from vecml_async.emulator.settings import EmulatorSettings

__all__ = [
    "API_KEYS_ENV",
    "PROG",
    "URL_LINE_PREFIX",
    "api_keys_env",
    "build_parser",
    "settings_from_args",
    "settings_to_argv",
]

URL_LINE_PREFIX = "VECML_EMULATOR_URL "


def settings_from_args(
    args: argparse.Namespace, environ: Mapping[str, str] | None = None
) -> EmulatorSettings:
    """Settings from parsed options and ``VECML_EMULATOR_API_KEYS`` (ValueError if invalid)."""
    env_keys = (os.environ if environ is None else environ).get(API_KEYS_ENV, "").split("\n")
    keys = [k for k in (args.api_keys or []) + env_keys if k]
    faults = FaultConfig(
        seed=args.fault_seed,
        latency=args.latency,
        latency_jitter=args.latency_jitter,
        rate_limit_burst_prob=args.rate_limit_burst_prob,
        rate_limit_burst_length=args.rate_limit_burst_length,
        endpoints=frozenset(args.fault_endpoints.split(",")) if args.fault_endpoints else None,
        schedule=args.fault_schedule,
        **{kind: getattr(args, kind) for kind in FAULT_PROBS},
    )
    extra: dict[str, Any] = {}
    if args.name_pattern is not None:
        extra["name_pattern"] = args.name_pattern
    if args.data_dir is not None:
        extra["data_dir"] = args.data_dir
    settings = EmulatorSettings(
        rate_limit=args.rate_limit,
        rate_limit_burst=args.rate_limit_burst,
        rate_limit_body=args.rate_limit_body,
        rate_limit_status=args.rate_limit_status,
        rate_limit_retry_after=args.rate_limit_retry_after,
        max_body_bytes=args.max_body_bytes,
        oversize_status=args.oversize_status,
        error_status=args.error_status,
        duplicate_ids=args.duplicate_ids,
        duplicate_ids_in_batch=args.duplicate_ids_in_batch,
        attribute_types=args.attribute_types,
        sparse_formats=args.sparse_formats,
        sparse_index_base=args.sparse_index_base,
        categorical_features_field=args.categorical_features_field,
        model_infos_shape=args.model_infos_shape,
        allow_auto_training_mode=args.allow_auto_training_mode,
        allow_missing_has_field_names=args.allow_missing_has_field_names,
        observed_endpoints=not args.no_observed_endpoints,
        api_keys=frozenset(keys) if keys else None,
        upload_delay=args.upload_delay,
        training_delay=args.training_delay,
        sink=args.sink,
        faults=faults,
        max_reading_bytes=args.max_reading_bytes,
        header_timeout=args.header_timeout,
        body_timeout=args.body_timeout,
        max_header_bytes=args.max_header_bytes,
        **extra,
    )
    return _with_profile(settings, args.profile) if args.profile else settings


def _with_profile(settings: EmulatorSettings, path: str) -> EmulatorSettings:
    """``settings`` where the profile at ``path`` determines what was left at its default
    (an option given on the command line wins over the profile)."""
    try:
        profiled = EmulatorSettings.from_profile(path)
    except OSError as err:
        raise ValueError(f"cannot read the profile {path}: {err.strerror or err}") from None
    defaults = EmulatorSettings()
    changes = {
        f.name: getattr(profiled, f.name)
        for f in dataclasses.fields(EmulatorSettings)
        if f.init
        and getattr(profiled, f.name) != getattr(defaults, f.name)
        and getattr(settings, f.name) == getattr(defaults, f.name)
    }
    return dataclasses.replace(settings, **changes)


def settings_to_argv(settings: EmulatorSettings) -> list[str]:
    """Options that make :func:`settings_from_args` rebuild ``settings`` exactly, except the
    API keys: pass those in ``VECML_EMULATOR_API_KEYS`` (see :func:`api_keys_env`)."""
    s, f = settings, settings.faults
    argv = [
        f"--rate-limit-body={s.rate_limit_body}",
        f"--rate-limit-status={s.rate_limit_status}",
        f"--max-body-bytes={s.max_body_bytes}",
        f"--oversize-status={s.oversize_status}",
        f"--error-status={s.error_status}",
        f"--duplicate-ids={s.duplicate_ids}",
        f"--attribute-types={','.join(s.attribute_types)}",
        f"--sparse-formats={','.join(s.sparse_formats)}",
        f"--sparse-index-base={s.sparse_index_base}",
        f"--categorical-features-field={s.categorical_features_field}",
        f"--model-infos-shape={s.model_infos_shape}",
        f"--upload-delay={s.upload_delay!r}",
        f"--training-delay={s.training_delay!r}",
        f"--name-pattern={s.name_pattern}",
        f"--max-reading-bytes={s.max_reading_bytes}",
        f"--header-timeout={s.header_timeout!r}",
        f"--body-timeout={s.body_timeout!r}",
        f"--max-header-bytes={s.max_header_bytes}",
        f"--fault-seed={f.seed}",
        f"--latency={f.latency!r}",
        f"--latency-jitter={f.latency_jitter!r}",
        f"--rate-limit-burst-prob={f.rate_limit_burst_prob!r}",
        f"--rate-limit-burst-length={f.rate_limit_burst_length}",
    ]
    argv += [f"--{k.replace('_', '-')}={getattr(f, k)!r}" for k in FAULT_PROBS]
    if s.rate_limit is not None:
        argv.append(f"--rate-limit={s.rate_limit!r}")
    if s.rate_limit_burst is not None:
        argv.append(f"--rate-limit-burst={s.rate_limit_burst}")
    if s.rate_limit_retry_after is not None:
        argv.append(f"--rate-limit-retry-after={s.rate_limit_retry_after!r}")
    if s.duplicate_ids_in_batch is not None:
        argv.append(f"--duplicate-ids-in-batch={s.duplicate_ids_in_batch}")
    if s.allow_auto_training_mode:
        argv.append("--allow-auto-training-mode")
    if s.allow_missing_has_field_names:
        argv.append("--allow-missing-has-field-names")
    if not s.observed_endpoints:
        argv.append("--no-observed-endpoints")
    if s.sink:
        argv.append("--sink")
    if s.data_dir is not None:
        argv.append(f"--data-dir={s.data_dir}")
    if f.endpoints is not None:
        argv.append(f"--fault-endpoints={','.join(sorted(f.endpoints))}")
    if f.schedule:
        argv.append("--fault-schedule=" + ",".join(f"{n}={k}" for n, k in f.schedule.items()))
    return argv


def api_keys_env(settings: EmulatorSettings) -> dict[str, str]:
    """Environment entries that carry ``settings.api_keys`` to a child process."""
    if not settings.api_keys:
        return {}
    return {API_KEYS_ENV: "\n".join(sorted(settings.api_keys))}
