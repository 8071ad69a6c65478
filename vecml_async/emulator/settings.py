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
from typing import TYPE_CHECKING, Any, Literal

from vecml_async.emulator.faults import FaultConfig

if TYPE_CHECKING:
    from vecml_async.probe.profile import ServerProfile

__all__ = [
    "ATTRIBUTE_TYPES",
    "DEFAULT_NAME_PATTERN",
    "RATE_LIMIT_TEXT",
    "SPARSE_DEFAULT_DIM",
    "SPARSE_FORMATS",
    "EmulatorSettings",
]

#: The exact text the cloud sends when a caller goes over its rate limit.
RATE_LIMIT_TEXT = "Request limit reached, please try again later"
#: Project, collection and model names the emulator accepts unless told otherwise.
DEFAULT_NAME_PATTERN = r"^[A-Za-z0-9_-]{1,128}$"
#: Dimension of a sparse collection created without ``vector_dim`` (the old VecML client's 2**21).
SPARSE_DEFAULT_DIM = 2**21
#: The JSON forms of a sparse vector: ``[[i, v], ...]``, ``{"i": v}``,
#: ``{"indices": [...], "values": [...]}`` and ``"i:v i:v"``.
SPARSE_FORMATS = ("pairs", "dict", "indices_values", "libsvm")
#: The kinds of attribute value: JSON strings, numbers and booleans.
ATTRIBUTE_TYPES = ("string", "number", "boolean")
DuplicateIds = Literal["overwrite", "reject", "ignore"]
_DUPLICATE_CHOICES = ("overwrite", "reject", "ignore")
_CATEGORICAL_CHOICES = ("both", "categorical_features", "train_categorical_features", "neither")


def _check_choice(name: str, value: object, choices: tuple[object, ...]) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices!r}, got {value!r}")


def _subset(name: str, value: object, choices: tuple[str, ...]) -> tuple[str, ...]:
    """A non-empty selection of ``choices``, in their order (a set or any iterable given)."""
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(f"{name} must be a collection of {', '.join(choices)}")
    chosen = set(value)
    unknown = chosen - set(choices)
    if unknown or not chosen:
        raise ValueError(
            f"{name} must hold one or more of {choices!r}, got {sorted(map(str, chosen))!r}"
        )
    return tuple(c for c in choices if c in chosen)


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
        rate_limit_status: HTTP status of the rate-limit answer (400, as documented; 429 and
            other 4xx/5xx statuses for servers that differ).
        rate_limit_retry_after: seconds sent in a ``Retry-After`` header with the rate-limit
            answer; ``None`` sends no such header (as documented).
        max_body_bytes: largest request body accepted, in bytes (the cloud's "200MB").
        oversize_status: HTTP status of an over-cap body (413 by default; 400 or any other
            4xx/5xx status).
        error_status: ``"http"`` sends 4xx statuses with the error envelope; ``"ok"`` sends
            HTTP 200 with the envelope (the rate-limit and oversize answers keep their status).
        duplicate_ids: a row whose id is already stored (or waiting in an accepted batch):
            ``"overwrite"`` upserts it; ``"reject"`` refuses the whole batch with 400 naming
            the ids; ``"ignore"`` keeps the stored row and drops the new one silently.
        duplicate_ids_in_batch: the same choice for an id repeated within one batch
            (``"overwrite"``: the last row wins, ``"ignore"``: the first); ``None`` follows
            ``duplicate_ids``.
        attribute_types: the kinds of attribute value accepted among ``"string"``,
            ``"number"`` and ``"boolean"`` (documented: strings); accepted numbers and
            booleans are stored as text (``3``, ``0.5``, ``true``).
        sparse_formats: the JSON forms of a sparse vector accepted, among ``"pairs"``,
            ``"dict"``, ``"indices_values"`` and ``"libsvm"`` (all, by default).
        sparse_index_base: the index of a sparse vector's first dimension, 0 or 1.
        categorical_features_field: which field of ``/train_automl_model`` names the
            categorical features: ``"both"`` (the documented ``categorical_features``, else
            the observed ``train_categorical_features``), one of the two only, or
            ``"neither"`` (both ignored).
        model_infos_shape: entries of ``/list_automl_model_infos`` as the documented
            positional lists (``"list"``) or as objects with named fields (``"dict"``).
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
    rate_limit_status: int = 400
    rate_limit_retry_after: float | None = None
    max_body_bytes: int = 200_000_000
    oversize_status: int = 413
    error_status: Literal["http", "ok"] = "http"
    duplicate_ids: DuplicateIds = "overwrite"
    duplicate_ids_in_batch: DuplicateIds | None = None
    attribute_types: tuple[str, ...] = ("string",)
    sparse_formats: tuple[str, ...] = SPARSE_FORMATS
    sparse_index_base: Literal[0, 1] = 0
    categorical_features_field: Literal[
        "both", "categorical_features", "train_categorical_features", "neither"
    ] = "both"
    model_infos_shape: Literal["list", "dict"] = "list"
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
        self._check_server_traits()
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

    def _check_server_traits(self) -> None:
        """The settings a server profile can set (answers, statuses, accepted forms)."""
        for name in ("rate_limit_status", "oversize_status"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not 400 <= value <= 599:
                raise ValueError(f"{name} must be an HTTP status from 400 to 599, got {value!r}")
        if self.rate_limit_retry_after is not None:
            _check_seconds("rate_limit_retry_after", self.rate_limit_retry_after)
        _check_choice("error_status", self.error_status, ("http", "ok"))
        _check_choice("duplicate_ids", self.duplicate_ids, _DUPLICATE_CHOICES)
        if self.duplicate_ids_in_batch is not None:
            _check_choice("duplicate_ids_in_batch", self.duplicate_ids_in_batch, _DUPLICATE_CHOICES)
        types = _subset("attribute_types", self.attribute_types, ATTRIBUTE_TYPES)
        object.__setattr__(self, "attribute_types", types)
        forms = _subset("sparse_formats", self.sparse_formats, SPARSE_FORMATS)
        object.__setattr__(self, "sparse_formats", forms)
        _check_choice("sparse_index_base", self.sparse_index_base, (0, 1))
        _check_choice(
            "categorical_features_field", self.categorical_features_field, _CATEGORICAL_CHOICES
        )
        _check_choice("model_infos_shape", self.model_infos_shape, ("list", "dict"))

    @classmethod
    def from_profile(
        cls, profile: ServerProfile | Mapping[str, Any] | str | Path, **overrides: Any
    ) -> EmulatorSettings:
        """Settings that make the emulator answer as the probed server did.

        ``profile`` is a :class:`~vecml_async.probe.ServerProfile` (what ``vecml-async probe``
        produces), a mapping of its fields or the path of its JSON file. Every answer the
        profile holds becomes the matching setting; an answer it does not hold (``None``)
        keeps the default. ``overrides`` are further settings (``upload_delay=0.1``), applied
        last. Names: the emulator has one rule for projects, collections and models; a name
        any of them refused is refused.
        """
        from vecml_async.probe.profile import load_profile

        fields = _profile_settings(load_profile(profile))
        fields.update(overrides)
        return cls(**fields)

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


def _profile_settings(profile: ServerProfile) -> dict[str, Any]:
    """The settings a profile determines (see :meth:`EmulatorSettings.from_profile`)."""
    p = profile
    fields: dict[str, Any] = {
        "error_status": p.error_status,
        "duplicate_ids": p.duplicate_ids,
        "duplicate_ids_in_batch": p.duplicate_ids_in_batch,
        "attribute_types": p.attribute_types,
        "sparse_formats": p.sparse_encodings,
        "sparse_index_base": p.sparse_index_base,
        "allow_auto_training_mode": p.accepts_auto_training_mode,
        "categorical_features_field": p.categorical_features_field,
        "model_infos_shape": p.model_infos_shape,
        "rate_limit": p.calls_per_second,
        "rate_limit_body": p.rate_limit_body,
        "rate_limit_status": p.rate_limit_status,
        "rate_limit_retry_after": p.rate_limit_retry_after,
        "max_body_bytes": p.max_body_bytes,
        "oversize_status": p.oversize_status,
    }
    fields = {name: value for name, value in fields.items() if value is not None}
    for name in ("rate_limit_status", "oversize_status"):
        if not 400 <= fields.get(name, 400) <= 599:
            # An answer with HTTP 200 (an envelope): the emulator sends those with an error
            # status of its own, as error_status="ok" does for the rest.
            del fields[name]
    if p.calls_per_second is not None:
        # The probe measures the sustained rate; the burst follows the rate, as by default.
        fields["rate_limit_burst"] = max(1, math.ceil(p.calls_per_second))
    if p.names:
        fields["name_pattern"] = _name_pattern(p)
    return fields


def _name_pattern(profile: ServerProfile) -> str:
    """One name rule for every kind: a trait any kind refused is refused."""
    rules = list(profile.names.values())

    def refused(trait: str) -> bool:
        return any(getattr(rule, trait) is False for rule in rules)

    def accepted(trait: str) -> bool:
        return any(getattr(rule, trait) is True for rule in rules)

    chars = r"\w" if accepted("unicode") and not refused("unicode") else "A-Za-z0-9_"
    if not refused("hyphen"):
        chars += "-"
    if refused("length_128"):
        longest = 127  # the longest refused is 128; shorter caps were not probed
    elif accepted("length_129") and not refused("length_129"):
        longest = 255  # 129 passed; the real cap was not searched
    else:
        longest = 128
    return f"^[{chars}]{{1,{longest}}}$"
