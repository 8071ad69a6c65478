"""The API key never leaks: a representative workflow (project, init, ingest through faults
and retries, upload, training, prediction, and a dozen failures) runs with every logger at
DEBUG (root, vecml_async, httpx, httpcore, uvicorn, the emulator), and the key appears
nowhere: not in the log output, not in str()/repr() of any exception or of any object
reachable from the client, jobs, reports and failures, not in formatted tracebacks.
"""

from __future__ import annotations

import gc
import io
import logging
import traceback
import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from vecml_async import (
    AsyncVecML,
    AuthenticationError,
    ClientClosedError,
    ConflictError,
    IngestError,
    InvalidInputError,
    JobFailedError,
    JobTimeoutError,
    NotFoundError,
    PollPolicy,
    RateLimitError,
    RetryPolicy,
    TransportError,
)
from vecml_async._redact import Secret
from vecml_async.emulator import FaultConfig, serve

pytestmark = [pytest.mark.integration, pytest.mark.slow]

P = "secrets"
IDEMPOTENT = frozenset(
    {"add_data_batch", "get_upload_data_status", "get_automl_training_status", "automl_predict"}
)


@pytest.fixture
def debug_logs() -> Iterator[io.StringIO]:
    """Every logger at DEBUG into one formatted stream (tracebacks of log records included)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    handler.setLevel(logging.DEBUG)
    root = logging.getLogger()
    saved = {
        name: (logging.getLogger(name).level, logging.getLogger(name).disabled)
        for name in _logger_names()
    }
    saved_root = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(saved_root)
        for name, (level, disabled) in saved.items():
            logging.getLogger(name).setLevel(level)
            logging.getLogger(name).disabled = disabled


def _logger_names() -> list[str]:
    names = [
        "vecml_async",
        "vecml_async.emulator",
        "httpx",
        "httpcore",
        "uvicorn",
        "uvicorn.error",
        "uvicorn.access",
        "asyncio",
        "anyio",
        "h11",
    ]
    return sorted({*names, *logging.root.manager.loggerDict})


def _all_loggers_at_debug() -> None:
    """uvicorn sets its own levels when a server starts: put everything back to DEBUG."""
    for name in _logger_names():
        logger = logging.getLogger(name)
        logger.setLevel(logging.DEBUG)
        logger.disabled = False


def _texts(value: Any) -> Iterator[str]:
    for render in (str, repr):
        try:
            yield render(value)
        except Exception as err:  # an object whose repr fails is not a leak
            yield f"<{type(err).__name__}>"


_SKIP_TYPES = (
    types.ModuleType,
    type,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
    types.FrameType,
    types.TracebackType,
    types.CodeType,
)


def reachable_leaks(roots: dict[str, Any], key: str, limit: int = 300_000) -> list[str]:
    """Paths of objects reachable from ``roots`` whose str()/repr() (or, for strings and
    buffers, whose content) contains ``key``. A ``Secret`` is checked, not entered: holding
    the key is its job."""
    needle = key.encode()
    leaks: list[str] = []
    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(obj, name) for name, obj in roots.items()]
    while stack and len(seen) < limit:
        obj, path = stack.pop()
        if id(obj) in seen or isinstance(obj, _SKIP_TYPES) or obj is None:
            continue
        seen.add(id(obj))
        if isinstance(obj, str):
            if key in obj:
                leaks.append(path)
            continue
        if isinstance(obj, (bytes, bytearray, memoryview)):
            if needle in bytes(obj):
                leaks.append(path)
            continue
        if isinstance(obj, (int, float, complex, bool, np.ndarray)):
            continue
        if any(key in text for text in _texts(obj)):
            leaks.append(f"{path} (str/repr of {type(obj).__name__})")
        if isinstance(obj, Secret):
            continue
        children: list[tuple[Any, str]] = []
        if isinstance(obj, dict):
            children += [(k, f"{path}.<key>") for k in obj]
            children += [(v, f"{path}[{k!r:.40}]") for k, v in obj.items()]
        elif isinstance(obj, (list, tuple, set, frozenset)):
            children += [(v, f"{path}[{n}]") for n, v in enumerate(obj)]
        if isinstance(obj, BaseException):
            children += [
                (obj.args, f"{path}.args"),
                (obj.__cause__, f"{path}.__cause__"),
                (obj.__context__, f"{path}.__context__"),
            ]
        for name in getattr(type(obj), "__slots__", ()):
            if hasattr(obj, name):
                children.append((getattr(obj, name), f"{path}.{name}"))
        attrs = getattr(obj, "__dict__", None)
        if isinstance(attrs, dict):
            children += [(v, f"{path}.{k}") for k, v in attrs.items()]
        stack.extend(children)
    return leaks


async def _workflow(url: str, key: str, tmp_path: Any) -> dict[str, Any]:
    """Everything a user does, with failures; returns what the user can reach afterwards."""
    reach: dict[str, Any] = {}
    errors: list[BaseException] = []

    async def expect(kind: type[BaseException], coro: Any) -> None:
        try:
            await coro
        except kind as err:
            errors.append(err)
        else:
            raise AssertionError(f"expected {kind.__name__}")

    poll = PollPolicy(upload_timeout=60, training_timeout=120)
    client = AsyncVecML(
        key, base_url=url, retry=RetryPolicy(max_retries=12), poll=poll, rate_limit=None
    )
    reach["client"] = client
    async with client:
        _all_loggers_at_debug()
        await client.create_project(P)
        await expect(ConflictError, client.create_project(P))
        await client.init(P, "train", vector_dim=8)
        rng = np.random.default_rng(7)
        vectors = rng.standard_normal((6_000, 8)).astype(np.float32)
        labels = [
            {"label": str(int(v[0] > 0)), "colour": "red" if v[1] > 0 else "blue"} for v in vectors
        ]
        reach["report"] = await client.ingest(
            P, "train", vectors, attributes=labels, max_rows=200, wait=True
        )
        assert reach["report"].retries > 0, "no fault was retried"
        # Retries run out: IngestError with failures and their exceptions.
        weak = AsyncVecML(key, base_url=url, max_retries=0, rate_limit=None)
        reach["weak_client"] = weak
        async with weak:
            await weak.init(P, "weak", vector_dim=8)
            try:
                await weak.ingest(P, "weak", vectors, max_rows=100, wait=True)
            except IngestError as err:
                errors.append(err)
                reach["failed_report"] = err.report
                reach["failures"] = err.report.failures
                reach["failed_rows"] = err.report.failed_rows()[:50]
        header = ",".join(f"x{j}" for j in range(8)) + ",colour,label\n"
        csv = (
            header.encode()
            + "".join(
                ",".join(f"{v:.3f}" for v in row) + f",{a['colour']},{a['label']}\n"
                for row, a in zip(vectors[:300].tolist(), labels[:300])
            ).encode()
        )
        path = tmp_path / "upload.csv"
        path.write_bytes(csv)
        upload = await client.upload(P, "uploaded", path, attribute_columns=["colour", "label"])
        reach["upload_job"] = upload
        reach["upload_status"] = await upload
        training = await client.train_automl_model(
            P,
            "train",
            "model",
            task_type="classification",
            label_attribute="label",
            training_mode="high_speed",
            categorical_features=["colour"],
        )
        reach["training_job"] = training
        reach["training_status"] = await training
        reach["prediction"] = await client.automl_predict(
            P, "train", "model", prediction_dataset="train"
        )
        reach["file_prediction"] = await client.automl_predict(
            P, "train", "model", file=csv, file_format="csv"
        )
        reach["metric"] = await client.get_model_validation_metric(P, "train", "model")
        reach["models"] = await client.list_automl_model_infos(P, "train")
        # Failures of every kind.
        await expect(NotFoundError, client.get_upload_data_status("no-such-job"))
        # The server echoes the job id: a key pasted into a field comes back redacted.
        await expect(NotFoundError, client.get_upload_data_status(key))
        await expect(NotFoundError, client.call("get_automl_training_status", job_id=key))
        await expect(InvalidInputError, client.call("init", user_api_key="another"))
        await expect(NotFoundError, client.init("nope", "c", vector_dim=2))
        bad = await client.train_automl_model(
            P,
            "train",
            "bad",
            task_type="regression",
            label_attribute="missing",
        )
        reach["bad_training_job"] = bad
        await expect(JobFailedError, bad.wait())
        await expect(JobTimeoutError, client.training_job(training.job_id).wait(timeout=1e-9))
        await expect(InvalidInputError, client.ingest(P, "train", [[1.0, float("nan")] * 4]))
        await expect(
            InvalidInputError, client.upload(P, "u2", b"\x1f\x8bbroken", file_format="csv")
        )
    await expect(ClientClosedError, client.create_project("closed"))
    async with AsyncVecML("wrong-key", base_url=url, rate_limit=None) as stranger:
        await expect(NotFoundError, stranger.get_upload_data_status(upload.job_id))
    dead = AsyncVecML(key, base_url="http://127.0.0.1:9/api", max_retries=1, rate_limit=None)
    async with dead:
        await expect(TransportError, dead.create_project("unreachable"))
    reach["dead_client"] = dead
    reach["errors"] = errors
    return reach


async def test_the_key_appears_nowhere_in_logs_errors_objects_or_tracebacks(
    key: str, seed: int, tmp_path: Any, debug_logs: io.StringIO
) -> None:
    """The key appears 0 times in DEBUG logs, errors, reachable objects and tracebacks."""
    faults = FaultConfig(
        seed=seed,
        drop_before_apply=0.05,
        drop_after_apply=0.05,
        error_500=0.05,
        error_503=0.05,
        rate_limit_burst_prob=0.03,
        rate_limit_burst_length=2,
        endpoints=IDEMPOTENT,
    )
    async with serve(faults=faults, rate_limit=None, training_delay=0.2) as url:
        _all_loggers_at_debug()
        reach = await _workflow(url, key, tmp_path)
    # A server refusing over its rate limit, and an authentication failure, for the record.
    async with serve(rate_limit=0.5, rate_limit_burst=1, api_keys=frozenset({key})) as url:
        _all_loggers_at_debug()
        quick = RetryPolicy(max_retries=1, rate_limit_deadline=0.5)  # backpressure, briefly
        async with AsyncVecML(key, base_url=url, retry=quick, rate_limit=None) as client:
            await client.create_project("one")
            try:
                await client.create_project("two")
            except RateLimitError as err:
                reach["errors"].append(err)
        async with AsyncVecML(key + "x", base_url=url, rate_limit=None) as impostor:
            try:
                await impostor.create_project("three")
            except AuthenticationError as err:
                reach["errors"].append(err)
    gc.collect()
    logs = debug_logs.getvalue()
    errors: list[BaseException] = reach["errors"]
    kinds = sorted({type(e).__name__ for e in errors})
    why = f"seed={seed} errors={kinds}"
    assert len(kinds) >= 10, why
    assert "httpcore" in logs and "vecml_async" in logs, "DEBUG logging was not captured"

    assert logs.count(key) == 0, f"{why}: the key is in the logs: {_around(logs, key)}"
    tracebacks = "".join("".join(traceback.format_exception(e)) for e in errors)
    assert tracebacks.count(key) == 0, f"{why}: {_around(tracebacks, key)}"
    leaks = reachable_leaks(reach, key)
    assert not leaks, f"{why}: the key is reachable at {leaks[:20]}"
    print(f"\nSECRETS seed={seed} errors={kinds} log_lines={logs.count(chr(10))} clean")


def _around(text: str, needle: str) -> str:
    at = text.find(needle)
    return repr(text[max(0, at - 300) : at + len(needle) + 100])


async def test_tracebacks_with_captured_locals_do_not_show_the_key(
    thread_emulator: Any, key: str
) -> None:
    """A traceback rendered with its frames' local variables does not show the key."""
    _, url = thread_emulator(
        faults=FaultConfig(
            schedule={1: "drop_before_apply"}, endpoints=frozenset({"add_data_batch"})
        )
    )
    async with AsyncVecML(key, base_url=url, max_retries=0, rate_limit=None) as client:
        await client.create_project(P)
        await client.init(P, "c", vector_dim=2)
        try:
            await client.add_data_batch(P, "c", [[1.0, 2.0]])
        except TransportError as err:
            error = err
    # From the library's frames on (this test's own frame holds the key as a fixture).
    assert error.__traceback__ is not None
    error = error.with_traceback(error.__traceback__.tb_next)
    rendered = "".join(
        traceback.TracebackException.from_exception(error, capture_locals=True).format()
    )
    assert key not in rendered, f"the key is in a rendered local: {_locals_with(rendered, key)}"


def _locals_with(text: str, needle: str) -> list[str]:
    return sorted({line.strip()[:160] for line in text.splitlines() if needle in line})
