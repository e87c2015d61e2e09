"""Acceptance rules: each with a case it accepts and a case it refuses (table-driven)."""

from __future__ import annotations

import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actors.config import PoliciesConfig, Settings
from actors.llm.heuristic import heuristic_decision
from actors.trigger.acceptance import (
    Acceptance,
    AppliedRun,
    Outcome,
    ParameterChange,
    judge_proposal,
    routine_refresh,
)
from actors.trigger.context import Context, ModelRecord, NoSignal
from actors.trigger.detector import CusumState
from actors.trigger.diagnostics import Diagnostics
from actors.trigger.filing import resolve_action
from actors.trigger.rules import Identification, advisor_metrics, evaluate
from actors.trigger.tracker import TrackerState
from messages.decisions import (
    Chapter13Action,
    Chapter13Proposal,
    FailureMode,
    ParameterProposal,
    RiskLevel,
)
from messages.enums import LearningLoopScope
from pipeline.seed_search import draws_to_identify, search_space

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
        proposal(), current=CURRENT, runs=(), draw_index=100,
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


finite = st.floats(0.0, 1.0, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    statistic=st.floats(0.0, 60.0),
    arl0=st.sampled_from([10.0, 100.0, 10_000.0, 1e6]),
    target=st.sampled_from([0.25, 0.05, 0.01, 1e-4]),
    alpha=st.sampled_from([0.25, 0.05, 0.01]),
    misses=st.integers(0, 40),
    hit_rate=finite,
    mean_confidence=finite,
    scored=st.integers(0, 40),
    post=st.integers(0, 20),
    no_model=st.booleans(),
    backoff_due=st.none() | st.booleans(),
)
def test_the_heuristic_and_the_acceptance_rules_agree_on_every_fired_rule(
    statistic: float,
    arl0: float,
    target: float,
    alpha: float,
    misses: int,
    hit_rate: float,
    mean_confidence: float,
    scored: int,
    post: int,
    no_model: bool,
    backoff_due: bool | None,
) -> None:
    """Whatever the diagnosis: when a rule fires, the heuristic's proposal for it passes the
    acceptance rules — never refused for its confidence or its parameter count (it changes no
    parameter, and its confidence is the evidence that made the rule fire)."""
    fired = _fired_advice(
        statistic, arl0, target, alpha, misses, hit_rate, mean_confidence, scored, post,
        no_model, backoff_due,
    )  # fmt: skip
    if fired is not None:
        rule, result, same_action = fired
        assert result.outcome is Outcome.ACCEPT, (rule, result.reasons)
        assert same_action


BASE_CASE: dict[str, Any] = {
    "statistic": 0.0, "arl0": 10_000.0, "target": 0.01, "alpha": 0.01, "misses": 0,
    "hit_rate": 1.0, "mean_confidence": 1.0, "scored": 20, "post": 0, "no_model": False,
    "backoff_due": None,
}  # fmt: skip


@pytest.mark.parametrize(
    ("over", "rule"),
    [
        ({"statistic": 12.0, "post": 6}, "change_point"),
        ({"backoff_due": True}, "no_signal_retry"),
        ({"hit_rate": 0.2, "mean_confidence": 0.9}, "confidence_drift"),
        ({"no_model": True, "scored": 0}, "n_draws"),
    ],
)
def test_each_rule_fires_and_is_accepted(over: dict[str, Any], rule: str) -> None:
    """The property above is not vacuous: each rule fires on its evidence and is accepted."""
    fired = _fired_advice(**{**BASE_CASE, **over})
    assert fired is not None
    assert fired[0] == rule
    assert fired[1].outcome is Outcome.ACCEPT, fired[1].reasons


def _fired_advice(
    statistic: float,
    arl0: float,
    target: float,
    alpha: float,
    misses: int,
    hit_rate: float,
    mean_confidence: float,
    scored: int,
    post: int,
    no_model: bool,
    backoff_due: bool | None,
) -> tuple[str, Acceptance, bool] | None:
    """(rule, acceptance of the heuristic's advice, action unchanged) for the fired rule."""
    cfg = Settings(trigger={"arl0": arl0, "target_false_positives": target, "drift_alpha": alpha})
    tcfg = cfg.trigger
    h = math.log(arl0)
    alarm = statistic >= h
    draw_index = 100
    detector = CusumState(
        model_id="m" if not no_model else None,
        statistic=statistic,
        alarm=alarm,
        alarm_index=draw_index if alarm else None,
        change_point="d-90" if alarm else None,
        change_point_index=draw_index - post if alarm else None,
    )
    hits = round(hit_rate * scored)
    state = TrackerState(
        draw_index=draw_index,
        model_id=None if no_model else "m",
        consecutive_misses=misses,
        detector=detector,
    )
    diag = Diagnostics(
        draw_id="d-100", draw_index=draw_index, window=tcfg.window, scored=scored, hits=hits,
        hit_rate=hits / scored if scored else None, chance_rate=0.004, ci_low=None,
        ci_high=None, p_value=None, brier=None, ece=None,
        mean_confidence=mean_confidence if scored else None,
        overconfidence=(mean_confidence - hits / scored) if scored else None,
        consecutive_misses=misses, window_decay=None, churn=None, entropy=None,
        draws_since_pool=0, statistic=statistic,
    )  # fmt: skip
    ctx = Context(
        model=None if no_model else ModelRecord(model_id="m"),
        no_signal=None
        if backoff_due is None
        else NoSignal(since_index=50, next_index=draw_index if backoff_due else 10_000),
    )
    space = search_space(["lcg32", "minstd", "xorshift32", "java_lcg"], 0, 1 << 20, 0, 0)
    post_draws, _w, fp = draws_to_identify(space, 1000, target, 1, 64)
    boot, _bw, _bfp = draws_to_identify(space, 1000, target, 0, 64)
    ident = Identification(
        post_change_draws=post_draws, margin=1, bootstrap_draws=boot, expected_false_positives=fp
    )
    verdict = evaluate(diag, state, ctx, ident, tcfg, now=0.0)
    if verdict.fired is None:
        return None
    advice = heuristic_decision("chapter_13", advisor_metrics(verdict.fired, diag), [])
    assert isinstance(advice, Chapter13Proposal)
    result = judge_proposal(
        advice, current=CURRENT, runs=(), draw_index=draw_index, prior_rejects=0,
        cfg=cfg.policies,
    )  # fmt: skip
    same = resolve_action(verdict.fired.action, verdict.fired.scope, advice)[0] == (
        verdict.fired.action
    )
    return verdict.fired.rule.value, result, same


def test_a_config_whose_evidence_cannot_reach_acceptance_is_refused() -> None:
    """An ARL0 so small that an alarm's confidence stays below auto-accept is a config error."""
    with pytest.raises(ValueError, match="arl0"):
        Settings(trigger={"arl0": 3.5})


def test_a_refresh_is_accepted_with_its_reason_and_changes_nothing() -> None:
    """routine_refresh: ACCEPT, the track's reason first, no parameter change."""
    result = routine_refresh("the newest pool is 1 draws old")
    assert result.outcome is Outcome.ACCEPT
    assert "the newest pool is 1 draws old" in result.reasons[0]
    assert result.changes == ()
