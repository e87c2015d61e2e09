"""`status`: one screen on a Watcher state directory — daemon, actors, GPU and lease, LLM, spool,
history, the last requests, the kill switch. Works whether or not the daemon is running: it
reads the daemon's heartbeat (`status.json`), the spool folders and the store (read-only)."""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from actors.gpu import lease as lease_store
from actors.ingestion.history import recent_draws, stream_counts
from actors.paths import SPOOL_STATES, StatePaths
from actors.trigger import ledger
from actors.watcher import outcomes as outcome_store
from actors.watcher.halt import read_halt, resume_command

if TYPE_CHECKING:
    import argparse

    from actors.config import Settings

STATUS_FILE = "status.json"
# A heartbeat older than this (3 periods of 2 s) means the daemon is not running any more.
STALE_AFTER_S = 6.0


def register(sub: Any) -> None:
    """Add `status` to the daemon's CLI."""
    status = sub.add_parser("status", help="one screen: daemon, actors, GPU, LLM, spool, history")
    status.add_argument("--json", action="store_true", help="print the status as JSON")
    status.set_defaults(handler=run_status)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _daemon(paths: StatePaths) -> dict[str, Any]:
    path = paths.root / STATUS_FILE
    try:
        beat = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {"running": False, "note": "no heartbeat: the daemon has not run here"}
    age = (datetime.now(UTC) - datetime.fromisoformat(beat["updated_at"])).total_seconds()
    running = bool(beat.get("running")) and age <= STALE_AFTER_S and _alive(int(beat["pid"]))
    return {**beat, "running": running, "heartbeat_age_s": round(age, 1)}


def _store(paths: StatePaths) -> dict[str, Any]:
    if not paths.db.exists():
        return {"note": "no store yet"}
    conn = sqlite3.connect(f"{paths.db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        conn.execute("PRAGMA query_only=ON")
        per_stream = stream_counts(conn)  # the draws table's owner: actors.ingestion.history
        last = recent_draws(conn, "real", 5)
        hit = ledger.latest_hit_rate(conn)
        leases_out = lease_store.leases_out(conn)
        leases_total = lease_store.lease_count(conn)
        outcomes = [
            {
                "request_id": r["request_id"],
                "type": r["request_type"],
                "status": r["status"],
                "reason": r["reason"],
                "at": r["finished_at"],
            }
            for r in outcome_store.latest(conn, 3)
        ]
    except sqlite3.Error as exc:
        return {"note": f"store unreadable: {exc}"}
    finally:
        conn.close()
    return {
        "draws": per_stream,
        "last_draws": last,
        "hit_rate": None if hit is None else {"value": hit[0], "at": hit[1]},
        "leases_out": leases_out,
        "leases_total": leases_total,
        "last_requests": outcomes,
    }


def collect(settings: Settings) -> dict[str, Any]:
    """Everything `status` shows, as JSON-ready data."""
    paths = StatePaths(settings.state_dir)
    spool = {
        state: len(list(paths.spool_dir(state).glob("*.json")))
        - len(list(paths.spool_dir(state).glob("*.reason.json")))
        for state in SPOOL_STATES
        if paths.spool_dir(state).is_dir()
    }
    halt = read_halt(paths.root / settings.watcher.halt_file)
    return {
        "state_dir": str(paths.root),
        "daemon": _daemon(paths),
        "spool": spool,
        "halt": None
        if halt is None
        else {**halt.model_dump(mode="json"), "resume": resume_command(paths.root)},
        "store": _store(paths),
        "pending": _pending(settings, paths),
    }


def _pending(settings: Settings, paths: StatePaths) -> list[dict[str, Any]]:
    from actors.pending import pending_items  # the read-model also used by `pending`
    from actors.store import StoreError

    try:
        return [item.model_dump(mode="json") for item in pending_items(settings, paths)]
    except StoreError as exc:
        return [{"kind": "error", "item_id": "-", "summary": str(exc), "commands": []}]


def render(status: dict[str, Any]) -> str:
    """The status as one screen of text."""
    daemon = status["daemon"]
    lines = [f"Watcher at {status['state_dir']}"]
    if daemon.get("running"):
        lines.append(
            f"daemon     running, pid {daemon['pid']}, since {daemon['started_at']}, "
            f"dead letters {daemon['dead_letters']}"
        )
        actors = ", ".join(
            f"{a['name']}{'' if a['alive'] else ' (stopped)'}"
            + (f" q={a['queued']}" if a["queued"] else "")
            + (f" restarts={a['restarts']}" if a["restarts"] else "")
            for a in daemon.get("actors", [])
        )
        lines.append(f"actors     {actors}")
        llm, gpu = daemon.get("llm", {}), daemon.get("gpu", {})
        lines.append(
            f"llm        {llm.get('model', '?')}; worker "
            f"{'pid ' + str(llm['worker_pid']) if llm.get('worker_running') else 'not loaded'}"
            f"; leases out {len(llm.get('leases_out', []))}"
        )
        gpus = gpu.get("gpus", [])
        gpu_text = (
            ", ".join(
                f"{g['index']}:{g['name']} {g['free_mb']}/{g['total_mb']} MB free" for g in gpus
            )
            or "none (CPU fallback)"
        )
        lines.append(
            f"gpu        {gpu_text}; running jobs {gpu.get('running_jobs', 0)}; "
            f"leases {gpu.get('leases_taken', 0)} taken / "
            f"{gpu.get('leases_returned', 0)} returned"
        )
    else:
        why = daemon.get("note") or f"last heartbeat {daemon.get('heartbeat_age_s')} s ago"
        lines.append(f"daemon     not running ({why})")
    spool = status["spool"]
    lines.append("spool      " + ", ".join(f"{k} {v}" for k, v in spool.items() if k != "tmp"))
    halt = status["halt"]
    lines.append(
        "halt       "
        + (
            "off"
            if halt is None
            else f"ON ({halt['by']}: {halt['reason']}); resume: {halt['resume']}"
        )
    )
    store = status["store"]
    if "note" in store:
        lines.append(f"history    {store['note']}")
    else:
        draws = ", ".join(f"{k} {v}" for k, v in store["draws"].items()) or "no draws"
        hit = store["hit_rate"]
        lines.append(
            f"history    {draws}; hit rate "
            + ("n/a" if hit is None else f"{hit['value']:.3f} (at {hit['at']})")
        )
        lines += [
            f"  draw     {d['draw_id']} {d['timestamp']} value {d['value']}"
            + (" (backfill)" if d["backfill"] else "")
            for d in store["last_draws"]
        ]
        lines.append(f"leases     {store['leases_total']} in all, {len(store['leases_out'])} out")
        lines += [
            f"  request  {r['request_id'][:12]} {r['type']} {r['status']}: {r['reason']}"
            for r in store["last_requests"]
        ]
    pending = status.get("pending", [])
    lines.append(f"pending    {len(pending) or 'nothing awaits a person'}")
    for item in pending:
        lines.append(f"  {item['kind']:<9}{item['item_id'][:12]} {item['summary']}")
        lines.extend(f"    run: {c}" for c in item.get("commands", []))
    return "\n".join(lines)


def run_status(args: argparse.Namespace, settings: Settings) -> int:
    """Print the status (text or JSON)."""
    status = collect(settings)
    sys.stdout.write(
        (json.dumps(status, indent=2, default=str) if args.json else render(status)) + "\n"
    )
    return 0
