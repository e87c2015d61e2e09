"""The console's write actions run the CLI's own commands, as a person at a terminal would.

`approve ID`, `reject ID --reason R`, `resume`, `halt --reason R`, `submit TYPE --reason R`
are run as `python -m actors.system --state-dir D [--config C] ...` in a subprocess: one
implementation of each action (actors/trigger/cli.py, actors/watcher/cli.py), their own
validation and messages, their own store connection and audit records, and nothing in the
daemon's process to get wrong (the commands write to stdout, which a daemon must not swap).

Security lives in the app (token, same-origin); this module only builds argv from a fixed
vocabulary: values are passed as separate arguments, never through a shell, and an id must
look like an id.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio

if TYPE_CHECKING:
    from pathlib import Path

ACTIONS = ("approve", "reject", "resume", "halt", "submit")
REQUEST_TYPES = ("selfplay_retrain", "learning_loop", "pipeline_rerun")
ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
MAX_REASON = 2_000
# The commands start Python and open the store: ~1 s on 2 busy cores; 60 s means stuck.
ACTION_TIMEOUT_S = 60.0


class ActionError(ValueError):
    """Raised when an action's name or fields break a rule (the message names the field)."""


@dataclass(frozen=True)
class ActionResult:
    """What the command said."""

    argv: tuple[str, ...]
    exit_code: int
    output: str

    @property
    def ok(self) -> bool:
        """True when the command succeeded."""
        return self.exit_code == 0


def command_args(action: str, fields: dict[str, Any]) -> list[str]:
    """The subcommand and its arguments for one action (validated)."""
    if action not in ACTIONS:
        msg = f"unknown action {action!r}; known: {', '.join(ACTIONS)}"
        raise ActionError(msg)
    reason = str(fields.get("reason") or "").strip()
    if len(reason) > MAX_REASON:
        msg = f"reason is {len(reason)} characters; at most {MAX_REASON}"
        raise ActionError(msg)
    if action in ("approve", "reject"):
        ident = str(fields.get("id") or "")
        if not ID.match(ident):
            msg = f"id {ident[:80]!r} is not a decision id (letters, digits, _ . : -)"
            raise ActionError(msg)
        if action == "approve":
            return ["approve", ident]
        if not reason:
            msg = "reject needs a reason (kept in the store and the audit trail)"
            raise ActionError(msg)
        return ["reject", ident, "--reason", reason]
    if action == "resume":
        # With an id: one request parked by an escalation (`resume ID`); without: the halt.
        ident = str(fields.get("id") or "")
        if not ident:
            return ["resume"]
        if not ID.match(ident):
            msg = f"id {ident[:80]!r} is not a request id (letters, digits, _ . : -)"
            raise ActionError(msg)
        return ["resume", ident]
    if action == "halt":
        return ["halt", "--reason", reason or "halted from the dashboard"]
    request_type = str(fields.get("request_type") or "")
    if request_type not in REQUEST_TYPES:
        msg = f"request_type {request_type!r}; known: {', '.join(REQUEST_TYPES)}"
        raise ActionError(msg)
    return ["submit", request_type, "--reason", reason or "submitted from the dashboard"]


def build_argv(
    state_dir: Path, config_path: Path | None, action: str, fields: dict[str, Any]
) -> list[str]:
    """The whole command line of one action (absolute paths: the cwd is not the caller's)."""
    argv = [sys.executable, "-m", "actors.system", "--state-dir", str(state_dir.resolve())]
    if config_path is not None:
        argv += ["--config", str(config_path.resolve())]
    return argv + command_args(action, fields)


async def run_action(
    state_dir: Path, config_path: Path | None, action: str, fields: dict[str, Any]
) -> ActionResult:
    """Run one action's CLI command against this state directory and return what it said."""
    argv = build_argv(state_dir, config_path, action, fields)
    with anyio.fail_after(ACTION_TIMEOUT_S):
        done = await anyio.run_process(argv, check=False)
    text = (done.stdout + done.stderr).decode("utf-8", errors="replace").strip()
    return ActionResult(tuple(argv), done.returncode, text[-4000:])
