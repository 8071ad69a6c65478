"""Fixtures of the scale-out suites: a real redis-server on a free loopback port.

``redis_url`` starts ``redis-server`` once per session (no persistence, loopback only),
waits until it answers PING and stops it at the end. When the program is missing and the
tests run as root on a Debian-like machine, it is installed with apt-get first (what
``.ci/run`` also does), so the README's test command runs these tests on a fresh machine;
elsewhere, without ``redis-server`` or redis-py, the tests that need it are skipped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator

import pytest

STARTUP_TIMEOUT = 20.0


def free_port() -> int:
    """A loopback port nothing listens on (right now)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _install_redis_server() -> str | None:
    """Install Debian's redis-server when allowed here (root, apt-get); its path, or None."""
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        return None
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for argv in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "redis-server"]):
        done = subprocess.run(argv, env=env, capture_output=True, timeout=600, check=False)
        if done.returncode != 0:
            return None
    return shutil.which("redis-server")


@contextlib.contextmanager
def redis_server() -> Iterator[str]:
    """Run a private redis-server; yields its URL."""
    program = shutil.which("redis-server") or _install_redis_server()
    if program is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; CI has it)")
    pytest.importorskip("redis", reason="redis-py is not installed (the [redis] extra)")
    port = free_port()
    argv = [program, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly"]
    proc = subprocess.Popen(
        [*argv, "no", "--loglevel", "warning"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not _answers_ping(port):
            if proc.poll() is not None:
                raise RuntimeError(f"redis-server exited with status {proc.returncode}")
            if time.monotonic() > deadline:
                raise TimeoutError("redis-server did not answer PING in time")
            time.sleep(0.02)  # polling interval, not a synchronisation delay
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """The URL of the session's redis-server."""
    with redis_server() as url:
        yield url


@pytest.fixture
def unreachable_redis_url() -> str:
    """A Redis URL (with a password) where nothing listens."""
    return f"redis://:budget-s3cret@127.0.0.1:{free_port()}/0"
