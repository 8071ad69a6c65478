"""Answers of the AutoML endpoints VecML does not document but real clients call.

``/upload_automl_X``, ``/attach_automl_label`` and ``/get_feature_importance`` are known only
from third-party code that calls the live API; their shapes here are what that code reads, and
may change without notice. Like every answer model, these keep fields they do not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from vecml_async.models import APIResponse

__all__ = ["FeatureImportance", "FeatureImportanceResponse"]


class FeatureImportance(BaseModel):
    """How much one feature counts in a model (observed, not documented)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    feature: str
    importance: float


class FeatureImportanceResponse(APIResponse):
    """Answer of ``/get_feature_importance`` (observed, not documented): a list of
    ``{"feature", "importance"}``; a ``{feature: importance}`` mapping is accepted too."""

    feature_importance: list[FeatureImportance] = Field(default_factory=list)

    @field_validator("feature_importance", mode="before")
    @classmethod
    def _from_mapping(cls, value: Any) -> Any:
        if isinstance(value, Mapping):
            return [{"feature": str(k), "importance": v} for k, v in value.items()]
        return value
