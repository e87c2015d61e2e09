"""The decision models and parse_decision, the one entry from raw text to a model."""

from __future__ import annotations

import json

import pytest

from messages.decisions import (
    GRAMMAR_MODELS,
    Chapter13Proposal,
    GenericJson,
    MetricThreshold,
    StepDecision,
    parse_decision,
)
from messages.enums import LearningLoopScope


def test_free_json_is_wrapped_under_data() -> None:
    """json_generic answers become GenericJson(data=...)."""
    answer = parse_decision("json_generic", '{"a": [1, 2.5, "x"], "b": null}')
    assert answer == GenericJson(data={"a": [1, 2.5, "x"], "b": None})


@pytest.mark.parametrize("text", ["[1, 2]", "3", '{"a": NaN}', '{"a": Infinity}', "{"])
def test_free_json_refuses_non_objects_and_non_json(text: str) -> None:
    """Only a JSON object is free JSON; NaN and Infinity are not JSON."""
    with pytest.raises(ValueError):
        parse_decision("json_generic", text)


def test_unknown_grammar_is_a_key_error() -> None:
    """parse_decision refuses a grammar it has no model for."""
    with pytest.raises(KeyError):
        parse_decision("nope", "{}")


def test_retrain_scope_is_the_dispatchers_enum() -> None:
    """Chapter13Proposal.retrain_scope parses into LearningLoopScope, steps included."""
    field = Chapter13Proposal.model_fields["retrain_scope"]
    assert field.annotation == LearningLoopScope | None
    proposal = Chapter13Proposal.model_validate(
        {
            "analysis_summary": "x",
            "failure_mode": "regime_shift",
            "confidence": 0.5,
            "recommended_action": "RETRAIN",
            "retrain_scope": "steps_5_6",
            "risk_level": "low",
            "requires_human_review": False,
        }
    )
    assert proposal.retrain_scope is LearningLoopScope.STEPS_5_6
    assert proposal.retrain_scope.steps == (5, 6)


def test_models_are_frozen_and_strict_about_keys() -> None:
    """Decision models refuse unknown keys (the old `decision` key) and cannot be mutated."""
    with pytest.raises(ValueError, match="decision"):
        StepDecision.model_validate_json(
            json.dumps(
                {
                    "success_condition_met": True,
                    "confidence": 0.9,
                    "reasoning": "x",
                    "recommended_action": "proceed",
                    "decision": "proceed",
                }
            )
        )
    assert all(m.model_config.get("frozen") for m in GRAMMAR_MODELS.values())


@pytest.mark.parametrize(
    ("low", "high", "value", "passes"),
    [
        (0.9, None, 0.9, True),
        (None, 0.5, 0.51, False),
        (0.2, 0.4, 0.3, True),
        (0.2, 0.4, 0.1, False),
    ],
)
def test_metric_threshold_bounds_are_inclusive(
    low: float | None, high: float | None, value: float, passes: bool
) -> None:
    """MetricThreshold.passes is min <= value <= max with open ends."""
    assert MetricThreshold(metric="m", min=low, max=high).passes(value) is passes
