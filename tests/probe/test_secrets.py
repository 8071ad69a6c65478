"""The key never appears in what the probe produces, even from a server that echoes it: in
every JSON answer (a field, the error text, an echoed ``user_api_key``), every plain-text
answer and a header. The profile, the table, ``--json``, ``--report`` and ``-o`` are checked;
the echo is there, masked."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from typer.testing import CliRunner

from vecml_async import AsyncVecML
from vecml_async.cli import app
from vecml_async.emulator import Emulator, EmulatorSettings, run_in_thread, serve
from vecml_async.probe import probe

pytestmark = pytest.mark.integration

KEY = "vml_probe_echoed_secret_7f3a9c1d2e"


class EchoKey:
    """ASGI middleware: every answer of the wrapped app carries the key somewhere."""

    def __init__(self, app: Any, key: str) -> None:
        self.app, self.key = app, key

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: dict[str, Any] = {}
        chunks: list[bytes] = []

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
                return
            chunks.append(message.get("body", b""))
            if message.get("more_body"):
                return
            body = self.echo(b"".join(chunks))
            headers = [(k, v) for k, v in start["headers"] if k.lower() != b"content-length"]
            headers += [
                (b"content-length", str(len(body)).encode()),
                (b"x-echo", self.key.encode()),
            ]
            await send({**start, "headers": headers})
            await send({"type": "http.response.body", "body": body})

        await self.app(scope, receive, capture)

    def echo(self, body: bytes) -> bytes:
        try:
            data = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            data = None
        if not isinstance(data, dict):
            return body + f" (for {self.key})".encode()
        data["echo"] = f"served to {self.key}"
        data["user_api_key"] = self.key
        if isinstance(data.get("error_message"), str):
            data["error_message"] += f" [key {self.key}]"
        return orjson.dumps(data)


def _echoing(**settings: Any) -> Emulator:
    emulator = Emulator(EmulatorSettings(**settings))
    emulator.app = EchoKey(emulator.app, KEY)
    return emulator


@pytest.mark.parametrize(
    ("settings", "options"),
    [({}, {}), ({"rate_limit": 3}, {"rate": True, "size": True, "questions": ()})],
    ids=["questions", "rate-and-size"],
)
async def test_the_profile_holds_the_echo_masked_never_the_key(
    settings: dict[str, Any], options: dict[str, Any]
) -> None:
    """Every question, then the rate ramp and the size search, against the echoing server."""
    emulator = _echoing(**settings)
    async with serve(emulator) as url, AsyncVecML(KEY, base_url=url, rate_limit=None) as c:
        profile = await probe(c, **options)
    text = profile.model_dump_json()
    assert KEY not in text
    assert "served to ***" in text
    if options:
        assert profile.rate_limit_status == 400
        assert profile.max_body_bytes == 200_000_000
    else:
        assert "[key ***]" in text
        assert profile.error_status == "http"  # the echo did not confuse the answers
    assert emulator.inspect(KEY)["projects"] == {}


@pytest.fixture
def echoing_url(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    with run_in_thread(_echoing()) as url:
        monkeypatch.setenv("VECML_API_KEY", KEY)
        monkeypatch.setenv("VECML_BASE_URL", url)
        yield url


@pytest.mark.parametrize("options", [[], ["--json"], ["--report"]])
def test_the_command_never_prints_the_key(
    echoing_url: str, tmp_path: Path, options: list[str]
) -> None:
    """The table, the JSON and the report (and the file -o writes) show the echo masked."""
    saved = tmp_path / "server.json"
    result = CliRunner().invoke(app, ["probe", *options, "-o", str(saved)])
    assert result.exit_code == 0, result.output
    written = saved.read_text()
    for text in (result.stdout, result.stderr, written):
        assert KEY not in text
    assert "***" in result.stdout
    assert orjson.loads(written)["error_status"] == "http"
    if options == ["--json"]:
        assert orjson.loads(result.stdout) == orjson.loads(written)  # stdout is the profile
