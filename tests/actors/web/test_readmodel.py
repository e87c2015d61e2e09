"""What awaits a person, as the console lists it: every kind, with the actions that fit."""

from __future__ import annotations

from typing import TYPE_CHECKING

from actors.config import Settings
from actors.paths import StatePaths
from actors.watcher.halt import HaltState, write_halt
from actors.web.readmodel import _normalise, connect_readonly, pending_items
from messages.base import utcnow
from tests.actors.web.test_app import seed_decision

if TYPE_CHECKING:
    from pathlib import Path


def test_items_of_the_pending_read_model_get_ids_titles_and_actions() -> None:
    """An item shaped like actors.pending's (item_id, summary) is shown with the right buttons."""
    parked = _normalise(
        {"kind": "parked", "item_id": "r-1", "summary": "parked: step 5", "reasons": ["low"]}
    )
    assert (parked["id"], parked["title"], parked["actions"]) == (
        "r-1",
        "parked: step 5",
        ["resume"],
    )
    decision = _normalise({"kind": "decision", "item_id": "d-1", "summary": "s"})
    assert decision["actions"] == ["approve", "reject"]
    info = _normalise({"kind": "no_signal", "item_id": "n", "summary": "no signal"})
    assert info["actions"] == []


def test_a_decision_and_the_halt_are_both_pending(tmp_path: Path) -> None:
    """A Chapter 13 decision and the kill switch appear, each with its own actions."""
    seed_decision(tmp_path, "dec-7", "regime shift")
    write_halt(tmp_path / "halt", HaltState(reason="operator", halted_at=utcnow()))
    settings = Settings(state_dir=tmp_path)
    conn = connect_readonly(tmp_path / "state.db")
    try:
        items = pending_items(conn, StatePaths(tmp_path), settings)
    finally:
        conn.close()
    by_kind = {item["kind"]: item for item in items}
    assert by_kind["decision"]["id"] == "dec-7"
    assert by_kind["decision"]["actions"] == ["approve", "reject"]
    assert by_kind["halt"]["actions"] == ["resume"]
    assert "operator" in by_kind["halt"]["reasons"]
