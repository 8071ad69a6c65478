"""Quickstart: VecML's AutoML example workflow through AsyncVecML.

Uses VecML when VECML_API_KEY is set, otherwise a local emulator: ``python examples/quickstart.py``
"""

import asyncio
import os

import numpy as np

from vecml_async import AsyncVecML
from vecml_async.emulator import serve

PROJECT = "AutoML-Demo"


def dataset(n: int, seed: int) -> tuple[np.ndarray, list[str], list[dict[str, str]]]:
    """The example's rows: label = 1 when sum(v[:20]) + a category weight is positive."""
    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((n, 64)).astype(np.float32)
    category = rng.choice(["A", "B", "C"], n)
    score = vectors[:, :20].sum(axis=1) + np.select([category == "A", category == "B"], [1, -0.5])
    attributes = [{"label": str(int(s > 0)), "category": str(c)} for s, c in zip(score, category)]
    return vectors, [f"row_{seed}_{i}" for i in range(n)], attributes


async def workflow(client: AsyncVecML) -> None:
    await client.delete_project(PROJECT, missing_ok=True)
    await client.create_project(PROJECT)
    for collection, rows, seed in (("training_data", 1000, 2025), ("prediction_data", 100, 2026)):
        await client.init(PROJECT, collection, vector_type="dense", vector_dim=64)
        vectors, ids, attributes = dataset(rows, seed)
        await client.ingest(PROJECT, collection, vectors, ids=ids, attributes=attributes, wait=True)
    job = await client.train_automl_model(
        PROJECT, "training_data", "model1", training_mode="high_speed",
        task_type="classification", label_attribute="label", categorical_features=["category"],
    )  # fmt: skip
    print("validation metric:", (await job).validation_metric)
    answer = await client.automl_predict(
        PROJECT, "training_data", "model1", prediction_dataset="prediction_data"
    )
    print(f"{len(answer.predictions)} predictions; metric:", answer.prediction_metric)


async def main() -> None:
    if os.environ.get("VECML_API_KEY"):
        async with AsyncVecML() as client:  # key and URL from the environment
            await workflow(client)
    else:
        async with serve() as url, AsyncVecML("local-key", base_url=url) as client:
            await workflow(client)


if __name__ == "__main__":
    asyncio.run(main())
