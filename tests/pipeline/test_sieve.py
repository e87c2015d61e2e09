"""Step 1: the sieve recovers planted seeds, agrees with the scalar loop, and counts noise right."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import numpy as np
import pytest

from messages.artifacts import HistoryRecord, SurvivorSet
from pipeline.array_module import NUMPY
from pipeline.history import write_history
from pipeline.prng import FAMILIES
from pipeline.seed_search import (
    ChunkSieve,
    choose_anchors,
    expected_false_positives,
    make_window,
    sieve_scalar,
)
from pipeline.synthetic import EPOCH

if TYPE_CHECKING:
    from pathlib import Path

    from .conftest import MakeHistory, RunJob

SPACE = 1 << 20
PLANTED = {"lcg32": 917_503, "minstd": 65_537, "xorshift32": 777_777, "java_lcg": 1_000_003}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_recovers_planted_seed_and_skip(
    family: str, make_history: MakeHistory, run_job: RunJob, state_dir: Path
) -> None:
    """From 40 synthetic draws, a sieve over 2^20 seeds and skips 0-2 finds just the planted one."""
    history = make_history(family, PLANTED[family], 40, skip=2)
    code, result = run_job(
        "sieve",
        history,
        "--families",
        family,
        "--skip-max",
        "2",
        "--seed-end",
        str(SPACE),
        "--chunk-size",
        "65536",
    )
    assert code == 0
    found = SurvivorSet.model_validate_json(
        (state_dir / "artifacts" / "survivors.json").read_text()
    )
    assert [(s.seed, s.skip, s.anchor, s.matches) for s in found.survivors] == [
        (PLANTED[family], 2, 0, 8)
    ]
    assert result["seeds_tested"] == 3 * (SPACE - FAMILIES[family].seed_min)
    assert result["survivors"] == 1
    assert result["candidates"] == 3


def test_finds_the_new_seed_after_a_switch(
    make_history: MakeHistory, run_job: RunJob, state_dir: Path
) -> None:
    """After a seed switch at draw 70 the sieve finds both streams, each at its own anchor."""
    history = make_history("lcg32", 1234, 100, switch_at=70, new_seed=4321)
    code, _ = run_job(
        "sieve", history, "--families", "lcg32", "--seed-end", "65536", "--max-anchors", "40"
    )
    assert code == 0
    found = SurvivorSet.model_validate_json(
        (state_dir / "artifacts" / "survivors.json").read_text()
    )
    assert {(s.seed, s.anchor) for s in found.survivors} == {(1234, 0), (4321, 70)}


@pytest.mark.parametrize("family", list(FAMILIES))
def test_vectorised_sieve_equals_scalar_loop(family: str) -> None:
    """With a lax threshold (many survivors) ChunkSieve and the pure-Python loop agree exactly."""
    rng = np.random.default_rng(7)
    values = rng.integers(0, 10, size=12)
    anchors = choose_anchors(len(values), 4, 5)
    window = make_window(values, anchors, 4, 10, 2)
    gen = FAMILIES[family]
    start, stop = gen.seed_min, gen.seed_min + 3000
    got = ChunkSieve(gen, 1, window, NUMPY).run(start, stop)
    vector = sorted(
        zip(got.seeds.tolist(), got.anchors.tolist(), got.matches.tolist(), strict=True)
    )
    scalar = sorted(sieve_scalar(gen, 1, window, start, stop))
    assert len(scalar) > 100
    assert vector == scalar


def test_large_mod_uses_binary_search_and_agrees() -> None:
    """Above the lookup-table size (mod 2^32) the binary-search path finds the same seeds."""
    gen = FAMILIES["java_lcg"]
    values = np.asarray([0, 1, 2, 3], dtype=np.int64)
    from pipeline.prng import draw_values

    values = np.asarray(draw_values(gen, 5000, 6, 0, 1 << 32), dtype=np.int64)
    window = make_window(values, [0, 1, 2], 3, 1 << 32, 3)
    got = ChunkSieve(gen, 0, window, NUMPY).run(0, 1 << 14)
    assert (got.seeds.tolist(), got.anchors.tolist()) == ([5000], [0])


def test_anchors_keep_zero_and_the_most_recent() -> None:
    """All anchors fit: all of them; otherwise 0 plus the most recent ones."""
    assert choose_anchors(10, 8, 64) == [0, 1, 2]
    assert choose_anchors(100, 8, 4) == [0, 90, 91, 92]
    assert choose_anchors(5, 8, 4) == []


@pytest.mark.parametrize("family", list(FAMILIES))
def test_random_draws_give_about_the_expected_false_positives(
    family: str, tmp_path: Path, run_job: RunJob
) -> None:
    """On uniform random draws the survivor count is within 5 sigma of the binomial expectation.

    mod 125 is odd: with a mod divisible by 4, lcg32's low bits (s mod 4 just counts up) make
    its outputs far from independent, and the binomial expectation does not apply.
    """
    rng = np.random.default_rng(2024)
    values = rng.integers(0, 125, size=4)
    path = tmp_path / "random.jsonl"
    write_history(
        path,
        [
            HistoryRecord(draw_id=f"r{i}", timestamp=EPOCH, value=int(v))
            for i, v in enumerate(values)
        ],
    )
    code, result = run_job(
        "sieve",
        path,
        "--families",
        family,
        "--window",
        "4",
        "--threshold",
        "2",
        "--mod",
        "125",
        "--seed-end",
        str(SPACE),
        "--skip-max",
        "0",
    )
    assert code == 0
    seeds = SPACE - FAMILIES[family].seed_min
    expected = expected_false_positives(seeds, 1, 4, 2, 125)
    assert result["expected_false_positives"] == pytest.approx(expected)
    assert expected == pytest.approx(199.7, abs=0.5)
    assert abs(result["survivors"] - expected) < 5 * expected**0.5


def test_survivors_are_capped_best_first(tmp_path: Path, run_job: RunJob, state_dir: Path) -> None:
    """More survivors than max_survivors: the most-matching ones are kept and truncated is set.

    The draws alternate parity, as lcg32's outputs do, so some seeds match more than once.
    """
    path = tmp_path / "h.jsonl"
    write_history(
        path,
        [HistoryRecord(draw_id=f"r{i}", timestamp=EPOCH, value=v) for i, v in enumerate([3, 2, 5])],
    )
    code, result = run_job(
        "sieve",
        path,
        "--families",
        "lcg32",
        "--window",
        "3",
        "--threshold",
        "1",
        "--mod",
        "10",
        "--seed-end",
        "20000",
        "--max-survivors",
        "50",
        "--chunk-size",
        "1024",
    )
    assert code == 0
    assert result["truncated"] is True
    found = json.loads((state_dir / "artifacts" / "survivors.json").read_text())
    matches = [s["matches"] for s in found["survivors"]]
    assert len(matches) == 50
    assert matches == sorted(matches, reverse=True)
    assert matches[0] >= 2
