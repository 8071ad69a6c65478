"""vecml_async: the async Python client for the VecML REST API.

>>> async with AsyncVecML() as client:  # key from VECML_API_KEY
...     await client.create_project("demo")
...     await client.init("demo", "train", vector_dim=64)
...     report = await client.ingest("demo", "train", vectors, attributes=rows, wait=True)
...     job = await client.train_automl_model(
...         "demo", "train", "model1", task_type="classification", label_attribute="label"
...     )
...     status = await job  # polls until finished; status.validation_metric
...     profile = await probe(client)  # what this server does where the docs are silent
"""

from vecml_async._client import AsyncVecML
from vecml_async._config import (
    PollPolicy,
    RateLimitPolicy,
    RetryPolicy,
    set_testing,
    testing_mode,
)
from vecml_async._hooks import RequestEvent, ResponseEvent, RetryEvent
from vecml_async._ingest.progress import IngestProgress
from vecml_async._ingest.report import BatchFailure, IngestReport
from vecml_async._jobs import Job, TrainingJob, UploadJob
from vecml_async._limiter import Budget
from vecml_async._observed_models import FeatureImportance
from vecml_async._version import __version__
from vecml_async.errors import (
    APIError,
    AuthenticationError,
    ClientClosedError,
    ConflictError,
    IngestError,
    InvalidInputError,
    JobError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    RateLimitError,
    RequestTooLargeError,
    ServerError,
    TransportError,
    VecMLError,
)
from vecml_async.models import (
    APIResponse,
    ClassificationMetrics,
    ModelInfo,
    PredictResponse,
    TrainingStatus,
    UploadStatus,
    ValidationMetricResponse,
)
from vecml_async.probe import ServerProfile, probe

__all__ = [
    "APIError",
    "APIResponse",
    "AsyncVecML",
    "AuthenticationError",
    "BatchFailure",
    "Budget",
    "ClassificationMetrics",
    "ClientClosedError",
    "ConflictError",
    "FeatureImportance",
    "IngestError",
    "IngestProgress",
    "IngestReport",
    "InvalidInputError",
    "Job",
    "JobError",
    "JobFailedError",
    "JobTimeoutError",
    "ModelInfo",
    "NotFoundError",
    "PollPolicy",
    "PredictResponse",
    "RateLimitError",
    "RateLimitPolicy",
    "RequestEvent",
    "RequestTooLargeError",
    "ResponseEvent",
    "RetryEvent",
    "RetryPolicy",
    "ServerError",
    "ServerProfile",
    "TrainingJob",
    "TrainingStatus",
    "TransportError",
    "UploadJob",
    "UploadStatus",
    "ValidationMetricResponse",
    "VecMLError",
    "__version__",
    "probe",
    "set_testing",
    "testing_mode",
]
