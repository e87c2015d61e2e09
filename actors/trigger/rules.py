"""Trigger rules: which evidence calls for which retrain, in priority order (pure).

| rule | fires when (defaults) | action |
|---|---|---|
| change_point | the detector alarmed and the post-change draws identify a seed | full pipeline |
| no_signal_retry | in no signal, and the back-off ran out | full pipeline |
| confidence_drift | full window, confidence - hit rate > 0.2, binomial p < alpha (*) | selfplay |
| n_draws | no model yet and the history identifies a seed | full pipeline |
| llm_proposed | every `llm_review_every_n_draws` scored draws (0: off) | the proposal's |

(*) and the change detector at zero: a run of misses is the detector's to judge.

The highest-priority rule that fires and is not blocked wins. Blocks: an open, unparked request
of the same or a stronger type (it would run stale behind it; a parked one is superseded by the
newer evidence instead); the cooldown (`cooldown_draws`, and `cooldown_s` when set) after a
cooled rule fired, for cooled rules of the same or lower priority; the no-signal back-off for
the retraining rules; the daily GPU budget for every automatic retrain.

Beside the rules runs the **refresh track** (`refresh_verdict`): once a model exists, keeping a
pool registered for the next draw is maintenance, not a retrain decision.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from actors.trigger.context import REFRESH, Context
from actors.trigger.detector import confidence
from actors.trigger.stats import binomial_cdf
from messages.base import Model
from messages.enums import RULE_FLAGS, LearningLoopScope
from messages.requests import RequestType

if TYPE_CHECKING:
    from actors.config import TriggerConfig
    from actors.trigger.diagnostics import Diagnostics
    from actors.trigger.tracker import TrackerState


class RuleName(StrEnum):
    """The trigger rules, highest priority first."""

    CHANGE_POINT = "change_point"
    NO_SIGNAL_RETRY = "no_signal_retry"
    CONFIDENCE_DRIFT = "confidence_drift"
    N_DRAWS = "n_draws"
    LLM_PROPOSED = "llm_proposed"

    @property
    def priority(self) -> int:
        """Higher is more urgent (change_point 5 ... llm_proposed 1)."""
        return _PRIORITY[self]


_PRIORITY = {
    RuleName.CHANGE_POINT: 5,
    RuleName.NO_SIGNAL_RETRY: 4,
    RuleName.CONFIDENCE_DRIFT: 3,
    RuleName.N_DRAWS: 2,
    RuleName.LLM_PROPOSED: 1,
}

COOLED = frozenset({RuleName.CONFIDENCE_DRIFT, RuleName.LLM_PROPOSED})
"""Rules with a cooldown. The change detector has a stated false-alarm rate and latches per
model; bootstrap and no-signal retries have their own schedule: none of them is cooled."""

RETRAINING = frozenset({RuleName.CHANGE_POINT, RuleName.N_DRAWS})
"""Rules the no-signal back-off holds (no_signal_retry files in their place, on schedule)."""

DEFAULT_ACTIONS: dict[RuleName, tuple[RequestType, LearningLoopScope | None]] = {
    # The source changed: search seeds again, on the draws after the change only.
    RuleName.CHANGE_POINT: ("pipeline_rerun", None),
    # Retraining found nothing that beats chance: try again, later, with more draws.
    RuleName.NO_SIGNAL_RETRY: ("pipeline_rerun", None),
    # Predictions are right less often than the policy claims: explore policies (selfplay).
    RuleName.CONFIDENCE_DRIFT: ("selfplay_retrain", None),
    # No model yet: the first full pipeline.
    RuleName.N_DRAWS: ("pipeline_rerun", None),
    # The advisor's proposal decides the action; a learning loop unless it says otherwise.
    RuleName.LLM_PROPOSED: ("learning_loop", LearningLoopScope.STEPS_5_6),
}


class Identification(Model):
    """How many draws of a regime the sieve needs to tell its seed from chance (seed_search)."""

    post_change_draws: int
    """Draws from the change point on before a retrain can identify the new seed."""
    margin: int
    """Draws before the estimated change point the retrain's history also holds (the estimate
    can be late by a chance hit of the dead model)."""
    bootstrap_draws: int
    """Draws of a first history before the first full pipeline can identify a seed."""
    expected_false_positives: float
    """Of the search over `post_change_draws` draws: 1 minus it is the advisor's confidence."""


class Trigger(Model):
    """A rule that fired: what it asks for and the figures that made it fire."""

    rule: RuleName
    action: RequestType
    scope: LearningLoopScope | None = None
    history_start_index: int | None = None
    """The draw index the retrain's history starts at (None: the model's regime or all)."""
    supersedes: str | None = None
    """A parked request of the same or a weaker type this one replaces."""
    evidence: dict[str, Any]


class Evaluation(Model):
    """The rules' verdict on one draw: the winner (if any), and every rule that fired."""

    fired: Trigger | None
    candidates: tuple[RuleName, ...]
    """Every rule whose condition held, highest priority first."""
    blocked: dict[str, str]
    """Rule -> why it did not win (cooldown, open request, back-off, budget)."""
    waiting: str | None = None
    """A change was detected and the retrain waits for enough post-change draws."""


def drift_p_value(diag: Diagnostics) -> float | None:
    """P(this few hits | the pools' own stated probability): the test behind confidence_drift."""
    if diag.mean_confidence is None or not diag.scored:
        return None
    return binomial_cdf(diag.hits, diag.scored, min(1.0, diag.mean_confidence))


def conditions(
    diag: Diagnostics,
    state: TrackerState,
    ctx: Context,
    ident: Identification,
    cfg: TriggerConfig,
) -> tuple[list[tuple[RuleName, dict[str, Any]]], str | None]:
    """The rules whose conditions hold with their evidence, highest priority first; and what a
    detected change still waits for."""
    found: list[tuple[RuleName, dict[str, Any]]] = []
    waiting = None
    det = state.detector
    has_model = ctx.model is not None or state.model_id is not None
    if det.alarm and det.change_point_index is not None and det.model_id == state.model_id:
        have = state.draw_index - det.change_point_index + 1
        evidence = {
            "statistic": det.statistic,
            "threshold": math.log(cfg.arl0),
            "arl0": cfg.arl0,
            "change_point": det.change_point,
            "change_point_index": det.change_point_index,
            "p0": det.p0,
            "change_confidence": confidence(det.statistic),
            "post_change_draws": have,
            "identification_draws": ident.post_change_draws,
            "identification_confidence": max(0.0, 1.0 - ident.expected_false_positives),
        }
        if have >= ident.post_change_draws:
            found.append((RuleName.CHANGE_POINT, evidence))
        else:
            waiting = (
                f"change detected at draw {det.change_point} (index {det.change_point_index});"
                f" identification needs {ident.post_change_draws} post-change draws, have {have}"
            )
    ns = ctx.no_signal
    if ns is not None and ns.next_index is not None and state.draw_index >= ns.next_index:
        found.append(
            (
                RuleName.NO_SIGNAL_RETRY,
                {
                    "attempts": ns.attempts,
                    "since_index": ns.since_index,
                    "next_index": ns.next_index,
                    "identification_confidence": max(0.0, 1.0 - ident.expected_false_positives),
                },
            )
        )
    p_drift = drift_p_value(diag)
    # A run of misses is the change detector's to judge; drift is a steady mis-calibration:
    # only while the detector sits at zero (no recent evidence of a change) and never after
    # an alarm.
    if (
        det.statistic == 0
        and not det.alarm
        and diag.window_full
        and diag.overconfidence is not None
        and diag.overconfidence > cfg.confidence_drift
        and p_drift is not None
        and p_drift < cfg.drift_alpha
    ):
        found.append(
            (
                RuleName.CONFIDENCE_DRIFT,
                {"drift_p_value": p_drift, "drift_confidence": 1.0 - p_drift},
            )
        )
    if not has_model and state.draw_index >= ident.bootstrap_draws:
        found.append(
            (
                RuleName.N_DRAWS,
                {
                    "bootstrap_draws": ident.bootstrap_draws,
                    "identification_confidence": max(0.0, 1.0 - ident.expected_false_positives),
                },
            )
        )
    if 0 < cfg.llm_review_every_n_draws <= state.scored_since_review:
        found.append((RuleName.LLM_PROPOSED, {}))
    return found, waiting


def cooldown_block(
    ctx: Context, rule: RuleName, draw_index: int, now: float, cfg: TriggerConfig
) -> str | None:
    """Why the cooldown blocks `rule` now, or None when it does not."""
    cooldown = ctx.cooldown
    if rule not in COOLED or cooldown is None:
        return None
    try:
        started_by = RuleName(cooldown.rule)
    except ValueError:
        return None
    if started_by not in COOLED or rule.priority > started_by.priority:
        return None
    draws = draw_index - cooldown.draw_index
    seconds = now - cooldown.at
    if draws >= cfg.cooldown_draws and seconds >= cfg.cooldown_s:
        return None
    return f"cooldown after {cooldown.rule}: {draws} of {cfg.cooldown_draws} draws" + (
        f", {seconds:.0f} of {cfg.cooldown_s:g} s" if cfg.cooldown_s else ""
    )


def evaluate(
    diag: Diagnostics,
    state: TrackerState,
    ctx: Context,
    ident: Identification,
    cfg: TriggerConfig,
    *,
    now: float,
) -> Evaluation:
    """Pick the trigger for this draw, if any (see the module docstring)."""
    found, waiting = conditions(diag, state, ctx, ident, cfg)
    blocked: dict[str, str] = {}
    fired = None
    for rule, extra in found:
        action, scope = DEFAULT_ACTIONS[rule]
        reason = cooldown_block(ctx, rule, state.draw_index, now, cfg)
        ns = ctx.no_signal
        if reason is None and rule in RETRAINING and ns is not None:
            when = "never (back-off off)" if ns.next_index is None else f"draw {ns.next_index}"
            reason = f"no signal since draw {ns.since_index}: next automatic retrain {when}"
        if (
            reason is None
            and cfg.gpu_budget_s_per_day
            and (ctx.gpu_seconds >= cfg.gpu_budget_s_per_day)
        ):
            reason = (
                f"daily GPU budget spent: {ctx.gpu_seconds:.0f} of "
                f"{cfg.gpu_budget_s_per_day:g} s in the last 24 h"
            )
        supersedes = None
        if reason is None:
            holder = ctx.blocking(action)
            if holder is not None and not holder.parked:
                reason = f"a {holder.action} request ({holder.request_id}) is still open"
            elif holder is not None:
                supersedes = holder.request_id
        if reason is not None:
            blocked[rule.value] = reason
            continue
        start = None
        if rule is RuleName.CHANGE_POINT:
            start = max(1, int(extra["change_point_index"]) - ident.margin)
        fired = Trigger(
            rule=rule,
            action=action,
            scope=scope,
            history_start_index=start,
            supersedes=supersedes,
            evidence={"rule": rule.value, "priority": rule.priority, **diag.metrics(), **extra},
        )
        break
    return Evaluation(
        fired=fired, candidates=tuple(r for r, _ in found), blocked=blocked, waiting=waiting
    )


def advisor_metrics(trigger: Trigger, diag: Diagnostics) -> dict[str, str | int | float | bool]:
    """What the advisor reads for a fired rule: the diagnostics, the rule's evidence figures and
    the rule's flag (messages.enums.RULE_FLAGS), with the names the bundle's schema uses."""
    figures = {
        k: v
        for k, v in trigger.evidence.items()
        if isinstance(v, int | float) and not isinstance(v, bool)
    }
    flag = RULE_FLAGS.get(trigger.rule.value)
    named = {
        "draws_scored": diag.scored,
        "match_rate": diag.hit_rate,
        "baseline_match_rate": diag.chance_rate,
        "confidence": diag.mean_confidence,
        "calibration_error": diag.ece,
    }
    return {
        **diag.metrics(),
        **figures,
        **({flag.value: 1.0} if flag is not None else {}),
        **{k: v for k, v in named.items() if v is not None},
    }


REFRESH_ACTION: tuple[RequestType, LearningLoopScope] = (
    "learning_loop",
    LearningLoopScope.STEP_6_ONLY,
)
"""A refresh predicts again from the current model: step 6 only."""


class Refresh(Model):
    """The refresh track's verdict after one draw: is a new pool due, and why (not)."""

    due: bool
    reason: str
    evidence: dict[str, Any]


def refresh_verdict(state: TrackerState, ctx: Context, cfg: TriggerConfig) -> Refresh:
    """Whether a prediction refresh is due now.

    Not due: no model yet, a pool already predicts the next draw, the newest pool is younger
    than `retrain_after_n_draws` draws, or an open request that runs step 6 (a refresh or an
    unparked retrain) will make the next pool. A parked retrain holds nothing back: while a
    person looks, the loop goes on predicting from the model it has.
    """
    n = cfg.retrain_after_n_draws
    index = ctx.pool_index
    age = state.draw_index - (0 if index is None else max(index, 0))
    model = ctx.model.model_id if ctx.model is not None else state.model_id
    evidence: dict[str, Any] = {
        "rule": RuleName.N_DRAWS.value,
        "track": REFRESH,
        "draw_index": state.draw_index,
        "pool_age": age,
        "retrain_after_n_draws": n,
        "model_id": model,
    }
    if model is None:
        return Refresh(due=False, reason="no model yet: nothing to predict from", evidence=evidence)
    if index is not None and index == state.draw_index:
        reason = "a pool for the next draw is registered"
        return Refresh(due=False, reason=reason, evidence=evidence)
    if age < n:
        reason = f"the newest pool is {age} of {n} draws old"
        return Refresh(due=False, reason=reason, evidence=evidence)
    running = ctx.makes_next_pool()
    if running is not None:
        reason = f"a {running.action} request ({running.rule}) is open: it makes the next pool"
        return Refresh(due=False, reason=reason, evidence=evidence)
    reason = f"no pool for the next draw; the newest is {age} draws old (refresh after {n})"
    return Refresh(due=True, reason=reason, evidence=evidence)
