"""Notifications: what a message says and links to, and each item sent once (real store)."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

from actors.config import NotifyConfig
from actors.notify.notifier import Notifier, item_key, load_cursor, notification_for, sent
from actors.store import open_store

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

ESCALATION: dict[str, Any] = {
    "record_id": "rec-1",
    "entity": "request",
    "entity_id": "req-1",
    "event": "escalation",
    "detail": {"reason": "step 5: confidence 0.4", "resume": "python -m actors.system resume"},
    "_nth": 0,
}


def test_a_message_names_the_item_says_why_and_links_to_its_page() -> None:
    """Title, reason, resume command and the item's page; the old command's variables stay."""
    note = notification_for(ESCALATION, "http://127.0.0.1:8787/")
    assert note.url == "http://127.0.0.1:8787/requests/req-1"
    assert "step 5: confidence 0.4" in note.body
    assert note.url in note.body
    assert note.env["WATCHER_EVENT"] == "escalation"
    assert note.env["WATCHER_REQUEST_ID"] == "req-1"
    assert note.env["WATCHER_RESUME_COMMAND"] == "python -m actors.system resume"
    decision = notification_for(
        {"entity": "decision", "entity_id": "d-9", "event": "escalate", "detail": {}}, "http://h"
    )
    assert decision.url == "http://h/pending#d-9"
    assert item_key(ESCALATION) == "request:req-1:escalation:0"


async def test_each_item_is_sent_once_and_failures_are_recorded(tmp_path: Path) -> None:
    """The command runs once per item, however often the record is handled; a failing
    command is tried `attempts` times and recorded as failed with its error."""
    out = tmp_path / "calls.txt"
    script = f"import os; open({str(out)!r}, 'a').write(os.environ['WATCHER_ITEM_ID'] + '\\n')"
    async with open_store(tmp_path / "state.db") as store:
        assert await store.run(load_cursor) is None
        good = Notifier(NotifyConfig(), (sys.executable, "-c", script), store, "http://h")
        await good.handle(ESCALATION)
        await good.handle(ESCALATION)  # the same line read again (a restart, a rewound cursor)
        await good.handle({**ESCALATION, "_nth": 1})  # escalated again later: a new item
        await good.handle({**ESCALATION, "event": "filed"})  # not a notifying event
        bad = Notifier(
            NotifyConfig(attempts=1), (sys.executable, "-c", "raise SystemExit(3)"), store, "h"
        )
        await bad.handle({**ESCALATION, "entity_id": "req-2"})
        rows = await store.run(sent)
    assert out.read_text().splitlines() == ["req-1", "req-1"]
    assert [(r["entity_id"], r["status"]) for r in rows] == [
        ("req-1", "sent"),
        ("req-1", "sent"),
        ("req-2", "failed"),
    ]
    assert "exited 3" in rows[2]["error"]
