"""What a request would do, without doing it: the dry run's plan (pure, reads no state).

For each unit: the registry job, its argv as it would run, whether it takes the VRAM lease,
which GPU it would be pinned to, and the bundle and grammar its evaluation would use.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from actors.gpu.assign import GpuSlots
from actors.watcher.execution import unit_bundle_id, unit_params
from bundle_factory import bundle_type
from messages.errors import InputError, WatcherError
from messages.requests import request_steps

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from pathlib import Path

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


def plan_request(
    request: Request,
    *,
    step_jobs: Mapping[str, str],
    registry: JobRegistry,
    gpus: Sequence[GpuInfo],
    state_dir: Path,
) -> list[UnitPlan]:
    """The units of `request` in order, each resolved as the dispatcher would resolve it."""
    plans = []
    for unit in request_steps(request):
        bundle = unit_bundle_id(unit)
        grammar = bundle_type(bundle).grammar_name
        job = step_jobs.get(unit)
        if job is None:
            plans.append(
                UnitPlan(
                    unit,
                    "-",
                    (),
                    False,
                    "-",
                    bundle,
                    grammar,
                    f"no job configured for unit {unit!r}",
                )
            )
            continue
        run_dir = state_dir / "runs" / PLACEHOLDER_RUN / unit
        try:
            spec = registry.get(job)
            history = run_dir / "history.jsonl" if spec.history_flag else None
            argv = registry.build_argv(
                job,
                unit_params(request, unit),
                state_dir=state_dir,
                result_path=run_dir / "result.json",
                history_path=history,
            )
            assignment = GpuSlots(gpus).try_assign(spec)
        except (InputError, WatcherError) as exc:
            plans.append(UnitPlan(unit, job, (), False, "-", bundle, grammar, str(exc)))
            continue
        if not spec.needs_gpu:
            where = "cpu"
        elif not gpus:
            where = "cpu fallback (no GPU)"
        else:
            where = ",".join(str(i) for i in assignment.indices) if assignment else "busy"
        plans.append(UnitPlan(unit, job, tuple(argv), spec.needs_gpu, where, bundle, grammar))
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
        if plan.problem:
            lines.append(f"    PROBLEM: {plan.problem}")
        elif plan.argv:
            lines.append("    argv: " + " ".join(plan.argv))
    lines.append("dry run: no file moved, no job started, no LLM called")
    return "\n".join(lines)
