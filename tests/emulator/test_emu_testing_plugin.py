"""The pytest plugin vecml_async.testing: its fixtures serve an emulator and bind a client."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from vecml_async.testing import (  # the plugin's fixtures, as pytest_plugins would load them
    vecml_client,  # noqa: F401
    vecml_emulator,  # noqa: F401
    vecml_emulator_settings,  # noqa: F401
)


@pytest.mark.parametrize("vecml_emulator_settings", [{"duplicate_ids": "reject"}], indirect=True)
async def test_fixtures_give_a_client_bound_to_a_configurable_emulator(
    vecml_client: Any,  # noqa: F811
    vecml_emulator: Any,  # noqa: F811
) -> None:
    """vecml_client talks to vecml_emulator (with the overridden settings) over loopback."""
    assert vecml_emulator.emulator.settings.duplicate_ids == "reject"
    assert vecml_emulator.base_url.startswith("http://127.0.0.1:")
    await vecml_client.create_project("p")
    await vecml_client.init("p", "c", vector_dim=3)
    job = await vecml_client.add_data_batch("p", "c", np.eye(3), string_ids=["a", "b", "c"])
    await job
    ids = vecml_emulator.emulator.collection_ids(vecml_emulator.api_key, "p", "c")
    assert ids == ["a", "b", "c"]
