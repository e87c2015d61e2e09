"""What a run left for a person: `--once` exits 3 when its audit records hold any of it."""

from __future__ import annotations

import json
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

NEEDS_A_PERSON: dict[tuple[str, str], str] = {
    ("draw", "quarantined"): "draw file(s) quarantined (see quarantine/*.reason.json)",
    ("request", "rejected"): "request(s) rejected (see watcher_requests/rejected/)",
    ("request", "escalation"): "request escalation(s) waiting (see `status`, then `resume`)",
    ("decision", "escalate"): "Chapter 13 decision(s) waiting (see `pending`)",
}
"""(entity, event) of the audit records that ask for a person, and how to say so."""


def audit_size(path: Path) -> int:
    """The audit trail's size now (where this run's records will start)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def needs_a_person(path: Path, start: int) -> list[str]:
    """One line per kind of record after byte `start` that asks for a person, with its count."""
    counts: Counter[str] = Counter()
    try:
        with path.open("rb") as handle:
            handle.seek(start)
            for line in handle:
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a torn last line of a crashed writer is not this run's news
                what = NEEDS_A_PERSON.get((record.get("entity"), record.get("event")))
                if what is not None:
                    counts[what] += 1
    except FileNotFoundError:
        return []
    return [f"{count} {what}" for what, count in counts.items()]
