"""What a request would do, without doing it: the dry run's plan (pure, reads no state).

For each unit: the registry job, its parameters (request over `[watcher.params]` over the
job's defaults), the exact argv of every process it would start (one per shard for a
sharded job), whether it takes the VRAM lease, which GPU slot it would be placed on, and
the bundle and grammar its evaluation would use. The argv comes from the same functions the
dispatcher calls (`actors.gpu.shards.plan_pieces`); only the run id is a placeholder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from actors.gpu.assign import GpuSlots
from actors.gpu.runners import local_slots
from actors.gpu.shards import plan_pieces
from actors.watcher.execution import unit_bundle_id, unit_params
from bundle_factory import bundle_type
from messages.errors import InputError, WatcherError
from messages.requests import request_steps

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

    from actors.config import GPUConfig, WatcherConfig
    from actors.gpu.inventory import GpuInfo
    from actors.gpu.registry import JobRegistry
    from actors.watcher.spool import Request

PLACEHOLDER_RUN = "dry-run"


@dataclass(frozen=True)
class UnitPlan:
    """One unit of a request, as it would run."""

    unit: str
    job: str
    argv: tuple[str, ...]
    lease: bool
    gpu: str
    bundle: int
    grammar: str
    problem: str | None = None
    params: dict[str, str | int | float | bool] = field(default_factory=dict)
    """The parameters the request and `[watcher.params]` set (job defaults fill the rest)."""
    shards: tuple[tuple[str, ...], ...] = ()
    """The argv of each shard, when the job is split (then `argv` is the first one's)."""


def plan_request(
    request: Request,
    *,
    watcher: WatcherConfig,
    gpu: GPUConfig,
    registry: JobRegistry,
    gpus: Sequence[GpuInfo],
    state_dir: Path,
    fingerprint: str | None = None,
) -> list[UnitPlan]:
    """The units of `request` in order, each resolved as the dispatcher would resolve it."""
    plans = []
    slots = local_slots(gpus, cpu_slots=gpu.cpu_slots, llm_gpu=gpu.llm_gpu)
    for unit in request_steps(request):
        bundle = unit_bundle_id(unit)
        grammar = bundle_type(bundle).grammar_name
        job = watcher.step_jobs.get(unit)
        params = unit_params(request, unit, watcher.params.get(unit))
        if job is None:
            problem = f"no job configured for unit {unit!r}"
            plans.append(UnitPlan(unit, "-", (), False, "-", bundle, grammar, problem, params))
            continue
        run_dir = state_dir / "runs" / PLACEHOLDER_RUN / unit
        try:
            spec = registry.get(job)
            wants_history = spec.history_flag is not None or any(
                "{history}" in a for a in spec.argv
            )
            pieces = plan_pieces(
                registry,
                job,
                params,
                state_dir=state_dir,
                run_dir=run_dir,
                history=run_dir / "history.jsonl" if wants_history else None,
                seed=0 if spec.seed_flag is not None else None,
                fingerprint=fingerprint if wants_history else None,
                free_slots=len(slots) if gpu.backend == "local" else 1,
                max_shards=gpu.max_shards,
            )
            assignment = GpuSlots(gpus).try_assign(spec)
        except (InputError, WatcherError) as exc:
            plans.append(UnitPlan(unit, job, (), False, "-", bundle, grammar, str(exc), params))
            continue
        lease = spec.needs_gpu and any(s.llm for s in slots)
        if gpu.backend == "ray":
            where = "ray (placed by the cluster)"
        elif not spec.needs_gpu:
            where = "cpu"
        elif not gpus:
            where = "cpu fallback (no GPU)"
        else:
            where = ",".join(str(i) for i in assignment.indices) if assignment else "busy"
        shards = tuple(p.argv for p in pieces) if len(pieces) > 1 else ()
        plans.append(
            UnitPlan(unit, job, pieces[0].argv, lease, where, bundle, grammar, None, params, shards)
        )
    return plans


def render_plan(request: Request, plans: Sequence[UnitPlan]) -> str:
    """The plan as text for a person: one block per unit."""
    lines = [
        f"request {request.request_id} ({request.request_type}), units: "
        + ", ".join(p.unit for p in plans)
    ]
    for plan in plans:
        lines.append(
            f"  unit {plan.unit}: job {plan.job}; lease: {'yes' if plan.lease else 'no'}"
            f"; gpu: {plan.gpu}; evaluation: bundle {plan.bundle} -> {plan.grammar}"
        )
        if plan.params:
            shown = ", ".join(f"{k}={v!r}" for k, v in sorted(plan.params.items()))
            lines.append(f"    params: {shown}")
        if plan.problem:
            lines.append(f"    PROBLEM: {plan.problem}")
        elif plan.shards:
            lines.append(f"    {len(plan.shards)} shards, one process each:")
            lines.extend(
                f"    argv[{index}]: " + " ".join(argv) for index, argv in enumerate(plan.shards)
            )
        elif plan.argv:
            lines.append("    argv: " + " ".join(plan.argv))
    lines.append(
        f"dry run: no file moved, no job started, no LLM called (run id {PLACEHOLDER_RUN!r} "
        "stands for the real one)"
    )
    return "\n".join(lines)
