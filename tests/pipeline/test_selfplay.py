"""Selfplay: reproducible per seed, emits its best episode, archives every candidate."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np

from messages.artifacts import PolicyCandidate, PolicyParameters, SelfplayTelemetry
from pipeline.files import read_models_jsonl
from pipeline.selfplay import DEFAULT_POLICY, SPACE, mutate, policy_id

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import MakeHistory, RunJob


def _prepare(make_history: MakeHistory, run_job: RunJob, state: Path) -> Path:
    """A history whose seed switched 30 draws ago, with steps 1 and 3 run on it."""
    history = make_history("lcg32", 4040, 150, switch_at=120, new_seed=5050, mod=50)
    for job, args in [
        (
            "sieve",
            [
                "--families",
                "lcg32",
                "--seed-end",
                "8192",
                "--window",
                "4",
                "--threshold",
                "3",
                "--mod",
                "50",
            ],
        ),
        ("full_scoring", []),
    ]:
        assert run_job(job, history, *args, state=state)[0] == 0
    return history


def _strip_times(result: dict[str, object]) -> dict[str, object]:
    """The result without wall-clock fields."""
    out: dict[str, object] = json.loads(json.dumps(result))
    out.pop("elapsed_s")
    out.pop("telemetry")
    return out


def test_same_seed_same_run_different_seed_different_run(
    tmp_path: Path, make_history: MakeHistory, run_job: RunJob
) -> None:
    """Two runs with --seed 7 give identical results and archives; --seed 8 explores differently."""
    runs = {}
    for name, seed in [("a", "7"), ("b", "7"), ("c", "8")]:
        state = tmp_path / name
        history = _prepare(make_history, run_job, state)
        code, result = run_job("selfplay", history, "--seed", seed, "--episodes", "30", state=state)
        assert code == 0
        archive = (state / "artifacts" / "policy_history.jsonl").read_text()
        runs[name] = (_strip_times(result), archive)
    assert runs["a"] == runs["b"]
    assert runs["a"][1] != runs["c"][1]


def test_emits_the_best_episode_not_the_last(
    tmp_path: Path, make_history: MakeHistory, run_job: RunJob
) -> None:
    """The emitted candidate has the highest fitness of the run (earliest on ties), with lineage."""
    state = tmp_path / "s"
    history = _prepare(make_history, run_job, state)
    code, result = run_job(
        "selfplay",
        history,
        "--seed",
        "1",
        "--episodes",
        "40",
        "--parent-policy-id",
        "pol-active",
        state=state,
    )
    assert code == 0
    archive = read_models_jsonl(state / "artifacts" / "policy_history.jsonl", PolicyCandidate)
    assert len(archive) == 40
    top = max(c.fitness for c in archive)
    first_best = next(c for c in archive if c.fitness == top)
    best = PolicyCandidate.model_validate(result["best"])
    assert best == first_best
    assert best.episode != 39 or archive[-1].fitness == top
    assert archive[0].parent_policy_id == "pol-active"
    assert archive[0].parameters == DEFAULT_POLICY
    assert best.fitness >= archive[0].fitness
    assert best.fitness > 0
    assert best.fingerprint.startswith("sha256:")
    emitted = PolicyCandidate.model_validate_json(
        (state / "artifacts" / "policy_candidate.json").read_text()
    )
    assert emitted == best
    telemetry = SelfplayTelemetry.model_validate_json(
        (state / "artifacts" / "selfplay_telemetry.json").read_text()
    )
    assert (telemetry.status, telemetry.best_policy_id, telemetry.episodes) == (
        "healthy",
        best.policy_id,
        40,
    )


def test_archive_grows_across_runs(
    tmp_path: Path, make_history: MakeHistory, run_job: RunJob
) -> None:
    """A second run appends its candidates to the policy history instead of replacing it."""
    state = tmp_path / "s"
    history = _prepare(make_history, run_job, state)
    assert run_job("selfplay", history, "--episodes", "5", state=state)[0] == 0
    code, result = run_job("selfplay", history, "--episodes", "7", "--seed", "2", state=state)
    assert code == 0
    assert result["archive_size"] == 12
    assert len((state / "artifacts" / "policy_history.jsonl").read_text().splitlines()) == 12


def test_no_survivors_reports_degraded(
    tmp_path: Path, make_history: MakeHistory, run_job: RunJob
) -> None:
    """With nothing to pool, selfplay still answers, and its telemetry says degraded and why."""
    state = tmp_path / "s"
    history = make_history("lcg32", 1 << 30, 40)
    assert (
        run_job("sieve", history, "--families", "lcg32", "--seed-end", "2048", state=state)[0] == 0
    )
    code, result = run_job("selfplay", history, "--episodes", "3", state=state)
    assert code == 0
    assert result["telemetry"]["status"] == "degraded"
    assert "no survivors to build pools from" in result["telemetry"]["warnings"]


def test_mutation_always_changes_a_parameter() -> None:
    """Every mutation gives a different policy (and so a different policy id)."""
    rng = np.random.default_rng(0)
    policy = DEFAULT_POLICY
    for _ in range(200):
        child = mutate(policy, rng)
        assert child != policy
        assert policy_id(child) != policy_id(policy)
        for name, options in SPACE.items():
            assert getattr(child, name) in options
        policy = PolicyParameters.model_validate(child.model_dump())
