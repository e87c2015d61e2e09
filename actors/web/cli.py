"""`report`: the console's charts as a static page (and PNG) from a state directory.

    python -m actors.system --state-dir var report --out /tmp/watcher-report

Works with or without a running daemon: it reads the store (read-only) and the audit trail.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actors.cliutil import EXIT_FAILED, EXIT_OK
from actors.paths import StatePaths
from actors.web.report import write_report

if TYPE_CHECKING:
    import argparse

    from actors.config import Settings


def register(sub: Any) -> None:
    """Add `report` to the daemon's CLI."""
    report = sub.add_parser(
        "report", help="write the loop's charts and tables as static HTML (and PNG)"
    )
    report.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    report.add_argument("--no-png", action="store_true", help="skip the PNG (no chromium run)")
    report.set_defaults(handler=run_report)


def run_report(args: argparse.Namespace, settings: Settings) -> int:
    """Write the report; print what was written."""
    paths = StatePaths(settings.state_dir)
    try:
        report = write_report(settings, paths, args.out, png=not args.no_png)
    except FileNotFoundError as exc:
        sys.stderr.write(f"report: {exc}\n")
        return EXIT_FAILED
    sys.stdout.write(f"{report.html}\n{report.data}\n")
    if report.png is not None:
        sys.stdout.write(f"{report.png}\n")
    else:
        sys.stderr.write(f"report: no PNG: {report.note}\n")
    return EXIT_OK
