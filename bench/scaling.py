"""Scaling: how draw → request latency and memory grow with the history's length.

For each length (1k, 10k, 100k, 1M draws) a fresh process pre-fills a store with a hash-chained
history, then times draw files renamed into inbox/ until Chapter 13's request reaches the
watcher (a probe), and reports the process's peak RSS. The 1k row is the baseline of the ratios.
"""

from __future__ import annotations

import hashlib
import json
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from actors.store.schema import connect
from bench.common import parser, print_table, summarize, write_results
from bench.loop import draw_to_request

if TYPE_CHECKING:
    from collections.abc import Iterator

LENGTHS = (1_000, 10_000, 100_000, 1_000_000)
START = datetime(2020, 1, 1, tzinfo=UTC)


def prefill(db: Path, count: int) -> None:
    """Write `count` real draws with a valid hash chain, in one transaction.

    Rows are generated as they are inserted, so the benchmark's own memory stays flat and the
    peak RSS it reports is the system's.
    """
    conn = connect(db)

    def rows() -> Iterator[tuple[object, ...]]:
        fingerprint = "0" * 64
        for n in range(count):
            stamp = (START + timedelta(minutes=n)).isoformat()
            draw_id = f"h{n}"
            value = (n * 7919) % 1000
            text = f"{fingerprint}|{draw_id}|{stamp}|{value}"
            fingerprint = hashlib.sha256(text.encode()).hexdigest()
            yield (draw_id, "real", stamp, value, "external", 0, fingerprint, "{}", stamp)

    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO draws (draw_id, stream, timestamp, value, source, is_backfill,"
        " fingerprint, metadata, ingested_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        rows(),
    )
    conn.execute("COMMIT")
    conn.close()


def one(count: int, draws: int) -> dict[str, float]:
    """Measure one history length in this process."""
    with tempfile.TemporaryDirectory() as tmp:
        state = Path(tmp)
        started = time.perf_counter()
        prefill(state / "state.db", count)
        fill_s = time.perf_counter() - started
        samples = anyio.run(draw_to_request, state, draws, "2030-01-01")
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {**summarize(samples), "peak_rss_mb": peak_mb, "prefill_s": fill_s}


def main(argv: list[str] | None = None) -> int:
    """Run each history length in its own process; print the cost curve."""
    p = parser("scaling", __doc__.splitlines()[0])
    p.add_argument("--one", type=int, help="internal: measure one length in this process")
    p.add_argument("--draws", type=int, default=0)
    args = p.parse_args(argv)
    if args.one:
        print(json.dumps(one(args.one, args.draws)))
        return 0
    lengths = LENGTHS[:2] if args.quick else LENGTHS
    draws = 5 if args.quick else 30
    rows: dict[str, dict[str, float]] = {}
    for length in lengths:
        out = subprocess.run(
            [sys.executable, "-m", "bench.scaling", "--one", str(length), "--draws", str(draws)],
            capture_output=True,
            text=True,
            check=True,
        )
        rows[str(length)] = json.loads(out.stdout.strip().splitlines()[-1])
    base = rows[str(lengths[0])]
    print_table(
        ["history", "median ms", "p99 ms", "x 1k", "peak RSS MB", "x 1k"],
        [
            [
                f"{int(k):,}",
                f"{f['median_us'] / 1000:.2f}",
                f"{f['p99_us'] / 1000:.2f}",
                f"{f['median_us'] / base['median_us']:.2f}",
                f"{f['peak_rss_mb']:.0f}",
                f"{f['peak_rss_mb'] / base['peak_rss_mb']:.2f}",
            ]
            for k, f in rows.items()
        ],
    )
    path = write_results("scaling", {"draws_per_length": draws, "rows": rows}, args.out)
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
