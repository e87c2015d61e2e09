"""Acceptance rules: each with a case it accepts and a case it refuses (table-driven)."""

from __future__ import annotations

from typing import Any

import pytest

from actors.config import PoliciesConfig
from actors.llm.heuristic import heuristic_decision
from actors.trigger.acceptance import (
    AppliedRun,
    Outcome,
    ParameterChange,
    judge_proposal,
    routine_refresh,
)
from actors.trigger.filing import resolve_action
from actors.trigger.rules import DEFAULT_ACTIONS, RuleName
from messages.decisions import (
    Chapter13Action,
    Chapter13Proposal,
    FailureMode,
    ParameterProposal,
    RiskLevel,
)
from messages.enums import LearningLoopScope

CFG = PoliciesConfig()
CURRENT = {"half_life": 32.0, "pool_size": 4.0, "min_match_rate": 0.1, "recent_window": 20.0}


def param(name: str, value: float) -> ParameterProposal:
    """One parameter change with a rationale."""
    return ParameterProposal(parameter=name, proposed_value=value, rationale="test")


def proposal(**over: Any) -> Chapter13Proposal:
    """A routine proposal: low risk, confident, one small change."""
    base: dict[str, Any] = {
        "analysis_summary": "calibration drift after a quiet week",
        "failure_mode": FailureMode.CALIBRATION_DRIFT,
        "confidence": 0.8,
        "recommended_action": Chapter13Action.RETRAIN,
        "retrain_scope": LearningLoopScope.STEP_6_ONLY,
        "parameter_proposals": (param("half_life", 36.0),),
        "risk_level": RiskLevel.LOW,
        "requires_human_review": False,
    }
    return Chapter13Proposal(**{**base, **over})


def judge(p: Chapter13Proposal, **over: Any) -> tuple[Outcome, str]:
    """The verdict and its reasons as one string."""
    kwargs: dict[str, Any] = {
        "regime_shift": False,
        "current": CURRENT,
        "runs": (),
        "draw_index": 100,
        "prior_rejects": 0,
        "cfg": CFG,
    }
    result = judge_proposal(p, **{**kwargs, **over})
    return result.outcome, " | ".join(result.reasons)


def run_at(draw: int, name: str, old: float, new: float) -> AppliedRun:
    """An accepted run that changed one parameter at draw `draw`."""
    return AppliedRun(
        draw_index=draw,
        changes=(ParameterChange(parameter=name, old_value=old, new_value=new),),
    )


def test_routine_proposal_is_auto_accepted_with_its_changes() -> None:
    """Low risk, confidence 0.8 >= 0.75, one parameter: ACCEPT, and the change is recorded."""
    result = judge_proposal(
        proposal(), regime_shift=False, current=CURRENT, runs=(), draw_index=100,
        prior_rejects=0, cfg=CFG,
    )  # fmt: skip
    assert result.outcome is Outcome.ACCEPT
    assert result.changes == (ParameterChange(parameter="half_life", old_value=32, new_value=36),)


@pytest.mark.parametrize(
    ("name", "accepted", "refused", "reason"),
    [
        ("minimum confidence", {"confidence": 0.75}, {"confidence": 0.59}, "below the minimum"),
        (
            "frozen parameters",
            {"parameter_proposals": (param("pool_size", 5),)},
            {"parameter_proposals": (param("mod", 1000),)},
            "'mod' is frozen",
        ),
        (
            "known parameters only",
            {"parameter_proposals": (param("recent_window", 22),)},
            {"parameter_proposals": (param("learning_rate", 0.1),)},
            "'learning_rate' is unknown",
        ),
        (
            "relative delta <= 0.3",
            {"parameter_proposals": (param("half_life", 41.5),)},  # +29.7 %
            {"parameter_proposals": (param("half_life", 42.0),)},
            "relative change of 0.31",
        ),
        (
            "within bounds",
            {"parameter_proposals": (param("min_match_rate", 0.12),)},
            {"parameter_proposals": (param("pool_size", 17),)},
            "pool_size=17 is outside its bounds [1, 16]",
        ),
        ("action WAIT files nothing", {}, {"recommended_action": Chapter13Action.WAIT}, "WAIT"),
    ],
)
def test_hard_rules(
    name: str, accepted: dict[str, Any], refused: dict[str, Any], reason: str
) -> None:
    """Each hard rule lets a compliant proposal through and rejects a breaking one."""
    outcome, _why = judge(proposal(**accepted))
    assert outcome is Outcome.ACCEPT, name
    outcome, why = judge(proposal(**refused))
    assert outcome is Outcome.REJECT, name
    assert reason in why


def test_parameter_count_limit() -> None:
    """The grammar caps proposals at 3 parameters; a stricter config refuses the third."""
    cfg = PoliciesConfig(max_parameters=2, auto_accept_max_parameters=2)
    two = proposal(parameter_proposals=(param("half_life", 36), param("pool_size", 5)))
    assert judge(two, cfg=cfg)[0] is Outcome.ACCEPT
    three = proposal(
        parameter_proposals=(
            param("half_life", 36),
            param("pool_size", 5),
            param("recent_window", 22),
        )
    )
    outcome, why = judge(three, cfg=cfg)
    assert outcome is Outcome.REJECT
    assert "3 parameters proposed; at most 2 allowed" in why


def test_reversal_of_a_recent_change_is_refused() -> None:
    """Undoing a change of the last 3 runs is refused; a 4th-run-old change may be undone."""
    undo = proposal(parameter_proposals=(param("half_life", 28.0),))
    recent = (run_at(10, "half_life", 24, 32), run_at(20, "pool_size", 2, 4),
              run_at(30, "pool_size", 4, 5))  # fmt: skip
    outcome, why = judge(undo, runs=recent)
    assert outcome is Outcome.REJECT
    assert "reverses 24 -> 32" in why
    older = (*recent, run_at(40, "recent_window", 20, 22))
    assert judge(undo, runs=older)[0] is Outcome.ACCEPT
    same_direction = proposal(parameter_proposals=(param("half_life", 36.0),))
    assert judge(same_direction, runs=recent)[0] is Outcome.ACCEPT


def test_parameter_cooldown() -> None:
    """A parameter changed 5 draws ago waits; 10 draws ago it may change again."""
    p = proposal(parameter_proposals=(param("half_life", 36.0),))
    outcome, why = judge(p, runs=(run_at(95, "half_life", 30, 32),))
    assert outcome is Outcome.REJECT
    assert "cooldown is 10 draws" in why
    assert judge(p, runs=(run_at(90, "half_life", 30, 32),))[0] is Outcome.ACCEPT


@pytest.mark.parametrize(
    ("over", "kwargs", "reason"),
    [
        ({"risk_level": RiskLevel.MEDIUM}, {}, "risk level medium"),
        ({"risk_level": RiskLevel.HIGH}, {}, "risk level high"),
        ({"requires_human_review": True}, {}, "requests human review"),
        ({"recommended_action": Chapter13Action.ESCALATE, "confidence": 0.3}, {}, "a person"),
        ({}, {"regime_shift": True}, "regime shift"),
        ({"confidence": 0.7}, {}, "not routine"),  # above the minimum, below auto-accept
        ({"parameter_proposals": (param("half_life", 36), param("pool_size", 5),
                                  param("recent_window", 22))}, {}, "not routine"),
        ({"confidence": 0.5}, {"prior_rejects": 2}, "rejection 3 in a row"),
    ],
)  # fmt: skip
def test_escalation_matrix(over: dict[str, Any], kwargs: dict[str, Any], reason: str) -> None:
    """Each escalation condition sends an otherwise acceptable proposal to a person."""
    assert judge(proposal())[0] is Outcome.ACCEPT
    outcome, why = judge(proposal(**over), **kwargs)
    assert outcome is Outcome.ESCALATE
    assert reason in why


def test_second_rejection_in_a_row_is_still_a_rejection() -> None:
    """Below the repeated-reject limit a broken rule rejects."""
    outcome, _why = judge(proposal(confidence=0.5), prior_rejects=1)
    assert outcome is Outcome.REJECT


@pytest.mark.parametrize(
    ("flags", "rule", "outcome", "action"),
    [
        ({"hit_rate_collapse": 1.0, "consecutive_misses": 10.0}, "hit_rate_collapse",
         Outcome.ACCEPT, "full_pipeline"),
        ({"regime_shift": 1.0, "hit_rate_collapse": 1.0}, "regime_shift",
         Outcome.ESCALATE, "full_pipeline"),
        ({"scheduled_retrain": 1.0}, "n_draws", Outcome.ACCEPT, "full_pipeline"),
        ({"consecutive_misses": 5.0}, "consecutive_misses", Outcome.REJECT, "learning_loop"),
    ],
)  # fmt: skip
def test_heuristic_advice_through_the_acceptance_rules(
    flags: dict[str, float], rule: str, outcome: Outcome, action: str
) -> None:
    """The heuristic's collapse advice is auto-accepted and leaves the trigger's full pipeline
    standing; a regime shift always goes to a person; a short miss streak is waited out."""
    advice = heuristic_decision("chapter_13", flags, [])
    assert isinstance(advice, Chapter13Proposal)
    result = judge_proposal(
        advice,
        regime_shift=rule == "regime_shift",
        current=CURRENT,
        runs=(),
        draw_index=100,
        prior_rejects=0,
        cfg=CFG,
    )
    assert result.outcome is outcome, result.reasons
    rule_action, rule_scope = DEFAULT_ACTIONS[RuleName(rule)]
    if rule == "n_draws":  # before any model: steps 1-6
        rule_action, rule_scope = "full_pipeline", None
    assert resolve_action(rule_action, rule_scope, advice)[0] == action


def test_a_refresh_is_accepted_with_its_reason_and_changes_nothing() -> None:
    """routine_refresh: ACCEPT, the track's reason first, no parameter change."""
    result = routine_refresh("the newest pool is 1 draws old")
    assert result.outcome is Outcome.ACCEPT
    assert "the newest pool is 1 draws old" in result.reasons[0]
    assert result.changes == ()
