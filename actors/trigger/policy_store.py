"""Chapter 13's policies: the candidates, their shadow tallies and the history of promotions.

Blocking calls on one sqlite3 connection, like the rest of Chapter 13's tables (`ledger.py`).
This module is the one owner of `policies` and `policy_history` (migration v010_chapter13): a
candidate is recorded in shadow, its tally kept on each real draw, and it is promoted (the
previous policy kept for `rollback`) or rejected.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from messages.artifacts import PolicyCandidate, PolicyParameters
from messages.base import utcnow
from pipeline.selfplay import DEFAULT_POLICY, policy_id

if TYPE_CHECKING:
    import sqlite3

    from actors.trigger.promotion import ShadowTally

DEFAULT_POLICY_ID = policy_id(DEFAULT_POLICY)
"""The policy in force until Chapter 13 promotes one: selfplay's episode 0."""


def _now() -> str:
    return utcnow().isoformat()


def active_policy(conn: sqlite3.Connection) -> tuple[str, PolicyParameters]:
    """The active policy (selfplay's default until one is promoted)."""
    row = conn.execute(
        "SELECT policy_id, parameters FROM policies WHERE status = 'active'"
        " ORDER BY updated_at DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return DEFAULT_POLICY_ID, DEFAULT_POLICY
    return str(row[0]), PolicyParameters.model_validate_json(row[1])


def policy_status(conn: sqlite3.Connection, policy: str) -> str | None:
    """A policy's status, or None when it is unknown."""
    row = conn.execute("SELECT status FROM policies WHERE policy_id = ?", (policy,)).fetchone()
    return None if row is None else str(row[0])


def upsert_candidate(
    conn: sqlite3.Connection,
    candidate: PolicyCandidate,
    status: str,
    reason: str,
    tally: ShadowTally | None,
) -> None:
    """Record a candidate (status `shadow` or `rejected`)."""
    now = _now()
    conn.execute(
        "INSERT INTO policies (policy_id, parameters, candidate, status, tally, reason,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
        " ON CONFLICT (policy_id) DO UPDATE SET candidate = excluded.candidate,"
        " status = excluded.status, tally = excluded.tally, reason = excluded.reason,"
        " updated_at = excluded.updated_at",
        (
            candidate.policy_id,
            candidate.parameters.model_dump_json(),
            candidate.model_dump_json(),
            status,
            None if tally is None else tally.model_dump_json(),
            reason,
            now,
            now,
        ),
    )


def shadow_policies(conn: sqlite3.Connection) -> list[tuple[PolicyCandidate, ShadowTally]]:
    """Candidates in shadow evaluation, oldest first."""
    from actors.trigger.promotion import ShadowTally

    rows = conn.execute(
        "SELECT candidate, tally FROM policies WHERE status = 'shadow' ORDER BY created_at"
    ).fetchall()
    return [
        (PolicyCandidate.model_validate_json(c), ShadowTally.model_validate_json(t))
        for c, t in rows
    ]


def set_tally(conn: sqlite3.Connection, tally: ShadowTally) -> None:
    """Save a shadow evaluation's running tally."""
    conn.execute(
        "UPDATE policies SET tally = ?, updated_at = ? WHERE policy_id = ?",
        (tally.model_dump_json(), _now(), tally.policy_id),
    )


def settle_candidate(conn: sqlite3.Connection, policy: str, *, promote: bool, reason: str) -> None:
    """End a shadow evaluation: activate the candidate (keeping the previous one) or reject it."""
    now = _now()
    if not promote:
        conn.execute(
            "UPDATE policies SET status = 'rejected', reason = ?, updated_at = ?"
            " WHERE policy_id = ?",
            (reason, now, policy),
        )
        _history(conn, policy, None, "rejected", {"reason": reason})
        return
    previous, _params = active_policy(conn)
    conn.execute(
        "UPDATE policies SET status = 'retired', updated_at = ? WHERE status = 'active'", (now,)
    )
    conn.execute(
        "UPDATE policies SET status = 'active', reason = ?, updated_at = ? WHERE policy_id = ?",
        (reason, now, policy),
    )
    _history(conn, policy, previous, "promoted", {"reason": reason})


def rollback(conn: sqlite3.Connection) -> tuple[str, str] | None:
    """Restore the policy that was active before the current one: (from, to), or None."""
    current, _params = active_policy(conn)
    row = conn.execute(
        "SELECT previous_policy_id FROM policy_history WHERE policy_id = ? AND event IN"
        " ('promoted', 'restored') ORDER BY id DESC LIMIT 1",
        (current,),
    ).fetchone()
    if row is None:
        return None
    previous = row[0]
    now = _now()
    conn.execute(
        "UPDATE policies SET status = 'rolled_back', updated_at = ? WHERE policy_id = ?",
        (now, current),
    )
    if previous is not None and previous != DEFAULT_POLICY_ID:
        conn.execute(
            "UPDATE policies SET status = 'active', updated_at = ? WHERE policy_id = ?",
            (now, previous),
        )
    target = str(previous or DEFAULT_POLICY_ID)
    _history(conn, current, target, "rolled_back", {})
    return current, target


def policy_rows(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """(policy_id, status, reason) of every known policy, newest first."""
    rows = conn.execute(
        "SELECT policy_id, status, reason FROM policies ORDER BY updated_at DESC, policy_id"
    ).fetchall()
    return [(str(a), str(b), str(c)) for a, b, c in rows]


def _history(
    conn: sqlite3.Connection, policy: str, previous: str | None, event: str, detail: dict[str, Any]
) -> None:
    conn.execute(
        "INSERT INTO policy_history (policy_id, previous_policy_id, event, detail, at)"
        " VALUES (?, ?, ?, ?, ?)",
        (policy, previous, event, json.dumps(detail), _now()),
    )
