"""Lease cycle: with the real LLM worker (gemma3-270m) and a GPU-class job that just exits.

Measures, from the audit trail of one system: release (ReleaseVRAM sent → worker gone), job
start (released → job process started), the job itself, reload (lease returned → worker loaded
again, eager reload), and the memory the release freed. Baseline in the same run: starting the
worker from cold (load time), the physical floor of a reload. Target (issue 5): lease cycle
≤ 1 s with gemma3-270m on CPU.
"""

from __future__ import annotations

import statistics
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio

from actors.audit import read_audit
from actors.gpu.actor import GPUDispatchActor
from actors.gpu.registry import NOOP_JOB, JobRegistry
from actors.llm.models import resolve_model
from actors.services import GPU, TRIGGER
from actors.testing import harness_settings, open_test_system, probe
from bench.common import parser, print_table, write_results
from messages.dispatch import JobFinished, RunJob

if TYPE_CHECKING:
    from datetime import datetime

GPU_NOOP = NOOP_JOB.model_copy(update={"name": "noop_gpu", "needs_gpu": True, "gpus": 1})


def _at(record: Any) -> float:
    stamp: datetime = record.recorded_at
    return stamp.timestamp()


async def cycles(state_dir: Path, model: Path, count: int) -> list[dict[str, float]]:
    """Run `count` GPU jobs through the real lease; return per-cycle phase durations (s)."""
    settings = harness_settings(state_dir, llm={"model": str(model), "reload": "eager"})
    registry = JobRegistry([NOOP_JOB, GPU_NOOP])
    fakes = {TRIGGER: probe(), GPU: (probe()[0], lambda s: GPUDispatchActor(s, registry=registry))}
    async with open_test_system(state_dir, fakes=fakes, settings=settings) as h:
        for n in range(count):
            finished = await h.system.ref(GPU).ask(
                RunJob(job="noop_gpu", run_id=f"bench-{n}"), timeout=120, expect=JobFinished
            )
            if finished.status != "completed":
                msg = f"bench job did not complete: {finished.status} {finished.error}"
                raise RuntimeError(msg)
            await h.system.wait_idle()
    records = list(read_audit(state_dir / "audit.jsonl"))
    out = []
    for n in range(count):
        cid_records = [r for r in records if r.detail.get("run_id") == f"bench-{n}"]
        cid = cid_records[0].correlation_id
        flow = [r for r in records if r.correlation_id == cid]
        taken = next(r for r in flow if r.entity == "lease" and r.event == "taken")
        released = next(r for r in flow if r.event == "vram_released")
        started = next(r for r in flow if r.event == "job_started")
        returned = next(r for r in flow if r.entity == "lease" and r.event == "returned")
        reloaded = next(
            r for r in records if r.event == "worker_started" and _at(r) >= _at(returned)
        )
        out.append(
            {
                "release_s": _at(released) - _at(taken),
                "to_job_start_s": _at(started) - _at(released),
                "job_s": _at(returned) - _at(started),
                "reload_s": _at(reloaded) - _at(returned),
                "cycle_s": _at(reloaded) - _at(taken),
                "freed_mb": float(released.detail.get("freed_bytes", 0)) / 2**20,
            }
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Run the lease benchmark and print the table."""
    args = parser("lease", __doc__.splitlines()[0]).parse_args(argv)
    count = 2 if args.quick else 8
    with tempfile.TemporaryDirectory() as tmp:
        model = resolve_model("gemma3-270m", cache_dir=Path(tmp) / "cache")
        assert model is not None
        rows = anyio.run(cycles, Path(tmp) / "state", model, count)
    phases = ["release_s", "to_job_start_s", "job_s", "reload_s", "cycle_s", "freed_mb"]
    figures = {key: statistics.median(r[key] for r in rows) for key in phases}
    print_table(["phase", "median"], [[k, f"{v:.3f}"] for k, v in figures.items()])
    path = write_results("lease", {"cycles": count, "median": figures, "runs": rows}, args.out)
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
