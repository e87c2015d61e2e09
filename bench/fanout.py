"""Fan-out: one job split over 1, 2, 4, 8 and 26 logical GPUs, on the local backend and on Ray.

Two jobs, each run through the real GPU dispatcher (sharding, slots, lease, merge):

- `fixed`: a synthetic job whose every shard sleeps a fixed time (1 s; 0.2 s with --quick).
  Its wall time against the ideal (one shard's cost, since there is one shard per GPU) gives
  the efficiency; a shard's process time minus its cost gives the per-shard dispatch
  overhead (median, p99); the whole job's wall minus the cost is the critical-path overhead.
- `sieve`: the reference sieve over 2^24 seeds (2^20 with --quick), whose merge cost is timed
  on its shards' survivor sets. On a machine without a GPU the shards share the CPU cores, so
  its efficiency is bounded by cores / GPUs; the figure says what the CPU fallback does.

Targets (issue 14): per-shard overhead <= 20 ms local, <= 50 ms on Ray; efficiency >= 95 % at
26 logical GPUs for shards of >= 1 s. `--quick` runs the local backend at 1, 2 and 4 slots
only (a few seconds, for the smoke test); the full run adds 8 and 26 and Ray (when installed).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
from pydantic import BaseModel, ConfigDict

from actors.gpu.actor import GPUDispatchActor
from actors.gpu.registry import JobRegistry, default_registry
from actors.gpu.spec import GenericResult, JobSpec, ShardSpec
from actors.ingestion.history import append_draws
from actors.services import GPU, LLM, TRIGGER
from actors.testing import harness_settings, open_test_system, probe, scripted_llm
from bench.common import parser, print_table, write_results
from messages.artifacts import SurvivorSet
from messages.dispatch import JobFinished, RunJob
from messages.ingestion import Draw
from pipeline.params import SieveParams
from pipeline.sieve import merge_survivor_sets
from pipeline.synthetic import synthetic_records

if TYPE_CHECKING:
    import sqlite3


class FixedParams(BaseModel):
    """The synthetic job's parameters: its shard range and the cost of each shard."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    start: int = 0
    end: int = 1
    cost_s: float = 1.0


def merge_fixed(
    results: list[BaseModel], shard_dirs: list[Path], state_dir: Path, params: FixedParams
) -> GenericResult:
    """The synthetic job's merge: it counts the shards."""
    del shard_dirs, state_dir
    return GenericResult.model_validate({"shards": len(results), "end": params.end})


_SLEEP = (
    "import json, sys, time\n"
    "args = dict(zip(sys.argv[1::2], sys.argv[2::2]))\n"
    "time.sleep(float(args['--cost-s']))\n"
    "open(args['--result-json'], 'w').write(json.dumps(dict(ok=True)))\n"
)
FIXED = JobSpec(
    name="fixed",
    argv=("{python}", "-S", "-c", _SLEEP, "--result-json", "{result_json}"),
    params_model=FixedParams,
    result_model=GenericResult,
    timeout_s=600,
    needs_gpu=True,
    params_as_flags=True,
    shard=ShardSpec(start="start", end="end", merge=f"{__name__}:merge_fixed", min_size=1),
)


def _append(draws: list[Draw], conn: sqlite3.Connection) -> None:
    append_draws(conn, "bench.json", draws, stream="real")


def _placements(finished: JobFinished) -> list[dict[str, Any]]:
    if finished.status != "completed":
        msg = f"bench job {finished.job} ended {finished.status}: {finished.error}"
        raise RuntimeError(msg)
    return [p for p in finished.placements if p["status"] == "completed"]


async def run_backend(
    backend: str, slot_counts: list[int], cost_s: float, seeds: int
) -> list[dict[str, Any]]:
    """Every (job, slots) case on one backend, in one system (one Ray instance)."""
    rows: list[dict[str, Any]] = []
    most = max(slot_counts)
    with tempfile.TemporaryDirectory(prefix="bench-fanout-") as tmp:
        state = Path(tmp)
        gpu: dict[str, Any] = {"backend": backend, "cpu_slots": most}
        if backend == "ray":
            import ray

            # One instance for every case: Ray does not survive a shutdown and a new init in
            # one process; the dispatcher reuses a connected driver and leaves it running.
            ray.init(
                address="local",
                num_gpus=most - 1,
                resources={"llm_gpu": 1},
                num_cpus=2,
                include_dashboard=False,
                log_to_driver=False,
                configure_logging=False,
            )
        registry = JobRegistry([*default_registry(), FIXED])
        fakes = {
            TRIGGER: probe(),
            LLM: scripted_llm(),
            GPU: (probe()[0], lambda s: GPUDispatchActor(s, registry=registry)),
        }
        for slots in slot_counts:
            settings = harness_settings(state, gpu={**gpu, "max_shards": slots})
            async with open_test_system(state, fakes=fakes, settings=settings) as h:
                if not rows:
                    draws = [
                        Draw(draw_id=r.draw_id, timestamp=r.timestamp, value=r.value)
                        for r in synthetic_records("lcg32", 4242, 40)
                    ]
                    await h.services.store.transaction(partial(_append, draws))
                ref = h.system.ref(GPU)
                started = time.perf_counter()
                fixed = await ref.ask(
                    RunJob(
                        job="fixed", run_id=f"f{slots}", params={"end": slots, "cost_s": cost_s}
                    ),
                    timeout=900,
                    expect=JobFinished,
                )
                wall = time.perf_counter() - started
                shards = _placements(fixed)
                overheads = sorted(p["duration_s"] - cost_s for p in shards)
                rows.append(
                    {
                        "backend": backend,
                        "job": "fixed",
                        "gpus": slots,
                        "shards": len(shards),
                        "wall_s": wall,
                        "efficiency": cost_s / wall,
                        "shard_overhead_median_ms": statistics.median(overheads) * 1e3,
                        "shard_overhead_p99_ms": overheads[-1] * 1e3
                        if len(overheads) < 100
                        else overheads[round(0.99 * (len(overheads) - 1))] * 1e3,
                        "critical_path_overhead_ms": (wall - cost_s) * 1e3,
                    }
                )
                params = {"families": "lcg32", "seed_end": seeds}
                started = time.perf_counter()
                sieve = await ref.ask(
                    RunJob(job="sieve", run_id=f"s{slots}", step="1", params=params),
                    timeout=900,
                    expect=JobFinished,
                )
                wall = time.perf_counter() - started
                pieces = _placements(sieve)
                sets = [
                    SurvivorSet.model_validate_json(p.read_text())
                    for p in sorted((state / "runs" / f"s{slots}").glob("*/shard-*/artifacts/*"))
                ]
                merge_s = 0.0
                if len(sets) > 1:
                    merge_started = time.perf_counter()
                    merge_survivor_sets(sets, SieveParams.model_validate(params))
                    merge_s = time.perf_counter() - merge_started
                longest = max(p["duration_s"] for p in pieces)
                rows.append(
                    {
                        "backend": backend,
                        "job": "sieve",
                        "gpus": slots,
                        "shards": len(pieces),
                        "wall_s": wall,
                        "seeds_per_s": seeds / wall,
                        "longest_shard_s": longest,
                        "merge_ms": merge_s * 1e3,
                    }
                )
        if backend == "ray":
            import ray

            ray.shutdown()
    return rows


def main(argv: list[str] | None = None) -> int:
    """Run the fan-out benchmark and print the tables."""
    args = parser("fanout", __doc__.splitlines()[0]).parse_args(argv)
    slot_counts = [1, 2, 4] if args.quick else [1, 2, 4, 8, 26]
    cost_s = 0.2 if args.quick else 1.0
    seeds = 1 << 20 if args.quick else 1 << 24
    backends = ["local"]
    try:
        import ray  # noqa: F401  (only to know whether the Ray rows can run)

        if not args.quick:
            backends.append("ray")
    except ImportError:
        print("ray is not installed: the Ray rows are skipped", file=sys.stderr)
    rows: list[dict[str, Any]] = []
    for backend in backends:
        rows.extend(anyio.run(run_backend, backend, slot_counts, cost_s, seeds))
    fixed = [r for r in rows if r["job"] == "fixed"]
    print_table(
        ["backend", "GPUs", "wall s", "efficiency", "overhead median ms", "p99 ms", "path ms"],
        [
            [
                r["backend"],
                r["gpus"],
                f"{r['wall_s']:.3f}",
                f"{r['efficiency']:.1%}",
                f"{r['shard_overhead_median_ms']:.1f}",
                f"{r['shard_overhead_p99_ms']:.1f}",
                f"{r['critical_path_overhead_ms']:.0f}",
            ]
            for r in fixed
        ],
    )
    print()
    sieve = [r for r in rows if r["job"] == "sieve"]
    print_table(
        ["backend", "GPUs", "seeds", "wall s", "M seeds/s", "longest shard s", "merge ms"],
        [
            [
                r["backend"],
                r["gpus"],
                seeds,
                f"{r['wall_s']:.2f}",
                f"{r['seeds_per_s'] / 1e6:.1f}",
                f"{r['longest_shard_s']:.2f}",
                f"{r['merge_ms']:.2f}",
            ]
            for r in sieve
        ],
    )
    path = write_results(
        "fanout",
        {"cost_s": cost_s, "seeds": seeds, "rows": rows, "quick": args.quick},
        args.out,
    )
    print(f"\nresults: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
