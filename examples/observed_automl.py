"""The undocumented AutoML flow that third-party code uses against the live API: features
with ``upload_automl_X``, labels with ``attach_automl_label``, training, then
``get_feature_importance``. These endpoints are OBSERVED, NOT DOCUMENTED by VecML: they may
change without notice.

Uses VecML when VECML_API_KEY is set, otherwise a local emulator:
``python examples/observed_automl.py``
"""

import asyncio
import os

import numpy as np

from vecml_async import AsyncVecML
from vecml_async.emulator import serve

PROJECT = "observed-automl"


def passengers(n: int, seed: int = 7) -> tuple[bytes, list[int]]:
    """A features CSV (numeric Age, Fare, Siblings; text Sex) and who survived."""
    rng = np.random.default_rng(seed)
    lines = ["Age,Fare,Siblings,Sex"]
    survived = []
    for _ in range(n):
        age, fare, siblings = rng.uniform(1, 80), rng.uniform(5, 120), int(rng.integers(0, 4))
        sex = str(rng.choice(["male", "female"]))
        survived.append(int(fare / 60 + (sex == "female") + rng.normal(0, 0.2) > 1.5))
        lines.append(f"{age:.0f},{fare:.2f},{siblings},{sex}")
    return ("\n".join(lines) + "\n").encode(), survived


async def workflow(client: AsyncVecML) -> None:
    await client.delete_project(PROJECT, missing_ok=True)
    await client.create_project(PROJECT, application="autoML")
    features, survived = passengers(400)
    job = await client.upload_automl_x(
        PROJECT, "titanic", features, file_format="csv", has_field_names=True,
        categorical_features=["Sex"],
    )  # fmt: skip
    if job is not None:
        await job
    labels = await client.attach_automl_label(
        PROJECT, "titanic", survived, attribute_name="Survived"
    )
    if labels is not None:
        await labels  # training before the labels landed would fail
    trained = await client.train_automl_model(
        PROJECT, "titanic", "survival", task_type="classification", label_attribute="Survived",
        training_mode="high_speed", categorical_features=["Sex"],
    )  # fmt: skip
    print("validation metric:", (await trained).validation_metric)
    for feature in await client.get_feature_importance(PROJECT, "titanic", "survival"):
        print(f"importance {feature.feature}: {feature.importance:.3f}")


async def main() -> None:
    if os.environ.get("VECML_API_KEY"):
        async with AsyncVecML() as client:  # key and URL from the environment
            await workflow(client)
    else:
        async with serve() as url, AsyncVecML("local-key", base_url=url) as client:
            await workflow(client)


if __name__ == "__main__":
    asyncio.run(main())
