"""What the console shows, read from the store, the state directory and the audit trail.

Pure reads: every function takes a read-only SQLite connection (and paths), returns JSON-ready
data and changes nothing. The dashboard, `/metrics` and `watcher report` all read through here,
so a page and a report never disagree. Tables written by code still in flight elsewhere (the
change detector's fields, parked requests) are read defensively: a missing column or key is
None, never an error.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import json
import sqlite3
from contextlib import suppress
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from actors.gpu import lease as lease_store
from actors.paths import SPOOL_STATES, StatePaths
from actors.trigger import decision_store, ledger
from actors.watcher import outcomes as outcome_store
from actors.watcher import progress as progress_store
from actors.watcher import steps as step_store
from actors.watcher.halt import read_halt, resume_command

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from actors.config import Settings


def connect_readonly(db: Path) -> sqlite3.Connection:
    """A read-only connection to the store (WAL: it never blocks the daemon's writer)."""
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True, check_same_thread=False)
    conn.row_factory = sqlite3.Row
    conn.execute("PRAGMA query_only=ON")
    return conn


T = TypeVar("T")


def _read(read: Callable[[sqlite3.Connection], T], conn: sqlite3.Connection) -> T | None:
    """`read(conn)` (a table owner's function), or None when its table is missing."""
    try:
        return read(conn)
    except sqlite3.OperationalError:
        # A table a newer migration adds (or an older store lacks): nothing to show.
        return None


def _json(text: Any, default: Any = None) -> Any:
    if not isinstance(text, str):
        return default if text is None else text
    try:
        return json.loads(text)
    except ValueError:
        return default


# -- the overview -----------------------------------------------------------------------------


def spool_counts(paths: StatePaths) -> dict[str, int]:
    """Requests in each spool folder (reason files not counted)."""
    out = {}
    for state in SPOOL_STATES:
        folder = paths.spool_dir(state)
        if folder.is_dir():
            names = [p.name for p in folder.iterdir() if p.name.endswith(".json")]
            out[state] = sum(1 for n in names if not n.endswith(".reason.json"))
    return out


def current_pool(conn: sqlite3.Connection) -> dict[str, Any] | None:
    """The newest registered prediction pool (what the next draw is scored against)."""
    row = _read(ledger.newest_pool_row, conn)
    if row is None:
        return None
    body = _json(row.pop("body"), {})
    predictions = body.get("predictions") or body.get("entries") or []
    return {**row, "stale": bool(row["stale"]), "size": len(predictions), "body": body}


def leases(conn: sqlite3.Connection, *, correlation_id: str | None = None) -> list[dict[str, Any]]:
    """Leases (newest first), with their duration once returned."""
    return _read(lambda c: lease_store.leases_of(c, correlation_id=correlation_id), conn) or []


# -- what awaits a person ---------------------------------------------------------------------


def pending_items(
    conn: sqlite3.Connection, paths: StatePaths, settings: Settings
) -> list[dict[str, Any]]:
    """Every item that waits for a person: Chapter 13 decisions, parked requests, the halt.

    Uses the lead's read model (`actors.pending.pending_items`) when it exists, so `pending`
    and the console list the same things; until then, the same three sources read here.
    """
    if importlib.util.find_spec("actors.pending") is not None:
        module = importlib.import_module("actors.pending")
        found = getattr(module, "pending_items", None)
        if callable(found):
            # pending_items(settings, paths) opens its own connection; (conn, paths) reuses ours.
            first = next(iter(inspect.signature(found).parameters), "")
            listed = found(conn, paths) if first == "conn" else found(settings, paths)
            return [_normalise(_as_dict(item)) for item in listed]
    items: list[dict[str, Any]] = []
    with suppress(sqlite3.OperationalError):
        items.extend(
            {
                "kind": "decision",
                "id": row["decision_id"],
                "title": f"{row['rule']} -> {row['action']}",
                "reasons": list(row.get("reasons") or []),
                "evidence": row.get("evidence") or {},
                "since": row.get("created_at"),
                "correlation_id": row.get("correlation_id"),
                "actions": ["approve", "reject"],
            }
            for row in decision_store.pending_decisions(conn)
        )
    for row in _read(progress_store.waiting_for_a_person, conn) or []:
        items.append(  # noqa: PERF401 (one source of three; a comprehension reads worse)
            {
                "kind": "request",
                "id": row["request_id"],
                "title": f"request {row['request_id']} {row['status']}",
                "reasons": [row["reason"]] if row["reason"] else [],
                "evidence": {},
                "since": row["updated_at"],
                "correlation_id": None,
                "actions": ["resume"],
            }
        )
    halt = read_halt(paths.root / settings.watcher.halt_file)
    if halt is not None:
        items.append(
            {
                "kind": "halt",
                "id": "halt",
                "title": f"halted by {halt.by}",
                "reasons": [halt.reason],
                "evidence": {"request_id": halt.request_id} if halt.request_id else {},
                "since": halt.halted_at.isoformat(),
                "correlation_id": None,
                "actions": ["resume"],
                "resume": resume_command(paths.root),
            }
        )
    return items


def _as_dict(item: Any) -> dict[str, Any]:
    if hasattr(item, "model_dump"):
        return dict(item.model_dump(mode="json"))
    return dict(item)


# What a person can do from the page, per kind of item (each is the CLI's own command).
_ACTIONS = {
    "decision": ["approve", "reject"],
    "parked": ["resume"],
    "request": ["resume"],
    "halt": ["resume"],
}


def _normalise(item: dict[str, Any]) -> dict[str, Any]:
    kind = str(item.get("kind", "item"))
    ident = str(
        item.get("id")
        or item.get("item_id")
        or item.get("decision_id")
        or item.get("request_id")
        or kind
    )
    actions = item.get("actions")
    if actions is None:
        actions = _ACTIONS.get(kind, [])
    reasons = item.get("reasons") or ([item["reason"]] if item.get("reason") else [])
    return {
        **item,
        "kind": kind,
        "id": ident,
        "title": str(item.get("title") or item.get("summary") or f"{kind} {ident}"),
        "reasons": [str(r) for r in reasons],
        "evidence": item.get("evidence") or {},
        "since": item.get("since") or item.get("created_at"),
        "actions": list(actions),
    }


# -- requests ---------------------------------------------------------------------------------


def requests(
    conn: sqlite3.Connection, paths: StatePaths, *, limit: int = 200
) -> list[dict[str, Any]]:
    """Requests, newest first: finished ones from the store, open ones from the spool."""
    found: dict[str, dict[str, Any]] = {}
    for row in _read(lambda c: outcome_store.latest(c, limit), conn) or []:
        found[row["request_id"]] = {**row, "at": row["finished_at"]}
    for row in _read(lambda c: progress_store.latest(c, limit), conn) or []:
        if row["request_id"] not in found:
            found[row["request_id"]] = {
                "request_id": row["request_id"],
                "request_type": "",
                "status": row["status"],
                "correlation_id": None,
                "reason": row["reason"],
                "finished_at": None,
                "at": row["updated_at"],
            }
    for state in ("new", "cur"):
        folder = paths.spool_dir(state)
        if not folder.is_dir():
            continue
        for path in folder.glob("*.json"):
            if path.name.endswith(".reason.json"):
                continue
            rid = path.stem
            body = _spool_body(path)
            entry = found.setdefault(
                rid,
                {
                    "request_id": rid,
                    "request_type": body.get("request_type", ""),
                    "status": "queued" if state == "new" else "running",
                    "correlation_id": body.get("correlation_id"),
                    "reason": str(body.get("reason", "")),
                    "finished_at": None,
                    "at": body.get("created_at"),
                },
            )
            entry["request_type"] = entry["request_type"] or body.get("request_type", "")
            entry["correlation_id"] = entry["correlation_id"] or body.get("correlation_id")
    ordered = sorted(found.values(), key=lambda r: str(r.get("at") or ""), reverse=True)
    return ordered[:limit]


def _spool_body(path: Path) -> dict[str, Any]:
    try:
        # Spool files are small (the watcher refuses big ones); 1 MiB bounds a hostile one.
        with path.open("rb") as handle:
            data = json.loads(handle.read(1 << 20))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def request_detail(
    conn: sqlite3.Connection, paths: StatePaths, request_id: str
) -> dict[str, Any] | None:
    """One request: outcome, steps (with the advisor's reasons), leases, Chapter 13's side."""
    outcome = _read(lambda c: outcome_store.outcome_row(c, request_id), conn)
    progress = _read(lambda c: progress_store.progress_row(c, request_id), conn)
    filed = _read(lambda c: decision_store.request_row(c, request_id), conn)
    spooled: dict[str, Any] | None = None
    for state in SPOOL_STATES:
        candidate = paths.spool_dir(state) / f"{request_id}.json"
        if candidate.is_file():
            spooled = {"state": state, "body": _spool_body(candidate)}
            break
    try:
        decided = decision_store.decision(conn, request_id)
    except sqlite3.OperationalError:
        decided = None
    if not (outcome or progress or filed or spooled or decided):
        return None
    correlation_id = (
        (outcome["correlation_id"] if outcome else None)
        or (spooled["body"].get("correlation_id") if spooled else None)
        or (decided or {}).get("correlation_id")
        or ""
    )
    steps = _read(lambda c: step_store.steps_of(c, request_id), conn) or []
    result = outcome or {}
    return {
        "request_id": request_id,
        "correlation_id": correlation_id,
        "outcome": {**result, "detail": _json(result.get("detail"), {})} if result else None,
        "progress": progress,
        "filed": filed,
        "spool": spooled,
        "steps": steps,
        "leases": leases(conn, correlation_id=correlation_id) if correlation_id else [],
        "decision": decided,
    }


def lines_with(
    path: Path, needle: str, *, limit: int = 500, tail_bytes: int = 32 << 20
) -> list[dict[str, Any]]:
    """JSON lines of `path` that mention `needle` (e.g. a correlation id), oldest first.

    Reads at most the last `tail_bytes` (a long-lived log is big; a flow is recent).
    """
    if not needle:
        return []
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - tail_bytes))
            data = handle.read()
    except OSError:
        return []
    key = needle.encode("utf-8")
    out = []
    for line in data.split(b"\n"):
        if key in line:
            with suppress(ValueError):
                item = json.loads(line)
                if isinstance(item, dict):
                    out.append(item)
    return out[-limit:]


def decisions(conn: sqlite3.Connection, *, limit: int = 200) -> list[dict[str, Any]]:
    """Chapter 13's decisions, newest first (JSON columns decoded)."""
    rows = _read(lambda c: decision_store.recent_decisions(c, limit), conn) or []
    for row in rows:
        row["reasons"] = _json(row["reasons"], [])
    return rows


def span_seconds(records: list[dict[str, Any]]) -> float | None:
    """Seconds from the first to the last record (a request's wall time), or None."""
    if len(records) < 2:
        return None
    try:
        first = datetime.fromisoformat(str(records[0]["recorded_at"]))
        last = datetime.fromisoformat(str(records[-1]["recorded_at"]))
    except (KeyError, ValueError):
        return None
    return (last - first).total_seconds()
