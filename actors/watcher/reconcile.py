"""Exactly-once terminal audit: at start-up, the store's outcomes the audit trail lacks are added.

A request ends in three writes, in this order: its outcome in the store (`request_outcomes`,
once per id), its file's move into a terminal folder, its terminal audit record. A `kill -9`
between the first and the last leaves an outcome the audit trail does not show. The store is
the truth: `reconcile_audit` (called once from the watcher's `on_start`, before any request is
processed) appends the missing terminal record for each such request, marked
`recovered: true`, with the outcome's correlation id, status and reason. A record is added only
when none exists, so reconciling twice (or crashing while reconciling) never writes a second one.

The audit trail is read once per start-up, request records only (a substring test skips the
rest without parsing: ~0.3 s per million lines).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio.to_thread
import structlog

from actors.watcher import outcomes as outcome_store

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from actors.services import Services

log = structlog.get_logger("watcher")

TERMINAL_EVENTS = frozenset({"completed", "failed", "rejected"})
"""The audit events that end a request (its status in `request_outcomes`)."""


@dataclass(frozen=True)
class Outcome:
    """One row of `request_outcomes`, as far as the audit record needs it."""

    request_id: str
    request_type: str
    status: str
    correlation_id: str
    reason: str


def outcomes(conn: sqlite3.Connection) -> list[Outcome]:
    """Every recorded terminal outcome, oldest first."""
    return [Outcome(*row) for row in outcome_store.oldest_first(conn)]


def audited_endings(path: Path) -> dict[str, set[str]]:
    """request id -> the terminal events the audit trail at `path` holds for it."""
    found: dict[str, set[str]] = {}
    try:
        handle = path.open("rb")
    except FileNotFoundError:
        return found
    with handle:
        for line in handle:
            if b'"entity":"request"' not in line:
                continue
            try:
                record: Any = json.loads(line)
            except ValueError:
                continue  # a torn last line (power loss) is not a record
            if isinstance(record, dict) and record.get("entity") == "request":
                event = str(record.get("event"))
                if event in TERMINAL_EVENTS:
                    found.setdefault(str(record.get("entity_id")), set()).add(event)
    return found


async def reconcile_audit(services: Services, actor: str) -> list[str]:
    """Append the terminal audit record of every outcome that lacks one; return their ids."""
    recorded = await services.store.run(outcomes)
    audited = await anyio.to_thread.run_sync(audited_endings, services.paths.audit)
    missing = [o for o in recorded if not audited.get(o.request_id)]
    for outcome in missing:
        await services.audit(
            actor=actor,
            entity="request",
            entity_id=outcome.request_id,
            event=outcome.status,
            correlation_id=outcome.correlation_id,
            from_state=None,
            to_state=outcome.status,
            reason=outcome.reason,
            request_type=outcome.request_type,
            recovered=True,
        )
        log.warning(
            "audit.terminal_recovered",
            request_id=outcome.request_id,
            status=outcome.status,
            correlation_id=outcome.correlation_id,
        )
    return [o.request_id for o in missing]
