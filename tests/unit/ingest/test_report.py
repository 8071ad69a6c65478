"""The report: what failures keep (ids and copies of encoded bytes), what failed_rows()
gives back, the accounting, and that a report pickles without its input."""

from __future__ import annotations

import pickle
from collections.abc import Iterator, Sequence

from vecml_async._ingest.report import BatchFailure, IngestReport, Row, RowBytes


def test_row_bytes_decode_to_the_rows_they_copy() -> None:
    """Comma-joined fragments decode back to (id, vector, attributes)."""
    rows = RowBytes(((4, 6),), b'"a","b"', b"[1.0,2.5],[3.0,4.0]", b'{"k":"v"},{}')
    assert rows.count == 2 and rows.decode_ids() == ["a", "b"]
    assert list(rows.rows()) == [("a", [1.0, 2.5], {"k": "v"}), ("b", [3.0, 4.0], {})]
    assert list(RowBytes(((0, 1),), b'"x"').rows()) == []  # ids only: read again instead


def test_failed_rows_decode_the_kept_bytes_and_read_the_rest_again() -> None:
    """Bytes kept are decoded; rows of failed jobs and unread rows come from the input."""
    asked: list[tuple[list[tuple[int, int]], int | None]] = []

    def reread(wanted: Sequence[tuple[int, int]], unread_from: int | None) -> Iterator[Row]:
        asked.append((list(wanted), unread_from))
        yield "again", [9.0], {}

    report = IngestReport("p", "c", rows_total=10, rows_sent=2, rows_unread=4, stopped_at=6)
    report.failures = [
        BatchFailure("send", 0, encoded=RowBytes(((0, 1),), b'"a"', b"[1.0]")),
        BatchFailure("job", 1, encoded=RowBytes(((3, 5),), b'"d","e"')),
        BatchFailure("invalid", None, [], 5, "bad", count=1),
    ]
    report.reread = reread
    assert report.failed_row_count == 4 and report.failed_ids == ["a", "d", "e"]
    assert report.rows_total == report.rows_sent + report.failed_row_count + 4
    assert report.failed_rows() == [("a", [1.0], {}), ("again", [9.0], {})]
    assert asked == [([(3, 5)], 6)]
    assert not report.complete and "4 rows unread" in report.summary()


def test_a_report_pickles_without_the_reader_of_its_input() -> None:
    """IngestError pickles its report; the re-reader (it holds the input) is left behind."""
    report = IngestReport("p", "c", rows_total=1)
    report.failures.append(BatchFailure("send", 0, encoded=RowBytes(((0, 1),), b'"a"', b"[1]")))
    report.reread = lambda wanted, start: iter([])
    copy = pickle.loads(pickle.dumps(report))
    assert copy.reread is None and copy.failed_ids == ["a"]
    assert "rows=1" in repr(copy.failures[0])
