"""TriggerActor (Chapter 13 decides): scores predictions, diagnoses, files retrains, promotes.

On each draw: score the pool registered before it (once per draw id), update the diagnostics,
evaluate the trigger rules; for a fired trigger ask the BundleActor and the LLMActor for a
proposal, run the acceptance rules, then file the request, record the rejection, or leave it
waiting for a person (`approve ID` / `reject ID`). Then the refresh track: when no pool
predicts the next draw and none is on its way, file a step-6 learning loop (routine, no
proposal, no cooldown). Selfplay candidates go through the gate and
a shadow evaluation on the next real draws before promotion. The logic lives in the pure
modules beside this shell (scoring, tracker, diagnostics, rules, acceptance, promotion, filing).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from pydantic import ValidationError

from actors.runtime import Actor, handles
from actors.services import BUNDLE, LLM, WATCHER
from actors.trigger import ledger
from actors.trigger.acceptance import Acceptance, Outcome, judge_proposal, routine_refresh
from actors.trigger.diagnostics import Diagnostics, diagnose
from actors.trigger.filing import FORCED_ACTIONS, build_request, resolve_action
from actors.trigger.promotion import ShadowTally, gate, policy_pool, shadow_verdict
from actors.trigger.rules import (
    REFRESH,
    REFRESH_ACTION,
    Evaluation,
    RuleName,
    Trigger,
    evaluate,
    refresh_verdict,
    start_cooldown,
)
from actors.trigger.scoring import DrawScore, score_draw
from actors.trigger.tracker import (
    TrackerState,
    observe,
    pool_registered,
    refresh_filed,
    register_model,
    request_filed,
    request_finished,
    survivor_identity,
)
from actors.watcher import spool
from messages.artifacts import (
    PolicyCandidate,
    PredictionPool,
    RankingModel,
    ScoredSurvivorSet,
    Survivor,
    SurvivorSet,
)
from messages.base import new_id
from messages.bundle import BuildBundle, BundleBuilt
from messages.chapter13 import CandidateEmitted, PoolRegistered, RegisterPool
from messages.decisions import Chapter13Proposal
from messages.enums import LearningLoopScope
from messages.errors import ActorError
from messages.ingestion import DrawIngested
from messages.llm import Decide, Decision
from messages.requests import RequestFiled, RequestFinished, request_steps

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from actors.services import Services
    from actors.trigger.filing import Request
    from actors.trigger.tracker import Action

POOL_FILE = "prediction_pool.json"
MODEL_FILE = "model.json"
CANDIDATE_FILE = "policy_candidate.json"
SCORED_FILE = "survivors_with_scores.json"
SURVIVORS_FILE = "survivors.json"
FLAGS = ("regime_shift", "hit_rate_collapse", "confidence_drift")
"""Rules the heuristic advisor reads as flags (consecutive_misses it reads as a count)."""


class TriggerActor(Actor):
    """Chapter 13: the authority that decides when to retrain and what to promote."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.config = services.settings.trigger
        self.policies = services.settings.policies
        self.state = TrackerState()
        self._clock_base = 0.0

    async def on_start(self) -> None:
        """Load Chapter 13's memory from the store; anchor the clock to wall time."""
        # Seconds since the epoch, advanced by the event loop's clock (MockClock in tests).
        self._clock_base = time.time() - anyio.current_time()
        self.state = await self.services.store.run(ledger.load_state)

    def now(self) -> float:
        """Seconds on Chapter 13's clock (wall time, moved by the event loop's clock)."""
        return self._clock_base + anyio.current_time()

    # -- draws --------------------------------------------------------------------------------

    @handles(DrawIngested)
    async def on_draw_ingested(self, msg: DrawIngested) -> None:
        """Score, diagnose, evaluate; act on a fired trigger; feed the shadow evaluations."""
        now = self.now()
        recorded = await self.services.store.transaction(
            lambda conn: self._record_draw(conn, msg, now)
        )
        if recorded is None:
            self.log.info("trigger.duplicate_draw", draw_id=msg.draw.draw_id)
            return
        score, diag, evaluation = recorded
        self.log.info(
            "trigger.draw_scored",
            draw_id=msg.draw.draw_id,
            status=score.status,
            hit=score.hit,
            rank=score.rank,
        )
        if score.status in {"backfill", "synthetic"}:
            return
        await self._shadow(msg)
        forced = self.config.request_every_n_draws
        if forced is not None:
            if self.state.draw_index % forced == 0:
                await self._file_forced(msg)
            return
        if evaluation is None or diag is None:
            return
        if evaluation.blocked:
            self.log.info("trigger.blocked", draw_id=msg.draw.draw_id, blocked=evaluation.blocked)
        if evaluation.fired is not None:
            await self._decide(msg, evaluation.fired, evaluation, diag)
        # After the rule's decision: a retrain it filed runs step 6 and so makes the next pool.
        await self._refresh(msg, msg.draw.draw_id)

    def _record_draw(
        self, conn: sqlite3.Connection, msg: DrawIngested, now: float
    ) -> tuple[DrawScore, Diagnostics | None, Evaluation | None] | None:
        """One transaction: score, state, diagnostics, rules (None for a duplicate)."""
        draw = msg.draw
        if ledger.has_score(conn, msg.stream, draw.draw_id):
            return None
        live = msg.stream == "real" and not msg.is_backfill
        pool = ledger.pool_after(conn, self.state.last_draw_id) if live else None
        score = score_draw(
            draw.draw_id, draw.value, pool, stream=msg.stream, is_backfill=msg.is_backfill
        )
        state = observe(self.state, score, self.config.window)
        ledger.insert_score(conn, msg.stream, score)
        if state is None or not live:
            if state is not None:
                ledger.save_state(conn, state)
                self.state = state
            return score, None, None
        diag = diagnose(state, draw.draw_id, self.config)
        ledger.insert_diagnostics(conn, diag)
        state = state.model_copy(update={"open_actions": ledger.open_actions(conn)})
        evaluation = None
        if self.config.request_every_n_draws is None:
            evaluation = evaluate(diag, state, self.config, now=now)
            if evaluation.fired is not None:
                state = start_cooldown(state, evaluation.fired, now)
        ledger.save_state(conn, state)
        self.state = state
        return score, diag, evaluation

    # -- deciding -----------------------------------------------------------------------------

    async def _decide(
        self, msg: DrawIngested, trigger: Trigger, evaluation: Evaluation, diag: Diagnostics
    ) -> None:
        decision_id = new_id()
        self.log.info(
            "trigger.fired",
            rule=trigger.rule.value,
            action=trigger.action,
            candidates=[r.value for r in evaluation.candidates],
            decision_id=decision_id,
        )
        proposal, source, problem = await self._propose(msg, trigger, evaluation, diag, decision_id)

        def context(conn: sqlite3.Connection) -> tuple[dict[str, float], list[Any], int]:
            _pid, params = ledger.active_policy(conn)
            current = {k: float(v) for k, v in params.model_dump().items() if k != "schema_version"}
            return current, ledger.applied_runs(conn), ledger.prior_rejects(conn, trigger.rule)

        current, runs, rejects = await self.services.store.run(context)
        if proposal is None:
            acceptance = Acceptance(
                outcome=Outcome.ESCALATE, reasons=(f"no usable proposal: {problem}",)
            )
        else:
            acceptance = judge_proposal(
                proposal,
                regime_shift=trigger.rule is RuleName.REGIME_SHIFT,
                current=current,
                runs=runs,
                draw_index=self.state.draw_index,
                prior_rejects=rejects,
                cfg=self.policies,
            )
        action, scope = resolve_action(trigger.action, trigger.scope, proposal)
        evidence = {
            **trigger.evidence,
            "draw_id": msg.draw.draw_id,
            "decision_id": decision_id,
            "proposal": None if proposal is None else proposal.model_dump(mode="json"),
            "proposal_source": source,
            "acceptance": list(acceptance.reasons),
        }
        request = build_request(
            request_id=decision_id,
            action=action,
            scope=scope,
            correlation_id=msg.correlation_id,
            reason=f"Chapter 13: {trigger.rule.value} ({acceptance.outcome.value})",
            evidence=evidence,
        )
        await self._settle(msg, trigger, acceptance, request, action, proposal, source)

    async def _propose(
        self,
        msg: DrawIngested,
        trigger: Trigger,
        evaluation: Evaluation,
        diag: Diagnostics,
        decision_id: str,
    ) -> tuple[Chapter13Proposal | None, str, str]:
        """Ask Bundle (13) and LLM (chapter_13) for a proposal: (proposal, source, problem)."""
        metrics: dict[str, str | int | float | bool | None] = {
            **diag.metrics(),
            **{flag: float(flag in evaluation.candidates) for flag in FLAGS},
            # n_draws is routine (the pool is old), not a fault: the advisor's flag for it.
            "scheduled_retrain": float(trigger.rule.value == "n_draws"),
            "draws_scored": diag.scored,
            "match_rate": diag.hit_rate,
            "baseline_match_rate": diag.chance_rate,
            "confidence": diag.mean_confidence,
            "calibration_error": diag.ece,
        }
        results = {
            "trigger": trigger.rule.value,
            "action": trigger.action,
            "scope": None if trigger.scope is None else trigger.scope.value,
            "rules_fired": [r.value for r in evaluation.candidates],
            "diagnostics": diag.model_dump(mode="json"),
        }
        timeout = self.config.proposal_timeout_s
        try:
            built = await self.system.ref(BUNDLE).ask(
                BuildBundle.caused_by(
                    msg,
                    sender=self.name,
                    step_id=13,
                    results=results,
                    run_id=decision_id,
                    is_chapter_13=True,
                ),
                timeout=timeout,
                expect=BundleBuilt,
            )
            decision = await self.system.ref(LLM).ask(
                Decide.caused_by(
                    msg,
                    sender=self.name,
                    prompt=built.prompt,
                    grammar_name=built.grammar_name,
                    metrics=metrics,
                    thresholds=built.thresholds,
                ),
                timeout=timeout,
                expect=Decision,
            )
        except ActorError as exc:
            # Fail closed: without a proposal a person decides (never "proceed" by default).
            self.log.warning("trigger.no_proposal", error=str(exc))
            return None, "none", f"{type(exc).__name__}: {exc}"
        if not isinstance(decision.answer, Chapter13Proposal):
            kind = type(decision.answer).__name__
            return None, decision.source, f"answer is a {kind}, not a Chapter13Proposal"
        return decision.answer, decision.source, ""

    async def _settle(
        self,
        msg: DrawIngested,
        trigger: Trigger,
        acceptance: Acceptance,
        request: Request,
        action: Action,
        proposal: Chapter13Proposal | None,
        source: str,
    ) -> None:
        """Record the decision; file (ACCEPT), keep for a person (ESCALATE), or drop (REJECT)."""
        outcome = acceptance.outcome
        status = {
            Outcome.ACCEPT: "filed",
            Outcome.REJECT: "rejected",
            Outcome.ESCALATE: "pending_approval",
        }[outcome]
        if outcome is Outcome.ACCEPT:
            await anyio.to_thread.run_sync(spool.submit, self.services.paths, request)

        def record(conn: sqlite3.Connection) -> None:
            ledger.insert_decision(
                conn,
                decision_id=request.request_id,
                draw_id=msg.draw.draw_id,
                draw_index=self.state.draw_index,
                correlation_id=msg.correlation_id,
                rule=trigger.rule.value,
                action=action,
                evidence=trigger.evidence,
                proposal=None if proposal is None else proposal.model_dump(mode="json"),
                proposal_source=source,
                outcome=outcome.value,
                reasons=list(acceptance.reasons),
                changes=[c.model_dump(mode="json") for c in acceptance.changes],
                status=status,
                request_id=request.request_id,
                request=request.model_dump(mode="json"),
            )
            if outcome is Outcome.ACCEPT:
                ledger.insert_request(
                    conn, request.request_id, action, trigger.rule.value, request.request_id
                )
                self.state = request_filed(self.state, action)
                ledger.save_state(conn, self.state)

        await self.services.store.transaction(record)
        await self.services.audit(
            actor=self.name,
            entity="decision",
            entity_id=request.request_id,
            event=outcome.value.lower(),
            correlation_id=msg.correlation_id,
            to_state=status,
            rule=trigger.rule.value,
            action=action,
            reasons=list(acceptance.reasons),
            proposal_source=source,
        )
        if outcome is Outcome.ACCEPT:
            await self._announce(msg, request, trigger.rule.value)
        elif outcome is Outcome.ESCALATE:
            self.log.warning(
                "trigger.escalated",
                decision_id=request.request_id,
                rule=trigger.rule.value,
                reasons=list(acceptance.reasons),
                approve=f"python -m actors.system approve {request.request_id}",
            )
        else:
            self.log.info(
                "trigger.rejected", rule=trigger.rule.value, reasons=list(acceptance.reasons)
            )

    async def _announce(self, msg: DrawIngested, request: Request, rule: str) -> None:
        """Audit a filed request and nudge the watcher."""
        self.log.info(
            "trigger.request_filed",
            request_id=request.request_id,
            request_type=request.request_type,
            rule=rule,
        )
        await self.services.audit(
            actor=self.name,
            entity="request",
            entity_id=request.request_id,
            event="filed",
            correlation_id=request.correlation_id,
            to_state="new",
            request_type=request.request_type,
            rule=rule,
        )
        await self.system.ref(WATCHER).tell(
            RequestFiled.caused_by(msg, sender=self.name, request_id=request.request_id)
        )

    async def _file_forced(self, msg: DrawIngested) -> None:
        """Forced mode: a fixed cadence, no rules, no proposal (plumbing tests, operators)."""
        cfg = self.config
        action = FORCED_ACTIONS[cfg.request_type]
        if action in await self.services.store.run(ledger.open_actions):
            self.log.info("trigger.forced_skipped", reason=f"a {action} request is still open")
            return
        request = build_request(
            request_id=new_id(),
            action=action,
            scope=LearningLoopScope(cfg.learning_scope),
            correlation_id=msg.correlation_id,
            reason=f"forced: {cfg.request_every_n_draws} real draws since the last request",
            # Labelled n_draws (a cadence in draws), so the watcher's pre-validation reads it
            # as the scheduled retrain it is.
            evidence={
                "rule": RuleName.N_DRAWS.value,
                "mode": "forced",
                "draw_id": msg.draw.draw_id,
                "history_len": msg.history_len,
                "fingerprint": msg.fingerprint,
            },
        )
        await anyio.to_thread.run_sync(spool.submit, self.services.paths, request)

        def record(conn: sqlite3.Connection) -> None:
            ledger.insert_request(conn, request.request_id, action, "forced", None)
            self.state = request_filed(self.state, action)
            ledger.save_state(conn, self.state)

        await self.services.store.transaction(record)
        await self._announce(msg, request, "forced")

    # -- the refresh track --------------------------------------------------------------------

    async def _refresh(self, cause: Any, draw_id: str | None) -> None:
        """File a prediction refresh when one is due (rules.refresh_verdict); off in forced mode.

        No proposal and no cooldown: it changes nothing, it only keeps a pool registered for the
        next draw. It is recorded and audited like a decision (rule `refresh`, ACCEPT).
        """
        if self.config.request_every_n_draws is not None:
            return

        def plan(conn: sqlite3.Connection) -> Any:
            self.state = self.state.model_copy(
                update={
                    "open_actions": ledger.open_actions(conn),
                    "refresh_open": ledger.refresh_open(conn),
                }
            )
            return refresh_verdict(self.state, self.config)

        verdict = await self.services.store.run(plan)
        if not verdict.due:
            self.log.debug("trigger.refresh_not_due", draw_id=draw_id, reason=verdict.reason)
            return
        decision_id = new_id()
        acceptance = routine_refresh(verdict.reason)
        action, scope = REFRESH_ACTION
        evidence = {
            **verdict.evidence,
            "draw_id": draw_id,
            "decision_id": decision_id,
            "proposal": None,
            "proposal_source": "none",
            "acceptance": list(acceptance.reasons),
        }
        request = build_request(
            request_id=decision_id,
            action=action,
            scope=scope,
            correlation_id=cause.correlation_id,
            reason=f"Chapter 13: prediction refresh ({verdict.reason})",
            evidence=evidence,
        )
        await anyio.to_thread.run_sync(spool.submit, self.services.paths, request)

        def record(conn: sqlite3.Connection) -> None:
            ledger.insert_decision(
                conn,
                decision_id=decision_id,
                draw_id=draw_id,
                draw_index=self.state.draw_index,
                correlation_id=cause.correlation_id,
                rule=REFRESH,
                action=action,
                evidence=verdict.evidence,
                proposal=None,
                proposal_source="none",
                outcome=acceptance.outcome.value,
                reasons=list(acceptance.reasons),
                changes=[],
                status="filed",
                request_id=decision_id,
                request=request.model_dump(mode="json"),
            )
            ledger.insert_request(conn, decision_id, action, REFRESH, decision_id)
            self.state = refresh_filed(self.state)
            ledger.save_state(conn, self.state)

        await self.services.store.transaction(record)
        await self.services.audit(
            actor=self.name,
            entity="decision",
            entity_id=decision_id,
            event="accept",
            correlation_id=cause.correlation_id,
            to_state="filed",
            rule=REFRESH,
            action=action,
            reasons=list(acceptance.reasons),
            proposal_source="none",
            pool_age=verdict.evidence["pool_age"],
        )
        await self._announce(cause, request, REFRESH)

    # -- requests and pools -------------------------------------------------------------------

    @handles(RequestFinished)
    async def on_request_finished(self, msg: RequestFinished) -> None:
        """A request ended: close it; after a completed step 6, register its pool and reset
        the cooldown — unless it was a prediction refresh, which is maintenance: it neither
        holds nor ends a cooldown. A refresh whose pool came too late (a draw arrived while it
        ran) is followed at once by the next one, if due. (A selfplay candidate arrives as
        `CandidateEmitted` from the watcher, which checks that it is this run's own.)"""
        completed = msg.status == "completed"
        units = await anyio.to_thread.run_sync(self._units_of, msg.request_id, msg.request_type)

        def close(conn: sqlite3.Connection) -> bool:
            refresh = ledger.request_rule(conn, msg.request_id) == REFRESH
            action = ledger.finish_request(conn, msg.request_id, msg.status)
            state = self.state
            if refresh:
                state = state.model_copy(update={"refresh_open": ledger.refresh_open(conn)})
            else:
                if action is not None:
                    state = request_finished(state, action, completed=completed)
                if completed and "6" in units:
                    state = state.model_copy(update={"cooldown": None})
            self.state = state
            ledger.save_state(conn, state)
            return refresh

        refresh = await self.services.store.transaction(close)
        self.log.info(
            "trigger.request_finished",
            request_id=msg.request_id,
            status=msg.status,
            units=units,
            refresh=refresh,
        )
        if not completed:
            return
        if "6" in units:
            pool = await anyio.to_thread.run_sync(self._read_artifact, POOL_FILE, PredictionPool)
            if pool is None:
                self.log.warning("trigger.no_pool_artifact", request_id=msg.request_id)
            else:
                registered = await self._register(pool, msg.request_id)
                if registered.stale:
                    # Catch up: never after a failure, so a broken step 6 cannot loop.
                    await self._refresh(msg, self.state.last_draw_id)

    def _units_of(self, request_id: str, request_type: str) -> tuple[str, ...]:
        """The units the request ran, from its archived spool file (else from its type)."""
        where = spool.find(self.services.paths, request_id)
        if where is not None:
            try:
                return request_steps(spool.parse(where[1]))
            except spool.SpoolError:
                pass
        return {
            "learning_loop": ("6",),
            "pipeline_rerun": ("1", "2", "3", "4", "5", "6"),
            "selfplay_retrain": ("selfplay",),
        }.get(request_type, ())

    def _read_artifact(self, name: str, model: Any) -> Any:
        """An artifact validated with its model; None when missing or invalid (logged)."""
        path: Path = self.services.paths.artifacts / name
        try:
            return model.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError) as exc:
            self.log.warning("trigger.bad_artifact", path=str(path), error=str(exc)[:500])
            return None

    @handles(RegisterPool)
    async def on_register_pool(self, msg: RegisterPool) -> PoolRegistered:
        """Register a pool handed over directly (tests, external tools)."""
        return await self._register(msg.pool, msg.request_id, cause=msg)

    async def _register(
        self, pool: PredictionPool, request_id: str | None, cause: Any = None
    ) -> PoolRegistered:
        model = await anyio.to_thread.run_sync(self._read_artifact, MODEL_FILE, RankingModel)

        def register(conn: sqlite3.Connection) -> bool:
            stale = pool.last_draw_id != self.state.last_draw_id
            ledger.insert_pool(conn, pool, request_id=request_id, stale=stale)
            made_at = ledger.draw_index_of(conn, pool.last_draw_id) if stale else None
            self.state = pool_registered(self.state, pool.last_draw_id, made_at)
            ledger.save_state(conn, self.state)
            if model is not None and pool.model_id is not None and model.model_id == pool.model_id:
                top = tuple(
                    survivor_identity(r.survivor.family, r.survivor.skip, r.survivor.seed,
                                      r.survivor.anchor)
                    for r in model.ranked[: self.config.churn_top_n]
                )  # fmt: skip
                self.state = register_model(self.state, model.model_id, top)
                ledger.save_state(conn, self.state)
            return stale

        stale = await self.services.store.transaction(register)
        self.log.info(
            "trigger.pool_registered",
            pool_id=pool.pool_id,
            after_draw_id=pool.last_draw_id,
            stale=stale,
            request_id=request_id,
        )
        fields = {
            "sender": self.name,
            "pool_id": pool.pool_id,
            "after_draw_id": pool.last_draw_id,
            "stale": stale,
        }
        return PoolRegistered.caused_by(cause, **fields) if cause else PoolRegistered(**fields)

    # -- promotion ----------------------------------------------------------------------------

    @handles(CandidateEmitted)
    async def on_candidate_emitted(self, msg: CandidateEmitted) -> None:
        """The gate, then shadow evaluation on the next real draws."""
        await self._take_candidate(msg.candidate, msg, msg.request_id)

    async def _take_candidate(
        self, candidate: PolicyCandidate, cause: Any, request_id: str
    ) -> None:
        verdict = gate(candidate, self.policies)

        def record(conn: sqlite3.Connection) -> str | None:
            if ledger.policy_status(conn, candidate.policy_id) is not None:
                return None
            active, _params = ledger.active_policy(conn)
            if active == candidate.policy_id:
                return None
            tally = ShadowTally(policy_id=candidate.policy_id, active_policy_id=active)
            status = "shadow" if verdict.passed else "rejected"
            ledger.upsert_candidate(conn, candidate, status, "; ".join(verdict.reasons), tally)
            return status

        status = await self.services.store.transaction(record)
        if status is None:
            self.log.info("trigger.candidate_known", policy_id=candidate.policy_id)
            return
        await self.services.audit(
            actor=self.name,
            entity="promotion",
            entity_id=candidate.policy_id,
            event="shadow_started" if verdict.passed else "gate_failed",
            correlation_id=cause.correlation_id,
            to_state=status,
            request_id=request_id,
            fitness=candidate.fitness,
            reasons=list(verdict.reasons),
        )
        self.log.info(
            "trigger.candidate", policy_id=candidate.policy_id, status=status,
            reasons=list(verdict.reasons),
        )  # fmt: skip

    async def _shadow(self, msg: DrawIngested) -> None:
        """Score every candidate in shadow beside the active policy on this real draw."""
        shadows = await self.services.store.run(ledger.shadow_policies)
        if not shadows:
            return
        draw = msg.draw

        survivors = await anyio.to_thread.run_sync(self._survivors)
        if survivors is None:
            self.log.warning("trigger.shadow_without_survivors", draw_id=draw.draw_id)
            return
        found, mod = survivors

        def history(conn: sqlite3.Connection) -> tuple[list[int], Any]:
            return ledger.real_values_before(conn, draw.draw_id), ledger.active_policy(conn)[1]

        values, active_params = await self.services.store.run(history)
        active_pool = await anyio.to_thread.run_sync(policy_pool, found, mod, active_params, values)
        for candidate, tally in shadows:
            pool = await anyio.to_thread.run_sync(
                policy_pool, found, mod, candidate.parameters, values
            )
            new = tally.add(
                draw.draw_id,
                candidate_hit=draw.value in pool,
                active_hit=draw.value in active_pool,
            )
            verdict = shadow_verdict(new, self.policies)

            def save(conn: sqlite3.Connection, new: ShadowTally = new, v: Any = verdict) -> None:
                ledger.set_tally(conn, new)
                if v is not None:
                    ledger.settle_candidate(conn, new.policy_id, promote=v.promote, reason=v.reason)

            await self.services.store.transaction(save)
            if verdict is None:
                continue
            await self.services.audit(
                actor=self.name,
                entity="promotion",
                entity_id=candidate.policy_id,
                event="promoted" if verdict.promote else "rejected",
                correlation_id=msg.correlation_id,
                from_state="shadow",
                to_state="active" if verdict.promote else "rejected",
                **verdict.model_dump(mode="json", exclude={"schema_version"}),
            )
            self.log.info(
                "trigger.promotion", policy_id=candidate.policy_id, promote=verdict.promote,
                reason=verdict.reason,
            )  # fmt: skip

    def _survivors(self) -> tuple[tuple[Survivor, ...], int] | None:
        """The latest survivors (step 3's when present, else step 1's) and their mod."""
        scored = self._read_artifact(SCORED_FILE, ScoredSurvivorSet)
        if scored is not None:
            return tuple(s.survivor for s in scored.scored), scored.mod
        found = self._read_artifact(SURVIVORS_FILE, SurvivorSet)
        if found is not None:
            return found.survivors, found.mod
        return None
