"""Seeded fuzzing of every endpoint with wrongly typed fields: always an envelope, never a 500."""

from __future__ import annotations

import random
from typing import Any

from vecml_async.emulator.app import ENDPOINTS

WEIRD: list[Any] = [
    None,
    0,
    -1,
    2**70,
    1.5,
    True,
    "",
    "p",
    "c",
    "m",
    "x" * 300,
    "ü/..",
    [],
    [1, 2],
    [[1, 2, 3, 4]],
    [["a"]],
    {},
    {"a": 1},
    {"indices": [1], "values": ["x"]},
    "1:2 3:4",
    "aGVsbG8=",
]
FIELDS = [
    "project_name",
    "collection_name",
    "model_name",
    "application",
    "vector_type",
    "vector_dim",
    "data",
    "string_id",
    "string_ids",
    "attributes",
    "job_id",
    "file_data",
    "file_format",
    "has_field_names",
    "compression_type",
    "string_id_column",
    "attribute_columns",
    "label_attribute",
    "training_mode",
    "task_type",
    "categorical_features",
    "train_categorical_features",
    "validation_dataset",
    "prediction_dataset",
]


async def test_random_fields_never_crash_the_server(api: Any) -> None:
    """Random field values on every endpoint give 2xx/4xx JSON envelopes, never a 500."""
    await api.collection("p", "c", dim=4)
    await api.ok("init", project_name="p", collection_name="s", vector_type="sparse")
    rng = random.Random(20251127)
    statuses: set[int] = set()
    for endpoint in sorted(ENDPOINTS):
        for _ in range(25):
            body: dict[str, Any] = {"project_name": "p", "collection_name": rng.choice("cs")}
            for name in rng.sample(FIELDS, rng.randint(1, 8)):
                body[name] = rng.choice(WEIRD)
            response = await api.call(endpoint, **body)
            statuses.add(response.status_code)
            assert response.status_code < 500, (endpoint, body, response.text)
            payload = response.json()
            assert isinstance(payload["success"], bool), (endpoint, body)
            if not payload["success"]:
                assert isinstance(payload["error_message"], str)
    assert api.emulator.stats()["rejections"]["invalid"] > 0
    assert 400 in statuses
