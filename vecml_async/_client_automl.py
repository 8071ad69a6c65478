"""The AutoML endpoints of the client: training, prediction, model metadata.

:class:`AutoMLEndpoints` is a base of :class:`~vecml_async.AsyncVecML`. The documented
endpoints come first; ``upload_automl_x``, ``attach_automl_label`` and
``get_feature_importance`` call endpoints that VecML does not document, known only from
third-party code that calls the live API (their docstrings say so).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from typing import Any

from vecml_async._client_core import CallOptions, ClientCore, build_request, parse_answer
from vecml_async._files import load_file
from vecml_async._ingest.encoding import attribute_value
from vecml_async._jobs import TrainingJob, UploadJob
from vecml_async._observed_models import FeatureImportance, FeatureImportanceResponse
from vecml_async.errors import InvalidInputError, NotFoundError
from vecml_async.models import (
    ALL_TRAINING_MODES,
    FILE_FORMATS,
    PREDICT_FILE_FORMATS,
    TASK_TYPES,
    TRAINING_MODES,
    VECTOR_TYPES,
    APIResponse,
    CollectionRequest,
    CompressionType,
    FileFormat,
    JobStartedResponse,
    ModelInfo,
    ModelInfosResponse,
    ModelRequest,
    PredictFileFormat,
    PredictResponse,
    TaskType,
    TrainingMode,
    TrainRequest,
    ValidationMetricResponse,
    VectorType,
    check_choice,
    check_name,
)

FileInput = str | os.PathLike[str] | bytes


def csv_header(file_format: str, has_field_names: bool | None) -> bool | None:
    """``has_field_names`` is required for CSV by the docs: the client always sends it there
    (``True`` unless told otherwise), and never for the other formats."""
    if file_format != "csv":
        return None
    return True if has_field_names is None else has_field_names


def _names(project_name: str, collection_name: str) -> dict[str, str]:
    return {
        "project_name": check_name(project_name, "project_name"),
        "collection_name": check_name(collection_name, "collection_name"),
    }


def _feature_list(value: Sequence[str] | None, field: str) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, str) or not all(isinstance(v, str) for v in value):
        raise InvalidInputError("must be a list of attribute names", field=field)
    return list(value) or None


def labels_csv(labels: Sequence[object], attribute_name: str) -> bytes:
    """A one-column CSV with a header: ``attribute_name``, then one label per row."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([attribute_name])
    for index, value in enumerate(labels):
        text = attribute_value(value, key=attribute_name, index=index, row_id=None)
        writer.writerow([text if text is not None else ""])
    return out.getvalue().encode("utf-8")


class AutoMLEndpoints(ClientCore):
    """The AutoML endpoints (see the module docstring)."""

    _allow_auto_training_mode: bool

    def _check_training_mode(self, training_mode: object) -> None:
        if training_mode == "auto" and not self._allow_auto_training_mode:
            raise InvalidInputError(
                "'auto' is not a documented training_mode (it appears in one VecML example "
                f"only); use one of {', '.join(TRAINING_MODES)}, or create the client with "
                "allow_auto_training_mode=True if your server accepts it",
                field="training_mode",
            )
        check_choice(training_mode, ALL_TRAINING_MODES, "training_mode")

    async def train_automl_model(
        self,
        project_name: str,
        collection_name: str,
        model_name: str,
        *,
        task_type: TaskType,
        label_attribute: str,
        training_mode: TrainingMode = "balanced",
        categorical_features: Sequence[str] | None = None,
        validation_dataset: str | None = None,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> TrainingJob:
        """``/train_automl_model``: start training; ``await`` the returned job for the
        validation metric. Upload jobs of the collection should be finished first.

        ``training_mode="auto"`` is refused unless the client was created with
        ``allow_auto_training_mode=True`` (it is not in the documented list)."""
        self._check_training_mode(training_mode)
        check_choice(task_type, TASK_TYPES, "task_type")
        options = CallOptions(timeout, extra_body, extra_headers)
        request = build_request(
            TrainRequest,
            project_name=project_name,
            collection_name=collection_name,
            model_name=model_name,
            training_mode=training_mode,
            task_type=task_type,
            label_attribute=label_attribute,
            categorical_features=_feature_list(categorical_features, "categorical_features"),
            validation_dataset=validation_dataset,
        )
        answer = await self._post("train_automl_model", request, options, idempotent=False)
        started = parse_answer(JobStartedResponse, answer, "train_automl_model")
        return self.training_job(started.job_id)

    async def automl_predict(
        self,
        project_name: str,
        collection_name: str,
        model_name: str,
        *,
        prediction_dataset: str | None = None,
        file: FileInput | None = None,
        file_format: PredictFileFormat | None = None,
        has_field_names: bool | None = None,
        compression_type: CompressionType | None = "auto",
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> PredictResponse:
        """``/automl_predict`` on a collection (``prediction_dataset``) or on an inline
        ``file`` (csv, json or libsvm; gzip detected). ``collection_name`` is the collection
        the model was trained on. Give exactly one of ``prediction_dataset`` and ``file``."""
        options = CallOptions(timeout, extra_body, extra_headers)
        fields: dict[str, Any] = _model_request(project_name, collection_name, model_name).fields()
        if (prediction_dataset is None) == (file is None):
            raise InvalidInputError(
                "give exactly one of prediction_dataset and file", field="prediction_dataset"
            )
        if prediction_dataset is not None:
            fields["prediction_dataset"] = check_name(prediction_dataset, "prediction_dataset")
            answer = await self._post("automl_predict", fields, options)
        else:
            assert file is not None
            payload = await load_file(
                file,
                file_format=file_format,
                compression_type=compression_type,
                allowed_formats=PREDICT_FILE_FORMATS,
            )
            fields["file_format"] = payload.file_format
            fields["has_field_names"] = csv_header(payload.file_format, has_field_names)
            fields["compression_type"] = payload.compression_type
            answer = await self._post_file(
                "automl_predict", fields, "file_data", payload, options, idempotent=True
            )
        return parse_answer(PredictResponse, answer, "automl_predict")

    async def delete_automl_model(
        self,
        project_name: str,
        collection_name: str,
        model_name: str,
        *,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> APIResponse:
        """``/delete_automl_model`` (irreversible)."""
        options = CallOptions(timeout, extra_body, extra_headers)
        request = _model_request(project_name, collection_name, model_name)
        answer = await self._post("delete_automl_model", request, options, done_if=NotFoundError)
        return parse_answer(APIResponse, answer, "delete_automl_model")

    async def get_model_validation_metric(
        self,
        project_name: str,
        collection_name: str,
        model_name: str,
        *,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> ValidationMetricResponse:
        """``/get_model_validation_metric``: classification metrics, or a regression MSE."""
        options = CallOptions(timeout, extra_body, extra_headers)
        request = _model_request(project_name, collection_name, model_name)
        answer = await self._post("get_model_validation_metric", request, options)
        return parse_answer(ValidationMetricResponse, answer, "get_model_validation_metric")

    async def list_automl_model_infos(
        self,
        project_name: str,
        collection_name: str,
        *,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> list[ModelInfo]:
        """``/list_automl_model_infos``: every model of the collection. A model that is not
        trained yet (or failed) says so in ``status``; a trained one has ``status`` ``None``
        or ``"finished"``."""
        options = CallOptions(timeout, extra_body, extra_headers)
        request = build_request(
            CollectionRequest, project_name=project_name, collection_name=collection_name
        )
        answer = await self._post("list_automl_model_infos", request, options)
        return parse_answer(ModelInfosResponse, answer, "list_automl_model_infos").model_infos

    # ------------------------------------------------------------------ observed, undocumented

    async def upload_automl_x(
        self,
        project_name: str,
        collection_name: str,
        file: FileInput,
        *,
        file_format: FileFormat | None = None,
        has_field_names: bool | None = None,
        vector_type: VectorType = "dense",
        categorical_features: Sequence[str] | None = None,
        compression_type: CompressionType | None = "auto",
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> UploadJob | None:
        """``/upload_automl_X``: add the feature rows of a file (the ``X`` of AutoML) to a
        collection. OBSERVED, NOT DOCUMENTED: VecML's documentation does not list this
        endpoint; the fields are those third-party code sends to the live API.

        ``categorical_features`` names the columns to keep as categorical attributes. Labels
        are attached afterwards with :meth:`attach_automl_label`. Returns the upload job when
        the answer carries a ``job_id``, else ``None`` (whether it does is not known).
        """
        fields: dict[str, Any] = {
            **_names(project_name, collection_name),
            "vector_type": check_choice(vector_type, VECTOR_TYPES, "vector_type"),
            "categorical_features": _feature_list(categorical_features, "categorical_features"),
        }
        options = CallOptions(timeout, extra_body, extra_headers)
        payload = await load_file(
            file,
            file_format=file_format,
            compression_type=compression_type,
            allowed_formats=FILE_FORMATS,
        )
        fields["file_format"] = payload.file_format
        fields["has_field_names"] = csv_header(payload.file_format, has_field_names)
        fields["compression_type"] = payload.compression_type
        answer = await self._post_file(
            "upload_automl_X", fields, "X", payload, options, idempotent=False
        )
        job_id = answer.get("job_id")
        return self.upload_job(job_id) if isinstance(job_id, str) and job_id else None

    async def attach_automl_label(
        self,
        project_name: str,
        collection_name: str,
        labels: FileInput | Sequence[object],
        *,
        attribute_name: str,
        has_field_names: bool | None = None,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> TrainingJob | None:
        """``/attach_automl_label``: set attribute ``attribute_name`` of the collection's rows,
        in order, from a one-column CSV. OBSERVED, NOT DOCUMENTED: the fields (``file_data``,
        ``attribute_name``) are those third-party code sends to the live API.

        ``labels`` is the CSV (a path or bytes; ``has_field_names`` defaults to true) or a
        list of values, one per row, sent as a CSV with ``attribute_name`` as its header.
        Returns the job when the answer carries a ``job_id``; it is polled with
        ``/get_automl_training_status``, as that code does. Wait for it before training.
        """
        if not isinstance(attribute_name, str) or not attribute_name:
            raise InvalidInputError("must be a non-empty string", field="attribute_name")
        if not isinstance(labels, (str, bytes, bytearray, memoryview, os.PathLike)):
            if not isinstance(labels, Sequence) or not labels:
                raise InvalidInputError("give a CSV file or a list of labels", field="labels")
            labels, has_field_names = labels_csv(labels, attribute_name), True
        options = CallOptions(timeout, extra_body, extra_headers)
        payload = await load_file(
            labels, file_format="csv", compression_type="auto", allowed_formats=("csv",)
        )
        fields = {
            **_names(project_name, collection_name),
            "file_format": "csv",
            "has_field_names": csv_header("csv", has_field_names),
            "compression_type": payload.compression_type,
            "attribute_name": attribute_name,
        }
        answer = await self._post_file(
            "attach_automl_label", fields, "file_data", payload, options, idempotent=True
        )
        job_id = answer.get("job_id")
        return self.training_job(job_id) if isinstance(job_id, str) and job_id else None

    async def get_feature_importance(
        self,
        project_name: str,
        collection_name: str,
        model_name: str,
        *,
        timeout: float | None = None,
        extra_body: Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
    ) -> list[FeatureImportance]:
        """``/get_feature_importance``: how much each feature counts in a trained model.
        OBSERVED, NOT DOCUMENTED: known only from third-party code that calls the live API."""
        options = CallOptions(timeout, extra_body, extra_headers)
        request = _model_request(project_name, collection_name, model_name)
        answer = await self._post("get_feature_importance", request, options)
        parsed = parse_answer(FeatureImportanceResponse, answer, "get_feature_importance")
        return parsed.feature_importance


def _model_request(project_name: str, collection_name: str, model_name: str) -> ModelRequest:
    return build_request(
        ModelRequest,
        project_name=project_name,
        collection_name=collection_name,
        model_name=model_name,
    )
