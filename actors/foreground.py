"""Foreground dispatch from the CLI: `--dispatch-selfplay`, `--dispatch-learning-loop`, and
`--dry-run`, which plans and prints without touching the state directory."""

from __future__ import annotations

import sqlite3
import sys
from typing import TYPE_CHECKING, TextIO

import anyio.to_thread

from actors.assembly import open_system
from actors.cliutil import EXIT_ATTENTION, EXIT_OK, EXIT_USAGE
from actors.console import ProgressBar
from actors.gpu.inventory import detect_inventory
from actors.gpu.plugins import build_registry
from actors.ingestion.history import latest_fingerprint
from actors.paths import StatePaths
from actors.watcher import outcomes, spool
from actors.watcher import progress as progress_store
from actors.watcher.plan import plan_request, render_plan
from messages.enums import LearningLoopScope
from messages.requests import LearningLoop, SelfplayRetrain

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

    from actors.config import Settings
    from actors.statelock import StateDirLockedError
    from actors.watcher.spool import Request


_NEEDS_A_PERSON = "needs a person: see the PROBLEM / would be rejected lines above (exit 3)\n"


def requested(args: argparse.Namespace) -> Request | None:
    """The request the dispatch flags ask for, or None when none is given."""
    if args.dispatch_selfplay:
        return SelfplayRetrain(
            source="cli",
            reason="--dispatch-selfplay",
            **({"episodes": args.episodes} if args.episodes else {}),
        )
    if args.dispatch_learning_loop is not None:
        return LearningLoop(
            source="cli",
            reason="--dispatch-learning-loop",
            scope=LearningLoopScope(args.dispatch_learning_loop),
        )
    return None


def dry_run(settings: Settings, request: Request | None, out: TextIO | None = None) -> int:
    """Print the plan of `request` (else of every request waiting in new/); change nothing.

    Exit 0, or EXIT_ATTENTION (3) when a request would be rejected or a plan has a PROBLEM.
    """
    out = out or sys.stdout
    paths = StatePaths(settings.state_dir)
    requests: list[Request] = []
    attention = False
    if request is not None:
        requests.append(request)
    elif paths.spool_dir("new").is_dir():
        for path in spool.pending(paths):
            try:
                requests.append(spool.parse(path, settings.spool))
            except spool.SpoolError as exc:
                out.write(f"{path.name}: would be rejected: {exc}\n")
                attention = True
    if not requests:
        if attention:
            out.write(_NEEDS_A_PERSON)
            return EXIT_ATTENTION
        out.write("nothing to do: no request given and none waiting in the spool\n")
        return EXIT_OK
    registry = build_registry(settings)
    gpus = detect_inventory().gpus()
    fingerprint = read_fingerprint(paths.db)
    for item in requests:
        plans = plan_request(
            item,
            watcher=settings.watcher,
            gpu=settings.gpu,
            registry=registry,
            gpus=gpus,
            state_dir=paths.root.resolve(),
            fingerprint=fingerprint,
        )
        text = render_plan(item, plans)
        attention = attention or "PROBLEM:" in text
        out.write(text + "\n")
    if attention:
        out.write(_NEEDS_A_PERSON)
        return EXIT_ATTENTION
    return EXIT_OK


def read_fingerprint(db: Path) -> str | None:
    """The real history's fingerprint, read-only (None: no store or no draw yet).

    The argv the dry run prints carries it (`--history-fingerprint`), as the run would.
    """
    if not db.exists():
        return None
    try:
        conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    except sqlite3.Error:
        return None
    try:
        return latest_fingerprint(conn, "real")  # the draws table's owner
    except sqlite3.Error:
        return None
    finally:
        conn.close()


def hand_over(paths: StatePaths, request: Request, locked: StateDirLockedError) -> int:
    """A daemon runs this state directory: file `request` into its spool instead of running it
    here (never claim from its spool); say so, and how to follow it. Exit 0 once filed."""
    try:
        spool.submit(paths, request)
    except spool.SpoolError as exc:
        sys.stderr.write(f"watcher: {exc}\n")
        return EXIT_USAGE
    holder = locked.holder.describe()
    sys.stdout.write(
        f"{holder} runs {paths.root}: handed {request.request_type} to it as request"
        f" {request.request_id}\n"
        f"follow it with: python -m actors.system --state-dir {paths.root} logs tail -f"
        f" --correlation-id {request.correlation_id[:8]}\n"
    )
    return EXIT_OK


async def run_foreground(settings: Settings, request: Request) -> int:
    """File `request`, run the system until it is done, print how it ended."""
    paths = StatePaths(settings.state_dir)
    await anyio.to_thread.run_sync(paths.ensure)
    await anyio.to_thread.run_sync(spool.submit, paths, request)
    sys.stdout.write(f"dispatched {request.request_type} as request {request.request_id}\n")
    bars = ProgressBar()
    async with open_system(settings, once=True, progress=bars) as system:
        await system.wait_idle()
        rid = request.request_id

        def outcome(conn: sqlite3.Connection) -> tuple[str, str]:
            ended = outcomes.outcome_of(conn, rid)
            if ended is not None:
                return ended
            saved = progress_store.load(conn, rid)
            return (saved.status, saved.reason) if saved else ("pending", "not processed")

        status, reason = await system.services.store.run(outcome)
    bars.close()
    sys.stdout.write(f"request {rid}: {status} ({reason})\n")
    return 0 if status == "completed" else 1
