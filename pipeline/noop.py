"""`python -m pipeline.noop`: a job that does nothing, to exercise the dispatch path end to end.

It prints one progress line and writes `{"ok": true, "message": ...}` to `--result-json`
atomically (temporary file, then rename).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    """Parse flags, report progress, write the result file; return the exit code."""
    parser = argparse.ArgumentParser(prog="python -m pipeline.noop", description=__doc__)
    parser.add_argument("--result-json", type=Path, required=True, help="where to write the result")
    parser.add_argument("--message", default="noop", help="text to put in the result")
    args = parser.parse_args(argv)
    sys.stdout.write(json.dumps({"event": "progress", "done": 1, "total": 1}) + "\n")
    sys.stdout.flush()
    target: Path = args.result_json
    tmp = target.with_name(f".{target.name}.tmp")
    try:
        tmp.write_text(json.dumps({"ok": True, "message": args.message}), encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        sys.stderr.write(f"pipeline.noop: cannot write result file {target}: {exc.strerror}\n")
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
