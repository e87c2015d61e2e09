"""What `--once` counts as needing a person (exit 3), read from the run's audit records."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from actors.attention import audit_size, needs_a_person

if TYPE_CHECKING:
    from pathlib import Path


def line(entity: str, event: str) -> str:
    return json.dumps({"entity": entity, "event": event, "entity_id": "x"}) + "\n"


def test_only_this_runs_records_that_ask_for_a_person_count(tmp_path: Path) -> None:
    """Records before the run's start offset are ignored; quarantines, rejections, escalations
    and waiting Chapter 13 decisions are counted by kind; routine records and a torn last line
    are not."""
    audit = tmp_path / "audit.jsonl"
    audit.write_text(line("draw", "quarantined"))
    start = audit_size(audit)
    with audit.open("a") as handle:
        handle.write(line("draw", "ingested"))
        handle.write(line("draw", "quarantined"))
        handle.write(line("draw", "quarantined"))
        handle.write(line("request", "rejected"))
        handle.write(line("request", "escalation"))
        handle.write(line("decision", "escalate"))
        handle.write(line("request", "completed"))
        handle.write('{"entity": "request", "ev')
    found = needs_a_person(audit, start)
    assert sorted(found) == sorted(
        [
            "2 draw file(s) quarantined (see quarantine/*.reason.json)",
            "1 request(s) rejected (see watcher_requests/rejected/)",
            "1 request escalation(s) waiting (see `status`, then `resume`)",
            "1 Chapter 13 decision(s) waiting (see `pending`)",
        ]
    )
    assert needs_a_person(audit, audit_size(audit)) == []
    assert needs_a_person(tmp_path / "none.jsonl", 0) == []
