"""Filing: one procedure for every request Chapter 13 files (pure plan, one blocking commit).

Every path that files — a rule's decision, the refresh track, forced mode, a person's
`approve` — goes through the same steps: `plan` (pure) builds the decision record and the
request; `commit` (blocking, in the caller's transaction) writes the spool file first (a
request in the spool that the ledger does not know is harmless; the reverse would block the
rules forever) and then the decision and request rows; `audit_records` are the records the
caller appends once the transaction committed. The actor runs `commit` through the store's
worker thread, the CLI on its own connection.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.trigger import decision_store
from actors.trigger.acceptance import Acceptance, Outcome
from actors.watcher import spool
from messages.base import Model
from messages.decisions import Chapter13Action
from messages.enums import LearningLoopScope
from messages.requests import LearningLoop, PipelineRerun, RequestType, SelfplayRetrain

if TYPE_CHECKING:
    import sqlite3

    from actors.paths import StatePaths
    from messages.decisions import Chapter13Proposal

Request = SelfplayRetrain | LearningLoop | PipelineRerun

STATUS: dict[Outcome, str] = {
    Outcome.ACCEPT: "filed",
    Outcome.REJECT: "rejected",
    Outcome.ESCALATE: "pending_approval",
}
"""The decision's status for each outcome: filed, dropped with reasons, or waiting for a person."""


def resolve_action(
    action: RequestType, scope: LearningLoopScope | None, proposal: Chapter13Proposal | None
) -> tuple[RequestType, LearningLoopScope | None]:
    """The rule's action, refined by the proposal: FULL_RESET widens to the full pipeline, and
    a learning loop takes the proposal's scope when it names one."""
    if proposal is None:
        return action, scope
    if proposal.recommended_action is Chapter13Action.FULL_RESET:
        return "pipeline_rerun", None
    if action == "learning_loop" and proposal.retrain_scope is not None:
        return action, proposal.retrain_scope
    return action, scope


def build_request(
    *,
    request_id: str,
    action: RequestType,
    scope: LearningLoopScope | None,
    correlation_id: str,
    reason: str,
    evidence: dict[str, Any],
    history_from: str | None = None,
) -> Request:
    """The request for `action` (a learning loop without a scope runs steps 3, 5, 6)."""
    common: dict[str, Any] = {
        "request_id": request_id,
        "correlation_id": correlation_id,
        "source": "trigger",
        "reason": reason[:2000],
        "evidence": evidence,
        "history_from": history_from,
    }
    if action == "pipeline_rerun":
        return PipelineRerun.model_validate(common)
    if action == "selfplay_retrain":
        return SelfplayRetrain.model_validate(common)
    return LearningLoop.model_validate({**common, "scope": scope or LearningLoopScope.STEPS_3_5_6})


class Filing(Model):
    """One decision and (unless it was rejected) its request, ready to commit."""

    decision_id: str
    draw_id: str | None
    draw_index: int
    correlation_id: str
    rule: str
    action: RequestType
    acceptance: Acceptance
    evidence: dict[str, Any]
    proposal: dict[str, Any] | None = None
    proposal_source: str = "none"
    request: dict[str, Any]
    """The request as JSON (validated again by `request_model`)."""
    supersedes: str | None = None

    @property
    def outcome(self) -> Outcome:
        """ACCEPT, REJECT or ESCALATE."""
        return self.acceptance.outcome

    @property
    def status(self) -> str:
        """The decision's status after the commit."""
        return STATUS[self.outcome]

    def request_model(self) -> Request:
        """The request, as the spool will hold it."""
        from messages.requests import REQUEST_ADAPTER

        return REQUEST_ADAPTER.validate_python(self.request)


def plan(
    *,
    decision_id: str,
    draw_id: str | None,
    draw_index: int,
    correlation_id: str,
    rule: str,
    action: RequestType,
    scope: LearningLoopScope | None,
    acceptance: Acceptance,
    evidence: dict[str, Any],
    reason: str,
    proposal: Chapter13Proposal | None = None,
    proposal_source: str = "none",
    history_from: str | None = None,
    supersedes: str | None = None,
) -> Filing:
    """The decision and request for one fired rule (or refresh, or forced request)."""
    proposal_json = None if proposal is None else proposal.model_dump(mode="json")
    request_evidence = {
        **evidence,
        "draw_id": draw_id,
        "decision_id": decision_id,
        "proposal": proposal_json,
        "proposal_source": proposal_source,
        "acceptance": list(acceptance.reasons),
    }
    request = build_request(
        request_id=decision_id,
        action=action,
        scope=scope,
        correlation_id=correlation_id,
        reason=reason,
        evidence=request_evidence,
        history_from=history_from,
    )
    return Filing(
        decision_id=decision_id,
        draw_id=draw_id,
        draw_index=draw_index,
        correlation_id=correlation_id,
        rule=rule,
        action=action,
        acceptance=acceptance,
        evidence=evidence,
        proposal=proposal_json,
        proposal_source=proposal_source,
        request=request.model_dump(mode="json"),
        supersedes=supersedes,
    )


def submit(paths: StatePaths, request: Request) -> None:
    """Write the request into the spool's `new/` (tmp, fsync, rename: the watcher's protocol)."""
    spool.submit(paths, request)


def commit(conn: sqlite3.Connection, paths: StatePaths, filing: Filing) -> None:
    """Spool (ACCEPT only), then the decision row and the open request (caller's transaction)."""
    if filing.outcome is Outcome.ACCEPT:
        submit(paths, filing.request_model())
    record_decision(conn, filing)
    if filing.outcome is Outcome.ACCEPT:
        record_request(conn, filing, filing.decision_id)


def approve(
    conn: sqlite3.Connection, paths: StatePaths, decision: dict[str, Any], *, by: str
) -> Request:
    """A person's approval of a pending decision: the same order as `commit` — the request into
    the spool first (with a fresh `created_at`: the watcher refuses requests older than 24 h,
    and a person may approve days later), then, in one transaction, the decision `approved` and
    its request open (with its regime), as Chapter 13 records its own filings."""
    from actors.store import in_transaction
    from messages.base import utcnow
    from messages.requests import REQUEST_ADAPTER

    request = REQUEST_ADAPTER.validate_python({**decision["request"], "created_at": utcnow()})
    submit(paths, request)

    def record(c: sqlite3.Connection) -> None:
        decision_store.set_decision_status(c, str(decision["decision_id"]), "approved", by=by)
        decision_store.insert_request(
            c,
            request.request_id,
            str(decision["action"]),
            str(decision["rule"]),
            str(decision["decision_id"]),
            history_from=request.history_from,
        )

    in_transaction(conn, record)
    return request


def record_decision(conn: sqlite3.Connection, filing: Filing) -> None:
    """The decision row (every outcome, with its reasons)."""
    decision_store.insert_decision(
        conn,
        decision_id=filing.decision_id,
        draw_id=filing.draw_id,
        draw_index=filing.draw_index,
        correlation_id=filing.correlation_id,
        rule=filing.rule,
        action=filing.action,
        evidence=filing.evidence,
        proposal=filing.proposal,
        proposal_source=filing.proposal_source,
        outcome=filing.outcome.value,
        reasons=list(filing.acceptance.reasons),
        changes=[c.model_dump(mode="json") for c in filing.acceptance.changes],
        status=filing.status,
        request_id=filing.decision_id,
        request=filing.request,
    )


def record_request(conn: sqlite3.Connection, filing: Filing, request_id: str) -> None:
    """The open request (and the parked one it supersedes, finished)."""
    decision_store.insert_request(
        conn,
        request_id,
        filing.action,
        filing.rule,
        filing.decision_id,
        history_from=filing.request.get("history_from"),
    )
    if filing.supersedes is not None:
        decision_store.supersede(conn, filing.supersedes, request_id)


def audit_records(filing: Filing) -> list[dict[str, Any]]:
    """The audit records of a committed filing (fields of `Services.audit` / `AuditRecord`)."""
    records: list[dict[str, Any]] = [
        {
            "entity": "decision",
            "entity_id": filing.decision_id,
            "event": filing.outcome.value.lower(),
            "correlation_id": filing.correlation_id,
            "to_state": filing.status,
            "rule": filing.rule,
            "action": filing.action,
            "reasons": list(filing.acceptance.reasons),
            "proposal_source": filing.proposal_source,
            "draw_id": filing.draw_id,
        }
    ]
    if filing.outcome is Outcome.ACCEPT:
        records.append(
            {
                "entity": "request",
                "entity_id": filing.decision_id,
                "event": "filed",
                "correlation_id": filing.correlation_id,
                "to_state": "new",
                "request_type": filing.action,
                "rule": filing.rule,
                "history_from": filing.request.get("history_from"),
                "supersedes": filing.supersedes,
            }
        )
    return records


FORCED_ACTIONS: dict[str, RequestType] = {
    "pipeline_rerun": "pipeline_rerun",
    "learning_loop": "learning_loop",
    "selfplay_retrain": "selfplay_retrain",
}
"""Forced mode's `request_type` -> the action it files."""
