"""`python -m actors.logs tail`: show and follow the JSON log or the audit trail."""

from __future__ import annotations

import argparse
import os
import sys
from contextlib import aclosing
from functools import partial
from pathlib import Path

import anyio

from actors.config import DEFAULT_STATE_DIR, STATE_DIR_ENV
from actors.logs.filters import Filters, format_audit, format_log, parse_line, parse_since
from actors.logs.follow import read_lines
from actors.paths import StatePaths


def build_parser(prog: str = "python -m actors.logs") -> argparse.ArgumentParser:
    """The command line of `python -m actors.logs` (or `python -m actors.system logs`)."""
    parser = argparse.ArgumentParser(
        prog=prog, description="Show Watcher's logs or its audit trail."
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        help=f"state directory (default: ${STATE_DIR_ENV}, else ./var)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    tail = sub.add_parser("tail", help="print the log (or audit trail), optionally following it")
    tail.add_argument(
        "-f",
        "--follow",
        action="store_true",
        help="keep printing new lines (survives truncation and rotation)",
    )
    tail.add_argument("--actor", help="only lines of this actor (e.g. watcher, gpu)")
    tail.add_argument(
        "--level",
        choices=["debug", "info", "warning", "error", "critical"],
        help="only lines at this level or above",
    )
    tail.add_argument(
        "--correlation-id",
        metavar="ID",
        help="only lines of this flow (the id, or its first characters as the log shows them)",
    )
    tail.add_argument(
        "--since",
        metavar="WHEN",
        help="only lines newer than this: 30s, 10m, 2h, 1d or an ISO timestamp",
    )
    tail.add_argument(
        "--json",
        action="store_true",
        help="print the matching lines unchanged (one JSON object each, for jq)",
    )
    tail.add_argument("--audit", action="store_true", help="read audit.jsonl instead of the log")
    tail.add_argument("--file", type=Path, metavar="PATH", help="read this file instead")
    tail.add_argument(
        "--state-dir",
        type=Path,
        metavar="DIR",
        default=argparse.SUPPRESS,
        help="state directory (also accepted before `tail`)",
    )
    return parser


async def tail(path: Path, filters: Filters, *, follow: bool, as_json: bool, audit: bool) -> int:
    """Print the matching lines of `path`; return the exit code."""
    fmt = format_audit if audit else format_log
    shown = 0
    async with aclosing(read_lines(path, follow=follow)) as lines:
        async for line in lines:
            record = parse_line(line)
            if record is None:
                continue
            if filters.passes(record, audit=audit):
                shown += 1
                sys.stdout.write((line if as_json else fmt(record)) + "\n")
                if follow:
                    sys.stdout.flush()
    if shown == 0 and filters.correlation_id is not None:
        # Not silent: a mistyped id (or one of the other file) is the likely reason.
        what = "audit trail" if audit else "log"
        sys.stderr.write(
            f"logs: no line of the {what} {path} has a correlation id starting with"
            f" {filters.correlation_id!r}\n"
        )
    return 0


def main(argv: list[str] | None = None, *, prog: str = "python -m actors.logs") -> int:
    """Entry point; exit 0, or 2 on a bad argument or a missing file."""
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    root = args.state_dir or Path(os.environ.get(STATE_DIR_ENV) or DEFAULT_STATE_DIR)
    paths = StatePaths(root)
    path = args.file or (paths.audit if args.audit else paths.log_file)
    try:
        since = parse_since(args.since) if args.since else None
    except ValueError as exc:
        parser.error(str(exc))
    if not args.follow and not path.exists():
        sys.stderr.write(f"logs: no such file {path} (is --state-dir right?)\n")
        return 2
    filters = Filters(args.actor, args.level, args.correlation_id, since)
    run = partial(tail, path, filters, follow=args.follow, as_json=args.json, audit=args.audit)
    try:
        return anyio.run(run)
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # `logs tail | head`: the reader left; that is not an error.
        sys.stderr.close()
        return 0
