"""Chapter 13's commands run as a user would: subprocesses beside the state directory."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from actors.store import connect
from actors.trigger import decision_store
from tests.e2e.conftest import run_cli

if TYPE_CHECKING:
    from pathlib import Path


def escalated(state_dir: Path, decision_id: str) -> None:
    """Seed one decision waiting for a person (as the actor records it)."""
    conn = connect(state_dir / "state.db")
    try:
        request = {
            "request_type": "pipeline_rerun",
            "request_id": decision_id,
            "source": "trigger",
            "reason": "Chapter 13: regime_shift (ESCALATE)",
        }
        decision_store.insert_decision(
            conn,
            decision_id=decision_id,
            draw_id="d-1",
            draw_index=1,
            correlation_id="cid-1",
            rule="regime_shift",
            action="full_pipeline",
            evidence={"rule": "regime_shift"},
            outcome="ESCALATE",
            reasons=["a regime shift is always a person's call"],
            status="pending_approval",
            request_id=decision_id,
            request=request,
        )
    finally:
        conn.close()


def test_pending_approve_reject_and_policy_commands(tmp_path: Path) -> None:
    """`pending` lists, `approve` files into the spool, `reject` needs a reason, `policy show`
    prints the default policy and `policy rollback` says when there is nothing to undo."""
    (tmp_path / "watcher_requests").mkdir()
    escalated(tmp_path, "dec1")
    escalated(tmp_path, "dec2")
    base = ("actors.system", "--state-dir", str(tmp_path))
    listed = run_cli(*base, "pending", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [json.loads(line)["item_id"] for line in listed.stdout.splitlines()] == [
        "dec1",
        "dec2",
    ]
    approved = run_cli(*base, "approve", "dec1")
    assert approved.returncode == 0, approved.stderr
    assert (tmp_path / "watcher_requests" / "new" / "dec1.json").exists()
    missing_reason = run_cli(*base, "reject", "dec2")
    assert missing_reason.returncode == 2
    rejected = run_cli(*base, "reject", "dec2", "--reason", "false alarm")
    assert rejected.returncode == 0, rejected.stderr
    again = run_cli(*base, "reject", "dec2", "--reason", "twice")
    assert again.returncode == 2
    assert "is denied, not pending approval" in again.stderr
    shown = run_cli(*base, "policy", "show")
    assert shown.returncode == 0, shown.stderr
    assert "(default)" in shown.stdout
    back = run_cli(*base, "policy", "rollback")
    assert back.returncode == 1
    assert "nothing to roll back" in back.stderr
    audit = [json.loads(line) for line in (tmp_path / "audit.jsonl").read_text().splitlines()]
    assert [(r["entity"], r["event"]) for r in audit] == [
        ("decision", "approved"),
        ("request", "filed"),
        ("decision", "denied"),
    ]
