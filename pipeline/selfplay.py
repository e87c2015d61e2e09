"""Selfplay: explore scoring policies on train/holdout history and emit the best one.

Episode 0 evaluates the default policy; each later episode mutates the best policy so far (or,
with `restart_probability`, draws a fresh one). A policy filters the candidates by match rate,
scores them on its history window with its recency weighting, and pools the best `pool_size`;
its fitness is the holdout pool hit rate minus a random pool's. Live outcomes are never used:
only the Trigger may promote a candidate, after shadow evaluation on real draws.

Writes `artifacts/policy_candidate.json` (the best, never merely the last), appends every
candidate to `artifacts/policy_history.jsonl`, writes `artifacts/selfplay_telemetry.json`.
"""

from __future__ import annotations

import hashlib
import sys
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from messages.artifacts import (
    PolicyCandidate,
    PolicyParameters,
    SelfplayResult,
    SelfplayTelemetry,
    Survivor,
)
from messages.base import utcnow
from pipeline.cli import JobContext, run_job
from pipeline.files import model_json, read_models_jsonl, write_model, write_models_jsonl
from pipeline.inputs import (
    POLICY_CANDIDATE,
    POLICY_HISTORY,
    SCORED,
    TELEMETRY,
    load_scored,
    load_survivor_set,
    train_end,
)
from pipeline.jobs import JOBS
from pipeline.scoring import (
    chance_rate,
    features,
    pool_hit_rate,
    predicted_matrix,
    rank,
    survivor_score,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pipeline.history import History
    from pipeline.params import SelfplayParams


SPACE: dict[str, tuple[float | int, ...]] = {
    "min_match_rate": (0.0, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5),
    "half_life": (2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0),
    "recent_window": (5, 10, 20, 50, 100),
    "history_window": (0, 50, 100, 200, 500, 1000),
    "pool_size": (1, 2, 4, 8, 16),
}
"""The values each policy parameter may take; mutation moves one step along a tuple."""
DEFAULT_POLICY = PolicyParameters(
    min_match_rate=0.0, half_life=32.0, recent_window=20, history_window=0, pool_size=4
)


def fingerprint(parameters: PolicyParameters) -> str:
    """SHA-256 of the parameters' canonical JSON."""
    return "sha256:" + hashlib.sha256(model_json(parameters)).hexdigest()


def policy_id(parameters: PolicyParameters) -> str:
    """A content id: equal parameters, equal policy id."""
    return "pol-" + fingerprint(parameters).removeprefix("sha256:")[:16]


def mutate(parent: PolicyParameters, rng: np.random.Generator) -> PolicyParameters:
    """Move one or two parameters one step along their value lists (always a change)."""
    names = list(SPACE)
    picked = rng.choice(len(names), size=int(rng.integers(1, 3)), replace=False)
    update: dict[str, float | int] = {}
    for i in sorted(int(p) for p in picked):
        name = names[i]
        options = SPACE[name]
        current = getattr(parent, name)
        here = options.index(current) if current in options else 0
        step = int(rng.choice([-1, 1]))
        if not 0 <= here + step < len(options):
            step = -step
        update[name] = options[here + step]
    return parent.model_copy(update=update)


def random_policy(rng: np.random.Generator) -> PolicyParameters:
    """A policy drawn uniformly from the value lists."""
    return PolicyParameters.model_validate(
        {name: options[int(rng.integers(len(options)))] for name, options in SPACE.items()}
    )


def transforms(parent: PolicyParameters | None, child: PolicyParameters) -> tuple[str, ...]:
    """What changed, as `name: old -> new` (everything when there is no parent)."""
    out = []
    for name in SPACE:
        new = getattr(child, name)
        old = getattr(parent, name) if parent is not None else None
        if old != new:
            out.append(f"{name}: {old if old is not None else '-'} -> {new}")
    return tuple(out)


@dataclass(frozen=True)
class Arena:
    """What every episode is judged on: candidates' predictions and the train/holdout split."""

    predicted: np.ndarray
    values: np.ndarray
    cut: int
    holdout: int
    mod: int

    def evaluate(self, policy: PolicyParameters) -> tuple[float, dict[str, float]]:
        """Fitness and metrics of a policy; only training and holdout draws are looked at."""
        lo = max(0, self.cut - policy.history_window) if policy.history_window else 0
        f = features(
            self.predicted,
            self.values,
            lo,
            self.cut,
            half_life=policy.half_life,
            recent_window=policy.recent_window,
            runs=False,
        )
        eligible = np.nonzero((f.match_rate >= policy.min_match_rate) & (f.positions > 0))[0]
        pool = eligible[rank(survivor_score(f)[eligible])][: policy.pool_size]
        n = len(self.values)
        holdout_hit = pool_hit_rate(self.predicted, self.values, pool, self.cut, n)
        train_hit = pool_hit_rate(
            self.predicted, self.values, pool, max(0, self.cut - self.holdout), self.cut
        )
        chance = chance_rate(policy.pool_size, self.mod)
        metrics = {
            "holdout_hit_rate": holdout_hit,
            "train_hit_rate": train_hit,
            "chance_rate": chance,
            "eligible": float(eligible.size),
            "pool_members": float(pool.size),
        }
        return holdout_hit - chance, metrics


def _candidates(ctx: JobContext, history: History, limit: int) -> tuple[tuple[Survivor, ...], int]:
    """Step 3's scored survivors when present, else step 1's; and their mod."""
    if ctx.artifact(SCORED).exists():
        scored = load_scored(ctx.artifacts_dir, history)
        return tuple(s.survivor for s in scored.scored[:limit]), scored.mod
    found = load_survivor_set(ctx.artifacts_dir, history)
    return found.survivors[:limit], found.mod


def run(ctx: JobContext, params: SelfplayParams) -> SelfplayResult:
    """Run the episodes, archive every candidate, emit the best."""
    started = time.perf_counter()
    history = ctx.load_history()
    survivors, mod = _candidates(ctx, history, params.max_candidates)
    cut = train_end(history, params.holdout)
    archive_path = ctx.artifact(POLICY_HISTORY)
    archive = read_models_jsonl(archive_path, PolicyCandidate) if archive_path.exists() else []
    arena = Arena(
        predicted=predicted_matrix(survivors, len(history), mod, ctx.array_module),
        values=history.values,
        cut=cut,
        holdout=params.holdout,
        mod=mod,
    )
    rng = np.random.default_rng(ctx.seed)
    episodes: list[PolicyCandidate] = []
    best: PolicyCandidate | None = None
    for episode in range(params.episodes):
        if best is None:
            parent_id, parent, policy = params.parent_policy_id, None, DEFAULT_POLICY
        elif rng.random() < params.restart_probability:
            parent_id, parent, policy = best.policy_id, best.parameters, random_policy(rng)
        else:
            parent_id, parent, policy = (
                best.policy_id,
                best.parameters,
                mutate(best.parameters, rng),
            )
        fitness, metrics = arena.evaluate(policy)
        candidate = PolicyCandidate(
            policy_id=policy_id(policy),
            parent_policy_id=parent_id,
            fitness=fitness,
            metrics=metrics,
            parameters=policy,
            transforms=transforms(parent, policy),
            fingerprint=fingerprint(policy),
            history_fingerprint=ctx.history_fingerprint,
            episode=episode,
            seed=ctx.seed,
        )
        episodes.append(candidate)
        # Strictly better only: on ties the earlier (simpler, closer to the parent) policy stays.
        if best is None or candidate.fitness > best.fitness:
            best = candidate
        ctx.progress(episode + 1, params.episodes, f"best fitness {best.fitness:.4f}")
    assert best is not None  # params.episodes >= 1
    fitnesses = [c.fitness for c in episodes]
    warnings = []
    if not survivors:
        warnings.append("no survivors to build pools from")
    if best.fitness <= 0:
        warnings.append("no policy beat a random pool on holdout")
    telemetry = SelfplayTelemetry(
        status="degraded" if warnings else "healthy",
        episodes=len(episodes),
        best_policy_id=best.policy_id,
        best_fitness=best.fitness,
        mean_fitness=float(np.mean(fitnesses)),
        survivors_considered=len(survivors),
        elapsed_s=round(time.perf_counter() - started, 6),
        updated_at=utcnow(),
        warnings=tuple(warnings),
    )
    write_models_jsonl(archive_path, [*archive, *episodes])
    write_model(ctx.artifact(POLICY_CANDIDATE), best)
    write_model(ctx.artifact(TELEMETRY), telemetry)
    return SelfplayResult(
        **ctx.result_fields(history, [POLICY_CANDIDATE, POLICY_HISTORY, TELEMETRY]),
        best=best,
        episodes=len(episodes),
        archive_size=len(archive) + len(episodes),
        telemetry=telemetry,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run selfplay from the command line; return the exit code."""
    return run_job(JOBS["selfplay"], run, argv)


if __name__ == "__main__":
    sys.exit(main())
