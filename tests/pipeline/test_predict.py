"""Step 6 and the learning steps: exact predictions with the true seed, recovery after a switch."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest

from messages.artifacts import PredictionPool, Survivor, SurvivorSet
from pipeline.files import write_model
from pipeline.prng import FAMILIES, draw_values

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import MakeHistory, RunJob


def pool_of(state_dir: Path) -> PredictionPool:
    """The pool step 6 wrote."""
    return PredictionPool.model_validate_json(
        (state_dir / "artifacts" / "prediction_pool.json").read_text()
    )


@pytest.mark.parametrize("family", list(FAMILIES))
def test_true_seed_predicts_the_next_draws_exactly(
    family: str, make_history: MakeHistory, run_job: RunJob, state_dir: Path
) -> None:
    """With only the true seed surviving, steps 3, 5, 6 predict each next draw with confidence 1."""
    seed, skip = {"lcg32": 11, "minstd": 12, "xorshift32": 13, "java_lcg": 14}[family], 1
    truth = draw_values(FAMILIES[family], seed, 60, skip)
    for n in (40, 45, 59):
        history = make_history(family, seed, n, skip=skip, name=f"h{n}.jsonl")
        survivors = SurvivorSet(
            mod=1000,
            window=8,
            threshold=8,
            families=(family,),
            skip_min=skip,
            skip_max=skip,
            seed_start=0,
            seed_end=100,
            anchors=(0,),
            n_draws=n,
            last_draw_id=None,
            history_fingerprint=None,
            truncated=False,
            survivors=(Survivor(family=family, skip=skip, seed=seed, anchor=0, matches=8),),
        )
        write_model(state_dir / "artifacts" / "survivors.json", survivors)
        for job in ("full_scoring", "train", "predict"):
            assert run_job(job, history)[0] == 0
        pool = pool_of(state_dir)
        assert [(p.value, p.confidence) for p in pool.predictions] == [(truth[n], 1.0)]
        assert pool.n_draws == n


def test_step_6_alone_follows_new_draws(
    make_history: MakeHistory, run_job: RunJob, state_dir: Path
) -> None:
    """Step 6 with a model trained on fewer draws predicts the draw after the newest one."""
    truth = draw_values(FAMILIES["lcg32"], 321, 70)
    short = make_history("lcg32", 321, 50, name="short.jsonl")
    for job, args in [
        ("sieve", ["--families", "lcg32", "--seed-end", "4096"]),
        ("full_scoring", []),
        ("train", []),
    ]:
        assert run_job(job, short, *args)[0] == 0
    longer = make_history("lcg32", 321, 65, name="long.jsonl")
    code, result = run_job("predict", longer)
    assert code == 0
    assert result["pool"]["predictions"][0]["value"] == truth[65]
    assert result["pool"]["last_draw_id"] == "syn-000064"


def test_seed_switch_is_noticed_and_recovered(
    make_history: MakeHistory, run_job: RunJob, state_dir: Path
) -> None:
    """After a switch the stale model's pool misses; rerunning steps 1-6 predicts the new stream."""
    old, new, switch = 2222, 3333, 60
    before = make_history("minstd", old, switch, name="before.jsonl")
    chain = [
        ("sieve", ["--families", "minstd", "--seed-end", "8192"]),
        ("scorer_meta", []),
        ("full_scoring", []),
        ("ml_meta", []),
        ("train", []),
        ("predict", []),
    ]
    for job, args in chain:
        assert run_job(job, before, *args)[0] == 0, job
    assert (
        pool_of(state_dir).predictions[0].value
        == draw_values(FAMILIES["minstd"], old, switch + 1)[-1]
    )

    after = make_history(
        "minstd", old, switch + 12, switch_at=switch, new_seed=new, name="after.jsonl"
    )
    truth_next = draw_values(FAMILIES["minstd"], new, 13)[-1]
    assert run_job("predict", after)[0] == 0
    stale = pool_of(state_dir)
    assert truth_next not in [p.value for p in stale.predictions]

    for job, args in chain:
        assert run_job(job, after, *args)[0] == 0, job
    fresh = pool_of(state_dir)
    assert fresh.predictions[0].value == truth_next
    assert fresh.predictions[0].confidence > 0.5
    scored = json.loads((state_dir / "artifacts" / "survivors_with_scores.json").read_text())
    assert scored["scored"][0]["survivor"]["seed"] == new
    assert scored["scored"][0]["survivor"]["anchor"] == switch


def test_pool_on_noise_is_bounded_by_k(tmp_path: Path, run_job: RunJob, state_dir: Path) -> None:
    """With many false survivors the pool has at most k values and confidences sum to 1."""
    from pipeline.history import write_history
    from pipeline.synthetic import synthetic_records

    records = synthetic_records("lcg32", 5, 60, mod=7)
    write_history(tmp_path / "h.jsonl", records)
    history = tmp_path / "h.jsonl"
    for job, args in [
        (
            "sieve",
            ["--families", "lcg32,minstd", "--seed-end", "3000", "--window", "2", "--mod", "7"],
        ),
        ("full_scoring", []),
        ("train", ["--pool-size", "16"]),
        ("predict", ["--k", "3"]),
    ]:
        assert run_job(job, history, *args)[0] == 0, job
    pool = pool_of(state_dir)
    assert 1 <= len(pool.predictions) <= 3
    assert sum(p.confidence for p in pool.predictions) <= 1.0 + 1e-9
    confidences = [p.confidence for p in pool.predictions]
    assert confidences == sorted(confidences, reverse=True)


def test_linear_training_is_seeded_and_reports_overfit(
    make_history: MakeHistory, run_job: RunJob, state_dir: Path
) -> None:
    """The linear method gives the same model for the same seed and reports its scores."""
    history = make_history("lcg32", 99, 80, switch_at=50, new_seed=77)
    for job, args in [
        ("sieve", ["--families", "lcg32", "--seed-end", "1024"]),
        ("full_scoring", []),
    ]:
        assert run_job(job, history, *args)[0] == 0
    results = [
        run_job("train", history, "--method", "linear", "--trials", "8", "--seed", "5")[1]
        for _ in range(2)
    ]
    assert results[0]["model_id"] == results[1]["model_id"]
    assert results[0]["method"] == "linear"
    assert results[0]["validation_score"] == 1.0
    assert results[0]["overfit_ratio"] == results[0]["train_score"]
