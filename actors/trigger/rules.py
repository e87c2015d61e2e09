"""Trigger rules: which diagnosis calls for which retrain, in priority order, with cooldown (pure).

| rule | fires when | action |
|---|---|---|
| regime_shift | window decay > regime_decay and churn > regime_churn | full pipeline |
| hit_rate_collapse | a full window's hit rate <= hit_rate_collapse | full pipeline |
| consecutive_misses | misses in a row >= max_consecutive_misses | learning loop 3,5,6 |
| confidence_drift | a full window's mean confidence - hit rate > confidence_drift | selfplay |
| n_draws | no model yet, draws in a row with no pool >= retrain_after_n_draws | steps 1-6 (*) |
| llm_proposed | a review is due (llm_review_every_n_draws) | what the advisor proposes |

(*) learning loop 6 when pools were scored but name no model (a pool handed over by a tool).

The highest-priority rule that fires and is not blocked wins. A cooldown (draws *and* seconds,
both must pass) blocks rules of the same or lower priority than the one that started it; a
worse diagnosis breaks through. A rule is also blocked while a request of its action is open.

Beside the rules runs the **refresh track** (`refresh`): once a model exists, keeping a pool
registered for the next draw is maintenance, not a retrain decision. When the newest pool is
`retrain_after_n_draws` draws old and no step-6-running request is open, a step-6 learning loop
is due, whatever rule fired on the draw; no cooldown blocks it and it starts none.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TYPE_CHECKING, Any

from actors.trigger.tracker import Action, Cooldown, TrackerState
from messages.base import Model
from messages.enums import LearningLoopScope

if TYPE_CHECKING:
    from actors.config import TriggerConfig
    from actors.trigger.diagnostics import Diagnostics


class RuleName(StrEnum):
    """The trigger rules, highest priority first."""

    REGIME_SHIFT = "regime_shift"
    HIT_RATE_COLLAPSE = "hit_rate_collapse"
    CONSECUTIVE_MISSES = "consecutive_misses"
    CONFIDENCE_DRIFT = "confidence_drift"
    N_DRAWS = "n_draws"
    LLM_PROPOSED = "llm_proposed"

    @property
    def priority(self) -> int:
        """Higher is more urgent (regime_shift 6 ... llm_proposed 1)."""
        return _PRIORITY[self]


_PRIORITY = {
    RuleName.REGIME_SHIFT: 6,
    RuleName.HIT_RATE_COLLAPSE: 5,
    RuleName.CONSECUTIVE_MISSES: 4,
    RuleName.CONFIDENCE_DRIFT: 3,
    RuleName.N_DRAWS: 2,
    RuleName.LLM_PROPOSED: 1,
}

DEFAULT_ACTIONS: dict[RuleName, tuple[Action, LearningLoopScope | None]] = {
    # The survivors no longer describe the draws: search seeds again (steps 1-6).
    RuleName.REGIME_SHIFT: ("full_pipeline", None),
    # No survivor predicts anything any more: the seed set is dead, search again.
    RuleName.HIT_RATE_COLLAPSE: ("full_pipeline", None),
    # A miss streak with the survivors unchanged: re-score, retrain, predict.
    RuleName.CONSECUTIVE_MISSES: ("learning_loop", LearningLoopScope.STEPS_3_5_6),
    # Predictions are right less often than the policy claims: explore policies (selfplay).
    RuleName.CONFIDENCE_DRIFT: ("selfplay_retrain", None),
    # The predictions went stale (no pool for N draws): predict again from the model.
    RuleName.N_DRAWS: ("learning_loop", LearningLoopScope.STEP_6_ONLY),
    # The advisor's proposal decides the action; a learning loop unless it says otherwise.
    RuleName.LLM_PROPOSED: ("learning_loop", LearningLoopScope.STEPS_5_6),
}


class Trigger(Model):
    """A rule that fired: what it asks for and the figures that made it fire."""

    rule: RuleName
    action: Action
    scope: LearningLoopScope | None = None
    evidence: dict[str, Any]


class Evaluation(Model):
    """The rules' verdict on one draw: the winner (if any), and every rule that fired."""

    fired: Trigger | None
    candidates: tuple[RuleName, ...]
    """Every rule whose condition held, highest priority first."""
    blocked: dict[str, str]
    """Rule -> why it did not win (cooldown, open request)."""


def conditions(diag: Diagnostics, state: TrackerState, cfg: TriggerConfig) -> list[RuleName]:
    """The rules whose conditions hold, highest priority first."""
    found = []
    if (
        diag.window_decay is not None
        and diag.churn is not None
        and diag.window_decay > cfg.regime_decay
        and diag.churn > cfg.regime_churn
    ):
        found.append(RuleName.REGIME_SHIFT)
    if diag.window_full and diag.hit_rate is not None and diag.hit_rate <= cfg.hit_rate_collapse:
        found.append(RuleName.HIT_RATE_COLLAPSE)
    if diag.consecutive_misses >= cfg.max_consecutive_misses:
        found.append(RuleName.CONSECUTIVE_MISSES)
    if (
        diag.window_full
        and diag.overconfidence is not None
        and diag.overconfidence > cfg.confidence_drift
    ):
        found.append(RuleName.CONFIDENCE_DRIFT)
    # Once a model exists, stale predictions are the refresh track's job (refresh_verdict).
    if state.model_id is None and diag.draws_since_pool >= cfg.retrain_after_n_draws:
        found.append(RuleName.N_DRAWS)
    if 0 < cfg.llm_review_every_n_draws <= state.scored_since_review:
        found.append(RuleName.LLM_PROPOSED)
    return found


def cooldown_block(
    cooldown: Cooldown | None, rule: RuleName, draw_index: int, now: float, cfg: TriggerConfig
) -> str | None:
    """Why the cooldown blocks `rule` now, or None when it does not."""
    if cooldown is None or rule.priority > cooldown.priority:
        return None
    draws = draw_index - cooldown.draw_index
    seconds = now - cooldown.at
    if draws >= cfg.cooldown_draws and seconds >= cfg.cooldown_s:
        return None
    return (
        f"cooldown after {cooldown.rule}: {draws} of {cfg.cooldown_draws} draws, "
        f"{seconds:.0f} of {cfg.cooldown_s:g} s"
    )


def action_of(rule: RuleName, state: TrackerState) -> tuple[Action, LearningLoopScope | None]:
    """The action a rule asks for (n_draws before any pool was ever scored: the full pipeline)."""
    if rule is RuleName.N_DRAWS and not state.ever_scored:
        return "full_pipeline", None
    return DEFAULT_ACTIONS[rule]


def evaluate(
    diag: Diagnostics, state: TrackerState, cfg: TriggerConfig, *, now: float
) -> Evaluation:
    """Pick the trigger for this draw, if any (see the module docstring)."""
    found = conditions(diag, state, cfg)
    blocked: dict[str, str] = {}
    fired = None
    for rule in found:
        action, scope = action_of(rule, state)
        reason = cooldown_block(state.cooldown, rule, state.draw_index, now, cfg)
        if reason is None and action in state.open_actions:
            reason = f"a {action} request is still open"
        if reason is not None:
            blocked[rule.value] = reason
            continue
        fired = Trigger(
            rule=rule,
            action=action,
            scope=scope,
            evidence={"rule": rule.value, "priority": rule.priority, **diag.metrics()},
        )
        break
    return Evaluation(fired=fired, candidates=tuple(found), blocked=blocked)


def start_cooldown(state: TrackerState, trigger: Trigger, now: float) -> TrackerState:
    """The state after `trigger` fired: the cooldown starts, the review counter restarts."""
    cooldown = Cooldown(
        rule=trigger.rule.value,
        priority=trigger.rule.priority,
        draw_index=state.draw_index,
        at=now,
    )
    return state.model_copy(update={"cooldown": cooldown, "scored_since_review": 0})


REFRESH = "refresh"
"""The refresh track's name in Chapter 13's records (decisions, requests, audit)."""

REFRESH_ACTION: tuple[Action, LearningLoopScope] = ("learning_loop", LearningLoopScope.STEP_6_ONLY)
"""A refresh predicts again from the current model: step 6 only."""

STEP_6_ACTIONS: frozenset[Action] = frozenset({"full_pipeline", "learning_loop"})
"""Actions whose requests end with step 6, so their completion registers a new pool."""


class Refresh(Model):
    """The refresh track's verdict after one draw: is a new pool due, and why (not)."""

    due: bool
    reason: str
    evidence: dict[str, Any]


def refresh_verdict(state: TrackerState, cfg: TriggerConfig) -> Refresh:
    """Whether a prediction refresh is due now (see the module docstring).

    Not due: no model yet (the n_draws rule asks for the full pipeline), a pool already
    predicts the next draw, the newest pool is younger than `retrain_after_n_draws` draws, or a
    request that runs step 6 (a refresh or a rule's retrain) is open — it makes the next pool.
    Cooldowns play no part: a refresh is never blocked by one and never starts one.
    """
    n = cfg.retrain_after_n_draws
    age = state.pool_age
    evidence: dict[str, Any] = {
        "rule": RuleName.N_DRAWS.value,
        "track": REFRESH,
        "draw_index": state.draw_index,
        "pool_age": age,
        "retrain_after_n_draws": n,
        "model_id": state.model_id,
    }
    if state.model_id is None:
        reason = "no model yet: nothing to predict from (the n_draws rule asks for steps 1-6)"
        return Refresh(due=False, reason=reason, evidence=evidence)
    if state.next_pool:
        reason = "a pool for the next draw is registered"
        return Refresh(due=False, reason=reason, evidence=evidence)
    if age < n:
        reason = f"the newest pool is {age} of {n} draws old"
        return Refresh(due=False, reason=reason, evidence=evidence)
    if state.refresh_open:
        reason = "a refresh is still open: it makes the next pool"
        return Refresh(due=False, reason=reason, evidence=evidence)
    running = sorted(STEP_6_ACTIONS.intersection(state.open_actions))
    if running:
        reason = f"a {running[0]} request is still open: it makes the next pool"
        return Refresh(due=False, reason=reason, evidence=evidence)
    reason = f"no pool for the next draw; the newest is {age} draws old (refresh after {n})"
    return Refresh(due=True, reason=reason, evidence=evidence)
