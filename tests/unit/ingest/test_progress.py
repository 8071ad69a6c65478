"""Progress bars for ingest: tqdm and rich render, and bad progress= values are refused."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
import respx

from vecml_async import AsyncVecML, IngestProgress


@pytest.fixture
def mock_server(base_url: str) -> Iterator[None]:
    with respx.mock(base_url=base_url) as mock:
        mock.post("/add_data_batch").mock(
            return_value=httpx.Response(200, json={"success": True, "job_id": "j"})
        )
        yield


@pytest.mark.parametrize("bar", ["tqdm", "rich", True])
async def test_progress_bars_render_rows(
    mock_server: None, api_key: str, base_url: str, bar: object, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bar is drawn on stderr, never stdout (the application's), and closed; the ingest
    completes."""
    async with AsyncVecML(api_key, base_url=base_url, rate_limit=None) as client:
        report = await client.ingest(
            "p", "c", np.zeros((300, 4), dtype=np.float32), max_rows=50, progress=bar
        )
    assert report.complete
    captured = capsys.readouterr()
    assert "300" in captured.err
    assert captured.out == ""


async def test_progress_callback_gets_monotonic_counts(
    mock_server: None, api_key: str, base_url: str
) -> None:
    """The callback sees rows_expected and non-decreasing sent counts."""
    states: list[IngestProgress] = []
    async with AsyncVecML(api_key, base_url=base_url, rate_limit=None) as client:
        await client.ingest(
            "p",
            "c",
            np.zeros((300, 4), dtype=np.float32),
            max_rows=50,
            concurrency=1,
            progress=states.append,
        )
    assert [s.rows_sent for s in states] == [50, 100, 150, 200, 250, 300]
    assert {s.rows_expected for s in states} == {300}
