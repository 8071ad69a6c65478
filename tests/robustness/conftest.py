"""Fixtures of the robustness suites: seeds, emulators over real loopback, helper processes.

Test modules cannot import from here (importlib import mode, no ``__init__.py``); they reach
the helpers through fixtures.

Seeds: every random choice of a test comes from the ``seed`` fixture. It is random per run
(``ROBUSTNESS_SEED=<n>`` pins it), and a failing test prints it in its report section
"robustness seed" (the tests also put it in their assertion messages).

Emulators:

* ``emulator_process(**settings)``: a child process (``emulator_proc.py``) so that client and
  server run on different cores, still inspectable: ``ids()``, ``data()``, ``counters()``,
  ``stats()``, ``window()``.
* ``thread_emulator(**settings)``: ``run_in_thread`` in this process; returns the
  :class:`Emulator` (Python inspection view) and the base URL. It outlives a killed client
  process and keeps the test loop free of server tasks.

Hostile servers: ``scripted(script)`` starts a raw asyncio HTTP server on loopback whose
``script(request, writer)`` answers each request as it likes (drip-fed, endless, garbage,
echoing the key, reset); it records every request it read.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import json
import os
import random
import socket
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import vecml_async
from vecml_async.emulator import Emulator, EmulatorSettings, FaultConfig, run_in_thread

HERE = Path(__file__).resolve().parent
KEY = "vml_robustness_key_9f3c2a7e5b1d4c6a8e0f"
OTHER_KEY = "vml_robustness_other_key_24b8d1"
SEED_KEY = pytest.StashKey[int]()


# ----------------------------------------------------------------------------- seeds


@pytest.fixture
def seed(request: pytest.FixtureRequest) -> int:
    """The test's random seed (``ROBUSTNESS_SEED`` pins it); printed when the test fails."""
    pinned = os.environ.get("ROBUSTNESS_SEED")
    value = int(pinned) if pinned else random.SystemRandom().randrange(2**32)
    request.node.stash[SEED_KEY] = value
    return value


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    if report.failed and SEED_KEY in item.stash:
        value = item.stash[SEED_KEY]
        report.sections.append(
            ("robustness seed", f"reproduce with ROBUSTNESS_SEED={value} ({item.nodeid})")
        )
    return report


@pytest.fixture(autouse=True)
def _no_delays() -> Iterator[None]:
    """Retries and polls happen as often as in production, without waiting in between."""
    with vecml_async.testing_mode():
        yield


@pytest.fixture
def key() -> str:
    return KEY


@pytest.fixture
def other_key() -> str:
    return OTHER_KEY


# ----------------------------------------------------------------------------- processes


def _jsonable(value: Any) -> Any:
    """Settings and fault configs as JSON values (for the child's command line)."""
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in fields(value) if f.init}
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (frozenset, set)):
        return sorted(value)
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


class EmulatorProcess:
    """A running ``emulator_proc.py`` child and its command channel."""

    def __init__(self, settings: dict[str, Any], faults: FaultConfig | None) -> None:
        EmulatorSettings(**settings)  # fail here, with a clear error, on a bad setting
        fault_fields = {} if faults is None else _jsonable(faults)
        spec = json.dumps({"settings": _jsonable(settings), "faults": fault_fields})
        env = dict(os.environ)
        root = str(HERE.parents[1])
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "emulator_proc.py"), spec],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.startswith("URL "):
            self.close()
            raise RuntimeError(f"the emulator process did not start: {line!r}")
        self.url = line[4:].strip()

    def command(self, op: str, **fields: Any) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({"op": op, **fields}) + "\n")
        self.proc.stdin.flush()
        reply = json.loads(self.proc.stdout.readline())
        if "error" in reply:
            raise RuntimeError(reply["error"])
        return reply["ok"]

    def ids(self, key: str, project: str, collection: str) -> list[str]:
        return list(self.command("ids", key=key, project=project, collection=collection))

    def data(
        self, key: str, project: str, collection: str, tmp: Path
    ) -> tuple[list[str], np.ndarray[Any, Any]]:
        path = tmp / f"{project}-{collection}.npy"
        ids = self.command("save", key=key, project=project, collection=collection, path=str(path))
        return ids, np.load(path)

    def counters(self, key: str, project: str, collection: str) -> dict[str, Any]:
        return dict(self.command("counters", key=key, project=project, collection=collection))

    def stats(self, key: str | None = None) -> dict[str, Any]:
        return dict(self.command("stats", key=key))

    def window(self, window: float = 1.0, key: str | None = None) -> int:
        return int(self.command("window", window=window, key=key))

    def close(self) -> None:
        if self.proc.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@pytest.fixture
def emulator_process() -> Iterator[Callable[..., EmulatorProcess]]:
    """Factory: ``emulator_process(faults=FaultConfig(...), **settings)`` starts a child."""
    started: list[EmulatorProcess] = []

    def start(*, faults: FaultConfig | None = None, **settings: Any) -> EmulatorProcess:
        process = EmulatorProcess(settings, faults)
        started.append(process)
        return process

    yield start
    for process in started:
        process.close()


@pytest.fixture
def thread_emulator() -> Iterator[Callable[..., tuple[Emulator, str]]]:
    """Factory: ``thread_emulator(**settings)`` serves an Emulator on its own thread/loop."""
    with contextlib.ExitStack() as stack:

        def start(**settings: Any) -> tuple[Emulator, str]:
            emulator = Emulator(EmulatorSettings(**settings))
            url = stack.enter_context(run_in_thread(emulator))
            return emulator, url

        yield start


def _load_helper(name: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"robustness_{name}", HERE / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def ingest_child() -> Any:
    """The ``ingest_child.py`` module (its ``make_rows`` rebuilds a child's input)."""
    module = _load_helper("ingest_child")
    module.PATH = HERE / "ingest_child.py"
    return module


@pytest.fixture
def child_env() -> dict[str, str]:
    """Environment of a helper process: finds this checkout's package."""
    env = dict(os.environ)
    root = str(HERE.parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")]))
    return env


# ----------------------------------------------------------------------------- scripted servers


class Request:
    """One request as a scripted server read it."""

    def __init__(self, line: bytes, headers: dict[str, str], body: bytes) -> None:
        self.line = line.decode("latin-1")
        self.method, self.path = self.line.split(" ")[:2]
        self.endpoint = self.path.rsplit("/", 1)[-1]
        self.headers = headers
        self.body = body


class ScriptedServer:
    """A raw asyncio HTTP/1.1 server on loopback that answers each request by a script.

    ``script(request, writer)`` writes whatever it likes (a valid answer, a drip, garbage, an
    endless body) and may close or reset the connection. ``requests`` lists what arrived, so
    a test can count how often an endpoint was really sent.
    """

    def __init__(self) -> None:
        self.requests: list[Request] = []
        self.server: asyncio.Server | None = None
        self.url = ""
        # Connections still being answered (a drip may outlive the client's deadline): closed
        # with the server, so no transport is left for the garbage collector to warn about.
        self._handlers: set[asyncio.Task[None]] = set()

    async def start(self, script: Callable[..., Any]) -> str:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            task = asyncio.current_task()
            assert task is not None
            self._handlers.add(task)
            try:
                while True:
                    request = await _read_request(reader)
                    if request is None:
                        break
                    self.requests.append(request)
                    keep = await script(request, writer)
                    if not keep:
                        break
            except (ConnectionError, asyncio.IncompleteReadError):
                pass
            finally:
                self._handlers.discard(task)
                if not writer.is_closing():
                    writer.close()
                # The socket is released a loop turn after close(): wait for it, so a test's
                # loop never ends with it still open.
                with contextlib.suppress(Exception, asyncio.CancelledError):
                    await asyncio.wait_for(writer.wait_closed(), 2)

        self.server = await asyncio.start_server(handle, "127.0.0.1", 0)
        port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/api"
        return self.url

    def sent(self, endpoint: str) -> int:
        return sum(1 for r in self.requests if r.endpoint == endpoint)

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            handlers = list(self._handlers)
            for task in handlers:
                task.cancel()
            await asyncio.gather(*handlers, return_exceptions=True)
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.server.wait_closed(), 2)


async def _read_request(reader: asyncio.StreamReader) -> Request | None:
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    line, *lines = head[:-4].split(b"\r\n")
    headers = {}
    for raw in lines:
        name, _, value = raw.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return Request(line, headers, body)


@pytest.fixture
async def scripted() -> Any:
    """Factory: ``url = await scripted(script)`` starts a :class:`ScriptedServer`; returns
    the server object as ``scripted.last``."""
    servers: list[ScriptedServer] = []

    async def start(script: Callable[..., Any]) -> ScriptedServer:
        server = ScriptedServer()
        await server.start(script)
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


def _reset(writer: asyncio.StreamWriter) -> None:
    """Close with a TCP reset (SO_LINGER 0): the client sees 'connection reset by peer'."""
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


@pytest.fixture
def reset() -> Callable[[asyncio.StreamWriter], None]:
    """``reset(writer)``: abort the connection with a TCP RST."""
    return _reset
