"""CLI subcommands of ingestion: `ingest FILE...` and `inject --count N` (one-shot, no daemon).

Both write the store directly, through the same validation as the daemon. Their draws are
told to the TriggerActor by the daemon (now, at its next rescan, or at its next start): the
file log marks them as not yet announced.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actors.cliutil import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from actors.ingestion.files import keep, reason_record, set_aside
from actors.ingestion.ingest import FileOutcome, ingest_bytes
from actors.ingestion.parse import DrawFileError
from actors.ingestion.synthetic import InjectorRefusedError, inject, refusal
from actors.paths import StatePaths
from actors.store import connect, in_transaction
from messages.base import new_id

if TYPE_CHECKING:
    import argparse

    from actors.config import Settings


def register(subparsers: Any) -> None:
    """Add `ingest` and `inject` to the CLI."""
    ingest = subparsers.add_parser(
        "ingest",
        help="validate draw files and append them to the history (exit 1 if any is quarantined)",
        description=(
            "Validate each FILE (JSON, CSV or TXT) and append its draws to the history, all or "
            "nothing per file. A copy goes to processed/ or, with a .reason.json, to quarantine/ "
            "in the state directory; the originals stay where they are."
        ),
    )
    ingest.add_argument("files", nargs="+", type=Path, metavar="FILE")
    ingest.add_argument("--json", action="store_true", help="print the summary as JSON")
    ingest.set_defaults(handler=run_ingest)
    inject_cmd = subparsers.add_parser(
        "inject",
        help="append N synthetic draws (needs test_mode and synthetic.enabled)",
        description=(
            "Generate N draws from the [synthetic] generator, continuing from its saved "
            "position, into the synthetic stream. Refused (exit 2) unless both test_mode and "
            "synthetic.enabled are true."
        ),
    )
    inject_cmd.add_argument("--count", type=int, required=True, metavar="N")
    inject_cmd.add_argument("--json", action="store_true", help="print the summary as JSON")
    inject_cmd.set_defaults(handler=run_inject)


def _summary(outcome: FileOutcome, where: Path) -> dict[str, Any]:
    if outcome.error is not None:
        return {
            "file": outcome.name,
            "outcome": "quarantined",
            "rule": outcome.error.rule,
            "record": outcome.error.record,
            "detail": outcome.error.detail,
            "kept_at": str(where),
        }
    report = outcome.report
    assert report is not None  # a FileOutcome has a report or an error
    return {
        "file": outcome.name,
        "outcome": "processed",
        "stream": report.stream,
        "appended": len(report.appended),
        "backfill": report.backfill,
        "duplicates": report.duplicates,
        "fingerprint": report.appended[-1].fingerprint if report.appended else None,
    }


def _line(item: dict[str, Any]) -> str:
    if item["outcome"] == "quarantined":
        where = f" at {item['record']}" if item["record"] else ""
        return f"{item['file']}: QUARANTINED: {item['rule']}{where} ({item['detail']})"
    return (
        f"{item['file']}: {item['appended']} appended to {item['stream']!r} "
        f"({item['backfill']} backfill), {item['duplicates']} duplicates"
    )


def run_ingest(args: argparse.Namespace, settings: Settings) -> int:
    """`ingest FILE...`: exit 0 when all were processed, 1 if any was quarantined, 2 on usage."""
    missing = [str(f) for f in args.files if not f.exists()]
    if missing:
        sys.stderr.write(f"watcher ingest: no such file: {', '.join(missing)}\n")
        return EXIT_USAGE
    # Named by the user, so a symlink is followed; what it leads to must be a regular file
    # (a FIFO or /dev/zero would block or never end).
    odd = [str(f) for f in args.files if not f.resolve().is_file()]
    if odd:
        sys.stderr.write(f"watcher ingest: not a regular file: {', '.join(odd)}\n")
        return EXIT_USAGE
    paths = StatePaths(settings.state_dir).ensure()
    config = settings.ingestion
    max_bytes = int(config.max_file_mb * 1024 * 1024)
    results: list[dict[str, Any]] = []
    conn = connect(paths.db)
    try:
        for path in args.files:
            with path.resolve().open("rb") as handle:
                data = handle.read(max_bytes + 1)  # over the limit: quarantined, not all read
            correlation_id = new_id()
            outcome = ingest_bytes(
                conn,
                path.name,
                data,
                mod=config.mod,
                max_bytes=max_bytes,
                origin="cli",
                correlation_id=correlation_id,
            )
            if outcome.error is not None:
                reason = reason_record(
                    path.name,
                    outcome.error,
                    sha256=outcome.sha256,
                    origin="cli",
                    correlation_id=correlation_id,
                )
                where = set_aside(path, paths.quarantine, reason, move=False)
            else:
                where = keep(path, paths.processed, move=False)
            results.append(_summary(outcome, where))
    finally:
        conn.close()
    quarantined = sum(1 for r in results if r["outcome"] == "quarantined")
    totals = {
        "files": len(results),
        "quarantined": quarantined,
        "appended": sum(r.get("appended", 0) for r in results),
        "duplicates": sum(r.get("duplicates", 0) for r in results),
        "backfill": sum(r.get("backfill", 0) for r in results),
    }
    if args.json:
        sys.stdout.write(json.dumps({"files": results, "totals": totals}, indent=2) + "\n")
    else:
        for item in results:
            sys.stdout.write(_line(item) + "\n")
        sys.stdout.write(
            f"{totals['files']} files: {totals['appended']} draws appended "
            f"({totals['backfill']} backfill), {totals['duplicates']} duplicates, "
            f"{quarantined} quarantined\n"
        )
    return EXIT_FAILED if quarantined else EXIT_OK


def run_inject(args: argparse.Namespace, settings: Settings) -> int:
    """`inject --count N`: exit 0 on success, 2 when refused or N is not positive."""
    if not 1 <= args.count <= 1_000_000:
        sys.stderr.write(f"watcher inject: --count {args.count} outside [1, 1000000]\n")
        return EXIT_USAGE
    reason = refusal(settings)
    if reason is not None:
        sys.stderr.write(f"watcher inject: {reason}\n")
        return EXIT_USAGE
    paths = StatePaths(settings.state_dir).ensure()
    conn = connect(paths.db)
    try:
        injection = in_transaction(
            conn, lambda c: inject(c, settings, count=args.count, correlation_id=new_id())
        )
    except (InjectorRefusedError, DrawFileError) as exc:
        sys.stderr.write(f"watcher inject: {exc}\n")
        return EXIT_USAGE
    finally:
        conn.close()
    report = injection.report
    summary = {
        "stream": injection.stream,
        "appended": len(report.appended),
        "first_position": injection.first_position,
        "next_position": injection.next_position,
        "fingerprint": report.appended[-1].fingerprint if report.appended else None,
        "values": [a.draw.value for a in report.appended][:20],
    }
    if args.json:
        sys.stdout.write(json.dumps(summary, indent=2) + "\n")
    else:
        sys.stdout.write(
            f"injected {summary['appended']} synthetic draws into {injection.stream!r} "
            f"(positions {injection.first_position}..{injection.next_position - 1}); "
            f"fingerprint {str(summary['fingerprint'])[:16]}\n"
        )
    return EXIT_OK
