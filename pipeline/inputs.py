"""Loading the artifacts of earlier steps and checking that they fit the history given."""

from __future__ import annotations

from typing import TYPE_CHECKING

from messages.artifacts import ScoredSurvivorSet, Survivor, SurvivorSet
from pipeline.errors import PipelineInputError
from pipeline.files import read_model

if TYPE_CHECKING:
    from pathlib import Path

    from pipeline.history import History

SURVIVORS = "survivors.json"
SCORED = "survivors_with_scores.json"
SCORER_CONFIG = "scorer_config.json"
ML_CONFIG = "ml_config.json"
MODEL = "model.json"
MODEL_META = "model.meta.json"
POOL = "prediction_pool.json"
POLICY_CANDIDATE = "policy_candidate.json"
POLICY_HISTORY = "policy_history.jsonl"
TELEMETRY = "selfplay_telemetry.json"


def check_fits(
    path: Path, mod: int, n_draws: int, survivors: tuple[Survivor, ...], history: History
) -> None:
    """PipelineInputError unless the artifact fits this history (same mod, no more draws)."""
    if n_draws > len(history):
        raise PipelineInputError(
            str(path), f"was built from {n_draws} draws but the history has only {len(history)}"
        )
    bad = next((s for s in survivors if s.anchor >= len(history)), None)
    if bad is not None:
        raise PipelineInputError(str(path), f"survivor anchor {bad.anchor} is past the history end")
    history.check_below(mod)


def load_survivor_set(artifacts: Path, history: History) -> SurvivorSet:
    """Step 1's survivors, checked against the history."""
    path = artifacts / SURVIVORS
    found = read_model(path, SurvivorSet, hint="run step 1 (pipeline.sieve) first")
    check_fits(path, found.mod, found.n_draws, found.survivors, history)
    return found


def load_scored(artifacts: Path, history: History) -> ScoredSurvivorSet:
    """Step 3's scored survivors, checked against the history."""
    path = artifacts / SCORED
    found = read_model(path, ScoredSurvivorSet, hint="run step 3 (pipeline.full_scoring) first")
    check_fits(path, found.mod, found.n_draws, tuple(s.survivor for s in found.scored), history)
    return found


def effective_holdout(n_draws: int, holdout: int) -> int:
    """The holdout a history of `n_draws` can afford: `holdout`, or half of a short history.

    After a detected change Chapter 13 retrains on the new regime's draws only (a handful): the
    holdout then takes the newest half, so the model is validated on post-change draws it was
    not fitted on, never on the old regime.
    """
    if n_draws >= holdout + 2:
        return holdout
    return max(1, n_draws // 2)


def train_end(history: History, holdout: int) -> int:
    """The first holdout index; PipelineInputError when the history is too short to split."""
    history.require(3, "a train/holdout split needs at least 2 training draws and 1 holdout")
    return len(history) - effective_holdout(len(history), holdout)
