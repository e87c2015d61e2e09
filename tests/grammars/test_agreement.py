"""Grammar <=> model agreement, checked independently of the generator.

Two kinds of evidence: the grammar text holds exactly the model's keys, enum values and length
bounds; and llama.cpp's own grammar engine accepts and refuses the same boundary answers as the
pydantic model (ranges, lengths, enum values, key names).
"""

from __future__ import annotations

import copy
import json
import re
from typing import TYPE_CHECKING, Any

import pytest
from pydantic import ValidationError

from grammars import GRAMMAR_NAMES, load_grammar
from messages.decisions import GRAMMAR_MODELS, parse_decision
from messages.enums import LearningLoopScope

if TYPE_CHECKING:
    from actors.llm.worker import Engine

_KEY = re.compile(r'"\\"([a-z_]+)\\":"')
_LITERAL = re.compile(r'"\\"([A-Za-z0-9_]+)\\""')
_TEXT_BOUND = re.compile(r"\[ !#-\\\[\\\]-~\]\{(\d+),(\d+)\}")


def _schema_nodes(name: str) -> list[dict[str, Any]]:
    schema = GRAMMAR_MODELS[name].model_json_schema()
    nodes: list[dict[str, Any]] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            nodes.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(schema)
    return nodes


def _model_keys(name: str) -> set[str]:
    keys: set[str] = set()
    for node in _schema_nodes(name):
        if isinstance(node.get("properties"), dict):
            keys.update(node["properties"])
    keys.discard("schema_version")
    return keys


DECISION_GRAMMARS = [n for n in GRAMMAR_NAMES if n != "json_generic"]


@pytest.mark.parametrize("name", DECISION_GRAMMARS)
def test_grammar_keys_are_the_model_keys(name: str) -> None:
    """The grammar writes exactly the model's field names (nested models included)."""
    assert set(_KEY.findall(load_grammar(name))) == _model_keys(name)


@pytest.mark.parametrize("name", DECISION_GRAMMARS)
def test_grammar_enum_values_are_the_model_values(name: str) -> None:
    """Every enum value of the model is a grammar literal, and no other literal exists."""
    values = {str(v) for node in _schema_nodes(name) for v in node.get("enum", [])}
    assert set(_LITERAL.findall(load_grammar(name))) == values


@pytest.mark.parametrize("name", DECISION_GRAMMARS)
def test_grammar_text_bounds_are_the_model_bounds(name: str) -> None:
    """Free-text lengths in the grammar are the model's max_length values."""
    bounds = {
        int(node["maxLength"])
        for node in _schema_nodes(name)
        if node.get("type") == "string" and "maxLength" in node
    }
    assert {int(hi) for _lo, hi in _TEXT_BOUND.findall(load_grammar(name))} == bounds


def test_retrain_scope_uses_the_dispatchers_enum() -> None:
    """chapter_13's scope values are LearningLoopScope's, the enum the dispatcher reads."""
    assert set(_LITERAL.findall(load_grammar("chapter_13"))) >= {s.value for s in LearningLoopScope}


BASES: dict[str, dict[str, Any]] = {
    "agent_decision": {
        "success_condition_met": True,
        "confidence": 0.8,
        "reasoning": "accuracy above threshold",
        "recommended_action": "proceed",
        "retry_reason": None,
        "suggested_params": {"learning_rate": -12.5, "window": 1200, "mode": "fast"},
        "warnings": ["none"],
    },
    "chapter_13": {
        "analysis_summary": "hit rate fell after draw 120",
        "failure_mode": "regime_shift",
        "confidence": 0.65,
        "recommended_action": "RETRAIN",
        "retrain_scope": "steps_3_5_6",
        "parameter_proposals": [
            {
                "parameter": "window_size",
                "current_value": -3.25,
                "proposed_value": 1200,
                "rationale": "longer window",
            }
        ],
        "risk_level": "medium",
        "requires_human_review": False,
        "alternative_hypothesis": None,
    },
    "sieve_analysis": {
        "summary": "survivors look structured",
        "candidate_quality": "plausible",
        "survivor_count": "adequate",
        "confidence": 1,
        "recommended_action": "retry",
        "suggested_params": {"threshold": 0.125, "min_len": 64},
        "warnings": [],
    },
    "parameter_adjustment": {
        "adjustments": [
            {"parameter": "lr", "current_value": None, "proposed_value": 0.001, "rationale": "x"}
        ],
        "rationale": "loss plateaued",
        "confidence": 0.0,
        "recommended_action": "apply",
    },
}


def _mutate(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    data = copy.deepcopy(base)
    *parents, last = path.split(".")
    node: Any = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last] = value
    return data


# (grammar, field path, value): boundary answers on which grammar and model must agree.
CASES: list[tuple[str, str, Any]] = [
    ("agent_decision", "confidence", 1),
    ("agent_decision", "confidence", 0.0001),
    ("agent_decision", "confidence", 1.5),
    ("agent_decision", "confidence", -0.1),
    ("agent_decision", "recommended_action", "escalate"),
    ("agent_decision", "recommended_action", "PROCEED"),
    ("agent_decision", "reasoning", "x" * 400),
    ("agent_decision", "reasoning", "x" * 401),
    ("agent_decision", "reasoning", "two\nlines"),
    ("agent_decision", "reasoning", 'a "quote"'),
    ("agent_decision", "reasoning", "back\\slash"),
    ("agent_decision", "retry_reason", "y" * 160),
    ("agent_decision", "retry_reason", "y" * 161),
    ("agent_decision", "suggested_params", {f"p{i}": i for i in range(6)}),
    ("agent_decision", "suggested_params", {f"p{i}": i for i in range(7)}),
    ("agent_decision", "suggested_params", {"big": 999999999.5}),
    ("agent_decision", "suggested_params", {"neg": -999999999}),
    ("agent_decision", "suggested_params", {"Bad": 1}),
    ("agent_decision", "suggested_params", {"ok": "w" * 33}),
    ("agent_decision", "warnings", ["w"] * 4),
    ("agent_decision", "warnings", ["w"] * 5),
    ("chapter_13", "retrain_scope", "steps_5_6"),
    ("chapter_13", "retrain_scope", "step_6_only"),
    ("chapter_13", "retrain_scope", None),
    ("chapter_13", "retrain_scope", "steps_3_4_5_6"),
    ("chapter_13", "recommended_action", "FULL_RESET"),
    ("chapter_13", "recommended_action", "retrain"),
    ("chapter_13", "failure_mode", "none_detected"),
    ("chapter_13", "failure_mode", "bad_luck"),
    ("chapter_13", "risk_level", "extreme"),
    ("chapter_13", "parameter_proposals.0.proposed_value", -45.125),
    ("chapter_13", "parameter_proposals.0.proposed_value", 1e9),
    ("chapter_13", "parameter_proposals", []),
    ("sieve_analysis", "candidate_quality", "noise"),
    ("sieve_analysis", "survivor_count", "too_many"),
    ("sieve_analysis", "suggested_params", {"s": "word"}),
    ("sieve_analysis", "warnings", ["w"] * 4),
    ("parameter_adjustment", "recommended_action", "hold"),
    ("parameter_adjustment", "recommended_action", "proceed"),
    ("parameter_adjustment", "adjustments", []),
]


def _model_accepts(name: str, text: str) -> bool:
    try:
        parse_decision(name, text)
    except ValidationError:
        return False
    return True


@pytest.mark.parametrize("name", sorted(BASES))
def test_base_answers_are_accepted_by_both(tiny_engine: Engine, name: str) -> None:
    """The reference answer of each grammar passes llama.cpp's grammar and the model."""
    text = json.dumps(BASES[name])
    assert tiny_engine.accepts(name, text)
    assert _model_accepts(name, text)


@pytest.mark.parametrize(("name", "path", "value"), CASES)
def test_grammar_and_model_agree_on_boundaries(
    tiny_engine: Engine, name: str, path: str, value: Any
) -> None:
    """llama.cpp's grammar engine and the pydantic model accept or refuse the same answer."""
    text = json.dumps(_mutate(BASES[name], path, value))
    assert tiny_engine.accepts(name, text) == _model_accepts(name, text)


@pytest.mark.parametrize(
    "text",
    [
        '{"decision": "proceed"}',
        json.dumps({**BASES["agent_decision"], "decision": "proceed"}),
        json.dumps({k: v for k, v in BASES["agent_decision"].items() if k != "warnings"}),
        json.dumps(BASES["agent_decision"]) + " trailing",
        json.dumps(BASES["agent_decision"])[:-1],
    ],
)
def test_the_old_key_bug_and_broken_json_are_refused(tiny_engine: Engine, text: str) -> None:
    """The grammar never lets the model write `decision` instead of `recommended_action`."""
    assert not tiny_engine.accepts("agent_decision", text)


@pytest.mark.parametrize(
    ("text", "accepted"),
    [
        ('{"a": [1, -2.5e3, "x"], "b": {"c": null}, "d": true}', True),
        ("{}", True),
        ('{"a": {"b": {"c": 1}}}', False),  # three levels: deeper than the grammar allows
        ('{"a": [1, 2, 3, 4]}', False),  # leaves hold at most 3 items
        ("[1, 2]", False),  # the answer is always an object
    ],
)
def test_free_json_is_bounded(tiny_engine: Engine, text: str, accepted: bool) -> None:
    """json_generic takes bounded JSON objects and nothing else."""
    assert tiny_engine.accepts("json_generic", text) is accepted
    if accepted:
        assert json.loads(text) == parse_decision("json_generic", text).model_dump()["data"]
