"""Watcher subcommands: `submit`, `halt`, `resume` — they work on the state directory, so they
act on a running daemon (which sees the spool and the halt file) or on a stopped one alike."""

from __future__ import annotations

import enum
import sys
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from actors.cliutil import EXIT_OK, EXIT_USAGE, require_state_dir, validation_lines
from actors.paths import StatePaths
from actors.watcher import spool
from actors.watcher.halt import HaltState, clear_halt, read_halt, resume_command, write_halt
from messages.enums import LearningLoopScope
from messages.errors import ConfigError
from messages.requests import REQUEST_ADAPTER, request_steps

if TYPE_CHECKING:
    import argparse
    from collections.abc import Sequence

    from actors.config import Settings
    from actors.watcher.spool import Request


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
    submit.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="UNIT.NAME=VALUE",
        help="a job parameter for one unit, e.g. 1.seed_end=4294967296 (repeatable); checked "
        "against the unit's job before the request is filed",
    )
    submit.add_argument("--reason", default="", help="why (kept in the audit trail)")
    submit.add_argument("--id", dest="request_id", help="request id (default: a fresh one)")
    submit.set_defaults(handler=run_submit)

    halt = sub.add_parser("halt", help="switch the kill switch on: start nothing new")
    halt.add_argument("--reason", default="halted by an operator", help="why")
    halt.add_argument("--now", action="store_true", help="also cancel the running job")
    halt.set_defaults(handler=run_halt)

    resume = sub.add_parser("resume", help="switch the kill switch off: go on where it stopped")
    resume.set_defaults(handler=run_resume)


APPLIES_TO = {
    "episodes": "selfplay_retrain",
    "min_fitness": "selfplay_retrain",
    "survivors_artifact": "selfplay_retrain",
    "scope": "learning_loop",
    "steps": "pipeline_rerun",
}
"""Which request type each type-specific flag belongs to."""


def misplaced_flags(args: argparse.Namespace) -> list[str]:
    """`--flag does not apply to TYPE (only to OTHER)` for each flag given for another type."""
    return [
        f"--{dest.replace('_', '-')} does not apply to {args.request_type} (only to {owner})"
        for dest, owner in APPLIES_TO.items()
        if getattr(args, dest, None) is not None and owner != args.request_type
    ]


def build_request(args: argparse.Namespace) -> dict[str, Any]:
    """The request's JSON fields from the flags (validation is the request model's job).

    Raises:
        ValueError: `--steps` is not a comma-separated list of numbers.
    """
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
        parts = [part.strip() for part in args.steps.split(",") if part.strip()]
        if not all(part.isdigit() for part in parts):
            msg = f"steps: {args.steps!r}: must be comma-separated step numbers, e.g. 1,2,3"
            raise ValueError(msg)
        data["steps"] = [int(part) for part in parts]
    return data


def run_submit(args: argparse.Namespace, settings: Settings) -> int:
    """Validate and file one request; print its id."""
    if not require_state_dir(settings, "submit"):
        return EXIT_USAGE
    if problems := misplaced_flags(args):
        sys.stderr.write("".join(f"submit: {line}\n" for line in problems))
        return EXIT_USAGE
    paths = StatePaths(settings.state_dir).ensure()
    try:
        request = REQUEST_ADAPTER.validate_python(build_request(args))
        if args.param:
            request = with_params(request, args.param, settings)
        if request.survivors_artifact if hasattr(request, "survivors_artifact") else None:
            artifact = paths.root / str(getattr(request, "survivors_artifact", ""))
            if not artifact.resolve().is_relative_to(paths.root.resolve()) or not artifact.exists():
                sys.stderr.write(
                    f"submit: survivors artifact {artifact} does not exist in the state directory\n"
                )
                return EXIT_USAGE
        spool.submit(paths, request)
    except ParamError as exc:
        sys.stderr.write(f"submit: {exc}\n")
        return EXIT_USAGE
    except ValidationError as exc:
        lines = validation_lines(exc, tags=APPLIES_TO.values())
        sys.stderr.write("".join(f"submit: not a valid request: {line}\n" for line in lines))
        return EXIT_USAGE
    except ValueError as exc:
        sys.stderr.write(f"submit: not a valid request: {exc}\n")
        return EXIT_USAGE
    except spool.SpoolError as exc:
        sys.stderr.write(f"submit: {exc}\n")
        return EXIT_USAGE
    sys.stdout.write(request.request_id + "\n")
    return EXIT_OK


class ParamError(ValueError):
    """A `--param` that breaks a rule; the message names the flag, the value and the rule."""


def with_params(request: Request, given: Sequence[str], settings: Settings) -> Request:
    """`request` with `--param UNIT.NAME=VALUE` values, each checked against its unit's job.

    The values are checked together with `[watcher.params.UNIT]` and the request's own
    fields, as the run will see them, and stored with the type the job's model gives them.

    Raises:
        ParamError: a malformed flag, a unit the request does not run, an unknown parameter
            or a value out of its rule (exit 2: nothing is filed).
    """
    from actors.gpu.plugins import build_registry, param_error_text
    from actors.gpu.spec import JobParamsError
    from actors.watcher.execution import unit_params

    units = request_steps(request)
    wanted: dict[str, dict[str, str]] = {}
    for item in given:
        key, sep, value = item.partition("=")
        unit, dot, name = key.partition(".")
        if not sep or not dot or not unit or not name:
            msg = f"--param {item!r}: expected UNIT.NAME=VALUE (e.g. 1.seed_end=4294967296)"
            raise ParamError(msg)
        if unit not in units:
            msg = f"--param {item!r}: unit {unit!r} is not run by this request (units: "
            raise ParamError(msg + ", ".join(units) + ")")
        wanted.setdefault(unit, {})[name] = value
    try:
        registry = build_registry(settings, entry_points=True)
    except ConfigError as exc:
        raise ParamError(f"configuration error: {exc}") from exc
    typed: dict[str, dict[str, str | int | float | bool]] = {}
    for unit, values in wanted.items():
        job = settings.watcher.step_jobs[unit]
        merged: dict[str, object] = {
            **unit_params(request, unit, settings.watcher.params.get(unit)),
            **values,
        }
        try:
            validated = registry.validate_params(job, merged)
        except JobParamsError as exc:
            raise ParamError(param_error_text(f"--param {unit}", values, exc)) from exc
        typed[unit] = {name: _scalar(getattr(validated, name)) for name in values}
    return request.model_copy(update={"params": {**request.params, **typed}})


def _scalar(value: object) -> str | int | float | bool:
    if isinstance(value, enum.Enum):
        value = value.value
    if isinstance(value, bool | int | float | str):
        return value
    return str(value)


def run_halt(args: argparse.Namespace, settings: Settings) -> int:
    """Write the halt file (with --now, a running daemon also cancels the running job)."""
    if not require_state_dir(settings, "halt"):
        return EXIT_USAGE
    paths = StatePaths(settings.state_dir)
    path = paths.root / settings.watcher.halt_file
    state = HaltState(reason=args.reason, halted_at=datetime.now(UTC), by="cli", now=args.now)
    write_halt(path, state)
    what = "halted; the running job is being cancelled" if args.now else "halted"
    sys.stdout.write(f"{what} ({args.reason}); resume with: {resume_command(paths.root)}\n")
    return EXIT_OK


def run_resume(args: argparse.Namespace, settings: Settings) -> int:
    """Remove the halt file; a running daemon picks the spool up again within a second."""
    if not require_state_dir(settings, "resume"):
        return EXIT_USAGE
    path = StatePaths(settings.state_dir).root / settings.watcher.halt_file
    was = read_halt(path)
    if was is None:
        sys.stdout.write("not halted\n")
        return EXIT_OK
    clear_halt(path)
    sys.stdout.write(f"resumed (was halted by {was.by}: {was.reason})\n")
    return EXIT_OK
