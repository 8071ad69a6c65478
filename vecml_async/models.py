"""Pydantic v2 models of the VecML requests and responses.

Responses tolerate fields they do not know (the server may add some). Requests validate what
the documentation fixes (names, enumerations) before anything is sent; vector data of
``add_data_batch`` is validated by the encoder instead (``vecml_async._ingest.encoding``), never
float by float by pydantic.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal, get_args

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    model_validator,
)

from vecml_async.errors import InvalidInputError

NAME_PATTERN = re.compile(r"^[A-Za-z0-9_-]+$")
MAX_NAME_LENGTH = 128

#: The documented training modes.
DocumentedTrainingMode = Literal["high_speed", "balanced", "high_accuracy"]
#: Every training mode a request may carry: the documented ones, and ``"auto"``, which appears
#: in one VecML example request but not in the documented list (refused unless allowed).
TrainingMode = Literal[DocumentedTrainingMode, "auto"]
TaskType = Literal["classification", "regression"]
FileFormat = Literal["csv", "json", "libsvm", "binary"]
PredictFileFormat = Literal["csv", "json", "libsvm"]
VectorType = Literal["dense", "sparse", "dense8Bit", "dense4Bit", "dense2Bit", "dense1Bit"]
#: How a file is compressed: ``"auto"`` detects gzip from the content, ``None`` sends it plain.
CompressionType = Literal["auto", "gzip"]
#: What ``ingest`` does with a row it cannot send: stop (``"raise"``) or report it and go on.
OnInvalid = Literal["raise", "skip"]

# The runtime lists are derived from the Literal types: one definition of each.
TRAINING_MODES: tuple[str, ...] = get_args(DocumentedTrainingMode)
ALL_TRAINING_MODES: tuple[str, ...] = get_args(TrainingMode)
TASK_TYPES: tuple[str, ...] = get_args(TaskType)
FILE_FORMATS: tuple[str, ...] = get_args(FileFormat)
PREDICT_FILE_FORMATS: tuple[str, ...] = get_args(PredictFileFormat)
VECTOR_TYPES: tuple[str, ...] = get_args(VectorType)
ON_INVALID: tuple[str, ...] = get_args(OnInvalid)
#: The documented job statuses (compared without regard to letter case).
JOB_STATUSES: tuple[str, ...] = ("pending", "in_progress", "finished", "failed")


def check_name(value: object, field: str) -> str:
    """A project, collection or model name: 1 to 128 letters, digits, ``_`` or ``-``.

    VecML documents "max 128 characters, no special characters" for model names; the official
    examples use letters, digits, ``_`` and ``-`` (``AutoML-Demo``). The same rule is applied to
    project and collection names, whose rules are not documented.
    """
    if not isinstance(value, str):
        raise InvalidInputError(f"must be a string, got {type(value).__name__}", field=field)
    if not value:
        raise InvalidInputError("must not be empty", field=field)
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            f"is {len(value)} characters long; at most {MAX_NAME_LENGTH} are allowed", field=field
        )
    if not NAME_PATTERN.fullmatch(value):  # not .match: '$' also matches before a final '\n'
        bad = sorted({c for c in value if not (c.isascii() and (c.isalnum() or c in "_-"))})
        raise InvalidInputError(
            f"{value!r} contains {''.join(bad)!r}; use only letters, digits, '_' and '-'",
            field=field,
        )
    return value


def check_choice(value: object, choices: tuple[str, ...], field: str) -> str:
    """``value`` if it is one of ``choices``, else an :class:`InvalidInputError`."""
    if not isinstance(value, str) or value not in choices:
        raise InvalidInputError(
            f"{value!r} is not one of {', '.join(repr(c) for c in choices)}", field=field
        )
    return value


def _name(field: str) -> Any:
    return AfterValidator(lambda v: check_name(v, field))


ProjectName = Annotated[str, _name("project_name")]
CollectionName = Annotated[str, _name("collection_name")]
ModelName = Annotated[str, _name("model_name")]

# ----------------------------------------------------------------------------- requests


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    def fields(self) -> dict[str, Any]:
        """The JSON fields of the request (the key is added by the transport)."""
        return self.model_dump(exclude_none=True)


class CreateProjectRequest(_Request):
    project_name: ProjectName
    application: str = "Machine Learning"


class DeleteProjectRequest(_Request):
    project_name: ProjectName


class InitRequest(_Request):
    project_name: ProjectName
    collection_name: CollectionName
    vector_type: VectorType = "dense"
    vector_dim: Annotated[int, Field(gt=0, strict=True)] | None = None


class JobStatusRequest(_Request):
    job_id: Annotated[str, Field(min_length=1)]


class TrainRequest(_Request):
    project_name: ProjectName
    collection_name: CollectionName
    model_name: ModelName
    training_mode: TrainingMode
    task_type: TaskType
    label_attribute: Annotated[str, Field(min_length=1)]
    categorical_features: list[str] | None = None
    validation_dataset: Annotated[str, _name("validation_dataset")] | None = None


class ModelRequest(_Request):
    """Body of ``delete_automl_model`` and ``get_model_validation_metric``."""

    project_name: ProjectName
    collection_name: CollectionName
    model_name: ModelName


class CollectionRequest(_Request):
    """Body of ``list_automl_model_infos``."""

    project_name: ProjectName
    collection_name: CollectionName


# ----------------------------------------------------------------------------- responses


class APIResponse(BaseModel):
    """The envelope every answer shares.

    Unknown fields are kept (``model_extra``), except an echoed ``user_api_key``, which is
    dropped (the transport already drops it; a model built by hand drops it too). ``success``
    is a JSON boolean: ``"false"`` or ``0`` are not read as one.

    ``existed`` is set by the client on the answers of ``create_project``, ``init`` and
    ``delete_project``: whether the project or collection was there before the call.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    success: Annotated[bool, Strict()] = True
    error_message: str | None = None
    existed: bool | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_echoed_key(cls, value: Any) -> Any:
        if isinstance(value, dict) and any(
            isinstance(k, str) and k.lower() == "user_api_key" for k in value
        ):
            return {
                k: v
                for k, v in value.items()
                if not (isinstance(k, str) and k.lower() == "user_api_key")
            }
        return value


class JobStartedResponse(APIResponse):
    """The answer of an endpoint that starts server work."""

    job_id: str


class ClassificationMetrics(BaseModel):
    """The eight documented classification metrics (floats in 0..1)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    accuracy: float
    micro_precision: float
    macro_precision: float
    micro_recall: float
    macro_recall: float
    micro_f1: float
    macro_f1: float
    auc: float


#: Classification metrics, or the MSE (a float) of a regression model.
Metric = ClassificationMetrics | float

_START_FORMAT = "%Y/%m/%d %H:%M:%S"


class _JobStatus(APIResponse):
    status: str
    start_time: str | None = None
    duration: str | None = None
    error: str | None = None

    @property
    def normalized_status(self) -> str:
        """``status`` stripped and in lower case (``"FINISHED"`` reads ``"finished"``)."""
        return self.status.strip().lower()

    @property
    def is_finished(self) -> bool:
        return self.normalized_status == "finished"

    @property
    def is_failed(self) -> bool:
        return self.normalized_status == "failed"

    @property
    def is_done(self) -> bool:
        """Whether the job reached a final status (``finished`` or ``failed``)."""
        return self.normalized_status in ("finished", "failed")

    @property
    def is_known(self) -> bool:
        """Whether the status is one of :data:`JOB_STATUSES` (in any letter case)."""
        return self.normalized_status in JOB_STATUSES

    @property
    def started_at(self) -> datetime | None:
        """``start_time`` parsed (``YYYY/MM/DD HH:MM:SS``; the timezone is undocumented,
        taken as UTC), or ``None`` when absent or in another format."""
        if not self.start_time:
            return None
        try:
            return datetime.strptime(self.start_time, _START_FORMAT).replace(tzinfo=timezone.utc)
        except ValueError:
            return None

    @property
    def elapsed(self) -> timedelta | None:
        """``duration`` (``HH:MM:SS``) parsed, or ``None``."""
        if not self.duration:
            return None
        parts = self.duration.split(":")
        if len(parts) != 3 or not all(p.isdigit() for p in parts):
            return None
        hours, minutes, seconds = (int(p) for p in parts)
        return timedelta(hours=hours, minutes=minutes, seconds=seconds)


class UploadStatus(_JobStatus):
    """Answer of ``get_upload_data_status``. Documented: ``status``; the rest is optional."""


class TrainingStatus(_JobStatus):
    """Answer of ``get_automl_training_status``."""

    task_type: str | None = None
    model_name: str | None = None
    label_attribute: str | None = None
    validation_metric: Metric | None = None


class PredictResponse(APIResponse):
    """Answer of ``automl_predict``.

    ``num_samples`` counts the rows that carry a label (those the metric is computed on), not
    the predictions; ``prediction_metric`` is ``None`` when no row has a label.
    """

    num_samples: int = 0
    predictions: list[float] = Field(default_factory=list)
    prediction_metric: Metric | None = None


class ValidationMetricResponse(APIResponse):
    """Answer of ``get_model_validation_metric``."""

    validation_metric: Metric


class ModelInfo(BaseModel):
    """One entry of ``list_automl_model_infos``.

    The documentation shows positional lists ``[model_name, task_type, training_mode,
    label_attribute, create_time]``; dicts with those keys are accepted too. ``status`` (a
    sixth element, or key) is the training status of a model that cannot predict yet
    (``pending``, ``in_progress``, ``failed``); ``None`` for a trained model.
    """

    model_config = ConfigDict(extra="allow", frozen=True)

    model_name: str
    task_type: str
    training_mode: str
    label_attribute: str
    create_time: str | None = None
    status: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_list(cls, value: Any) -> Any:
        if isinstance(value, (list, tuple)):
            keys = (
                "model_name",
                "task_type",
                "training_mode",
                "label_attribute",
                "create_time",
                "status",
            )
            return dict(zip(keys, value))
        return value

    @property
    def is_trained(self) -> bool:
        """Whether the model can predict (no status, or ``finished``)."""
        return self.status in (None, "finished")

    @property
    def created_at(self) -> datetime | None:
        """``create_time`` (``YYYY/MM/DD, HH:MM``, taken as UTC) parsed, or ``None``."""
        if not self.create_time:
            return None
        try:
            parsed = datetime.strptime(self.create_time, "%Y/%m/%d, %H:%M")
        except ValueError:
            return None
        return parsed.replace(tzinfo=timezone.utc)


class ModelInfosResponse(APIResponse):
    """Answer of ``list_automl_model_infos``."""

    model_infos: list[ModelInfo] = Field(default_factory=list)


__all__ = [
    "APIResponse",
    "ClassificationMetrics",
    "CollectionRequest",
    "CompressionType",
    "CreateProjectRequest",
    "DeleteProjectRequest",
    "DocumentedTrainingMode",
    "FileFormat",
    "InitRequest",
    "JOB_STATUSES",
    "JobStartedResponse",
    "JobStatusRequest",
    "Metric",
    "ModelInfo",
    "ModelInfosResponse",
    "ModelRequest",
    "OnInvalid",
    "PredictFileFormat",
    "PredictResponse",
    "TaskType",
    "TrainRequest",
    "TrainingMode",
    "TrainingStatus",
    "UploadStatus",
    "ValidationMetricResponse",
    "VectorType",
]
