"""Exactly-once terminal audit: outcomes the audit trail lacks are added at start-up, once."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from actors.services import GPU, LLM, TRIGGER
from actors.store import connect
from actors.testing import open_test_system, probe, scripted_gpu, scripted_llm
from actors.watcher.reconcile import audited_endings

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio


def endings(state: Path) -> list[tuple[str, str, bool]]:
    """(request id, event, recovered) of every terminal request record, in order."""
    out = []
    for line in (state / "audit.jsonl").read_text().splitlines():
        record = json.loads(line)
        if record["entity"] == "request" and record["event"] in {"completed", "failed", "rejected"}:
            out.append(
                (record["entity_id"], record["event"], bool(record["detail"].get("recovered")))
            )
    return out


def fakes() -> dict[str, object]:
    return {LLM: scripted_llm([]), GPU: scripted_gpu([]), TRIGGER: probe()}


async def test_missing_terminal_records_are_recovered_once(tmp_path: Path) -> None:
    """Two outcomes in the store, one already audited (the crash hit after the other's store
    write): the start adds exactly the missing one; the next start adds nothing."""
    async with open_test_system(tmp_path, fakes=fakes()):  # type: ignore[arg-type]
        pass  # creates and migrates the store
    conn = connect(tmp_path / "state.db")
    with conn:
        conn.executemany(
            "INSERT INTO request_outcomes (request_id, request_type, status, correlation_id,"
            " reason, detail, finished_at) VALUES (?, ?, ?, ?, ?, '{}', ?)",
            [
                ("r-audited", "learning_loop", "completed", "c1", "ok", "2026-01-01T00:00:00Z"),
                (
                    "r-lost",
                    "pipeline_rerun",
                    "failed",
                    "c2",
                    "step 3 failed",
                    "2026-01-01T00:01:00Z",
                ),
            ],
        )
    conn.close()
    with (tmp_path / "audit.jsonl").open("a") as audit:
        audit.write(
            json.dumps(
                {
                    "schema_version": 1,
                    "record_id": "x",
                    "recorded_at": "2026-01-01T00:00:00Z",
                    "correlation_id": "c1",
                    "entity": "request",
                    "entity_id": "r-audited",
                    "event": "completed",
                    "actor": "watcher",
                    "detail": {},
                },
                separators=(",", ":"),
            )
            + "\n"
        )
    for _start in range(2):
        async with open_test_system(tmp_path, fakes=fakes()):  # type: ignore[arg-type]
            pass
    assert endings(tmp_path) == [("r-audited", "completed", False), ("r-lost", "failed", True)]
    assert audited_endings(tmp_path / "audit.jsonl") == {
        "r-audited": {"completed"},
        "r-lost": {"failed"},
    }
