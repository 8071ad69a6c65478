"""The emulator's command-line options: the parser, and settings to options and back.

:func:`build_parser` makes the option parser (argparse, no extra dependency, reusable by a
wrapping CLI under its own ``prog``); :func:`settings_from_args` builds the settings from
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

from uvicorn.config import LOG_LEVELS

from vecml_async.emulator.faults import FAULT_KINDS, FaultConfig
from vecml_async.emulator.settings import SPARSE_FORMATS, EmulatorSettings

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
API_KEYS_ENV = "VECML_EMULATOR_API_KEYS"
#: The program name in usage and error messages, unless a wrapping CLI passes its own.
PROG = "python -m vecml_async.emulator"

_FAULT_PROBS = {
    "drop_before_apply": "chance a connection closes before the request is handled",
    "drop_after_apply": "chance a connection closes after the request is handled",
    "error_500": "chance of an HTTP 500 answer",
    "error_503": "chance of an HTTP 503 answer",
}


def _schedule(text: str) -> dict[int, str]:
    """``"3=error_500,7=drop_after_apply"`` -> ``{3: "error_500", 7: "drop_after_apply"}``."""
    out: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        number, sep, kind = item.partition("=")
        if not sep or not number.strip().isdigit() or kind.strip() not in FAULT_KINDS:
            raise argparse.ArgumentTypeError(f"bad schedule entry {item!r} (use N=KIND)")
        out[int(number)] = kind.strip()
    return out


def _names(text: str) -> tuple[str, ...]:
    """``"a, b"`` -> ``("a", "b")`` (a comma-separated list of choices)."""
    return tuple(part.strip() for part in text.split(",") if part.strip())


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    """The option parser (reusable by a wrapping CLI, under its own ``prog``)."""
    p = argparse.ArgumentParser(
        prog=prog,
        description="Run a local VecML-compatible server on loopback until Ctrl-C.",
        epilog=f"Accepted API keys can also come from {API_KEYS_ENV} (one per line), "
        "which other local users cannot read from the process list.",
    )
    p.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765); 0 picks a free one")
    p.add_argument(
        "--log-level",
        default="warning",
        type=str.lower,
        choices=tuple(LOG_LEVELS),
        help="level of the server's log on stderr (default warning)",
    )
    p.add_argument(
        "--rate-limit",
        type=float,
        metavar="CALLS",
        help="calls per second per API key (default: unlimited)",
    )
    p.add_argument(
        "--rate-limit-burst",
        type=int,
        metavar="N",
        help="token bucket capacity (default: the rate, rounded up)",
    )
    p.add_argument(
        "--rate-limit-body",
        choices=("text", "json"),
        default="text",
        help="rate-limit answer as plain text (like the cloud) or in the JSON error envelope",
    )
    p.add_argument(
        "--rate-limit-status",
        type=int,
        default=400,
        metavar="STATUS",
        help="HTTP status of the rate-limit answer (default 400, as documented)",
    )
    p.add_argument(
        "--rate-limit-retry-after",
        type=float,
        metavar="SECONDS",
        help="send Retry-After with the rate-limit answer (default: no header)",
    )
    p.add_argument(
        "--max-body-bytes",
        type=int,
        default=200_000_000,
        metavar="BYTES",
        help="largest request body accepted (default 200000000, the cloud's cap)",
    )
    p.add_argument(
        "--oversize-status",
        type=int,
        default=413,
        metavar="STATUS",
        help="HTTP status of an over-cap body (default 413; 400 is the other usual one)",
    )
    p.add_argument(
        "--error-status",
        choices=("http", "ok"),
        default="http",
        help="send refusals with 4xx statuses, or HTTP 200 with the error envelope",
    )
    p.add_argument(
        "--duplicate-ids",
        choices=("overwrite", "reject", "ignore"),
        default="overwrite",
        help="a row whose id exists replaces it, refuses the whole batch, or is dropped",
    )
    p.add_argument(
        "--duplicate-ids-in-batch",
        choices=("overwrite", "reject", "ignore"),
        help="the same for an id repeated within a batch (default: as --duplicate-ids)",
    )
    p.add_argument(
        "--attribute-types",
        type=_names,
        default=("string",),
        metavar="TYPES",
        help="attribute values accepted, among string,number,boolean (default string)",
    )
    p.add_argument(
        "--sparse-formats",
        type=_names,
        default=SPARSE_FORMATS,
        metavar="FORMS",
        help=f"sparse vector forms accepted (default {','.join(SPARSE_FORMATS)})",
    )
    p.add_argument(
        "--sparse-index-base",
        type=int,
        choices=(0, 1),
        default=0,
        help="index of a sparse vector's first dimension (default 0)",
    )
    p.add_argument(
        "--categorical-features-field",
        choices=("both", "categorical_features", "train_categorical_features", "neither"),
        default="both",
        help="training field(s) naming categorical features (default both)",
    )
    p.add_argument(
        "--model-infos-shape",
        choices=("list", "dict"),
        default="list",
        help="model listing entries as positional lists (documented) or objects",
    )
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="behave like a probed server: a profile from 'vecml-async probe --json' "
        "(options given here still apply)",
    )
    p.add_argument(
        "--allow-auto-training-mode",
        action="store_true",
        help="accept training_mode 'auto' (undocumented; refused by default)",
    )
    p.add_argument(
        "--allow-missing-has-field-names",
        action="store_true",
        help="accept csv files without has_field_names (required by the docs)",
    )
    p.add_argument(
        "--no-observed-endpoints",
        action="store_true",
        help="do not serve the undocumented AutoML endpoints third-party clients call",
    )
    p.add_argument(
        "--api-key",
        action="append",
        dest="api_keys",
        metavar="KEY",
        help="accepted key (repeat; default: any non-empty key)",
    )
    p.add_argument(
        "--upload-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="time an upload job waits before it applies its rows",
    )
    p.add_argument(
        "--training-delay",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="time a training job stays pending",
    )
    p.add_argument("--sink", action="store_true", help="add_data_batch only counts bytes")
    p.add_argument(
        "--name-pattern",
        metavar="REGEX",
        help="pattern every project, collection and model name must match",
    )
    p.add_argument(
        "--data-dir", metavar="DIR", help="save the data here on exit and load it on start"
    )
    g = p.add_argument_group("protection against abusive clients")
    g.add_argument(
        "--max-reading-bytes",
        type=int,
        default=512 * 1024 * 1024,
        metavar="BYTES",
        help="bytes all bodies being read may hold together; past it 503 (default 512 MiB)",
    )
    g.add_argument(
        "--header-timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="time to send a request head (default 10)",
    )
    g.add_argument(
        "--body-timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="time to send a request body (default 60)",
    )
    g.add_argument(
        "--max-header-bytes",
        type=int,
        default=64 * 1024,
        metavar="BYTES",
        help="largest request head (default 65536)",
    )
    f = p.add_argument_group("fault injection (probabilities are per request)")
    f.add_argument(
        "--fault-seed", type=int, default=0, metavar="SEED", help="seed of the fault sequence"
    )
    for kind, text in _FAULT_PROBS.items():
        f.add_argument(
            f"--{kind.replace('_', '-')}", type=float, default=0.0, metavar="P", help=text
        )
    f.add_argument(
        "--latency", type=float, default=0.0, metavar="SECONDS", help="delay of every answer"
    )
    f.add_argument(
        "--latency-jitter",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="extra random delay, up to this",
    )
    f.add_argument(
        "--rate-limit-burst-prob",
        type=float,
        default=0.0,
        metavar="P",
        help="chance a burst of rate-limit answers starts",
    )
    f.add_argument(
        "--rate-limit-burst-length",
        type=int,
        default=5,
        metavar="N",
        help="requests answered by one burst",
    )
    f.add_argument(
        "--fault-endpoints", metavar="NAMES", help="comma-separated endpoints (default: all)"
    )
    f.add_argument(
        "--fault-schedule",
        type=_schedule,
        default={},
        metavar="N=KIND,...",
        help=f"faults at given request numbers; KIND: {', '.join(FAULT_KINDS)}",
    )
    return p


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
        **{kind: getattr(args, kind) for kind in _FAULT_PROBS},
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
    argv += [f"--{k.replace('_', '-')}={getattr(f, k)!r}" for k in _FAULT_PROBS]
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
