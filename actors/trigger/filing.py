"""Filing: a decided trigger becomes a WatcherRequest (pure; the spool write is the shell's).

The request carries a unique id (the decision's id, so `approve ID` and the spool file agree),
the correlation id of the draw that fired it, the trigger's evidence and the proposal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from messages.decisions import Chapter13Action
from messages.enums import LearningLoopScope
from messages.requests import LearningLoop, PipelineRerun, SelfplayRetrain

if TYPE_CHECKING:
    from actors.trigger.tracker import Action
    from messages.decisions import Chapter13Proposal

Request = SelfplayRetrain | LearningLoop | PipelineRerun


def resolve_action(
    action: Action, scope: LearningLoopScope | None, proposal: Chapter13Proposal | None
) -> tuple[Action, LearningLoopScope | None]:
    """The rule's action, refined by the proposal: FULL_RESET widens to the full pipeline, and
    a learning loop takes the proposal's scope when it names one."""
    if proposal is None:
        return action, scope
    if proposal.recommended_action is Chapter13Action.FULL_RESET:
        return "full_pipeline", None
    if action == "learning_loop" and proposal.retrain_scope is not None:
        return action, proposal.retrain_scope
    return action, scope


def build_request(
    *,
    request_id: str,
    action: Action,
    scope: LearningLoopScope | None,
    correlation_id: str,
    reason: str,
    evidence: dict[str, Any],
) -> Request:
    """The request for `action` (a learning loop without a scope runs steps 3, 5, 6)."""
    common: dict[str, Any] = {
        "request_id": request_id,
        "correlation_id": correlation_id,
        "source": "trigger",
        "reason": reason[:2000],
        "evidence": evidence,
    }
    if action == "full_pipeline":
        return PipelineRerun.model_validate(common)
    if action == "selfplay_retrain":
        return SelfplayRetrain.model_validate(common)
    return LearningLoop.model_validate({**common, "scope": scope or LearningLoopScope.STEPS_3_5_6})


FORCED_ACTIONS: dict[str, Action] = {
    "pipeline_rerun": "full_pipeline",
    "learning_loop": "learning_loop",
    "selfplay_retrain": "selfplay_retrain",
}
"""Forced mode's `request_type` -> the action it files."""
