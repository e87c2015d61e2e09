"""build_llm_context: determinism, inputs it refuses, and what it records."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import HealthCheck, given, settings

from actors.bundle import SqliteRetriever
from bundle_factory import (
    BundleError,
    CheckStatus,
    ResultsError,
    StatePathError,
    UnknownStepError,
    build_llm_context,
)
from bundle_factory.selftest import SAMPLE_RESULTS
from tests.bundle_factory.conftest import NOW
from tests.bundle_factory.strategies import payloads

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Callable
    from pathlib import Path


def _build(
    state_dir: Path, results: dict[str, Any], step_id: int = 3, **kwargs: Any
) -> tuple[str, str, Any]:
    return build_llm_context(
        step_id,
        results,
        run_id="run-7",
        state_paths=["survivors.json", "models/current.json", "absent.json"],
        state_dir=state_dir,
        clock=lambda: NOW,
        **kwargs,
    )


def test_two_builds_are_byte_identical(state_dir: Path, store: sqlite3.Connection) -> None:
    """Same inputs, store, run id and clock give the same prompt bytes and an equal bundle."""
    first = _build(state_dir, SAMPLE_RESULTS[3], retriever=SqliteRetriever(store))
    second = _build(state_dir, SAMPLE_RESULTS[3], retriever=SqliteRetriever(store))
    assert first[0].encode() == second[0].encode()
    assert first[2] == second[2]


def test_dict_order_does_not_reach_the_prompt(state_dir: Path) -> None:
    """Results with the same content in a different key order render identically."""
    results = {"b": 1, "a": {"y": [1, 2], "x": None}, "survivors_scored": 5}
    reordered = {"survivors_scored": 5, "a": {"x": None, "y": [1, 2]}, "b": 1}
    assert _build(state_dir, results)[0] == _build(state_dir, reordered)[0]


def test_the_clock_and_run_id_are_what_change_the_prompt(state_dir: Path) -> None:
    """A different clock or run id changes the prompt; the bundle records both."""
    base = _build(state_dir, {})[0]
    later = build_llm_context(
        3,
        {},
        run_id="run-7",
        state_paths=["survivors.json", "models/current.json", "absent.json"],
        state_dir=state_dir,
        clock=lambda: NOW + timedelta(seconds=1),
    )
    assert later[0] != base
    assert later[2].generated_at == NOW + timedelta(seconds=1)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(results=payloads)
def test_determinism_over_random_payloads(results: dict[str, Any], state_dir: Path) -> None:
    """Any payload renders to the same bytes twice, and within the default prompt limit."""
    first = _build(state_dir, results)
    second = _build(state_dir, dict(reversed(list(results.items()))))
    assert first[0] == second[0]
    assert first[2].usage is not None
    assert first[2].usage.total <= first[2].budgets.prompt_limit


def test_thresholds_are_checked_against_the_results(state_dir: Path) -> None:
    """Pass, fail and missing are told apart; a NaN or a bool never passes."""

    def statuses(results: dict[str, Any]) -> dict[str, CheckStatus]:
        _p, _g, bundle = _build(state_dir, results)
        return {c.threshold.metric: c.status for c in bundle.context.evaluation_summary}

    assert statuses({"scored": 10, "best_match_rate": 0.05}) == {
        "scored": CheckStatus.PASS,
        "best_match_rate": CheckStatus.FAIL,
    }
    assert statuses({"scored": True, "best_match_rate": float("nan")}) == {
        "scored": CheckStatus.MISSING,
        "best_match_rate": CheckStatus.MISSING,
    }


def test_dotted_thresholds_read_one_level_down(state_dir: Path) -> None:
    """A threshold named `outer.inner` reads the nested value (selfplay's best.fitness)."""
    _p, _g, bundle = build_llm_context(
        99, {"episodes": 5, "best": {"fitness": 0.05}}, run_id="r", state_dir=state_dir
    )
    checks = {c.threshold.metric: c.status for c in bundle.context.evaluation_summary}
    assert checks == {"best.fitness": CheckStatus.FAIL, "episodes": CheckStatus.PASS}


def test_provenance_is_recorded_and_rendered(state_dir: Path) -> None:
    """Each state file is hashed into the bundle; the prompt shows a missing one as MISSING."""
    prompt, _g, bundle = _build(state_dir, {})
    assert [r.path for r in bundle.provenance] == [
        "absent.json",
        "models/current.json",
        "survivors.json",
    ]
    assert "- absent.json: MISSING" in prompt


def test_escaping_state_path_is_refused(state_dir: Path) -> None:
    """A state path outside the state directory fails the whole build."""
    with pytest.raises(StatePathError):
        build_llm_context(
            1, {}, run_id="r", state_paths=["../x"], state_dir=state_dir, clock=lambda: NOW
        )


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"step_id": 7}, UnknownStepError, "known bundle types: 1, 2, 3, 4, 5, 6, 13, 99"),
        ({"step_id": 3, "is_chapter_13": True}, BundleError, "Chapter 13 bundles use step id 13"),
        ({"run_id": ""}, BundleError, "run_id must be a non-empty"),
        ({"clock": lambda: datetime(2025, 1, 1)}, BundleError, "naive"),
        ({"results": {"x": {1, 2}}}, ResultsError, r"results\.x"),
        ({"results": [1, 2]}, BundleError, "must be a mapping"),
    ],
)
def test_bad_inputs_are_refused_by_rule(
    kwargs: dict[str, Any], error: type[Exception], match: str, state_dir: Path
) -> None:
    """Each bad input raises its own error naming the value and the rule."""
    call: dict[str, Any] = {"step_id": 1, "results": {}, "run_id": "r", "clock": lambda: NOW}
    call.update(kwargs)
    step_id = call.pop("step_id")
    results = call.pop("results")
    with pytest.raises(error, match=match):
        build_llm_context(step_id, results, state_dir=state_dir, **call)


def test_chapter_13_flag_and_step_13_agree(state_dir: Path, clock: Callable[[], datetime]) -> None:
    """Step 13 is a Chapter 13 bundle with or without the flag."""
    for flag in (True, False):
        _p, grammar, bundle = build_llm_context(
            13, {}, run_id="r", state_dir=state_dir, is_chapter_13=flag, clock=clock
        )
        assert grammar == "chapter_13"
        assert bundle.is_chapter_13


def test_generated_at_is_stored_in_utc(state_dir: Path) -> None:
    """An aware clock in another zone is converted to UTC."""
    cet = timezone(timedelta(hours=1))
    _p, _g, bundle = build_llm_context(
        1, {}, run_id="r", state_dir=state_dir, clock=lambda: NOW.astimezone(cet)
    )
    assert bundle.generated_at.utcoffset() == timedelta(0)
    assert bundle.generated_at == NOW
