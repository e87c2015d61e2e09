"""Crash harness: requests through a daemon killed with `kill -9` at random moments.

`campaign(root, kills=N, requests=M, seed=S)` files M requests (pipeline reruns of step 1,
one-episode selfplay, and malformed files that are rejected) into a fresh state directory with
a 40-draw history, then N times: start the daemon, let it run a random 0.2-2.5 s (seeded), kill
it with SIGKILL (and the job processes it started, as an operator would). Then `--once` until
the spool is empty, and `verify`: every request terminal exactly once in the spool (one file in
`done/`, `failed/` or `rejected/`, none in `new/` or `cur/`), in the store (`request_outcomes`)
and in the audit trail (one terminal record); `PRAGMA integrity_check` is `ok`.

Each round also renames a file of 3 new draws into the inbox, so kills land mid-ingest too:
every draw must be in the history once (hash chain intact), every file in `processed/` once.

`python -m bench.crash [--kills 1000] [--quick]`; `tests/e2e/test_crash.py` runs a few kills.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from actors.ingestion.history import verify_chain
from actors.ingestion.ingest import ingest_bytes
from actors.paths import StatePaths
from actors.store import connect
from actors.watcher import spool
from bench.common import parser, print_table, write_results
from messages.base import new_id
from messages.requests import PipelineRerun, SelfplayRetrain
from pipeline.synthetic import synthetic_records

if TYPE_CHECKING:
    from actors.watcher.spool import Request

ROOT = Path(__file__).resolve().parents[1]
TERMINAL = ("done", "failed", "rejected")
TERMINAL_EVENTS = {"completed", "failed", "rejected"}
HISTORY = 40


@dataclass
class Campaign:
    """What one campaign did and found."""

    root: Path
    request_ids: list[str]
    kills: int = 0
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)
    recovered_audit: int = 0
    """Terminal audit records added by start-up reconciliation (crash between store and audit)."""


def _cli(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    config = root / "watcher.toml"
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "actors.system",
            "--state-dir",
            str(root),
            "--config",
            str(config),
            *list(args),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def prepare(root: Path, requests: int) -> list[str]:
    """A state dir with a 40-draw history and `requests` requests waiting; their ids."""
    root.mkdir(parents=True, exist_ok=True)
    # Chapter 13 never files on its own: only the harness's requests run.
    (root / "watcher.toml").write_text("[trigger]\nrequest_every_n_draws = 1000000\n")
    records = synthetic_records("lcg32", 4242, HISTORY)
    body = {"draws": [json.loads(r.model_dump_json(exclude={"schema_version"})) for r in records]}
    data = json.dumps(body).encode()
    conn = connect(StatePaths(root).ensure().db)
    try:
        outcome = ingest_bytes(
            conn,
            "history.json",
            data,
            mod=1000,
            max_bytes=len(data),
            origin="cli",
            correlation_id=new_id(),
        )
    finally:
        conn.close()
    if outcome.error is not None:
        raise RuntimeError(str(outcome.error))
    ids = []
    paths = StatePaths(root).ensure()
    new = paths.spool_dir("new")
    for n in range(requests):
        if n % 5 == 4:  # malformed: rejected with a recorded outcome
            rid = f"bad-{n:04d}"
            new.mkdir(parents=True, exist_ok=True)
            tmp = root / "watcher_requests" / "tmp" / f"{rid}.json"
            tmp.write_text(json.dumps({"request_type": "no_such_type", "request_id": rid}))
            tmp.rename(new / f"{rid}.json")
            ids.append(rid)
            continue
        request: Request = (
            SelfplayRetrain(request_id=f"req-{n:04d}", episodes=1, source="cli")
            if n % 5 == 3
            else PipelineRerun(request_id=f"req-{n:04d}", steps=(1,), source="cli")
        )
        spool.submit(paths, request)
        ids.append(request.request_id)
    return ids


def _job_pids(root: Path) -> set[int]:
    pids: set[int] = set()
    audit = root / "audit.jsonl"
    if not audit.exists():
        return pids
    for line in audit.read_bytes().splitlines():
        if b"job_started" in line:
            with contextlib.suppress(ValueError, KeyError, TypeError):
                pids.add(int(json.loads(line)["detail"]["pid"]))
    return pids


LIVE_DRAWS = 3
"""Draws in each file dropped into the inbox during a kill round."""


def drop_draws(root: Path, round_: int) -> None:
    """Rename a file of LIVE_DRAWS new draws into the inbox (after the history's end)."""
    start = datetime(2024, 2, 1, tzinfo=UTC)
    draws = [
        {
            "draw_id": f"live-{round_:05d}-{i}",
            "timestamp": (start + timedelta(minutes=LIVE_DRAWS * round_ + i)).isoformat(),
            "value": (round_ * 31 + i * 7) % 1000,
        }
        for i in range(LIVE_DRAWS)
    ]
    tmp = root / f".live-{round_:05d}.json.tmp"
    tmp.write_text(json.dumps({"draws": draws}))
    inbox = root / "inbox"
    inbox.mkdir(exist_ok=True)
    tmp.rename(inbox / f"live-{round_:05d}.json")


def kill_once(root: Path, rng: random.Random, round_: int = 0) -> None:
    """Start the daemon, drop a draw file, let it run a random while, SIGKILL it and the jobs
    it started."""
    config = root / "watcher.toml"
    with (root / "daemon.out").open("ab") as out:
        daemon = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "actors.system",
                "--state-dir",
                str(root),
                "--config",
                str(config),
            ],
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    drop_draws(root, round_)
    time.sleep(rng.uniform(0.2, 2.5))  # the crash's moment: random on purpose
    daemon.send_signal(signal.SIGKILL)
    daemon.wait(timeout=30)
    for pid in _job_pids(root):  # jobs run in their own process groups
        with contextlib.suppress(OSError):
            if b"pipeline" in Path(f"/proc/{pid}/cmdline").read_bytes():  # not a reused pid
                os.killpg(pid, signal.SIGKILL)


def finish(root: Path) -> None:
    """`--once` until nothing waits in new/ or cur/ (bounded)."""
    spool = root / "watcher_requests"
    for _attempt in range(5):
        _cli(root, "--once")
        if not any((spool / s).glob("*.json") for s in ("new", "cur")):
            return


def verify_draws(root: Path, rounds: int) -> list[str]:
    """Every dropped draw in the history once, the chain intact, each file processed once."""
    problems = []
    conn = sqlite3.connect(root / "state.db")
    try:
        total, distinct = conn.execute(
            "SELECT COUNT(*), COUNT(DISTINCT draw_id) FROM draws WHERE stream = 'real'"
        ).fetchone()
        chain = verify_chain(conn, "real")
    finally:
        conn.close()
    expected = HISTORY + LIVE_DRAWS * rounds
    if (total, distinct) != (expected, expected):
        problems.append(f"history: {total} draws ({distinct} distinct), expected {expected}")
    if not chain.ok:
        problems.append(f"history chain broken: {chain.detail}")
    if any((root / "inbox").iterdir()):
        problems.append(f"inbox not empty: {sorted(p.name for p in (root / 'inbox').iterdir())}")
    if any((root / "quarantine").iterdir()):
        problems.append("a draw file was quarantined")
    kept = Counter(p.name.split(".")[0] for p in (root / "processed").glob("live-*"))
    names = [f"live-{round_:05d}" for round_ in range(rounds)]
    problems.extend(f"{name}.json: {kept[name]} in processed/" for name in names if kept[name] != 1)
    return problems


def verify(root: Path, request_ids: list[str]) -> tuple[list[str], int]:
    """Problems found (empty: exactly once everywhere), and how many audit records were
    recovered at start-up."""
    problems = []
    spool = root / "watcher_requests"
    files: Counter[str] = Counter()
    for state in ("new", "cur", *TERMINAL):
        for path in (spool / state).glob("*.json"):
            if path.name.endswith(".reason.json"):
                continue
            rid = path.name.removesuffix(".json").split(".dup-")[0]
            files[rid] += 1
            if state in ("new", "cur"):
                problems.append(f"{rid}: still in {state}/")
    conn = sqlite3.connect(root / "state.db")
    try:
        integrity = conn.execute("PRAGMA integrity_check").fetchone()[0]
        outcomes = Counter(r[0] for r in conn.execute("SELECT request_id FROM request_outcomes"))
    finally:
        conn.close()
    if integrity != "ok":
        problems.append(f"integrity_check: {integrity}")
    endings: Counter[str] = Counter()
    recovered = 0
    for line in (root / "audit.jsonl").read_text().splitlines():
        record: dict[str, Any] = json.loads(line)
        if record["entity"] == "request" and record["event"] in TERMINAL_EVENTS:
            endings[record["entity_id"]] += 1
            recovered += bool(record["detail"].get("recovered"))
    for rid in request_ids:
        for where, counts in (("spool", files), ("store", outcomes), ("audit", endings)):
            if counts[rid] != 1:
                problems.append(f"{rid}: {counts[rid]} terminal entries in the {where}")
    return problems, recovered


def campaign(root: Path, *, kills: int, requests: int, seed: int) -> Campaign:
    """Prepare, kill `kills` times, finish, verify."""
    rng = random.Random(seed)
    result = Campaign(root, prepare(root, requests))
    start = time.monotonic()
    for round_ in range(kills):
        kill_once(root, rng, round_)
        result.kills += 1
    finish(root)
    result.seconds = time.monotonic() - start
    result.problems, result.recovered_audit = verify(root, result.request_ids)
    result.problems += verify_draws(root, kills)
    return result


def main(argv: list[str] | None = None) -> int:
    """Run one campaign; exit 1 if anything was not exactly once."""
    p = parser("crash", __doc__ or "")
    p.add_argument("--kills", type=int, default=1000)
    p.add_argument("--requests", type=int, default=0, help="default: kills / 4, at least 10")
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args(argv)
    kills = 1 if args.quick else args.kills
    requests = args.requests or (5 if args.quick else max(10, kills // 4))
    with tempfile.TemporaryDirectory(prefix="watcher-crash-") as folder:
        result = campaign(Path(folder) / "state", kills=kills, requests=requests, seed=args.seed)
    figures = {
        "kills": result.kills,
        "requests": len(result.request_ids),
        "seconds": round(result.seconds, 1),
        "recovered_audit_records": result.recovered_audit,
        "problems": len(result.problems),
        "seed": args.seed,
    }
    print_table(
        ["kills", "requests", "seconds", "recovered audit", "problems"],
        [
            [
                result.kills,
                len(result.request_ids),
                figures["seconds"],
                result.recovered_audit,
                len(result.problems),
            ]
        ],
    )
    for problem in result.problems[:20]:
        print(f"PROBLEM: {problem}")
    write_results("crash", figures, args.out)
    return 1 if result.problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
