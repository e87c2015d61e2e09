"""A shardable job for the sharding tests: finds the multiples of K in [start, end).

`python rangejob.py --state-dir DIR --result-json PATH --start A --end B --k K
[--die-once-at S --marker-dir M] [--fail-at S]`: prints progress, writes
`DIR/artifacts/found.json` (the multiples) and a result. With `--die-once-at S`, the shard
starting at S kills itself with SIGKILL the first time (a marker file remembers it); with
`--fail-at S`, the shard starting at S always exits 1. With `$RANGEJOB_MARKERS` set (a folder
outside the state directory, which a Ray node copies), `--kill-parent-once-at S` makes that
shard kill its parent (the Ray worker) the first time, `--sleep-once-at S` makes it sleep a
minute the first time, and every shard writes its PID to `pid-START` there.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path


def main() -> int:
    """Run one shard."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--state-dir", type=Path, required=True)
    parser.add_argument("--result-json", type=Path, required=True)
    for flag in (
        "--start",
        "--end",
        "--k",
        "--die-once-at",
        "--fail-at",
        "--kill-parent-once-at",
        "--sleep-once-at",
    ):
        parser.add_argument(flag, type=int, required=flag in {"--start", "--end", "--k"})
    parser.add_argument("--marker-dir", type=Path)
    args = parser.parse_args()
    print(json.dumps({"event": "progress", "done": 0, "total": 2}), flush=True)
    if args.die_once_at == args.start:
        marker = args.marker_dir / f"died-{args.start}"
        if not marker.exists():
            marker.write_text("x")
            os.kill(os.getpid(), signal.SIGKILL)
    shared = os.environ.get("RANGEJOB_MARKERS")
    if shared:
        markers = Path(shared)
        (markers / f"pid-{args.start}").write_text(str(os.getpid()))
        once = markers / f"once-{args.start}"
        first = not once.exists()
        once.touch()
        if first and args.kill_parent_once_at == args.start:
            os.kill(os.getppid(), signal.SIGKILL)
            time.sleep(60)  # the worker is gone; this process dies with it (PR_SET_PDEATHSIG)
        if first and args.sleep_once_at == args.start:
            time.sleep(60)
    if args.fail_at == args.start:
        sys.stderr.write(f"rangejob: shard at {args.start} refuses to run\n")
        return 1
    found = [n for n in range(args.start, args.end) if n % args.k == 0]
    artifacts = args.state_dir / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    (artifacts / "found.json").write_text(json.dumps(found))
    print(json.dumps({"event": "progress", "done": 2, "total": 2}), flush=True)
    result = {"ok": True, "found": len(found), "start": args.start, "end": args.end}
    args.result_json.write_text(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
