"""TriggerActor (Chapter 13 decides): scores predictions, detects changes, files retrains, promotes.

On each draw: score the pool registered before it (once per draw id), fold the score into the
tracker (diagnostics and the change detector), read the ledger's context, evaluate the rules;
for a fired rule ask the BundleActor and the LLMActor for a proposal, run the acceptance rules,
then file the request, record the rejection, or leave it waiting for a person. Then the refresh
track: when no pool predicts the next draw and none is on its way, file a step-6 learning loop.
When a retrain ends, its model is judged against chance: no signal stops the GPU spending and
backs off. Every filing takes one path (filing.plan → filing.commit → audit → announce); the
state is assigned only after the transaction that computed it committed.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from pydantic import ValidationError

from actors.runtime import Actor, handles
from actors.services import BUNDLE, LLM, WATCHER
from actors.trigger import decision_store, filing, ledger, policy_store
from actors.trigger.acceptance import Acceptance, Outcome, judge_proposal, routine_refresh
from actors.trigger.context import NO_SIGNAL, REFRESH, ModelRecord, NoSignal
from actors.trigger.detector import ModelPrior, threshold
from actors.trigger.diagnostics import Diagnostics, diagnose
from actors.trigger.promotion import ShadowTally, gate, policy_pool, shadow_verdict
from actors.trigger.rules import (
    REFRESH_ACTION,
    Evaluation,
    Identification,
    RuleName,
    Trigger,
    advisor_metrics,
    evaluate,
    refresh_verdict,
)
from actors.trigger.scoring import DrawScore, score_draw
from actors.trigger.stats import binomial_sf, jaccard
from actors.trigger.tracker import TrackerState, observe, review_started, survivor_identity
from messages.artifacts import (
    ModelMetadata,
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
from messages.requests import RequestFiled, RequestFinished, SupersedeRequest
from pipeline.params import SieveParams
from pipeline.seed_search import draws_to_identify, search_space

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from actors.services import Services
    from actors.trigger.context import Context

POOL_FILE = "prediction_pool.json"
MODEL_FILE = "model.json"
MODEL_META_FILE = "model.meta.json"
CANDIDATE_FILE = "policy_candidate.json"
SCORED_FILE = "survivors_with_scores.json"
SURVIVORS_FILE = "survivors.json"
DAY_S = 86_400.0
SEARCHING_RULES = frozenset(
    {RuleName.CHANGE_POINT.value, RuleName.N_DRAWS.value, RuleName.NO_SIGNAL_RETRY.value,
     NO_SIGNAL}
)  # fmt: skip
"""Rules whose retrain searches seeds: when it does not beat chance the loop enters no signal."""


class TriggerActor(Actor):
    """Chapter 13: the authority that decides when to retrain and what to promote."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.config = services.settings.trigger
        self.policies = services.settings.policies
        self.state = TrackerState()
        self._clock_base = 0.0
        self._h = threshold(self.config.arl0)
        sieve = SieveParams()
        self._mod = services.settings.ingestion.mod
        self._space = search_space(
            sieve.family_names, sieve.seed_start, sieve.seed_end, sieve.skip_min, sieve.skip_max
        )
        self._max_anchors = sieve.max_anchors
        self._identification: dict[int, Identification] = {}
        self._skipped: dict[str, str] = {}
        """Rule -> why it was last held back (audited once per reason, not once per draw)."""

    async def on_start(self) -> None:
        """Load Chapter 13's memory from the store; anchor the clock to wall time."""
        # Seconds since the epoch, advanced by the event loop's clock (MockClock in tests).
        self._clock_base = time.time() - anyio.current_time()
        self.state = await self.services.store.run(ledger.load_state)

    def now(self) -> float:
        """Seconds on Chapter 13's clock (wall time, moved by the event loop's clock)."""
        return self._clock_base + anyio.current_time()

    def identification(self, chance: float | None) -> Identification:
        """How many draws identify a seed, for pools with this chance rate (cached by margin).

        The margin covers a late change-point estimate: the dead model's pool hits a post-change
        draw by chance with probability q, and such a hit resets the statistic, so the next
        excursion starts one draw after it — the miss before it is lost too. j chance hits make
        the estimate up to j + 1 draws late with probability about q^j, below the target
        false-positive rate from j = ln(target) / ln(q) on: margin = 1 + that j.
        """
        target = self.config.target_false_positives
        q = chance if chance is not None and 0 < chance < 1 else 1.0 / self._mod
        margin = 1 + max(1, math.ceil(math.log(target) / math.log(q)))
        if margin not in self._identification:
            post, _window, fp = draws_to_identify(
                self._space, self._mod, target, margin, self._max_anchors
            )
            boot, _bw, _bfp = draws_to_identify(
                self._space, self._mod, target, 0, self._max_anchors
            )
            self._identification[margin] = Identification(
                post_change_draws=post,
                margin=margin,
                bootstrap_draws=boot,
                expected_false_positives=fp,
            )
        return self._identification[margin]

    # -- draws --------------------------------------------------------------------------------

    @handles(DrawIngested)
    async def on_draw_ingested(self, msg: DrawIngested) -> None:
        """Score, fold, diagnose, evaluate; act on a fired rule; refresh; feed the shadows."""
        now = self.now()
        recorded = await self.services.store.transaction(
            lambda conn: self._record_draw(conn, msg, now)
        )
        if recorded is None:
            self.log.info("trigger.duplicate_draw", draw_id=msg.draw.draw_id)
            return
        state, score, diag, evaluation = recorded
        alarm_raised = state.detector.alarm and not self.state.detector.alarm
        self.state = state
        self.log.info(
            "trigger.draw_scored",
            draw_id=msg.draw.draw_id,
            status=score.status,
            hit=score.hit,
            rank=score.rank,
            statistic=round(state.detector.statistic, 3),
        )
        if score.status in {"backfill", "synthetic"}:
            return
        if alarm_raised:
            await self._audit_alarm(msg)
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
        await self._record_skips(msg, evaluation.blocked)
        if evaluation.waiting:
            self.log.info("trigger.waiting", draw_id=msg.draw.draw_id, why=evaluation.waiting)
        fired = evaluation.fired
        if fired is not None and fired.rule is RuleName.LLM_PROPOSED and self._no_model():
            self.log.info("trigger.review_skipped", reason="no model: the heuristic has no view")
            fired = None
        if fired is not None:
            await self._decide(msg, fired, evaluation, diag)
        # After the rule's decision: a retrain it filed runs step 6 and so makes the next pool.
        await self._refresh(msg, msg.draw.draw_id)

    async def _record_skips(self, msg: DrawIngested, blocked: dict[str, str]) -> None:
        """A rule that fired but was not filed is recorded with its reason (once per reason)."""
        for rule, why in blocked.items():
            # Compare without the figures that move every draw ("3 of 10 draws").
            key = "".join(c for c in why if not c.isdigit())
            if self._skipped.get(rule) == key:
                continue
            self._skipped[rule] = key
            await self.services.audit(
                actor=self.name,
                entity="decision",
                entity_id=f"skip-{rule}-{msg.draw.draw_id}",
                event="skipped",
                correlation_id=msg.correlation_id,
                rule=rule,
                reason=why,
                draw_id=msg.draw.draw_id,
            )
        for rule in set(self._skipped) - set(blocked):
            del self._skipped[rule]

    def _no_model(self) -> bool:
        return self.services.settings.llm.model == "none"

    def _record_draw(
        self, conn: sqlite3.Connection, msg: DrawIngested, now: float
    ) -> tuple[TrackerState, DrawScore, Diagnostics | None, Evaluation | None] | None:
        """One transaction: score, fold, diagnostics, rules (None for a duplicate)."""
        draw = msg.draw
        if ledger.has_score(conn, msg.stream, draw.draw_id):
            return None
        live = msg.stream == "real" and not msg.is_backfill
        pool = ledger.pool_after(conn, self.state.last_draw_id) if live else None
        score = score_draw(
            draw.draw_id, draw.value, pool, stream=msg.stream, is_backfill=msg.is_backfill
        )
        record = ledger.model_record(conn, score.model_id)
        prior = record.prior if record is not None else ModelPrior()
        state = observe(self.state, score, self.config.window, prior=prior, h=self._h)
        ledger.insert_score(conn, msg.stream, score)
        if state is None:
            return None
        if not live:
            ledger.save_state(conn, state)
            return state, score, None, None
        ctx = ledger.context(conn, now=now, budget_window_s=DAY_S)
        diag = diagnose(state, draw.draw_id, self.config, churn=_churn(ctx))
        ledger.insert_diagnostics(conn, diag)
        evaluation = None
        if self.config.request_every_n_draws is None:
            evaluation = evaluate(
                diag, state, ctx, self.identification(score.chance), self.config, now=now
            )
            if evaluation.fired is not None:
                state = review_started(state)
        ledger.save_state(conn, state)
        return state, score, diag, evaluation

    async def _audit_alarm(self, msg: DrawIngested) -> None:
        det = self.state.detector
        self.log.warning(
            "trigger.change_alarm",
            change_point=det.change_point,
            statistic=round(det.statistic, 3),
            threshold=round(self._h, 3),
            model_id=det.model_id,
        )
        await self.services.audit(
            actor=self.name,
            entity="decision",
            entity_id=f"alarm-{det.model_id}",
            event="change_alarm",
            correlation_id=msg.correlation_id,
            draw_id=msg.draw.draw_id,
            draw_index=self.state.draw_index,
            change_point=det.change_point,
            change_point_index=det.change_point_index,
            statistic=det.statistic,
            threshold=self._h,
            arl0=self.config.arl0,
            p0=det.p0,
            model_id=det.model_id,
        )

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

        def context(conn: sqlite3.Connection) -> tuple[dict[str, float], list[Any], int, Any]:
            _pid, params = policy_store.active_policy(conn)
            current = {k: float(v) for k, v in params.model_dump().items() if k != "schema_version"}
            start = ledger.draw_id_at(conn, trigger.history_start_index)
            if start is None and trigger.history_start_index is None:
                start = _regime_of(ledger.latest_model(conn), trigger.rule)
            return (
                current,
                decision_store.applied_runs(conn),
                decision_store.prior_rejects(conn, trigger.rule),
                start,
            )

        current, runs, rejects, history_from = await self.services.store.run(context)
        if proposal is None:
            acceptance = Acceptance(
                outcome=Outcome.ESCALATE, reasons=(f"no usable proposal: {problem}",)
            )
        else:
            acceptance = judge_proposal(
                proposal,
                current=current,
                runs=runs,
                draw_index=self.state.draw_index,
                prior_rejects=rejects,
                cfg=self.policies,
            )
        action, scope = filing.resolve_action(trigger.action, trigger.scope, proposal)
        plan = filing.plan(
            decision_id=decision_id,
            draw_id=msg.draw.draw_id,
            draw_index=self.state.draw_index,
            correlation_id=msg.correlation_id,
            rule=trigger.rule.value,
            action=action,
            scope=scope,
            acceptance=acceptance,
            evidence={**trigger.evidence, "clock_s": self.now()},
            reason=f"Chapter 13: {trigger.rule.value} ({acceptance.outcome.value})",
            proposal=proposal,
            proposal_source=source,
            history_from=history_from,
            supersedes=trigger.supersedes,
        )
        await self._file(msg, plan)

    async def _propose(
        self,
        msg: DrawIngested,
        trigger: Trigger,
        evaluation: Evaluation,
        diag: Diagnostics,
        decision_id: str,
    ) -> tuple[Chapter13Proposal | None, str, str]:
        """Ask Bundle (13) and LLM (chapter_13) for a proposal: (proposal, source, problem)."""
        metrics = advisor_metrics(trigger, diag)
        results = {
            "trigger": trigger.rule.value,
            "action": trigger.action,
            "scope": None if trigger.scope is None else trigger.scope.value,
            "rules_fired": [r.value for r in evaluation.candidates],
            "evidence": trigger.evidence,
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

    async def _file(self, cause: Any, plan: filing.Filing) -> None:
        """The one filing path: commit (spool, then ledger), audit, then nudge the watcher."""
        await self.services.store.transaction(
            lambda conn: filing.commit(conn, self.services.paths, plan)
        )
        for record in filing.audit_records(plan):
            await self.services.audit(actor=self.name, **record)
        if plan.outcome is Outcome.ACCEPT:
            self.log.info(
                "trigger.request_filed",
                request_id=plan.decision_id,
                request_type=plan.action,
                rule=plan.rule,
                history_from=plan.request.get("history_from"),
                supersedes=plan.supersedes,
            )
            if plan.supersedes is not None:
                await self.system.ref(WATCHER).tell(
                    SupersedeRequest.caused_by(
                        cause, sender=self.name, request_id=plan.supersedes, by=plan.decision_id
                    )
                )
            await self.system.ref(WATCHER).tell(
                RequestFiled.caused_by(cause, sender=self.name, request_id=plan.decision_id)
            )
        elif plan.outcome is Outcome.ESCALATE:
            self.log.warning(
                "trigger.escalated",
                decision_id=plan.decision_id,
                rule=plan.rule,
                reasons=list(plan.acceptance.reasons),
                approve=f"python -m actors.system approve {plan.decision_id}",
            )
        else:
            self.log.info("trigger.rejected", rule=plan.rule, reasons=list(plan.acceptance.reasons))

    async def _file_forced(self, msg: DrawIngested) -> None:
        """Forced mode: a fixed cadence, no rules, no proposal (plumbing tests, operators)."""
        cfg = self.config
        action = filing.FORCED_ACTIONS[cfg.request_type]
        now = self.now()
        ctx = await self.services.store.run(
            lambda conn: ledger.context(conn, now=now, budget_window_s=DAY_S)
        )
        if any(r.action == action and not r.parked for r in ctx.open):
            self.log.info("trigger.forced_skipped", reason=f"a {action} request is still open")
            return
        plan = filing.plan(
            decision_id=new_id(),
            draw_id=msg.draw.draw_id,
            draw_index=self.state.draw_index,
            correlation_id=msg.correlation_id,
            rule="forced",
            action=action,
            scope=LearningLoopScope(cfg.learning_scope),
            acceptance=Acceptance(
                outcome=Outcome.ACCEPT,
                reasons=(f"forced: {cfg.request_every_n_draws} real draws since the last request",),
            ),
            # Labelled n_draws (a cadence in draws), so the watcher's pre-validation reads it
            # as the scheduled retrain it is.
            evidence={
                "rule": RuleName.N_DRAWS.value,
                "mode": "forced",
                "history_len": msg.history_len,
                "fingerprint": msg.fingerprint,
                "identification_confidence": 1.0,
            },
            reason=f"forced: {cfg.request_every_n_draws} real draws since the last request",
        )
        await self._file(msg, plan)

    # -- the refresh track --------------------------------------------------------------------

    async def _refresh(self, cause: Any, draw_id: str | None) -> None:
        """File a prediction refresh when one is due (rules.refresh_verdict); off in forced mode.

        No proposal and no cooldown: it changes nothing, it only keeps a pool registered for the
        next draw. It is recorded and audited like a decision (rule `refresh`, ACCEPT).
        """
        if self.config.request_every_n_draws is not None:
            return
        state = self.state
        now = self.now()

        def look(conn: sqlite3.Connection) -> tuple[Any, Context]:
            ctx = ledger.context(conn, now=now, budget_window_s=DAY_S)
            return refresh_verdict(state, ctx, self.config), ctx

        verdict, ctx = await self.services.store.run(look)
        if not verdict.due:
            self.log.debug("trigger.refresh_not_due", draw_id=draw_id, reason=verdict.reason)
            return
        action, scope = REFRESH_ACTION
        plan = filing.plan(
            decision_id=new_id(),
            draw_id=draw_id,
            draw_index=state.draw_index,
            correlation_id=cause.correlation_id,
            rule=REFRESH,
            action=action,
            scope=scope,
            acceptance=routine_refresh(verdict.reason),
            evidence=verdict.evidence,
            reason=f"Chapter 13: prediction refresh ({verdict.reason})",
            history_from=None if ctx.model is None else ctx.model.history_from,
            # One parked refresh at most: a newer one takes its place (no pile-up per draw).
            supersedes=None if (parked := ctx.parked_refresh()) is None else parked.request_id,
        )
        await self._file(cause, plan)

    # -- requests, models and pools -----------------------------------------------------------

    @handles(RequestFinished)
    async def on_request_finished(self, msg: RequestFinished) -> None:
        """A request ended (or was parked with a person): close it; after a completed step 6,
        register its pool and model; after a seed search, judge its model against chance."""
        completed = msg.status == "completed"
        ran_step_6 = completed and "6" in msg.units
        pool = model = meta = None
        if ran_step_6:
            pool = await anyio.to_thread.run_sync(self._read_artifact, POOL_FILE, PredictionPool)
            model = await anyio.to_thread.run_sync(self._read_artifact, MODEL_FILE, RankingModel)
            meta = await anyio.to_thread.run_sync(
                self._read_artifact, MODEL_META_FILE, ModelMetadata
            )
        signal = self._signal(msg, model, meta)
        state = self.state

        def close(conn: sqlite3.Connection) -> tuple[Any, NoSignal | None, bool]:
            closed = decision_store.finish_request(
                conn,
                msg.request_id,
                msg.status,
                units=msg.units,
                gpu_seconds=msg.gpu_seconds,
                reason=msg.reason,
            )
            before = ledger.load_no_signal(conn)
            after = before
            if closed is not None and closed.rule in SEARCHING_RULES:
                after = self._no_signal_after(before, signal, state.draw_index, msg)
                if after != before:
                    ledger.save_no_signal(conn, after)
            return closed, after, before is None and after is not None

        closed, no_signal, entered = await self.services.store.transaction(close)
        self.log.info(
            "trigger.request_finished",
            request_id=msg.request_id,
            status=msg.status,
            units=list(msg.units),
            rule=None if closed is None else closed.rule,
            signal=signal[0],
        )
        if closed is not None and closed.rule in SEARCHING_RULES:
            await self._report_signal(msg, signal, no_signal, entered=entered)
        if pool is None:
            if ran_step_6:
                self.log.warning("trigger.no_pool_artifact", request_id=msg.request_id)
            return
        registered = await self._register(pool, msg.request_id, model=model, meta=meta,
                                          history_from=msg.history_from)  # fmt: skip
        if registered.stale:
            # Catch up: never after a failure, so a broken step 6 cannot loop.
            await self._refresh(msg, self.state.last_draw_id)

    def _signal(
        self, msg: RequestFinished, model: RankingModel | None, meta: ModelMetadata | None
    ) -> tuple[bool, str]:
        """Whether a finished retrain produced a model that beats chance, and why (not).

        The binomial test of the model's holdout hits against a random pool of its size:
        P(X >= hits | Binomial(holdout, pool_size / mod)) < no_signal_alpha.
        """
        if msg.status != "completed":
            return False, f"the retrain ended {msg.status}: {msg.reason}"[:500]
        if model is None or meta is None or meta.model_id != model.model_id:
            return False, "the retrain left no model to judge"
        size = int(meta.holdout_size)
        hits = round(meta.validation_score * size)
        chance = min(1.0, model.pool_size / model.mod)
        p = binomial_sf(hits, size, chance) if size else 1.0
        why = (
            f"holdout {hits}/{size} against chance {chance:g}: p = {p:.3g} "
            f"(no signal at or above {self.config.no_signal_alpha:g})"
        )
        return p < self.config.no_signal_alpha, why

    def _no_signal_after(
        self,
        before: NoSignal | None,
        signal: tuple[bool, str],
        draw_index: int,
        msg: RequestFinished,
    ) -> NoSignal | None:
        """The no-signal state after a seed search ended (pure but for the config)."""
        beats, why = signal
        if beats:
            return None
        base = self.config.no_signal_backoff_draws
        attempts = 1 if before is None else before.attempts + 1
        next_index = draw_index + base * 2 ** (attempts - 1) if base else None
        return NoSignal(
            since_index=draw_index if before is None else before.since_index,
            attempts=attempts,
            next_index=next_index,
            reason=why,
            escalation_id=(
                (msg.request_id if msg.status == "escalated" else new_id())
                if before is None
                else before.escalation_id
            ),
        )

    async def _report_signal(
        self,
        msg: RequestFinished,
        signal: tuple[bool, str],
        no_signal: NoSignal | None,
        *,
        entered: bool,
    ) -> None:
        beats, why = signal
        if beats:
            await self.services.audit(
                actor=self.name, entity="decision", entity_id=msg.request_id, event="signal",
                correlation_id=msg.correlation_id, reason=why,
            )  # fmt: skip
            return
        assert no_signal is not None
        self.log.warning(
            "trigger.no_signal",
            request_id=msg.request_id,
            reason=why,
            attempts=no_signal.attempts,
            next_index=no_signal.next_index,
        )
        await self.services.audit(
            actor=self.name,
            entity="decision",
            entity_id=no_signal.escalation_id or msg.request_id,
            event="no_signal",
            correlation_id=msg.correlation_id,
            request_id=msg.request_id,
            reason=why,
            attempts=no_signal.attempts,
            next_retry_at_draw=no_signal.next_index,
            entered=entered,
        )
        if entered and msg.status != "escalated" and no_signal.escalation_id is not None:
            # The one escalation of this no-signal period (a parked request already is one).
            plan = filing.plan(
                decision_id=no_signal.escalation_id,
                draw_id=self.state.last_draw_id,
                draw_index=self.state.draw_index,
                correlation_id=msg.correlation_id,
                rule=NO_SIGNAL,
                action="pipeline_rerun",
                scope=None,
                acceptance=Acceptance(
                    outcome=Outcome.ESCALATE,
                    reasons=(
                        f"no signal: {why}",
                        "automatic retries back off"
                        + (
                            f" (next at draw {no_signal.next_index})"
                            if no_signal.next_index is not None
                            else " (off)"
                        )
                        + "; approve to retrain now",
                    ),
                ),
                evidence={"rule": NO_SIGNAL, "request_id": msg.request_id, "reason": why,
                          "identification_confidence": 1.0},
                reason=f"Chapter 13: no signal after {msg.request_id}",
                history_from=msg.history_from,
            )  # fmt: skip
            await self._file(msg, plan)

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
        model = await anyio.to_thread.run_sync(self._read_artifact, MODEL_FILE, RankingModel)
        meta = await anyio.to_thread.run_sync(self._read_artifact, MODEL_META_FILE, ModelMetadata)
        return await self._register(
            msg.pool, msg.request_id, model=model, meta=meta, history_from=None, cause=msg
        )

    async def _register(
        self,
        pool: PredictionPool,
        request_id: str | None,
        *,
        model: RankingModel | None,
        meta: ModelMetadata | None,
        history_from: str | None,
        cause: Any = None,
    ) -> PoolRegistered:
        last = self.state.last_draw_id

        def register(conn: sqlite3.Connection) -> bool:
            stale = pool.last_draw_id != last
            ledger.insert_pool(conn, pool, request_id=request_id, stale=stale)
            if model is not None and pool.model_id is not None and model.model_id == pool.model_id:
                if ledger.model_record(conn, model.model_id) is None:
                    ledger.upsert_model(
                        conn, _model_record(model, meta, request_id, history_from,
                                            ledger.latest_model(conn), self.config.churn_top_n),
                    )  # fmt: skip
            elif pool.model_id is not None and ledger.model_record(conn, pool.model_id) is None:
                ledger.upsert_model(
                    conn, ModelRecord(model_id=pool.model_id, request_id=request_id,
                                      history_from=history_from),
                )  # fmt: skip
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
            if policy_store.policy_status(conn, candidate.policy_id) is not None:
                return None
            active, _params = policy_store.active_policy(conn)
            if active == candidate.policy_id:
                return None
            tally = ShadowTally(policy_id=candidate.policy_id, active_policy_id=active)
            status = "shadow" if verdict.passed else "rejected"
            policy_store.upsert_candidate(
                conn, candidate, status, "; ".join(verdict.reasons), tally
            )
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
        shadows = await self.services.store.run(policy_store.shadow_policies)
        if not shadows:
            return
        draw = msg.draw

        survivors = await anyio.to_thread.run_sync(self._survivors)
        if survivors is None:
            self.log.warning("trigger.shadow_without_survivors", draw_id=draw.draw_id)
            return
        found, mod = survivors

        def history(conn: sqlite3.Connection) -> tuple[list[int], Any]:
            # Survivor anchors index the history their model was trained on: its regime.
            regime = ledger.latest_model(conn)
            start = None if regime is None else regime.history_from
            values = ledger.real_values_before(conn, draw.draw_id, start_draw_id=start)
            return values, policy_store.active_policy(conn)[1]

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
                policy_store.set_tally(conn, new)
                if v is not None:
                    policy_store.settle_candidate(
                        conn, new.policy_id, promote=v.promote, reason=v.reason
                    )

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


def _churn(ctx: Context) -> float | None:
    return None if ctx.model is None else ctx.model.churn


def _regime_of(model: ModelRecord | None, rule: RuleName) -> str | None:
    """Where a retrain without a change point reads the history from: the bootstrap and the
    no-signal retries search the whole history; anything else the model's regime."""
    if rule in {RuleName.N_DRAWS, RuleName.NO_SIGNAL_RETRY} or model is None:
        return None
    return model.history_from


def _model_record(
    model: RankingModel,
    meta: ModelMetadata | None,
    request_id: str | None,
    history_from: str | None,
    previous: ModelRecord | None,
    top_n: int,
) -> ModelRecord:
    """What Chapter 13 keeps of a new model: its validation as the detector's prior, its regime,
    its top survivors and their churn against the model before."""
    top = tuple(
        survivor_identity(r.survivor.family, r.survivor.skip, r.survivor.seed, r.survivor.anchor)
        for r in model.ranked[:top_n]
    )
    prior = ModelPrior()
    if meta is not None and meta.model_id == model.model_id:
        prior = ModelPrior(
            hits=round(meta.validation_score * meta.holdout_size), size=meta.holdout_size
        )
    churn = None
    if previous is not None and previous.top_survivors:
        churn = 1.0 - jaccard(previous.top_survivors, top)
    return ModelRecord(
        model_id=model.model_id,
        request_id=request_id,
        history_from=history_from,
        prior=prior,
        pool_size=model.pool_size,
        top_survivors=top,
        churn=churn,
    )
