"""The object model: deep immutability and JSON round trips."""

from __future__ import annotations

import copy
import json
import pickle
from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from bundle_factory import (
    FrozenDict,
    ResultsError,
    StepAwarenessBundle,
    TokenBudget,
    build_llm_context,
)
from bundle_factory.frozen import freeze, thaw

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime
    from pathlib import Path

RESULTS = {"survivors_count": 12, "window": {"size": 512, "skips": [1, 2, 3]}, "tags": ["a"]}


@pytest.fixture
def bundle(state_dir: Path, clock: Callable[[], datetime]) -> StepAwarenessBundle:
    """A rendered step-1 bundle."""
    _prompt, _grammar, bundle = build_llm_context(
        1, RESULTS, run_id="r1", state_paths=["survivors.json"], state_dir=state_dir, clock=clock
    )
    return bundle


def test_context_fields_cannot_be_assigned(bundle: StepAwarenessBundle) -> None:
    """Assigning to a nested model's field raises."""
    with pytest.raises(ValidationError):
        bundle.context.mission = "do something else"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        bundle.budgets.context = 1  # type: ignore[misc]
    with pytest.raises(ValidationError):
        bundle.provenance[0].sha256 = "0" * 64  # type: ignore[misc]


def test_nested_payloads_cannot_be_mutated(bundle: StepAwarenessBundle) -> None:
    """Nested mappings refuse item assignment and nested lists are tuples (no append)."""
    payload = bundle.context.inputs_summary
    with pytest.raises(TypeError):
        payload["survivors_count"] = 0  # type: ignore[index]
    window = payload["window"]
    assert isinstance(window, FrozenDict)
    with pytest.raises(TypeError):
        window["size"] = 1  # type: ignore[index]
    with pytest.raises(AttributeError):
        window["skips"].append(4)
    with pytest.raises(AttributeError):
        bundle.context.guardrails.append("none")  # type: ignore[attr-defined]
    with pytest.raises(AttributeError):
        window._data = {}


def test_caller_mutation_does_not_reach_the_bundle(
    state_dir: Path, clock: Callable[[], datetime]
) -> None:
    """The bundle holds a frozen copy: changing the caller's dict afterwards changes nothing."""
    results = {"window": {"skips": [1, 2]}}
    _p, _g, bundle = build_llm_context(
        1, results, run_id="r", state_paths=[], state_dir=state_dir, clock=clock
    )
    results["window"]["skips"].append(3)
    assert bundle.context.inputs_summary["window"]["skips"] == (1, 2)


def test_json_round_trip(bundle: StepAwarenessBundle) -> None:
    """model_dump(mode="json") is plain JSON and validates back to an equal bundle."""
    dumped = bundle.model_dump(mode="json")
    text = json.dumps(dumped)
    assert dumped["context"]["inputs_summary"]["window"]["skips"] == [1, 2, 3]
    again = StepAwarenessBundle.model_validate(json.loads(text))
    assert again == bundle
    assert StepAwarenessBundle.model_validate_json(bundle.model_dump_json()) == bundle


def test_bundle_is_hashable_picklable_and_copyable(bundle: StepAwarenessBundle) -> None:
    """Being deeply frozen, a bundle hashes, pickles and (deep-)copies to an equal value."""
    assert hash(bundle) == hash(copy.deepcopy(bundle))
    assert pickle.loads(pickle.dumps(bundle)) == bundle


def test_freeze_normalises_values() -> None:
    """Non-finite floats become strings, lists tuples, and keys end up sorted."""
    frozen = freeze({"b": [1.5, float("nan")], "a": float("-inf")})
    assert list(frozen) == ["a", "b"]
    assert frozen == {"a": "-Infinity", "b": (1.5, "NaN")}
    assert thaw(frozen) == {"a": "-Infinity", "b": [1.5, "NaN"]}


@pytest.mark.parametrize(
    ("payload", "path"),
    [({1: "x"}, "$"), ({"a": {"b": object()}}, "$.a.b"), ({"a": [1, {2, 3}]}, "$.a[1]")],
)
def test_freeze_names_the_bad_value(payload: object, path: str) -> None:
    """A value JSON cannot carry is refused with its path in the message."""
    with pytest.raises(ResultsError, match=path.replace("$", r"\$").replace("[", r"\[")):
        freeze(payload)


def test_budget_defaults_and_validation() -> None:
    """The defaults are the issue's, and a reserve as large as the context is refused."""
    b = TokenBudget()
    assert (b.context, b.tier0_reserved, b.tier1_cap) == (32_768, 1_200, 3_000)
    assert (b.history_cap, b.telemetry_cap, b.generation_reserve) == (6_000, 3_000, 2_000)
    assert b.prompt_limit == 30_768
    assert TokenBudget.model_validate({"context": 8192}).context == 8192
    with pytest.raises(ValidationError, match="generation_reserve"):
        TokenBudget(context=2_000, generation_reserve=2_000)
    with pytest.raises(ValidationError):
        TokenBudget(unknown_cap=3)  # type: ignore[call-arg]
