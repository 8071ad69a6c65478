"""Settings of the local VecML-compatible server.

:class:`EmulatorSettings` is a frozen dataclass validated at construction: a bad value raises
``ValueError`` (or ``TypeError`` for a wrong type) before any server starts, so a typo in a
test fixture fails loudly instead of silently running a permissive server.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from vecml_async.emulator.faults import FaultConfig

__all__ = ["DEFAULT_NAME_PATTERN", "RATE_LIMIT_TEXT", "SPARSE_DEFAULT_DIM", "EmulatorSettings"]

#: The exact text the cloud sends when a caller goes over its rate limit.
RATE_LIMIT_TEXT = "Request limit reached, please try again later"
#: Project, collection and model names the emulator accepts unless told otherwise.
DEFAULT_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
#: Dimension of a sparse collection created without ``vector_dim`` (the old VecML client's 2**21).
SPARSE_DEFAULT_DIM = 2**21


def _check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices!r}, got {value!r}")


def _check_seconds(name: str, value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a number of seconds")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be finite and >= 0, got {value!r}")


@dataclass(frozen=True)
class EmulatorSettings:
    """How the emulator behaves. The defaults are a fast server that follows what VecML
    documents; each leniency is a setting that is off by default.

    Attributes:
        rate_limit: calls per second allowed per API key (token bucket); ``None`` = unlimited.
        rate_limit_burst: bucket capacity; ``None`` = ``max(1, ceil(rate_limit))``.
        rate_limit_body: ``"text"`` sends the rate-limit answer as plain text, ``"json"`` wraps
            the same text in the error envelope.
        max_body_bytes: largest request body accepted, in bytes (the cloud's "200MB").
        oversize_status: HTTP status of an over-cap body, 413 or 400.
        error_status: ``"http"`` sends 4xx statuses with the error envelope; ``"ok"`` sends
            HTTP 200 with the envelope (the rate-limit and oversize answers keep their status).
        duplicate_ids: ``"overwrite"`` upserts a row whose id exists; ``"reject"`` refuses the
            whole batch with 400 naming the id.
        allow_auto_training_mode: accept ``training_mode="auto"`` (trained as ``"balanced"``);
            it appears in one VecML example request but not in the documented list, so it is
            refused by default.
        allow_missing_has_field_names: accept a csv file without ``has_field_names`` (taken
            as ``true``); the documentation requires the field for csv, so by default such a
            request is refused.
        observed_endpoints: serve ``/upload_automl_X``, ``/attach_automl_label`` and
            ``/get_feature_importance``, endpoints VecML does not document but real clients
            call (``False``: they are unknown endpoints, 404).
        api_keys: the keys accepted; ``None`` accepts any non-empty string.
        upload_delay: seconds an upload job waits before it applies its rows.
        training_delay: seconds a training job stays ``pending`` before it starts.
        sink: ``add_data_batch`` only reads and counts the body (no parse, no storage, no
            auth) and answers with a job that is already finished; for measuring a client.
        faults: injected failures, a :class:`~vecml_async.emulator.faults.FaultConfig` or a
            dict of its fields (``{"error_500": 0.1}``).
        name_pattern: regular expression every project, collection and model name must match.
        data_dir: directory where the data is saved when a server stops and loaded from when
            an emulator is created (see :mod:`~vecml_async.emulator.persist`); ``None`` keeps
            everything in memory only.
        max_reading_bytes: bytes all request bodies being read may hold together; a body
            that would pass it is refused with 503 and ``Retry-After`` (a body read alone is
            always allowed up to ``max_body_bytes``).
        header_timeout: seconds a connection has to send a request head once it starts one
            (or once it opens); slower connections are closed.
        body_timeout: seconds a request has to send its whole body once its head is in;
            slower requests get 408 and their connection is closed.
        max_header_bytes: bytes of request line and headers accepted; a longer head closes
            the connection.
    """

    rate_limit: float | None = None
    rate_limit_burst: int | None = None
    rate_limit_body: Literal["text", "json"] = "text"
    max_body_bytes: int = 200_000_000
    oversize_status: Literal[413, 400] = 413
    error_status: Literal["http", "ok"] = "http"
    duplicate_ids: Literal["overwrite", "reject"] = "overwrite"
    allow_auto_training_mode: bool = False
    allow_missing_has_field_names: bool = False
    observed_endpoints: bool = True
    api_keys: frozenset[str] | None = field(default=None, repr=False)  # keys stay out of logs
    upload_delay: float = 0.0
    training_delay: float = 0.0
    sink: bool = False
    faults: FaultConfig = field(default_factory=FaultConfig)
    name_pattern: str = DEFAULT_NAME_PATTERN
    data_dir: Path | None = None
    max_reading_bytes: int = 512 * 1024 * 1024
    header_timeout: float = 10.0
    body_timeout: float = 60.0
    max_header_bytes: int = 64 * 1024
    _name_re: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if self.rate_limit is not None:
            _check_seconds("rate_limit", self.rate_limit)
            if self.rate_limit <= 0:
                raise ValueError("rate_limit must be > 0 (use None for unlimited)")
        if self.rate_limit_burst is not None and (
            isinstance(self.rate_limit_burst, bool)
            or not isinstance(self.rate_limit_burst, int)
            or self.rate_limit_burst < 1
        ):
            raise ValueError("rate_limit_burst must be an int >= 1 or None")
        _check_choice("rate_limit_body", self.rate_limit_body, ("text", "json"))
        for name in ("max_body_bytes", "max_reading_bytes", "max_header_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be an int >= 1")
        for name in ("header_timeout", "body_timeout"):
            _check_seconds(name, getattr(self, name))
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        _check_choice("oversize_status", self.oversize_status, (413, 400))
        _check_choice("error_status", self.error_status, ("http", "ok"))
        _check_choice("duplicate_ids", self.duplicate_ids, ("overwrite", "reject"))
        _check_seconds("upload_delay", self.upload_delay)
        _check_seconds("training_delay", self.training_delay)
        if isinstance(self.faults, Mapping):
            object.__setattr__(self, "faults", FaultConfig(**self.faults))
        if not isinstance(self.faults, FaultConfig):
            raise TypeError("faults must be a FaultConfig or a dict of its fields")
        if self.api_keys is not None:
            keys = self.api_keys
            if isinstance(keys, str) or not isinstance(keys, Iterable):
                raise TypeError("api_keys must be a collection of strings or None")
            frozen = frozenset(keys)
            if not frozen or any(not isinstance(k, str) or not k for k in frozen):
                raise ValueError("api_keys must hold at least one non-empty string")
            object.__setattr__(self, "api_keys", frozen)
        if self.data_dir is not None:
            if not isinstance(self.data_dir, (str, Path)):
                raise TypeError("data_dir must be a path or None")
            path = Path(self.data_dir)
            if path.exists() and not path.is_dir():
                raise ValueError(f"data_dir {path} exists and is not a directory")
            object.__setattr__(self, "data_dir", path)
        try:
            compiled = re.compile(self.name_pattern)
        except (re.error, TypeError) as err:
            raise ValueError(f"name_pattern is not a valid regular expression: {err}") from None
        object.__setattr__(self, "_name_re", compiled)

    @property
    def bucket_capacity(self) -> int | None:
        """Token-bucket capacity in force, or ``None`` when there is no rate limit."""
        if self.rate_limit is None:
            return None
        if self.rate_limit_burst is not None:
            return self.rate_limit_burst
        return max(1, math.ceil(self.rate_limit))

    def name_ok(self, name: str) -> bool:
        """True when ``name`` is an acceptable project, collection or model name."""
        return self._name_re.fullmatch(name) is not None

    def key_ok(self, key: object) -> bool:
        """True when ``key`` authenticates: a non-empty string, in ``api_keys`` when set."""
        if not isinstance(key, str) or not key:
            return False
        return self.api_keys is None or key in self.api_keys
