"""Command line of the emulator: ``python -m vecml_async.emulator [options]``.

:func:`main` parses options with argparse (no extra dependencies, so the package CLI can
delegate to it), binds a loopback socket, prints one line ``VECML_EMULATOR_URL <base_url>``
on stdout (what :func:`~vecml_async.emulator.process.spawn` waits for) and serves until
SIGINT or SIGTERM. Logs go to stderr. The options themselves, and the way from settings to
options and back, are in :mod:`~vecml_async.emulator.options` (re-exported here).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import socket
import sys
import threading
from collections.abc import Sequence
from types import FrameType

import uvicorn
from uvicorn.config import LOG_LEVELS

from vecml_async.emulator.options import (
    API_KEYS_ENV,
    PROG,
    URL_LINE_PREFIX,
    api_keys_env,
    build_parser,
    settings_from_args,
    settings_to_argv,
)
from vecml_async.emulator.server import (
    LOOPBACK_HOSTS,
    Emulator,
    base_url_of,
    bind_loopback,
    uvicorn_config,
)
from vecml_async.emulator.settings import EmulatorSettings

__all__ = [
    "API_KEYS_ENV",
    "PROG",
    "URL_LINE_PREFIX",
    "api_keys_env",
    "build_parser",
    "check_args",
    "main",
    "settings_from_args",
    "settings_to_argv",
]


async def _foreground(emulator: Emulator, sock: socket.socket, log_level: str) -> None:
    # uvicorn's own Server here (not serve()): as the main program it should own Ctrl-C.
    server = uvicorn.Server(uvicorn_config(emulator.app, log_level, emulator.settings))
    try:
        await server.serve(sockets=[sock])
    finally:
        sock.close()
        await emulator.aclose()  # fails waiting jobs, saves to data_dir when set


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def check_args(args: argparse.Namespace) -> EmulatorSettings:
    """The settings of parsed options, after every check that needs no socket: ValueError
    (or TypeError) for invalid settings or a host that is not loopback."""
    settings = settings_from_args(args)
    if args.host not in LOOPBACK_HOSTS:
        raise ValueError(f"the emulator serves loopback only ({', '.join(LOOPBACK_HOSTS)})")
    return settings


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    """Run the emulator in the foreground until SIGINT or SIGTERM; returns the exit status.

    ``prog`` names the program in usage and error messages (a wrapping CLI passes its own).
    Bad options exit 2 with the usage; so does a server that cannot start (a port in use, an
    unreadable ``--data-dir`` snapshot), with one line ``PROG: error: ...``.
    """
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        settings = check_args(args)
    except (ValueError, TypeError) as err:
        parser.error(str(err))
    # What only a start can find is one line: the usage would not help with it.
    try:
        emulator = Emulator(settings)  # loads the --data-dir snapshot
    except (ValueError, OSError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    try:
        sock = bind_loopback(args.host, args.port)
    except OSError as err:
        where = f"{args.host}:{args.port}"
        parser.exit(2, f"{parser.prog}: error: cannot listen on {where}: {err.strerror or err}\n")
    logging.basicConfig(stream=sys.stderr, level=LOG_LEVELS[args.log_level])
    print(URL_LINE_PREFIX + base_url_of(sock), flush=True)
    # uvicorn stops gracefully on SIGINT/SIGTERM, then re-raises the signal to the previous
    # handler. Ours raises KeyboardInterrupt right there, so the cleanup below still runs
    # (SIGTERM's default would kill the process; asyncio.run's own SIGINT handler would
    # cancel the cleanup's awaits) and the data is saved.
    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_foreground(emulator, sock, args.log_level))
    return 0
