"""Watcher subcommands: `submit`, `halt`, `resume` — they work on the state directory, so they
act on a running daemon (which sees the spool and the halt file) or on a stopped one alike."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from actors.audit import AuditLog, AuditRecord
from actors.cliutil import EXIT_OK, EXIT_USAGE
from actors.paths import StatePaths
from actors.watcher import spool
from actors.watcher.halt import HaltState, clear_halt, read_halt, resume_command, write_halt
from messages.base import new_id
from messages.enums import LearningLoopScope
from messages.requests import REQUEST_ADAPTER

if TYPE_CHECKING:
    import argparse

    from actors.config import Settings


def register(sub: Any) -> None:
    """Add `submit`, `halt` and `resume` to the daemon's CLI."""
    submit = sub.add_parser("submit", help="file a request into the spool and print its id")
    submit.add_argument(
        "request_type", choices=["selfplay_retrain", "learning_loop", "pipeline_rerun"]
    )
    submit.add_argument("--episodes", type=int, help="selfplay_retrain: episodes (1-50)")
    submit.add_argument("--min-fitness", type=float, help="selfplay_retrain: minimum fitness")
    submit.add_argument("--survivors-artifact", help="selfplay_retrain: survivors file")
    submit.add_argument(
        "--scope",
        choices=[s.value for s in LearningLoopScope],
        help="learning_loop: which steps (default steps_3_5_6)",
    )
    submit.add_argument("--steps", help="pipeline_rerun: comma-separated steps (default 1-6)")
    submit.add_argument("--reason", default="", help="why (kept in the audit trail)")
    submit.add_argument("--id", dest="request_id", help="request id (default: a fresh one)")
    submit.set_defaults(handler=run_submit)

    halt = sub.add_parser("halt", help="switch the kill switch on: start nothing new")
    halt.add_argument("--reason", default="halted by an operator", help="why")
    halt.add_argument("--now", action="store_true", help="also cancel the running job")
    halt.set_defaults(handler=run_halt)

    resume = sub.add_parser(
        "resume",
        help="switch the kill switch off, or (with ID) let a parked request go on where it stopped",
    )
    resume.add_argument(
        "resume_id", nargs="?", metavar="ID", help="a request parked by an escalation (pending)"
    )
    resume.set_defaults(handler=run_resume)


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    """The request's JSON fields from the flags (validation is the request model's job)."""
    data: dict[str, Any] = {
        "request_type": args.request_type,
        "source": "cli",
        "reason": args.reason,
    }
    if args.request_id:
        data["request_id"] = args.request_id
    if args.request_type == "selfplay_retrain":
        optional = {
            "episodes": args.episodes,
            "min_fitness": args.min_fitness,
            "survivors_artifact": args.survivors_artifact,
        }
        data.update({k: v for k, v in optional.items() if v is not None})
    elif args.request_type == "learning_loop" and args.scope:
        data["scope"] = args.scope
    elif args.request_type == "pipeline_rerun" and args.steps:
        data["steps"] = [int(part) for part in args.steps.split(",") if part.strip()]
    return data


def run_submit(args: argparse.Namespace, settings: Settings) -> int:
    """Validate and file one request; print its id."""
    paths = StatePaths(settings.state_dir).ensure()
    try:
        request = REQUEST_ADAPTER.validate_python(build_request(args))
        if request.survivors_artifact if hasattr(request, "survivors_artifact") else None:
            artifact = paths.root / str(getattr(request, "survivors_artifact", ""))
            if not artifact.resolve().is_relative_to(paths.root.resolve()) or not artifact.exists():
                sys.stderr.write(
                    f"submit: survivors artifact {artifact} does not exist in the state directory\n"
                )
                return EXIT_USAGE
        spool.submit(paths, request)
    except (ValidationError, ValueError) as exc:
        sys.stderr.write(f"submit: not a valid request: {exc}\n")
        return EXIT_USAGE
    except spool.SpoolError as exc:
        sys.stderr.write(f"submit: {exc}\n")
        return EXIT_USAGE
    sys.stdout.write(request.request_id + "\n")
    return EXIT_OK


def run_halt(args: argparse.Namespace, settings: Settings) -> int:
    """Write the halt file (with --now, a running daemon also cancels the running job)."""
    paths = StatePaths(settings.state_dir)
    path = paths.root / settings.watcher.halt_file
    state = HaltState(reason=args.reason, halted_at=datetime.now(UTC), by="cli", now=args.now)
    write_halt(path, state)
    _audit_control(paths, "halted", "halt", by="cli", reason=args.reason, now=args.now)
    what = "halted; the running job is being cancelled" if args.now else "halted"
    sys.stdout.write(f"{what} ({args.reason}); resume with: {resume_command(paths.root)}\n")
    return EXIT_OK


def run_resume(args: argparse.Namespace, settings: Settings) -> int:
    """Remove the halt file, or put a parked request back into `new/`; a running daemon picks
    the spool up again within a second and continues the request where it stopped."""
    paths = StatePaths(settings.state_dir)
    path = paths.root / settings.watcher.halt_file
    request_id = getattr(args, "resume_id", None)
    if request_id:
        moved = spool.unpark(paths, request_id)
        if moved is None:
            sys.stderr.write(
                f"watcher: request {request_id!r} is not parked (see: python -m actors.system "
                f"--state-dir {paths.root} pending)\n"
            )
            return EXIT_USAGE
        _audit_control(paths, "resumed", request_id, by="cli")
        sys.stdout.write(f"resumed {request_id}: back in the spool, it goes on where it stopped\n")
        return EXIT_OK
    was = read_halt(path)
    if was is None:
        sys.stdout.write("not halted\n")
        return EXIT_OK
    clear_halt(path)
    _audit_control(paths, "resumed", "halt", by="cli", was=was.reason)
    sys.stdout.write(f"resumed (was halted by {was.by}: {was.reason})\n")
    return EXIT_OK


def _audit_control(paths: StatePaths, event: str, entity_id: str, **detail: Any) -> None:
    """One audit record of a person's halt or resume (`system / halted|resumed`)."""
    log = AuditLog(paths.audit)
    try:
        log.append_sync(
            AuditRecord(
                actor="cli",
                entity="system",
                entity_id=entity_id,
                event=event,
                correlation_id=new_id(),
                to_state="halted" if event == "halted" else "running",
                detail=detail,
            )
        )
    finally:
        log.close()
