"""Acceptance rules: the advisor proposes, these deterministic rules decide (pure).

In order:
1. The advisor asks for a person (action ESCALATE): ESCALATE.
2. Hard rules, every broken one named: action WAIT, confidence below the minimum, too many
   parameters, a frozen or unknown parameter, a value outside its bounds, a relative change
   above the maximum, the reversal of a change made in the last runs, a parameter still in its
   cooldown. Any broken: REJECT — or ESCALATE when it is the Nth rejection in a row.
3. The escalation matrix: a risk level that needs a person, human review requested: ESCALATE.
4. Auto-accept: low risk, confidence at least the auto-accept line, few parameters: ACCEPT.
5. Anything else is not routine: ESCALATE.

A prediction refresh (the refresh track, rules.refresh_verdict) has no proposal: it changes no
parameter and runs step 6 with the model in force, so there is nothing for rules 1-4 to judge.
It is accepted by `routine_refresh`, recorded like any decision (docs/chapter13.md says why).
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING

from pydantic import Field

from messages.base import Model
from messages.decisions import Chapter13Action, RiskLevel

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from actors.config import PoliciesConfig
    from messages.decisions import Chapter13Proposal


class Outcome(StrEnum):
    """What Chapter 13 does with a proposal."""

    ACCEPT = "ACCEPT"
    REJECT = "REJECT"
    ESCALATE = "ESCALATE"


class ParameterChange(Model):
    """One parameter change made by an accepted run."""

    parameter: str
    old_value: float
    new_value: float


class AppliedRun(Model):
    """An accepted run's parameter changes, and the draw it was accepted at."""

    draw_index: int = Field(ge=0)
    changes: tuple[ParameterChange, ...]


class Acceptance(Model):
    """The verdict on one proposal, with every reason that led to it."""

    outcome: Outcome
    reasons: tuple[str, ...]
    changes: tuple[ParameterChange, ...] = ()
    """The parameter changes an ACCEPT (or an approved ESCALATE) makes."""


def _sign(x: float) -> int:
    return (x > 0) - (x < 0)


def hard_violations(
    proposal: Chapter13Proposal,
    current: Mapping[str, float],
    runs: Sequence[AppliedRun],
    draw_index: int,
    cfg: PoliciesConfig,
) -> tuple[list[str], list[ParameterChange]]:
    """Every hard rule the proposal breaks, and the changes it would make."""
    reasons: list[str] = []
    changes: list[ParameterChange] = []
    if proposal.recommended_action is Chapter13Action.WAIT:
        reasons.append("the advisor recommends WAIT: nothing to file")
    if proposal.confidence < cfg.min_confidence:
        reasons.append(
            f"confidence {proposal.confidence:g} is below the minimum {cfg.min_confidence:g}"
        )
    count = len(proposal.parameter_proposals)
    if count > cfg.max_parameters:
        reasons.append(f"{count} parameters proposed; at most {cfg.max_parameters} allowed")
    recent = list(runs)[-cfg.reversal_lookback_runs :] if cfg.reversal_lookback_runs else []
    for item in proposal.parameter_proposals:
        name, new = item.parameter, item.proposed_value
        if name in cfg.frozen_parameters:
            reasons.append(f"parameter {name!r} is frozen")
            continue
        bounds = cfg.parameter_bounds.get(name)
        if bounds is None:
            known = ", ".join(sorted(cfg.parameter_bounds))
            reasons.append(f"parameter {name!r} is unknown; known: {known}")
            continue
        low, high = bounds
        if not low <= new <= high:
            reasons.append(f"{name}={new:g} is outside its bounds [{low:g}, {high:g}]")
        old = current.get(name, item.current_value)
        if old is None:
            reasons.append(f"{name}: current value unknown, so its change cannot be bounded")
            continue
        delta = abs(new - old) / abs(old) if old else (0.0 if new == old else float("inf"))
        if delta > cfg.max_relative_delta:
            reasons.append(
                f"{name}: {old:g} -> {new:g} is a relative change of {delta:.2f}, "
                f"above the maximum {cfg.max_relative_delta:g}"
            )
        direction = _sign(new - old)
        for run in recent:
            for change in run.changes:
                if change.parameter != name:
                    continue
                if direction and direction == -_sign(change.new_value - change.old_value):
                    reasons.append(
                        f"{name}: {old:g} -> {new:g} reverses {change.old_value:g} -> "
                        f"{change.new_value:g} of one of the last "
                        f"{cfg.reversal_lookback_runs} runs"
                    )
        last = max((r.draw_index for r in runs if any(c.parameter == name for c in r.changes)),
                   default=None)  # fmt: skip
        if last is not None and draw_index - last < cfg.parameter_cooldown_draws:
            reasons.append(
                f"{name} changed {draw_index - last} draws ago; its cooldown is "
                f"{cfg.parameter_cooldown_draws} draws"
            )
        changes.append(ParameterChange(parameter=name, old_value=old, new_value=new))
    return reasons, changes


def judge_proposal(
    proposal: Chapter13Proposal,
    *,
    current: Mapping[str, float],
    runs: Sequence[AppliedRun],
    draw_index: int,
    prior_rejects: int,
    cfg: PoliciesConfig,
) -> Acceptance:
    """ACCEPT, REJECT or ESCALATE a proposal (see the module docstring for the order).

    Args:
        current: the active policy's parameter values.
        runs: accepted runs with their parameter changes, oldest first.
        prior_rejects: rejections in a row for this rule before this proposal.
    """
    if proposal.recommended_action is Chapter13Action.ESCALATE:
        return Acceptance(outcome=Outcome.ESCALATE, reasons=("the advisor asks for a person",))
    reasons, changes = hard_violations(proposal, current, runs, draw_index, cfg)
    if reasons:
        if prior_rejects + 1 >= cfg.max_repeated_rejects:
            note = f"rejection {prior_rejects + 1} in a row (limit {cfg.max_repeated_rejects})"
            return Acceptance(outcome=Outcome.ESCALATE, reasons=(*reasons, note))
        return Acceptance(outcome=Outcome.REJECT, reasons=tuple(reasons))
    escalations = []
    if proposal.risk_level.value in cfg.escalate_risk_levels:
        escalations.append(f"risk level {proposal.risk_level.value} needs a person")
    if proposal.requires_human_review:
        escalations.append("the advisor requests human review")
    if escalations:
        return Acceptance(
            outcome=Outcome.ESCALATE, reasons=tuple(escalations), changes=tuple(changes)
        )
    auto = (
        proposal.risk_level is RiskLevel.LOW
        and proposal.confidence >= cfg.auto_accept_confidence
        and len(proposal.parameter_proposals) <= cfg.auto_accept_max_parameters
    )
    if auto:
        reason = (
            f"low risk, confidence {proposal.confidence:g} >= {cfg.auto_accept_confidence:g}, "
            f"{len(proposal.parameter_proposals)} parameters <= {cfg.auto_accept_max_parameters}"
        )
        return Acceptance(outcome=Outcome.ACCEPT, reasons=(reason,), changes=tuple(changes))
    reason = (
        f"not routine: auto-accept needs low risk, confidence >= "
        f"{cfg.auto_accept_confidence:g} and at most {cfg.auto_accept_max_parameters} parameters"
    )
    return Acceptance(outcome=Outcome.ESCALATE, reasons=(reason,), changes=tuple(changes))


def routine_refresh(why: str) -> Acceptance:
    """The acceptance of a prediction refresh: step 6 with the current model, no change.

    Args:
        why: the refresh track's reason (how old the newest pool is).
    """
    return Acceptance(
        outcome=Outcome.ACCEPT,
        reasons=(
            f"routine prediction refresh: {why}",
            "step 6 with the model and parameters in force: no parameter change to judge",
        ),
    )
