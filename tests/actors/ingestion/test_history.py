"""The history: dedupe, conflicts, backfill, the hash chain, the file log and the summary."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.ingestion.filelog import appended_of, mark_announced, pending_files
from actors.ingestion.history import GENESIS, append_draws, verify_chain
from actors.ingestion.ingest import FileOutcome, ingest_bytes
from actors.ingestion.parse import DrawFileError, parse_records
from actors.ingestion.summary import history_summary
from actors.store import connect, in_transaction
from tests.actors.ingestion.conftest import json_bytes, record

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

MOD = 1000


def ingest(conn: sqlite3.Connection, name: str, records: list[dict[str, object]]) -> FileOutcome:
    return ingest_bytes(
        conn,
        name,
        json_bytes(records),
        mod=MOD,
        max_bytes=10**8,
        origin="inbox",
        correlation_id=f"c-{name}",
    )


def values(conn: sqlite3.Connection, stream: str = "real") -> list[tuple[str, int, int]]:
    rows = conn.execute(
        "SELECT draw_id, value, is_backfill FROM draws WHERE stream = ? ORDER BY seq", (stream,)
    )
    return [tuple(r) for r in rows]


def test_a_file_appends_in_order_with_lengths_and_a_chain(conn: sqlite3.Connection) -> None:
    """Draws enter in file order; history_len counts up; the chain verifies from GENESIS."""
    outcome = ingest(conn, "a.json", [record(1), record(2), record(3)])
    assert outcome.report is not None
    assert [a.history_len for a in outcome.report.appended] == [1, 2, 3]
    assert [v[0] for v in values(conn)] == ["t-00001", "t-00002", "t-00003"]
    check = verify_chain(conn, "real")
    assert check.ok
    assert check.checked == 3
    assert check.fingerprint == outcome.report.appended[-1].fingerprint
    assert verify_chain(conn, "synthetic").fingerprint == GENESIS


def test_duplicates_by_id_and_by_time_and_value_are_counted_not_inserted(
    conn: sqlite3.Connection,
) -> None:
    """Same draw_id (same content) or same (timestamp, value) under another id: a duplicate."""
    ingest(conn, "a.json", [record(1), record(2)])
    again = ingest(conn, "b.json", [record(1), {**record(2), "draw_id": "other"}, record(3)])
    assert again.report is not None
    assert again.report.duplicates == 2
    assert [a.draw.draw_id for a in again.report.appended] == ["t-00003"]
    assert len(values(conn)) == 3
    assert verify_chain(conn, "real").ok


def test_a_conflicting_duplicate_quarantines_the_whole_file(conn: sqlite3.Connection) -> None:
    """Same id with another value fails the file: nothing of it is appended, it is logged."""
    ingest(conn, "a.json", [record(1)])
    before = verify_chain(conn, "real").fingerprint
    outcome = ingest(conn, "b.json", [record(5), record(1, value=999)])
    assert outcome.quarantined
    assert outcome.error is not None
    assert outcome.error.rule == "conflicting duplicate draw_id"
    assert "999" in outcome.error.detail
    assert [v[0] for v in values(conn)] == ["t-00001"]
    assert verify_chain(conn, "real").fingerprint == before
    rows = conn.execute("SELECT outcome, rule FROM ingest_files ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [
        ("processed", None),
        ("quarantined", "conflicting duplicate draw_id"),
    ]


def test_older_draws_are_accepted_as_backfill(conn: sqlite3.Connection) -> None:
    """A draw older than the latest is appended and flagged; newer ones are not."""
    ingest(conn, "a.json", [record(10)])
    outcome = ingest(conn, "b.json", [record(5), record(11), record(7)])
    assert outcome.report is not None
    assert [(a.draw.draw_id, a.is_backfill) for a in outcome.report.appended] == [
        ("t-00005", True),
        ("t-00011", False),
        ("t-00007", True),
    ]
    assert outcome.report.backfill == 2
    assert verify_chain(conn, "real").ok


def test_streams_are_kept_apart(conn: sqlite3.Connection) -> None:
    """Synthetic-tagged files go to their own stream, with their own chain and lengths."""
    ingest(conn, "a.json", [record(1)])
    outcome = ingest(conn, "s.json", [record(1, source="synthetic"), record(2, source="synthetic")])
    assert outcome.report is not None
    assert outcome.report.stream == "synthetic"
    assert [a.history_len for a in outcome.report.appended] == [1, 2]
    assert [v[0] for v in values(conn, "real")] == ["t-00001"]
    assert len(values(conn, "synthetic")) == 2


def test_tampering_breaks_the_chain(conn: sqlite3.Connection) -> None:
    """Changing a stored value is caught by verify_chain, naming the draw."""
    ingest(conn, "a.json", [record(1), record(2), record(3)])
    conn.execute("UPDATE draws SET value = 1 WHERE draw_id = 't-00002'")
    check = verify_chain(conn, "real")
    assert not check.ok
    assert "t-00002" in check.detail


def test_pending_announcements_and_the_file_log(conn: sqlite3.Connection) -> None:
    """Files with new draws await announcement until marked; all-duplicate files never do."""
    first = ingest(conn, "a.json", [record(1), record(2)])
    ingest(conn, "b.json", [record(1)])
    pending = pending_files(conn)
    assert [p.name for p in pending] == ["a.json"]
    assert pending[0].correlation_id == "c-a.json"
    replay = appended_of(conn, first.file_id)
    assert first.report is not None
    assert replay == list(first.report.appended)
    mark_announced(conn, [first.file_id])
    assert pending_files(conn) == []


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    batches=st.lists(
        st.lists(st.tuples(st.integers(0, 40), st.integers(0, 3)), min_size=1, max_size=8),
        min_size=1,
        max_size=6,
    )
)
def test_any_sequence_of_files_keeps_each_draw_once(
    tmp_path_factory: pytest.TempPathFactory, batches: list[list[tuple[int, int]]]
) -> None:
    """Whatever files arrive (repeats, backfill, collisions), each draw is in once, in order,
    conflicts fail whole files, and the chain verifies."""
    conn = connect(tmp_path_factory.mktemp("h") / "state.db")
    expected: dict[str, int] = {}
    for n, batch in enumerate(batches):
        recs = [record(minute, value=minute * 10 + variant) for minute, variant in batch]
        try:
            draws = parse_records("x", [(str(i), r) for i, r in enumerate(recs)], mod=MOD)
        except DrawFileError:
            continue  # a file that conflicts with itself is the parser's business
        conflict = any(expected.get(d.draw_id, d.value) != d.value for d in draws)
        try:
            in_transaction(conn, lambda c: append_draws(c, f"f{n}", draws, stream="real"))  # noqa: B023
        except DrawFileError:
            assert conflict
            continue
        assert not conflict
        for d in draws:
            expected.setdefault(d.draw_id, d.value)
    stored = conn.execute("SELECT draw_id, value FROM draws").fetchall()
    assert dict(stored) == expected
    assert len(stored) == len(expected)
    assert verify_chain(conn, "real").ok
    conn.close()


def test_history_summary_reports_streams_files_and_injector(conn: sqlite3.Connection) -> None:
    """The status section: counts, backfill, last draws newest first, fingerprint, files."""
    ingest(conn, "a.json", [record(3), record(1)])
    ingest(conn, "bad.json", [record(1, value=4)])
    summary = history_summary(conn, last=1)
    real = summary["streams"]["real"]
    assert real["draws"] == 2
    assert real["backfill"] == 1
    assert real["fingerprint"] == verify_chain(conn, "real").fingerprint
    assert [d["draw_id"] for d in real["last_draws"]] == ["t-00001"]
    assert real["latest_timestamp"] == "2026-01-01T00:03:00+00:00"
    assert summary["files"] == {"processed": 1, "quarantined": 1, "unannounced": 1}
    assert summary["injector"] == {}
    json.dumps(summary)  # JSON-ready for `status --json`


def test_an_empty_history_summarises_to_nothing(tmp_path: Path) -> None:
    """No draws, no files: empty sections, not errors."""
    conn = connect(tmp_path / "s.db")
    assert history_summary(conn) == {
        "streams": {},
        "files": {"processed": 0, "quarantined": 0, "unannounced": 0},
        "injector": {},
    }
    conn.close()
