"""Retries of calls that are not idempotent on the server.

A connection dropped after the server applied a request (``drop_after_apply``) leaves the
client unsure whether it landed; retrying it must not duplicate rows (server-generated ids
make a replayed ``add_data_batch``/``add_data``/``upload`` store the rows twice), and must
not turn the caller's own success into an error (``create_project`` answered "already
exists", ``delete_project`` answered "does not exist"). ``ingest()`` is safe: it always
sends ids. A drop *before* apply is the control: retrying it is always right.

Acceptable outcomes after an ambiguous drop: the call succeeds and its effect happened once,
or it raises :class:`TransportError` (the client cannot know) with the effect at most once.
A dropped connection looks the same to the client whether the server applied the request or
not, so calls that cannot be replayed safely (``upload``, whose rows get server-made ids, and
``train_automl_model``, whose job id only the first answer carries) report both drops as
ambiguous; every other call is replayed and must succeed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from vecml_async import AsyncVecML, TransportError
from vecml_async.emulator import FaultConfig

pytestmark = pytest.mark.integration

P, C = "idem", "rows"
#: Endpoints the client does not replay after an ambiguous failure.
NOT_REPLAYABLE = frozenset({"upload", "train_automl_model"})
CSV = b"a,b\n1,2\n3,4\n5,6\n"


async def _nothing(client: AsyncVecML) -> None:
    return None


async def _project(client: AsyncVecML) -> None:
    await client.create_project(P)


async def _collection(client: AsyncVecML) -> None:
    await client.create_project(P)
    await client.init(P, C, vector_dim=2)


async def _labelled(client: AsyncVecML) -> None:
    await _collection(client)
    rows = [[float(i), float(i % 2)] for i in range(40)]
    labels = [{"label": str(i % 2)} for i in range(40)]
    await (await client.add_data_batch(P, C, rows, attributes=labels)).wait()


# (endpoint, setup, the call under test, is the server state that of exactly one call?)
Operation = tuple[
    str,
    Callable[[AsyncVecML], Awaitable[None]],
    Callable[[AsyncVecML], Awaitable[Any]],
    Callable[[dict[str, Any]], bool],
]

OPERATIONS: dict[str, Operation] = {
    "add_data_batch without ids": (
        "add_data_batch",
        _collection,
        lambda c: c.add_data_batch(P, C, [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]),
        lambda view: view["projects"][P][C]["rows"] == 3,
    ),
    "add_data without id": (
        "add_data",
        _collection,
        lambda c: c.add_data(P, C, [1.0, 2.0]),
        lambda view: view["projects"][P][C]["rows"] == 1,
    ),
    "upload": (
        "upload",
        _project,
        lambda c: c.upload(P, C, CSV, file_format="csv"),
        lambda view: view["projects"][P][C]["rows"] == 3,
    ),
    "create_project": (
        "create_project",
        _nothing,
        lambda c: c.create_project(P),
        lambda view: P in view["projects"],
    ),
    "init": (
        "init",
        _project,
        lambda c: c.init(P, C, vector_dim=2),
        lambda view: C in view["projects"][P],
    ),
    "train_automl_model": (
        "train_automl_model",
        _labelled,
        lambda c: c.train_automl_model(
            P,
            C,
            "m",
            task_type="classification",
            label_attribute="label",
            training_mode="high_speed",
        ),
        lambda view: view["projects"][P][C]["models"] == ["m"],
    ),
    "delete_project": (
        "delete_project",
        _collection,
        lambda c: c.delete_project(P),
        lambda view: P not in view["projects"],
    ),
}


@pytest.mark.parametrize("fault", ["drop_after_apply", "drop_before_apply"])
@pytest.mark.parametrize("name", list(OPERATIONS))
async def test_a_retried_call_takes_effect_once_and_reports_its_own_success(
    thread_emulator: Any, key: str, name: str, fault: str
) -> None:
    """A call retried after a dropped connection takes effect once, without failing on itself."""
    endpoint, setup, call, once = OPERATIONS[name]
    # Request 1 of the endpoint is the call under test (setup never calls that endpoint).
    faults = FaultConfig(schedule={1: fault}, endpoints=frozenset({endpoint}))
    emulator, url = thread_emulator(faults=faults)
    async with AsyncVecML(key, base_url=url, rate_limit=None) as client:
        await setup(client)
        try:
            result = await call(client)
            outcome = "ok"
            if hasattr(result, "wait"):
                await result.wait(timeout=30)
        except TransportError:
            outcome = "ambiguous"  # allowed: the client says it cannot know
        except Exception as err:
            outcome = f"{type(err).__name__}: {err}"
    view = emulator.inspect(key)
    assert emulator.stats()["faults"] == {fault: 1}
    assert outcome in ("ok", "ambiguous"), f"{name} after {fault}: {outcome}"
    if fault == "drop_before_apply" and endpoint not in NOT_REPLAYABLE:
        assert outcome == "ok", f"{name}: a request that never applied was not retried"
    if outcome == "ambiguous" and fault == "drop_before_apply":
        # Not replayed, and the server never applied it: no effect at all.
        assert emulator.stats()["requests"].get(endpoint) == 1, f"{name}: replayed"
        return
    assert once(view), f"{name} after {fault} ({outcome}): {view['projects']}"
