"""Ingestion benchmark: draws/s batched and file by file, and rename → `DrawIngested` latency.

The real IngestionActor runs in the real system with a probe standing in for the TriggerActor;
a figure ends when the probe has received the last `DrawIngested`. Targets (not tests):
>= 50,000 draws/s for one 100,000-draw file; <= 10 ms median rename → DrawIngested.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import structlog

from actors.ingestion.ingest import ingest_bytes
from actors.services import TRIGGER
from actors.store import connect
from actors.testing import ProbeRecord, harness_settings, open_test_system, probe
from bench.common import parser, print_table, summarize, write_results
from messages.ingestion import DrawIngested, IngestInbox

EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def draw_records(start: int, count: int) -> list[dict[str, Any]]:
    """`count` draws with ids and minutes from `start` on."""
    return [
        {
            "draw_id": f"b-{i:08d}",
            "timestamp": (EPOCH + timedelta(minutes=i)).isoformat(),
            "value": (i * 7919) % 1000,
        }
        for i in range(start, start + count)
    ]


def drop(inbox: Path, name: str, records: list[dict[str, Any]]) -> None:
    """Write beside the inbox, then rename in (atomic, as writers must)."""
    tmp = inbox.parent / f".{name}.tmp"
    tmp.write_text(json.dumps(records))
    os.replace(tmp, inbox / name)


async def wait_for(record: ProbeRecord, count: int, timeout: float = 300) -> None:
    """Until the probe holds `count` DrawIngested."""
    with anyio.fail_after(timeout):
        while len(record.of(DrawIngested)) < count:
            await record.changed.wait()


async def batched(root: Path, draws: int, files: int) -> float:
    """Seconds from `IngestInbox` to the last DrawIngested, for `files` files of draws."""
    settings = harness_settings(root)
    record, factory = probe()
    async with open_test_system(root, fakes={TRIGGER: (record, factory)}, settings=settings) as h:
        await h.system.wait_idle()
        per_file = draws // files
        for n in range(files):
            drop(h.services.paths.inbox, f"f{n:05d}.json", draw_records(n * per_file, per_file))
        start = time.perf_counter()
        await h.system.ref("ingestion").ask(IngestInbox(), timeout=600)
        await wait_for(record, draws)
        return time.perf_counter() - start


def core(root: Path, draws: int) -> float:
    """Seconds for parse + validate + one-transaction commit of one file, no actor around."""
    root.mkdir(parents=True)
    conn = connect(root / "state.db")
    data = json.dumps(draw_records(0, draws)).encode()
    start = time.perf_counter()
    outcome = ingest_bytes(
        conn, "one.json", data, mod=1000, max_bytes=len(data), origin="cli", correlation_id="b"
    )
    elapsed = time.perf_counter() - start
    conn.close()
    assert outcome.report is not None
    assert len(outcome.report.appended) == draws
    return elapsed


async def latency(root: Path, samples: int) -> list[float]:
    """Rename → DrawIngested at the probe, one single-draw file at a time, daemon watching."""
    settings = harness_settings(root)
    record, factory = probe()
    out: list[float] = []
    async with open_test_system(
        root, fakes={TRIGGER: (record, factory)}, settings=settings, once=False
    ) as h:
        inbox = h.services.paths.inbox
        await anyio.sleep(0.3)  # let the watcher settle
        for n in range(samples):
            tmp = inbox.parent / f".l{n}.tmp"
            tmp.write_text(json.dumps(draw_records(n, 1)))
            start = time.perf_counter()
            os.replace(tmp, inbox / f"l{n:05d}.json")
            await wait_for(record, n + 1, timeout=10)
            out.append(time.perf_counter() - start)
            await anyio.sleep(0.005)
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the three figures; print a table; write bench/results/ingest.json."""
    p = parser("ingest", __doc__ or "")
    p.add_argument(
        "--gc-gen0",
        type=int,
        default=None,
        metavar="N",
        help="set the garbage collector's generation-0 threshold (default: Python's 700)",
    )
    args = p.parse_args(argv)
    if args.gc_gen0 is not None:
        # A daemon-level choice, measured here: with ~10 objects per draw alive at once,
        # the default threshold runs a collection every ~70 draws.
        gc.set_threshold(args.gc_gen0, 20, 20)
    # Per-file info lines on a console would measure the console, not ingestion.
    structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))
    big = 10_000 if args.quick else 100_000
    many = 100 if args.quick else 1_000
    samples = 30 if args.quick else 300
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        commit = core(root / "core", big)
        one = anyio.run(batched, root / "one", big, 1)
        split = anyio.run(batched, root / "many", many, many)
        lat = anyio.run(latency, root / "lat", samples)
    lat_summary = summarize(lat)
    figures = {
        "one_file_parse_and_commit": {"draws": big, "seconds": commit, "draws_per_s": big / commit},
        "one_file": {"draws": big, "seconds": one, "draws_per_s": big / one},
        "single_draw_files": {"files": many, "seconds": split, "draws_per_s": many / split},
        "rename_to_draw_ingested": lat_summary,
        "gc_gen0_threshold": gc.get_threshold()[0],
        "targets": {"batched_draws_per_s": 50_000, "latency_median_ms": 10},
    }
    print_table(
        ["figure", "value", "target"],
        [
            [f"one {big:,}-draw file: parse + commit", f"{big / commit:,.0f} draws/s", "-"],
            [
                f"one {big:,}-draw file → last DrawIngested",
                f"{big / one:,.0f} draws/s",
                ">= 50,000 draws/s",
            ],
            [f"{many:,} single-draw files", f"{many / split:,.0f} draws/s", "-"],
            [
                "rename → DrawIngested",
                f"median {lat_summary['median_us'] / 1000:.2f} ms, "
                f"p99 {lat_summary['p99_us'] / 1000:.2f} ms "
                f"(mean {statistics.fmean(lat) * 1000:.2f} ms)",
                "median <= 10 ms",
            ],
        ],
    )
    name = "ingest" if args.gc_gen0 is None else f"ingest_gc{args.gc_gen0}"
    path = write_results(name, figures, args.out)
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
