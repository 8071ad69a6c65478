"""The :class:`Emulator` and the ways to run it on a loopback port.

* :func:`serve`: ``async with serve() as base_url`` runs uvicorn as a task on the current loop.
  It installs no signal handler (Ctrl-C stays the host application's) and, on exit, stops
  the server, cancels background jobs and closes the listening socket.
* :func:`run_in_thread`: the same for synchronous code, on a private loop in a thread.
* :func:`spawn`: a separate ``python -m vecml_async.emulator`` process, so a benchmark can put
  the server on another core; :func:`inspect_remote` reads its counters over HTTP.

Only loopback addresses are served: the emulator has no real authentication to offer.
Port 0 means a free port, found by binding the socket here and handing it to uvicorn, so
there is no window in which another process could take the port.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import uvicorn

from vecml_async.emulator.app import build_app, inspect_tenant
from vecml_async.emulator.context import Context
from vecml_async.emulator.persist import load_store, save_store
from vecml_async.emulator.settings import EmulatorSettings
from vecml_async.emulator.store import Collection, fingerprint

__all__ = ["LOOPBACK_HOSTS", "Emulator", "bind_loopback", "run_in_thread", "serve"]

LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")
_STARTUP_TIMEOUT = 30.0


class Emulator:
    """A VecML-compatible server: settings, in-memory store and the ASGI app.

    One emulator may be served many times (not concurrently on two loops); its data lives as
    long as the object. The inspection methods are for tests and may be called from any
    thread; call them once the jobs you care about have finished.
    """

    def __init__(
        self,
        settings: EmulatorSettings | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.settings = settings if settings is not None else EmulatorSettings()
        self._ctx = Context(self.settings, clock)
        if self.settings.data_dir is not None:
            self._ctx.store = load_store(self.settings.data_dir)
        self.app = build_app(self._ctx)

    def __repr__(self) -> str:
        return f"Emulator({self.settings!r})"

    @staticmethod
    def fingerprint(api_key: str) -> str:
        """The short, non-reversible tenant name used for ``api_key`` in ids and reports."""
        return fingerprint(api_key)

    def _collection(self, api_key: str, project: str, collection: str) -> Collection:
        tenant = self._ctx.store.find(fingerprint(api_key))
        found = tenant.projects.get(project) if tenant else None
        coll = found.collections.get(collection) if found else None
        if coll is None:
            raise KeyError(f"no collection {project}/{collection} for that key")
        return coll

    def collection_ids(self, api_key: str, project: str, collection: str) -> list[str]:
        """The ids stored in a collection, in insertion order (KeyError when absent)."""
        return list(self._collection(api_key, project, collection).ids)

    def collection_data(
        self, api_key: str, project: str, collection: str
    ) -> tuple[list[str], Any, list[dict[str, str]]]:
        """``(ids, vectors, attributes)`` of a collection: copies of the lists and of the
        vectors, a float32 (rows, dim) array or, for sparse collections, a CSR matrix."""
        coll = self._collection(api_key, project, collection)
        matrix, attributes = coll.snapshot()
        return list(coll.ids), matrix, attributes

    def collection_counters(self, api_key: str, project: str, collection: str) -> dict[str, Any]:
        """Rows stored, id writes and overwrites of one collection."""
        return dict(self._collection(api_key, project, collection).describe())

    def stats(self, api_key: str | None = None) -> dict[str, Any]:
        """Requests per endpoint, rejections by reason, faults by kind, id writes, overwrites
        and the largest number of requests in any 1 s window; for everyone or one key."""
        if api_key is not None:
            return inspect_tenant(self._ctx, fingerprint(api_key))
        tenants = list(self._ctx.store.tenants.values())
        return {
            **self._ctx.stats.snapshot(),
            "id_writes": sum(t.id_writes for t in tenants),
            "overwrites": sum(t.overwrites for t in tenants),
            "tenants": len(tenants),
            "max_requests_in_1s": self._ctx.stats.max_in_window(1.0),
        }

    def max_requests_in_window(self, window: float = 1.0, api_key: str | None = None) -> int:
        """Most requests that arrived within any ``window`` seconds (of one key, if given)."""
        fp = fingerprint(api_key) if api_key is not None else None
        return self._ctx.stats.max_in_window(window, fp)

    def inspect(self, api_key: str) -> dict[str, Any]:
        """What ``POST /_emulator/inspect`` answers for ``api_key`` (its data only)."""
        return inspect_tenant(self._ctx, fingerprint(api_key))

    def reset(self) -> None:
        """Forget all data and counters; restart the fault sequence from its seed."""
        self._ctx.reset()

    def save(self) -> Path:
        """Write the data to ``settings.data_dir`` now (servers also do it when they stop)."""
        if self.settings.data_dir is None:
            raise ValueError("this emulator has no data_dir to save to")
        return save_store(self._ctx.store, self.settings.data_dir)

    async def aclose(self) -> None:
        """Stop background work (waiting uploads and trainings fail), then save the data if
        ``data_dir`` is set. Servers call this when they stop."""
        await self._ctx.aclose()
        if self.settings.data_dir is not None:
            self.save()


class _InProcessServer(uvicorn.Server):
    """uvicorn without signal capture (the host application keeps its own Ctrl-C), and
    with a main loop that wakes at once on :meth:`stop` instead of at its next 0.1 s tick."""

    _wake: asyncio.Event | None = None

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def main_loop(self) -> None:
        self._wake = asyncio.Event()
        counter = 0
        while not await self.on_tick(counter):  # on_tick keeps the Date header current
            counter = (counter + 1) % 864_000
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.1)

    def stop(self) -> None:
        self.should_exit = True
        if self._wake is not None:
            self._wake.set()


def bind_loopback(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """A listening TCP socket on a loopback address (port 0 = a free port)."""
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"the emulator serves loopback only ({', '.join(LOOPBACK_HOSTS)})")
    if host == "localhost":
        host = "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio sets TCP_NODELAY on accepted sockets only when the
    # protocol is explicit, and without it every two-write response waits ~40 ms (Nagle).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def base_url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/api"


def _emulator_for(emulator: Emulator | None, settings: dict[str, Any]) -> Emulator:
    if emulator is not None:
        if settings:
            raise TypeError("pass either an Emulator or settings keywords, not both")
        return emulator
    return Emulator(EmulatorSettings(**settings))


def _quiet_http_protocol() -> type[asyncio.Protocol]:
    """uvicorn's ``auto`` HTTP protocol (httptools, else h11) without access-log lines.

    uvicorn decides per connection to write access lines when the shared ``uvicorn.access``
    logger has handlers, and its only switch, ``Config(access_log=False)``, empties that
    logger's handlers and stops its propagation: a host application's access log would be
    switched off by merely serving an emulator. Silencing the protocol instead leaves every
    logger as the host configured it.
    """
    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    base: Any = AutoHTTPProtocol

    class QuietHTTPProtocol(base):  # type: ignore[misc]  # uvicorn's protocol class is dynamic
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.access_log = False

    return QuietHTTPProtocol


_QUIET_HTTP = _quiet_http_protocol()


def guarded_http_protocol(header_timeout: float, max_header_bytes: int) -> type[asyncio.Protocol]:
    """The quiet protocol, closing connections that are slow or long to send a request head.

    A head (read when a connection opens, and after each answer) gets ``header_timeout``
    seconds and ``max_header_bytes`` bytes (httptools has no limit); past either, the
    connection is closed, so slowloris clients hold it ``header_timeout`` at most. Body
    deadlines are the application's (``EmulatorSettings.body_timeout``)."""

    class GuardedHTTPProtocol(_QUIET_HTTP):  # type: ignore[misc,valid-type]
        _head_timer: asyncio.TimerHandle | None = None
        _head_bytes = 0
        _head_cycle: object = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            self._stop_head_timer()
            super().connection_lost(exc)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if self._between_requests():
                self._await_head()

        def data_received(self, data: bytes) -> None:
            before = self.cycle
            super().data_received(data)
            if self.cycle is not before:  # a head completed within these bytes
                self._stop_head_timer()
                self._head_bytes = 0
            elif self._between_requests():
                if self._head_timer is None:
                    self._await_head()
                self._head_bytes += len(data)
                if self._head_bytes > max_header_bytes and not self.transport.is_closing():
                    self.transport.close()

        def _between_requests(self) -> bool:
            cycle = self.cycle
            return cycle is None or (cycle.response_complete and not cycle.more_body)

        def _await_head(self) -> None:
            self._stop_head_timer()
            self._head_bytes = 0
            self._head_cycle = self.cycle
            self._head_timer = self.loop.call_later(header_timeout, self._head_expired)

        def _stop_head_timer(self) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None

        def _head_expired(self) -> None:
            self._head_timer = None
            if self.cycle is self._head_cycle and not self.transport.is_closing():
                self.transport.close()

    return GuardedHTTPProtocol


def uvicorn_config(
    app: Any, log_level: str | None = None, settings: EmulatorSettings | None = None
) -> uvicorn.Config:
    """A uvicorn configuration that leaves the process's logging alone.

    ``log_level=None`` (in-process serving: :func:`serve`, :func:`run_in_thread`) keeps the
    levels of the shared ``uvicorn.error``/``uvicorn.access``/``uvicorn.asgi`` loggers as the
    host application set them; uvicorn sets all three whenever it is given a level. A level
    is for a process the emulator owns (``python -m vecml_async.emulator --log-level``).
    ``log_config=None`` installs no handlers or formatters; access lines are never written.
    ``settings`` gives the head limits of every connection (defaults without it).
    """
    limits = settings if settings is not None else EmulatorSettings()
    # http: the "auto" protocol (httptools, installed by the emulator extra, else h11).
    return uvicorn.Config(
        app,
        log_config=None,
        log_level=log_level,
        lifespan="off",
        access_log=True,  # False would strip the shared uvicorn.access logger's handlers
        http=guarded_http_protocol(limits.header_timeout, limits.max_header_bytes),
        h11_max_incomplete_event_size=limits.max_header_bytes,
    )


@contextlib.asynccontextmanager
async def serve(
    emulator: Emulator | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    **settings: Any,
) -> AsyncIterator[str]:
    """Serve ``emulator`` (or a new one built from ``settings``) on this event loop.

    Yields the base URL, e.g. ``"http://127.0.0.1:54321/api"``. On exit the server stops
    accepting, finishes or closes open connections, and background jobs are cancelled.
    """
    emu = _emulator_for(emulator, settings)
    sock = bind_loopback(host, port)
    server = _InProcessServer(uvicorn_config(emu.app, settings=emu.settings))
    task = asyncio.get_running_loop().create_task(server.serve(sockets=[sock]))
    try:
        deadline = time.monotonic() + _STARTUP_TIMEOUT
        while not server.started:
            if task.done():
                task.result()  # raises the startup error
                raise RuntimeError("the emulator stopped during startup")
            if time.monotonic() > deadline:
                raise TimeoutError("the emulator did not start in time")
            await asyncio.sleep(0.005)
        yield base_url_of(sock)
    finally:
        server.stop()
        try:
            await task
        finally:
            sock.close()
            await emu.aclose()


@contextlib.contextmanager
def run_in_thread(
    emulator: Emulator | None = None,
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    **settings: Any,
) -> Iterator[str]:
    """Serve on a private event loop in a daemon thread; yields the base URL.

    For synchronous code (``requests``, a sync test). Exiting stops the server and joins
    the thread.
    """
    emu = _emulator_for(emulator, settings)
    ready = threading.Event()
    state: dict[str, Any] = {}

    async def main() -> None:
        stop = asyncio.Event()
        state["loop"], state["stop"] = asyncio.get_running_loop(), stop
        async with serve(emu, host=host, port=port) as url:
            state["url"] = url
            ready.set()
            await stop.wait()

    def run() -> None:
        try:
            asyncio.run(main())
        except BaseException as err:  # reported to the caller, not lost in the thread
            state["error"] = err
        finally:
            ready.set()

    thread = threading.Thread(target=run, name="vecml-emulator", daemon=True)
    thread.start()
    ready.wait(_STARTUP_TIMEOUT)
    try:
        if "error" in state:
            raise state["error"]  # the thread's own startup error, e.g. a refused host
        if "url" not in state:
            raise TimeoutError("the emulator thread did not start in time")
        yield state["url"]
    finally:
        if "stop" in state and thread.is_alive():
            with contextlib.suppress(RuntimeError):  # the loop closed on its own meanwhile
                state["loop"].call_soon_threadsafe(state["stop"].set)
        thread.join(_STARTUP_TIMEOUT)
