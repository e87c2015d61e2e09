"""Chapter 13's decisions and the requests it filed: `trigger_decisions`, `trigger_requests`.

Blocking calls on one sqlite3 connection, like the rest of Chapter 13's tables (`ledger.py`):
the actor runs them through `Store.run` / `Store.transaction`, the CLI on its own connection.
This module is the tables' one owner (migrations v010_chapter13, v011_chapter13_regimes); the
rules read requests and the cooldown through `ledger.context`, the console and `status` through
the readouts at the end.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, cast

from actors.store.rows import as_dicts
from actors.trigger.acceptance import AppliedRun, ParameterChange
from actors.trigger.context import NO_SIGNAL, REFRESH, Cooldown, OpenRequest
from messages.base import utcnow

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Sequence

    from actors.trigger.tracker import Action


def _now() -> str:
    return utcnow().isoformat()


# -- decisions and requests ------------------------------------------------------------------


def insert_decision(conn: sqlite3.Connection, **fields: Any) -> None:
    """Record one trigger decision (the columns of trigger_decisions, JSON-encoded as needed)."""
    for key in ("evidence", "proposal", "reasons", "changes", "request"):
        if key in fields and fields[key] is not None and not isinstance(fields[key], str):
            fields[key] = json.dumps(fields[key], default=str)
    fields.setdefault("created_at", _now())
    names = ", ".join(fields)
    marks = ", ".join("?" for _ in fields)
    conn.execute(
        f"INSERT INTO trigger_decisions ({names}) VALUES ({marks})",
        tuple(fields.values()),
    )


def decision(conn: sqlite3.Connection, decision_id: str) -> dict[str, Any] | None:
    """One decision as a dict (JSON columns decoded), or None."""
    cursor = conn.execute("SELECT * FROM trigger_decisions WHERE decision_id = ?", (decision_id,))
    row = cursor.fetchone()
    if row is None:
        return None
    names = [d[0] for d in cursor.description]
    out = dict(zip(names, tuple(row), strict=True))
    for key in ("evidence", "proposal", "reasons", "changes", "request"):
        if out.get(key) is not None:
            out[key] = json.loads(out[key])
    return out


def set_decision_status(
    conn: sqlite3.Connection, decision_id: str, status: str, *, by: str, note: str = ""
) -> None:
    """Record a person's (or the actor's) ruling on a decision."""
    conn.execute(
        "UPDATE trigger_decisions SET status = ?, decided_at = ?, decided_by = ?, note = ?"
        " WHERE decision_id = ?",
        (status, _now(), by, note, decision_id),
    )


def pending_decisions(conn: sqlite3.Connection) -> list[dict[str, Any]]:
    """Decisions waiting for a person, oldest first."""
    rows = conn.execute(
        "SELECT decision_id FROM trigger_decisions WHERE status = 'pending_approval'"
        " ORDER BY created_at, decision_id"
    ).fetchall()
    return [d for (did,) in rows if (d := decision(conn, str(did))) is not None]


def prior_rejects(conn: sqlite3.Connection, rule: str) -> int:
    """Rejections in a row (newest first) among this rule's decisions."""
    rows = conn.execute(
        "SELECT outcome FROM trigger_decisions WHERE rule = ? ORDER BY created_at DESC,"
        " rowid DESC LIMIT 100",
        (rule,),
    ).fetchall()
    count = 0
    for (outcome,) in rows:
        if outcome != "REJECT":
            break
        count += 1
    return count


def applied_runs(conn: sqlite3.Connection) -> list[AppliedRun]:
    """Accepted (or approved) runs that changed parameters, oldest first."""
    rows = conn.execute(
        "SELECT draw_index, changes FROM trigger_decisions WHERE status IN ('filed', 'approved')"
        " AND changes != '[]' ORDER BY created_at, rowid"
    ).fetchall()
    return [
        AppliedRun(
            draw_index=int(idx),
            changes=tuple(ParameterChange.model_validate(c) for c in json.loads(changes)),
        )
        for idx, changes in rows
    ]


def insert_request(
    conn: sqlite3.Connection,
    request_id: str,
    action: str,
    rule: str,
    decision_id: str | None,
    *,
    history_from: str | None = None,
) -> None:
    """Remember a request Chapter 13 filed, open until the watcher reports its end."""
    conn.execute(
        "INSERT OR IGNORE INTO trigger_requests (request_id, action, rule, decision_id, status,"
        " filed_at, history_from) VALUES (?, ?, ?, ?, 'open', ?, ?)",
        (request_id, action, rule, decision_id, _now(), history_from),
    )


def finish_request(
    conn: sqlite3.Connection,
    request_id: str,
    outcome: str,
    *,
    units: Sequence[str] = (),
    gpu_seconds: float = 0.0,
    reason: str = "",
) -> OpenRequest | None:
    """Close (or park, for `escalated`) one of Chapter 13's requests; None when not one of its.

    An escalated request is parked with a person: it stays open for the rules (no second retrain
    of its kind piles up behind it) but makes no pool, so it holds no refresh back.
    """
    row = conn.execute(
        "SELECT request_id, action, rule, parked, history_from FROM trigger_requests"
        " WHERE request_id = ? AND status = 'open'",
        (request_id,),
    ).fetchone()
    if row is None:
        return None
    parked = outcome in {"escalated", "halted"}
    conn.execute(
        "UPDATE trigger_requests SET status = ?, outcome = ?, finished_at = ?, parked = ?,"
        " gpu_seconds = gpu_seconds + ?, units = ?, reason = ? WHERE request_id = ?",
        (
            "open" if parked else "finished",
            outcome,
            _now(),
            int(parked),
            gpu_seconds,
            json.dumps(list(units)),
            reason[:2000],
            request_id,
        ),
    )
    return OpenRequest(
        request_id=str(row[0]),
        action=cast("Action", str(row[1])),
        rule=str(row[2]),
        parked=parked,
        history_from=row[4],
    )


def supersede(conn: sqlite3.Connection, request_id: str, by: str) -> None:
    """A parked request gave way to a newer one of its kind: it is finished, `superseded`."""
    conn.execute(
        "UPDATE trigger_requests SET status = 'finished', outcome = 'superseded', parked = 0,"
        " finished_at = ?, reason = ? WHERE request_id = ?",
        (_now(), f"superseded by {by}", request_id),
    )


def open_requests(conn: sqlite3.Connection) -> tuple[OpenRequest, ...]:
    """Chapter 13's requests still open (filed, approved or parked with a person), oldest first."""
    rows = conn.execute(
        "SELECT request_id, action, rule, parked, history_from FROM trigger_requests"
        " WHERE status = 'open' ORDER BY filed_at, rowid"
    ).fetchall()
    return tuple(
        OpenRequest(
            request_id=str(r[0]),
            action=cast("Action", str(r[1])),
            rule=str(r[2]),
            parked=bool(r[3]),
            history_from=r[4],
        )
        for r in rows
    )


def request_rule(conn: sqlite3.Connection, request_id: str) -> str | None:
    """The rule (or `refresh`, `forced`) that filed a request; None when it is not Chapter 13's."""
    row = conn.execute(
        "SELECT rule FROM trigger_requests WHERE request_id = ?", (request_id,)
    ).fetchone()
    return None if row is None else str(row[0])


def gpu_seconds_since(conn: sqlite3.Connection, since: str) -> float:
    """GPU seconds of Chapter 13's automatic retrains (refreshes left out) finished since."""
    row = conn.execute(
        "SELECT COALESCE(SUM(gpu_seconds), 0) FROM trigger_requests WHERE rule != ?"
        " AND finished_at >= ?",
        (REFRESH, since),
    ).fetchone()
    return float(row[0])


def last_rule_firing(conn: sqlite3.Connection) -> Cooldown | None:
    """The cooldown of the latest fired rule (refreshes and no-signal records left out), or
    None when none fired or a retrain that ran step 6 completed after it (which ends it)."""
    row = conn.execute(
        "SELECT rule, draw_index, created_at, json_extract(evidence, '$.clock_s')"
        " FROM trigger_decisions WHERE rule NOT IN (?, ?)"
        " ORDER BY created_at DESC, rowid DESC LIMIT 1",
        (REFRESH, NO_SIGNAL),
    ).fetchone()
    if row is None:
        return None
    rule, index, created = str(row[0]), int(row[1]), str(row[2])
    # The actor's clock when it decided (the event loop's: a MockClock in tests), else wall time.
    at = float(row[3]) if row[3] is not None else _epoch(created)
    done = conn.execute(
        "SELECT 1 FROM trigger_requests WHERE rule NOT IN (?, ?) AND outcome = 'completed'"
        " AND finished_at >= ? AND units LIKE '%\"6\"%' LIMIT 1",
        (REFRESH, "forced", created),
    ).fetchone()
    if done is not None:
        return None
    return Cooldown(rule=rule, draw_index=index, at=at)


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp).timestamp()


# -- readouts: what `status` and the console show -------------------------------------------


def request_row(conn: sqlite3.Connection, request_id: str) -> dict[str, Any] | None:
    """Every column of a request Chapter 13 filed, or None if it filed no such request."""
    rows = as_dicts(
        conn.execute("SELECT * FROM trigger_requests WHERE request_id = ?", (request_id,))
    )
    return rows[0] if rows else None


def recent_decisions(conn: sqlite3.Connection, limit: int) -> list[dict[str, Any]]:
    """The latest `limit` decisions, newest first (JSON columns still text)."""
    return as_dicts(
        conn.execute(
            "SELECT decision_id, draw_id, draw_index, correlation_id, rule, action, outcome,"
            " status, reasons, request_id, created_at, decided_by FROM trigger_decisions"
            " ORDER BY created_at DESC LIMIT ?",
            (limit,),
        )
    )


def decision_marks(conn: sqlite3.Connection) -> list[tuple[Any, ...]]:
    """Every decision in draw order: (decision_id, draw_index, rule, action, outcome, status,
    created_at)."""
    return [
        tuple(r)
        for r in conn.execute(
            "SELECT decision_id, draw_index, rule, action, outcome, status, created_at"
            " FROM trigger_decisions ORDER BY draw_index, created_at"
        ).fetchall()
    ]


def decision_counts(conn: sqlite3.Connection) -> list[tuple[Any, Any, int]]:
    """(rule, outcome, count) of every decision taken."""
    rows = conn.execute(
        "SELECT rule, outcome, COUNT(*) FROM trigger_decisions GROUP BY 1, 2"
    ).fetchall()
    return [(r[0], r[1], int(r[2])) for r in rows]


def pending_count(conn: sqlite3.Connection) -> int:
    """Decisions waiting for a person."""
    row = conn.execute(
        "SELECT COUNT(*) FROM trigger_decisions WHERE status = 'pending_approval'"
    ).fetchone()
    return int(row[0])
