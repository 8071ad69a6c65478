"""Options and helpers shared by the ``vecml-async`` commands.

Every command that talks to a server takes the key from ``--api-key`` or ``VECML_API_KEY``
and the URL from ``--base-url`` or ``VECML_BASE_URL`` (:data:`ApiKey`, :data:`BaseUrl`), opens
a client with :func:`connect` and runs its coroutine with :func:`run`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Annotated, Any, TypeVar

import typer

from vecml_async._client import AsyncVecML
from vecml_async._config import API_KEY_ENV, BASE_URL_ENV
from vecml_async.cli._output import remember_key
from vecml_async.errors import InvalidInputError

T = TypeVar("T")


ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        envvar=API_KEY_ENV,
        show_default=False,
        show_envvar=True,
        help="VecML API key (prefer the environment variable: options show in process lists).",
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        envvar=BASE_URL_ENV,
        show_default=False,
        show_envvar=True,
        help="API base URL (default: https://aidb.vecml.com/api).",
    ),
]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON document for scripts.")]
Project = Annotated[str, typer.Argument(help="Project name.", show_default=False)]
Collection = Annotated[str, typer.Argument(help="Collection name.", show_default=False)]
Model = Annotated[str, typer.Argument(help="Model name.", show_default=False)]
Yes = Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")]


def run(factory: Callable[[], Awaitable[T]]) -> T:
    """Run one coroutine on a fresh event loop (the client is asyncio-only)."""

    async def main() -> T:
        return await factory()

    return asyncio.run(main())


@contextlib.asynccontextmanager
async def connect(
    api_key: str | None, base_url: str | None, **options: Any
) -> AsyncIterator[AsyncVecML]:
    """A client for the key and URL given (or their environment variables); the key is
    masked in any error line the command prints. No key: a usage error naming the option
    and the variable."""
    if not (api_key or os.environ.get(API_KEY_ENV)):
        raise InvalidInputError(
            f"no API key: pass --api-key or set {API_KEY_ENV} (any non-empty key works with "
            "a local emulator)",
            field="api_key",
        )
    remember_key(api_key)
    async with AsyncVecML(api_key or None, base_url=base_url or None, **options) as client:
        yield client


def with_client(
    api_key: str | None, base_url: str | None, action: Callable[[AsyncVecML], Awaitable[T]]
) -> T:
    """Open a client, run ``action`` with it, close it: the body of a one-call command."""

    async def go() -> T:
        async with connect(api_key, base_url) as client:
            return await action(client)

    return run(go)


def csv_list(value: str | None) -> list[str]:
    """``"a, b,,c"`` -> ``["a", "b", "c"]``; None -> ``[]``."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)


def parse_size(text: str) -> int:
    """``"4MiB"`` -> 4194304, ``"2MB"``/``"2m"`` -> 2000000, ``"1500"`` -> 1500."""
    match = _SIZE.match(text)
    if match is None:
        raise typer.BadParameter(f"{text!r} is not a size (e.g. 4MiB, 2MB, 500000)")
    number, unit = float(match.group(1)), (match.group(2) or "").lower()
    base = 1024 if "i" in unit else 1000
    power = "bkmg".index(unit[0]) if unit else 0
    value = int(number * base**power)
    if value < 1:
        raise typer.BadParameter("must be at least 1 byte")
    return value
