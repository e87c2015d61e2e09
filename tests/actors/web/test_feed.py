"""The audit feed: complete lines only, bad lines counted, items numbered the same on every read."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from actors.web.feed import AuditFeed

if TYPE_CHECKING:
    from pathlib import Path


def line(entity: str, event: str, entity_id: str = "x") -> bytes:
    """One audit line."""
    record = {"entity": entity, "event": event, "entity_id": entity_id, "detail": {}}
    return (json.dumps(record) + "\n").encode()


def test_partial_lines_wait_and_bad_lines_are_counted(tmp_path: Path) -> None:
    """A line still being written is read once complete; a non-JSON line is counted, skipped."""
    path = tmp_path / "audit.jsonl"
    full = line("request", "filed")
    path.write_bytes(full + b"not json\n" + full[:10])
    feed = AuditFeed(path)
    first = feed.read_new()
    assert [r["event"] for r in first] == ["filed"]
    assert feed.bad_lines == 1
    assert first[0]["_offset"] == len(full)
    with path.open("ab") as handle:
        handle.write(full[10:])
    second = feed.read_new()
    assert [r["event"] for r in second] == ["filed"]
    assert feed.position == path.stat().st_size


def test_tracked_items_are_numbered_by_occurrence(tmp_path: Path) -> None:
    """The n-th escalation of one request gets n-1, on a first read and on any re-read."""
    path = tmp_path / "audit.jsonl"
    path.write_bytes(
        line("request", "escalation", "r1")
        + line("request", "filed", "r1")
        + line("request", "escalation", "r2")
        + line("request", "escalation", "r1")
    )
    track = frozenset({("request", "escalation")})
    for _read in range(2):
        feed = AuditFeed(path, track=track)
        feed.fold(feed.read_new(), publish=False)
        assert [(r["entity_id"], r["_nth"]) for r in feed.tracked] == [
            ("r1", 0),
            ("r2", 0),
            ("r1", 1),
        ]
        assert feed.counts["request", "escalation"] == 3


def test_a_truncated_file_is_read_again_from_its_start(tmp_path: Path) -> None:
    """A trail replaced by a shorter file (by hand) is re-read, not skipped."""
    path = tmp_path / "audit.jsonl"
    path.write_bytes(line("system", "started") * 3)
    feed = AuditFeed(path)
    assert len(feed.read_new()) == 3
    path.write_bytes(line("system", "halted"))
    assert [r["event"] for r in feed.read_new()] == ["halted"]


def test_a_big_trail_is_read_in_bounded_pieces(tmp_path: Path, monkeypatch: Any) -> None:
    """With a small read size, every record is still folded, none twice, lines never split."""
    monkeypatch.setattr("actors.web.feed.CHUNK_BYTES", 100)
    path = tmp_path / "audit.jsonl"
    path.write_bytes(b"".join(line("request", "filed", f"r{i}") for i in range(50)))
    feed = AuditFeed(path)
    feed.load()
    assert feed.records == 50
    assert feed.counts["request", "filed"] == 50
    assert feed.position == path.stat().st_size
