"""What awaits a person: one read-model for `pending`, `status` and the console (pure reads).

Four kinds of item, each with its evidence and the command that acts on it:

- `decision`: a Chapter 13 decision the acceptance rules escalated (`trigger_decisions`);
  act with `approve ID` or `reject ID --reason TEXT`.
- `parked`: a request the watcher escalated, parked in the spool's `held/`; `resume ID`.
- `halt`: the kill switch (a person's `halt`, or `on_escalation = "halt"`); `resume`.
- `no_signal`: retraining does not beat chance and automatic retries back off; information
  (its decision, when there is one, is approved to retrain now).

Everything comes from the store, the spool and the halt file; nothing here writes.
"""

from __future__ import annotations

from contextlib import closing
from typing import TYPE_CHECKING, Any, Literal

from pydantic import Field

from actors.store import connect
from actors.trigger import decision_store, ledger
from actors.watcher import progress as progress_store
from actors.watcher import spool
from actors.watcher.halt import read_halt, resume_command
from messages.base import Model

if TYPE_CHECKING:
    import sqlite3

    from actors.config import Settings
    from actors.paths import StatePaths

ItemKind = Literal["decision", "parked", "halt", "no_signal"]


class PendingItem(Model):
    """One thing a person should look at."""

    kind: ItemKind
    item_id: str
    summary: str
    """One line: what it is and why it waits."""
    reasons: tuple[str, ...] = ()
    commands: tuple[str, ...] = ()
    """The exact commands that act on it."""
    evidence: dict[str, Any] = Field(default_factory=dict)
    since: str | None = None


def _cmd(paths: StatePaths, tail: str) -> str:
    return f"python -m actors.system --state-dir {paths.root} {tail}"


def decision_items(conn: sqlite3.Connection, paths: StatePaths) -> list[PendingItem]:
    """Chapter 13 decisions waiting for a person."""
    items = []
    for row in decision_store.pending_decisions(conn):
        did = str(row["decision_id"])
        items.append(
            PendingItem(
                kind="decision",
                item_id=did,
                summary=f"Chapter 13 {row['rule']} -> {row['action']} awaits approval",
                reasons=tuple(row["reasons"]),
                commands=(
                    _cmd(paths, f"approve {did}"),
                    _cmd(paths, f"reject {did} --reason TEXT"),
                ),
                evidence=dict(row.get("evidence") or {}),
                since=str(row["created_at"]),
            )
        )
    return items


def parked_items(conn: sqlite3.Connection | None, paths: StatePaths) -> list[PendingItem]:
    """Requests the watcher escalated and parked in `held/`."""
    items = []
    for path in spool.held(paths):
        rid = path.name.removesuffix(spool.SUFFIX)
        reason, kind = "escalated", "?"
        try:
            request = spool.parse(path)
            kind = request.request_type
        except spool.SpoolError as exc:
            reason = f"escalated (the request file does not parse: {exc})"
        saved = progress_store.load(conn, rid) if conn is not None else None
        if saved is not None and saved.reason:
            reason = saved.reason
        items.append(
            PendingItem(
                kind="parked",
                item_id=rid,
                summary=f"{kind} request parked by an escalation: {reason}",
                reasons=(reason,),
                commands=(resume_command(paths.root, rid),),
                evidence={"next_unit": None if saved is None else saved.next_unit},
            )
        )
    return items


def halt_item(settings: Settings, paths: StatePaths) -> list[PendingItem]:
    """The kill switch, when it is on."""
    halt = read_halt(paths.root / settings.watcher.halt_file)
    if halt is None:
        return []
    return [
        PendingItem(
            kind="halt",
            item_id="halt",
            summary=f"the watcher is halted ({halt.by}): {halt.reason}",
            reasons=(halt.reason,),
            commands=(resume_command(paths.root),),
            evidence={"by": halt.by, "request_id": halt.request_id, "now": halt.now},
            since=halt.halted_at.isoformat(),
        )
    ]


def no_signal_item(conn: sqlite3.Connection) -> list[PendingItem]:
    """The no-signal state, when the loop is in it."""
    state = ledger.load_no_signal(conn)
    if state is None:
        return []
    retry = (
        "automatic retries are off"
        if state.next_index is None
        else f"next automatic retrain at draw {state.next_index}"
    )
    return [
        PendingItem(
            kind="no_signal",
            item_id=state.escalation_id or "no_signal",
            summary=f"no signal since draw {state.since_index} "
            f"({state.attempts} retrain(s) did not beat chance); {retry}",
            reasons=(state.reason,),
            evidence=state.model_dump(mode="json"),
        )
    ]


def pending_items(settings: Settings, paths: StatePaths) -> list[PendingItem]:
    """Everything that awaits a person, most urgent first (halt, parked, decisions, no signal).

    Raises:
        StoreError: the store cannot be opened.
    """
    items = halt_item(settings, paths)
    if not paths.db.exists():
        return [*items, *parked_items(None, paths)]
    with closing(connect(paths.db)) as conn:
        return [
            *items,
            *parked_items(conn, paths),
            *decision_items(conn, paths),
            *no_signal_item(conn),
        ]


def render(items: list[PendingItem]) -> str:
    """The items as text for a person."""
    if not items:
        return "nothing awaits a person"
    lines = []
    for item in items:
        lines.append(f"[{item.kind}] {item.item_id}  {item.summary}")
        lines.extend(f"    reason: {r}" for r in item.reasons if r and r not in item.summary)
        lines.extend(f"    run:    {c}" for c in item.commands)
    return "\n".join(lines)
