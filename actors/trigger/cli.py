"""Chapter 13's commands: a person's ruling on escalated decisions, and the policy in force.

    python -m actors.system pending
    python -m actors.system approve ID
    python -m actors.system reject ID --reason TEXT
    python -m actors.system policy show
    python -m actors.system policy rollback

They work on the store and the spool directly, so they run while the daemon runs (SQLite WAL
lets them write beside it; the watcher sees an approved request arrive in the spool).
"""

from __future__ import annotations

import getpass
import sys
from contextlib import closing
from typing import TYPE_CHECKING, Any

from actors.audit import AuditLog, AuditRecord
from actors.cliutil import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from actors.paths import StatePaths
from actors.pending import pending_items
from actors.pending import render as render_pending
from actors.store import StoreError, connect, in_transaction
from actors.trigger import decision_store, filing, policy_store
from actors.watcher import spool

if TYPE_CHECKING:
    import argparse
    import sqlite3

    from actors.config import Settings

ACTOR = "cli"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `pending`, `approve`, `reject` and `policy` to the daemon's command line."""
    pending = subparsers.add_parser(
        "pending",
        help="list what awaits a person: Chapter 13 decisions, parked requests, a halt, no signal",
    )
    pending.add_argument("--json", action="store_true", help="one JSON object per line")
    pending.set_defaults(handler=pending_command)
    approve = subparsers.add_parser(
        "approve", help="approve an escalated Chapter 13 decision: file its request"
    )
    approve.add_argument("decision_id", metavar="ID", help="the decision (and request) id")
    approve.set_defaults(handler=approve_command)
    reject = subparsers.add_parser("reject", help="reject an escalated Chapter 13 decision")
    reject.add_argument("decision_id", metavar="ID", help="the decision (and request) id")
    reject.add_argument("--reason", required=True, help="why (kept in the store and audit)")
    reject.set_defaults(handler=reject_command)
    policy = subparsers.add_parser("policy", help="show or roll back the active policy")
    sub = policy.add_subparsers(dest="policy_command", required=True, metavar="ACTION")
    show = sub.add_parser("show", help="the active policy, candidates and their status")
    show.set_defaults(handler=policy_show_command)
    back = sub.add_parser("rollback", help="restore the policy active before the current one")
    back.set_defaults(handler=policy_rollback_command)


def _out(text: str) -> None:
    sys.stdout.write(text + "\n")


def _fail(text: str, code: int = EXIT_USAGE) -> int:
    sys.stderr.write(f"watcher: {text}\n")
    return code


def _audit(paths: StatePaths, **fields: Any) -> None:
    log = AuditLog(paths.audit)
    try:
        log.append_sync(AuditRecord(actor=ACTOR, **fields))
    finally:
        log.close()


def _open(settings: Settings) -> tuple[StatePaths, sqlite3.Connection]:
    paths = StatePaths(settings.state_dir).ensure()
    return paths, connect(paths.db)


def pending_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print everything that awaits a person (actors/pending.py), with the commands that act."""
    paths = StatePaths(settings.state_dir)
    try:
        items = pending_items(settings, paths)
    except StoreError as exc:
        return _fail(str(exc), EXIT_FAILED)
    if args.json:
        for item in items:
            _out(item.model_dump_json())
    else:
        _out(render_pending(items))
    return EXIT_OK


def _pending(conn: sqlite3.Connection, decision_id: str) -> dict[str, Any] | str:
    found = decision_store.decision(conn, decision_id)
    if found is None:
        return f"no Chapter 13 decision with id {decision_id!r}"
    if found["status"] != "pending_approval":
        return f"decision {decision_id} is {found['status']}, not pending approval"
    return found


def approve_command(args: argparse.Namespace, settings: Settings) -> int:
    """File an escalated decision's request into the spool and record the approval."""
    try:
        paths, conn = _open(settings)
    except StoreError as exc:
        return _fail(str(exc), EXIT_FAILED)
    with closing(conn):
        found = _pending(conn, args.decision_id)
        if isinstance(found, str):
            return _fail(found)
        user = getpass.getuser()
        try:
            request = filing.approve(conn, paths, found, by=user)
        except spool.SpoolError as exc:
            return _fail(str(exc), EXIT_FAILED)
    cid = str(found["correlation_id"])
    _audit(
        paths,
        correlation_id=cid,
        entity="decision",
        entity_id=args.decision_id,
        event="approved",
        from_state="pending_approval",
        to_state="approved",
        detail={"by": user},
    )
    _audit(
        paths,
        correlation_id=cid,
        entity="request",
        entity_id=request.request_id,
        event="filed",
        to_state="new",
        detail={"request_type": request.request_type, "rule": found["rule"], "by": user},
    )
    _out(f"approved {args.decision_id}: filed a {request.request_type} request")
    return EXIT_OK


def reject_command(args: argparse.Namespace, settings: Settings) -> int:
    """Record a person's rejection of an escalated decision (nothing is filed)."""
    reason = args.reason.strip()
    if not reason:
        return _fail("--reason must not be empty: say why, for the audit trail")
    try:
        paths, conn = _open(settings)
    except StoreError as exc:
        return _fail(str(exc), EXIT_FAILED)
    user = getpass.getuser()
    with closing(conn):
        found = _pending(conn, args.decision_id)
        if isinstance(found, str):
            return _fail(found)
        in_transaction(
            conn,
            lambda c: decision_store.set_decision_status(
                c, args.decision_id, "denied", by=user, note=reason
            ),
        )
    _audit(
        paths,
        correlation_id=str(found["correlation_id"]),
        entity="decision",
        entity_id=args.decision_id,
        event="denied",
        from_state="pending_approval",
        to_state="denied",
        detail={"by": user, "reason": reason},
    )
    _out(f"rejected {args.decision_id}: {reason}")
    return EXIT_OK


def policy_show_command(args: argparse.Namespace, settings: Settings) -> int:
    """Print the active policy and every candidate Chapter 13 has seen."""
    try:
        _paths, conn = _open(settings)
    except StoreError as exc:
        return _fail(str(exc), EXIT_FAILED)
    with closing(conn):
        active, params = policy_store.active_policy(conn)
        rows = policy_store.policy_rows(conn)
    default = " (default)" if active == policy_store.DEFAULT_POLICY_ID else ""
    _out(f"active: {active}{default}")
    _out(f"  {params.model_dump_json(exclude={'schema_version'})}")
    for policy_id, status, reason in rows:
        _out(f"{policy_id}  {status}  {reason}")
    return EXIT_OK


def policy_rollback_command(args: argparse.Namespace, settings: Settings) -> int:
    """Restore the previously active policy."""
    try:
        paths, conn = _open(settings)
    except StoreError as exc:
        return _fail(str(exc), EXIT_FAILED)
    with closing(conn):
        moved = in_transaction(conn, policy_store.rollback)
    if moved is None:
        return _fail("nothing to roll back: no policy was ever promoted", EXIT_FAILED)
    current, restored = moved
    _audit(
        paths,
        correlation_id=current,
        entity="promotion",
        entity_id=current,
        event="rolled_back",
        from_state="active",
        to_state="rolled_back",
        detail={"restored": restored, "by": getpass.getuser()},
    )
    _out(f"rolled back {current}; active again: {restored}")
    return EXIT_OK
