"""The job's history file: the whole real history, or the regime that starts at a draw."""

from __future__ import annotations

import json
from contextlib import closing
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

import pytest

from actors.gpu.history_file import HistoryStartError, write_history
from actors.ingestion.history import append_draws
from actors.store import connect, in_transaction
from messages.ingestion import Draw

if TYPE_CHECKING:
    from pathlib import Path

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _store(tmp_path: Path, count: int) -> Path:
    db = tmp_path / "state.db"
    draws = [
        Draw(draw_id=f"d{i:03d}", timestamp=T0 + timedelta(hours=i), value=i % 1000)
        for i in range(count)
    ]
    with closing(connect(db)) as conn:
        in_transaction(conn, lambda c: append_draws(c, "f.json", draws, stream="real"))
    return db


def _ids(path: Path) -> list[str]:
    return [json.loads(line)["draw_id"] for line in path.read_text().splitlines()]


def test_whole_history_by_default(tmp_path: Path) -> None:
    """Without a start draw the file holds every real draw, oldest first."""
    db = _store(tmp_path, 12)
    with closing(connect(db)) as conn:
        count, _digest = write_history(conn, tmp_path / "h.jsonl")
    assert count == 12
    assert _ids(tmp_path / "h.jsonl") == [f"d{i:03d}" for i in range(12)]


def test_history_from_a_draw_starts_there(tmp_path: Path) -> None:
    """With a start draw the file holds that draw and every later one (the regime)."""
    db = _store(tmp_path, 12)
    with closing(connect(db)) as conn:
        count, _digest = write_history(conn, tmp_path / "h.jsonl", start_draw_id="d007")
    assert count == 5
    assert _ids(tmp_path / "h.jsonl") == ["d007", "d008", "d009", "d010", "d011"]


def test_unknown_start_draw_is_refused_naming_it(tmp_path: Path) -> None:
    """A start draw the store does not hold is an error naming it; no file is written."""
    db = _store(tmp_path, 3)
    with closing(connect(db)) as conn, pytest.raises(HistoryStartError, match="nope"):
        write_history(conn, tmp_path / "h.jsonl", start_draw_id="nope")
    assert not (tmp_path / "h.jsonl").exists()
