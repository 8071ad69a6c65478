"""A server that echoes the key: in bodies, fields, ids, statuses, headers and reason phrases.

With every logger at DEBUG, the key appears nowhere: not in the log output, not in the
messages, reprs or attributes of the errors and answers, not in tracebacks rendered with
their locals (the standard library's ``capture_locals`` and rich's ``show_locals``), and not in
what ``vecml-async job status --json`` prints. What the server sent is still there, masked.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import sys
import traceback
from collections.abc import Awaitable, Iterator
from typing import Any

import pytest

from vecml_async import AsyncVecML, JobTimeoutError, RateLimitPolicy, VecMLError

pytestmark = pytest.mark.integration

KEY = "vml_echoed_secret_key_6d1e0f2b9a"
SHORT = "local"  # the README's example key: masked as a token, and nothing else mangled


def response(status: int, reason: str, body: dict[str, Any], **headers: str) -> bytes:
    data = json.dumps(body).encode()
    lines = [f"HTTP/1.1 {status} {reason}", "Content-Type: application/json"]
    lines += [f"{k.replace('_', '-')}: {v}" for k, v in headers.items()]
    lines.append(f"Content-Length: {len(data)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


def echoing(key: str) -> Any:
    """Answers by endpoint, each quoting the key somewhere it could be kept."""
    echo = {"user_api_key": key, "note": f"you are {key}", key: "as a field name"}

    async def script(request: Any, writer: asyncio.StreamWriter) -> bool:
        endpoint = request.endpoint
        if endpoint == "init":
            data = response(401, f"Bad {key}", {**echo, "success": False,
                            "error_message": f"Invalid API key {key}"}, X_Echo=key)  # fmt: skip
        elif endpoint == "get_upload_data_status":
            data = response(200, "OK", {**echo, "success": True, "status": key, "job_id": key})
        elif endpoint == "get_automl_training_status":
            data = response(200, "OK", {**echo, "success": True, "status": "failed",
                            "error": f"training failed for {key}"})  # fmt: skip
        elif endpoint == "upload":
            data = response(200, "OK", {**echo, "success": True, "job_id": f"{key}_UploadJob"})
        elif endpoint == "delete_project":
            data = response(500, "Oops", {**echo, "success": False, "error": f"crash {key}"},
                            Set_Cookie=f"session={key}", Retry_After="0")  # fmt: skip
        else:
            data = response(200, "OK", {**echo, "success": True})
        writer.write(data)
        await writer.drain()
        return True

    return script


@pytest.fixture
def debug_everywhere() -> Iterator[io.StringIO]:
    """Every logger at DEBUG into one stream; restored afterwards."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))
    root = logging.getLogger()
    names = ["", "vecml_async", "httpx", "httpcore", "asyncio"]
    saved = {name: logging.getLogger(name).level for name in names}
    root.addHandler(handler)
    for name in names:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        for name, level in saved.items():
            logging.getLogger(name).setLevel(level)


async def caught(call: Awaitable[Any]) -> BaseException:
    """The error a call raises (this frame's locals hold no key)."""
    try:
        await call
    except VecMLError as err:
        return err
    raise AssertionError("the call did not fail")


def renderings(err: BaseException) -> list[str]:
    """Every way an error is shown: str, repr, attributes, tracebacks with locals."""
    texts = [str(err), repr(err), repr(vars(err))]
    texts.append("".join(traceback.format_exception(err)))
    captured = traceback.TracebackException.from_exception(err, capture_locals=True)
    texts.append("".join(captured.format()))
    rich = pytest.importorskip("rich")
    from rich.console import Console
    from rich.traceback import Traceback

    console = Console(file=io.StringIO(), width=200, color_system=None)
    console.print(
        Traceback.from_exception(type(err), err, err.__traceback__, show_locals=True, width=200)
    )
    assert rich is not None
    texts.append(console.file.getvalue())  # type: ignore[attr-defined]
    return texts


async def test_an_echoing_server_leaks_the_key_nowhere(scripted, debug_everywhere):
    """Errors, answers, jobs, logs and tracebacks with locals: the key is masked in all."""
    server = await scripted(echoing(KEY))
    shown: list[str] = []
    async with AsyncVecML(
        KEY, base_url=server.url, rate_limit=RateLimitPolicy(None), max_retries=1
    ) as client:
        errors = [
            await caught(client.init("p", "c", vector_dim=2)),
            await caught(client.delete_project("p")),
            await caught(client.training_job("t").wait(timeout=5)),
            await caught(client.upload_job("u").wait(timeout=0.2)),
        ]
        answers = [
            await client.get_upload_data_status("u"),
            await client.create_project("p"),
            await client.call("custom"),
        ]
        job = await client.upload("p", "c", b'[{"a": "1"}]', file_format="json")
        shown += [repr(a) for a in answers] + [repr(job), job.job_id, repr(client)]
    assert [type(e).__name__ for e in errors] == [
        "AuthenticationError",
        "ServerError",
        "JobFailedError",
        "JobTimeoutError",
    ]
    for err in errors:
        shown += renderings(err)
    shown.append(debug_everywhere.getvalue())
    everything = "\n".join(shown)
    assert KEY not in everything
    assert "user_api_key" not in "\n".join(repr(a) for a in answers)
    # What the server said is kept, masked:
    assert "Invalid API key ***" in str(errors[0])
    assert errors[0].headers["x-echo"] == "***"  # type: ignore[attr-defined]
    assert "set-cookie" not in errors[1].headers  # type: ignore[attr-defined]
    assert "training failed for ***" in str(errors[2])
    timeout = errors[3]
    assert isinstance(timeout, JobTimeoutError)
    assert timeout.status == "***"
    assert "(a status this client does not know)" in str(timeout)
    assert answers[0].model_extra == {
        "note": "you are ***",
        "***": "as a field name",
        "job_id": "***",
    }
    assert "HTTP Request: POST" in debug_everywhere.getvalue()  # httpx did log, masked


async def test_a_short_key_is_masked_without_mangling(scripted):
    """With the key 'local', messages keep words such as 'localhost' and 'local_proj'."""

    async def script(request: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(409, "Conflict", {"success": False, "error_message": (
            "Project local_proj already exists on localhost for key local")}))  # fmt: skip
        await writer.drain()
        return True

    server = await scripted(script)
    async with AsyncVecML(SHORT, base_url=server.url, rate_limit=None) as client:
        err = await caught(client.create_project("local_proj"))
    assert str(err).endswith("Project local_proj already exists on localhost for key ***")


@pytest.mark.parametrize("kind", ["upload", "training"])
async def test_job_status_json_of_the_cli_shows_no_key(scripted, kind):
    """`vecml-async job status --json` against the echoing server prints no key, and the
    JSON it prints has no user_api_key field."""
    server = await scripted(echoing(KEY))
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vecml_async.cli", "job", "status", "job-1", "--kind", kind,
        "--json", "--base-url", server.url,
        env={"VECML_API_KEY": KEY, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    text = out.decode() + err.decode()
    assert proc.returncode == 0, text
    assert KEY not in text
    printed = json.loads(out)
    assert "user_api_key" not in printed
    assert printed["note"] == "you are ***"


async def test_cli_error_line_masks_a_short_key_as_a_token(scripted):
    """The CLI's one error line with VECML_API_KEY=local: key masked, words intact."""

    async def script(request: Any, writer: asyncio.StreamWriter) -> bool:
        writer.write(response(409, "Conflict", {"success": False, "error_message": (
            "Project local_proj already exists for local")}))  # fmt: skip
        await writer.drain()
        return True

    server = await scripted(script)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "vecml_async.cli", "job", "status", "job-1", "--base-url",
        server.url,
        env={"VECML_API_KEY": SHORT, "PATH": "/usr/bin:/bin"},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    line = err.decode()
    assert "Project local_proj already exists for ***" in line, line
