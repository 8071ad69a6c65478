"""The emulator's option parser, one function per group of options.

The options appear in ``--help`` in the order the groups are added. The way from parsed
options to settings and back is in :mod:`~vecml_async.emulator.options`, which re-exports
:func:`build_parser`.
"""

from __future__ import annotations

import argparse

from uvicorn.config import LOG_LEVELS

from vecml_async.emulator.faults import FAULT_KINDS
from vecml_async.emulator.settings import SPARSE_FORMATS

__all__ = ["API_KEYS_ENV", "FAULT_PROBS", "PROG", "build_parser"]

API_KEYS_ENV = "VECML_EMULATOR_API_KEYS"
#: The program name in usage and error messages, unless a wrapping CLI passes its own.
PROG = "python -m vecml_async.emulator"

#: The fault chances, one option each (``--drop-before-apply`` ...), with their help texts.
FAULT_PROBS = {
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
    # The order of these calls is the order of the options in --help.
    _add_server_options(p)
    _add_rate_limit_options(p)
    _add_body_options(p)
    _add_data_rule_options(p)
    _add_compatibility_options(p)
    _add_job_options(p)
    _add_protection_options(p)
    _add_fault_options(p)
    return p


def _add_server_options(p: argparse.ArgumentParser) -> None:
    """Where the server listens, and how much it logs."""
    p.add_argument("--host", default="127.0.0.1", help="loopback address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8765, help="port (default 8765); 0 picks a free one")
    p.add_argument(
        "--log-level",
        default="warning",
        type=str.lower,
        choices=tuple(LOG_LEVELS),
        help="level of the server's log on stderr (default warning)",
    )


def _add_rate_limit_options(p: argparse.ArgumentParser) -> None:
    """The rate limit per API key, and the shape of its answer."""
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


def _add_body_options(p: argparse.ArgumentParser) -> None:
    """The cap on a request body, and the statuses of refusals."""
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


def _add_data_rule_options(p: argparse.ArgumentParser) -> None:
    """What rows and training requests may hold, and how models are listed."""
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


def _add_compatibility_options(p: argparse.ArgumentParser) -> None:
    """A probed server's profile, and the undocumented behaviours to allow or turn off."""
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


def _add_job_options(p: argparse.ArgumentParser) -> None:
    """Accepted keys, how long jobs take, names, and where the data is kept."""
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


def _add_protection_options(p: argparse.ArgumentParser) -> None:
    """Bounds on what one client can make the server hold or wait for."""
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


def _add_fault_options(p: argparse.ArgumentParser) -> None:
    """Injected faults: their seed, chances, delays, endpoints and schedule."""
    f = p.add_argument_group("fault injection (probabilities are per request)")
    f.add_argument(
        "--fault-seed", type=int, default=0, metavar="SEED", help="seed of the fault sequence"
    )
    for kind, text in FAULT_PROBS.items():
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
