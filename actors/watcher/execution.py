"""Running one request: its units in order, each dispatched, evaluated and judged.

`Execution.run()` returns how the request ended: completed, failed, rejected (the advisor's
pre-validation said no), halted (the kill switch) or escalated (the rules said a person must
look). A halted or escalated request keeps its progress, so `resume` continues it in place.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import anyio.to_thread
from pydantic import ValidationError

from actors.services import BUNDLE, GPU, LLM, TRIGGER
from actors.watcher import progress as progress_store
from actors.watcher import steps as step_store
from actors.watcher.halt import read_halt
from actors.watcher.rules import (
    Limits,
    as_step_decision,
    judge,
    next_attempt,
    prevalidation_metrics,
    transient,
)
from bundle_factory import CHAPTER_13_ID, SELFPLAY_ID
from messages.artifacts import SelfplayResult
from messages.base import new_id
from messages.bundle import BuildBundle, BundleBuilt
from messages.chapter13 import CandidateEmitted
from messages.decisions import Chapter13Action, Chapter13Proposal
from messages.dispatch import JobFinished, RunJob
from messages.llm import Decide, Decision
from messages.metrics import flat_metrics
from messages.requests import SelfplayRetrain, request_steps

if TYPE_CHECKING:
    import sqlite3
    from collections.abc import Mapping

    from actors.runtime import ActorSystem
    from actors.services import Services
    from actors.watcher.progress import Progress
    from actors.watcher.spool import Request

Status = Literal["completed", "failed", "rejected", "halted", "escalated"]
# Long jobs are bounded by their own registry timeouts; this only catches a lost reply.
JOB_ASK_TIMEOUT_S = 7 * 86400


def unit_bundle_id(unit: str) -> int:
    """The bundle type of a unit of work: its step number, or 99 for selfplay."""
    return SELFPLAY_ID if unit == "selfplay" else int(unit)


def unit_params(
    request: Request,
    unit: str,
    configured: Mapping[str, str | int | float | bool] | None = None,
) -> dict[str, str | int | float | bool]:
    """The parameters of a unit's job, lowest precedence first.

    The request type's defaults (selfplay's episode count), then `[watcher.params.UNIT]`
    (`configured`), then what the request sets explicitly (its `episodes`, its `params`).
    """
    params: dict[str, str | int | float | bool] = {}
    explicit: dict[str, str | int | float | bool] = {}
    if unit == "selfplay" and isinstance(request, SelfplayRetrain):
        into = explicit if "episodes" in request.model_fields_set else params
        into["episodes"] = request.episodes
    params.update(configured or {})
    params.update(explicit)
    params.update(request.params.get(unit, {}))
    return params


@dataclass(frozen=True)
class Outcome:
    """How a request ended (or paused) and why."""

    status: Status
    reason: str
    unit: str | None = None
    """The unit it stopped at, for halted / escalated / failed."""
    evidence: dict[str, Any] | None = None
    units: tuple[str, ...] = ()
    """The units that ran to a verdict in this run, in order."""
    gpu_seconds: float = 0.0
    """Wall seconds of the run's GPU jobs (those that took the lease)."""
    history_from: str | None = None
    """The draw the jobs' history started at (the request's, or the regime in force)."""


class Execution:
    """One request's run; created by the WatcherActor, which owns the spool moves."""

    def __init__(
        self, system: ActorSystem, services: Services, log: Any, sender: str, request: Request
    ) -> None:
        self.system = system
        self.services = services
        self.log = log
        self.sender = sender
        self.request = request
        cfg = services.settings.watcher
        self.config = cfg
        self.limits = Limits(
            auto_proceed=cfg.auto_proceed_confidence,
            escalate_below=cfg.escalate_below_confidence,
            max_retries_per_step=cfg.max_retries_per_step,
            max_retries_per_run=cfg.max_retries_per_run,
        )
        self.halt_file = services.paths.root / cfg.halt_file
        self.run_id = new_id()
        self.history_from = request.history_from
        """Where the jobs' history starts (the regime Chapter 13 trains on)."""
        self.done: list[str] = []
        self.gpu_seconds = 0.0

    # -- helpers ------------------------------------------------------------------------------

    async def _audit(self, entity: str, entity_id: str, event: str, **detail: Any) -> None:
        await self.services.audit(
            actor=self.sender,
            entity=entity,  # type: ignore[arg-type]
            entity_id=entity_id,
            event=event,
            correlation_id=self.request.correlation_id,
            **detail,
        )

    async def _save(self, next_unit: int, status: str, reason: str = "") -> None:
        saved = progress_store.Progress(self.run_id, next_unit, status, reason)

        def save(conn: sqlite3.Connection) -> None:
            progress_store.save(conn, self.request.request_id, saved)

        await self.services.store.run(save)

    async def _halted(self) -> bool:
        return await anyio.to_thread.run_sync(read_halt, self.halt_file) is not None

    # -- the run ------------------------------------------------------------------------------

    async def run(self) -> Outcome:
        """Run (or resume) the request's units; never raises for a job or advice outcome."""
        rid = self.request.request_id

        def load(conn: sqlite3.Connection) -> Progress | None:
            return progress_store.load(conn, rid)

        saved = await self.services.store.run(load)
        if self.request.source != "trigger" and self.history_from is None:
            # A person's or a tool's request runs on the regime of the model in force, so its
            # survivors' anchors and the model's agree (Chapter 13's requests say it themselves).
            from actors.trigger.ledger import current_regime  # the trigger owns the regimes

            self.history_from = await self.services.store.run(current_regime)
        start = 0
        if saved is not None:
            self.run_id, start = saved.run_id, saved.next_unit
            await self._audit(
                "request",
                rid,
                "resumed",
                from_state=saved.status,
                to_state="running",
                run_id=self.run_id,
                next_unit=start,
            )
        else:
            await self._audit(
                "request",
                rid,
                "running",
                from_state="validated",
                to_state="running",
                run_id=self.run_id,
            )
            if self.request.source == "trigger" and self.request.evidence.get("track") != "refresh":
                # A refresh changes nothing (step 6 on the model in force): nothing to judge.
                verdict = await self._prevalidate()
                if verdict is not None:
                    return verdict
        units = request_steps(self.request)
        run_retries = 0
        for index in range(start, len(units)):
            unit = units[index]
            if await self._halted():
                await self._save(index, "halted", f"halt file present before step {unit}")
                return Outcome("halted", f"halt file present before step {unit}", unit)
            outcome, run_retries = await self._run_unit(unit, run_retries)
            if outcome is not None:
                keep = index if outcome.status in {"halted", "escalated"} else len(units)
                await self._save(keep, outcome.status, outcome.reason)
                return self._stamp(outcome)
            self.done.append(unit)
            await self._save(index + 1, "running")
        return self._stamp(Outcome("completed", "all steps passed"))

    def _stamp(self, outcome: Outcome) -> Outcome:
        """The outcome with what ran: units and GPU seconds (Chapter 13's budget reads them)."""
        return replace(
            outcome,
            units=tuple(self.done),
            gpu_seconds=self.gpu_seconds,
            history_from=self.history_from,
        )

    async def _run_unit(self, unit: str, run_retries: int) -> tuple[Outcome | None, int]:
        params = unit_params(self.request, unit, self.config.params.get(unit))
        step_retries = 0
        while True:
            finished = await self._dispatch(unit, params)
            if finished.lease_id is not None:
                self.gpu_seconds += finished.duration_s
            if finished.status == "cancelled" and await self._halted():
                return Outcome("halted", f"step {unit} cancelled by halt --now", unit), run_retries
            if finished.status != "completed":
                why = f"step {unit}: job {finished.job} {finished.status}: {finished.error or ''}"
                said = [line for line in finished.stderr_tail.splitlines() if line.strip()]
                if said:
                    why = f"{why.strip()}; it said: {said[-1][:300]}"
                if (
                    transient(finished)
                    and step_retries < self.limits.max_retries_per_step
                    and (run_retries < self.limits.max_retries_per_run)
                ):
                    # A crash or a timeout may not happen again: the same inputs, once more.
                    step_retries += 1
                    run_retries += 1
                    await self._record_retry(unit, step_retries, why, params)
                    continue
                return Outcome("failed", why.strip(), unit), run_retries
            decision = await self._evaluate(unit, finished)
            if unit == "selfplay":
                await self._candidate(finished, decision)
                return None, run_retries
            verdict = judge(
                as_step_decision(decision.answer),
                step_retries=step_retries,
                run_retries=run_retries,
                limits=self.limits,
            )
            widened: dict[str, str | int | float | bool] | None = None
            if verdict.action == "retry":
                # A deterministic job rerun on identical inputs gives the identical result: a
                # retry must change them (the advisor's parameters, else the job's widening).
                widened = next_attempt(
                    finished.job, params, as_step_decision(decision.answer).suggested_params,
                    step_retries + 1,
                )  # fmt: skip
                if widened is None:
                    verdict = replace(
                        verdict,
                        action="escalate",
                        reason=f"{verdict.reason}; a rerun with the same inputs cannot change "
                        f"the result of {finished.job}, and it has no widening",
                    )
            await self._record_step(unit, step_retries, verdict.action, decision, verdict.reason)
            if verdict.action == "proceed":
                return None, run_retries
            if verdict.action == "escalate" or widened is None:
                evidence = {
                    "step": unit,
                    "answer": decision.answer.model_dump(mode="json"),
                    "source": decision.source,
                    "metrics": flat_metrics(finished.result),
                    "params": params,
                }
                reason = f"step {unit}: {verdict.reason}"
                return Outcome("escalated", reason, unit, evidence), run_retries
            step_retries += 1
            run_retries += 1
            params = widened

    async def _record_retry(
        self, unit: str, attempt: int, why: str, params: dict[str, str | int | float | bool]
    ) -> None:
        await self._audit(
            "step",
            f"{self.run_id}:{unit}",
            "retry",
            from_state="failed",
            to_state="dispatched",
            attempt=attempt,
            reason=f"transient failure, same inputs once more: {why}"[:1000],
            params=params,
        )

    async def _dispatch(
        self, unit: str, params: dict[str, str | int | float | bool]
    ) -> JobFinished:
        job = self.config.step_jobs.get(unit)
        if job is None:
            known = ", ".join(sorted(self.config.step_jobs))
            return JobFinished(
                job="-",
                run_id=self.run_id,
                status="rejected",
                error=f"no job configured for unit {unit!r} (watcher.step_jobs: {known})",
            )
        await self._audit(
            "step",
            f"{self.run_id}:{unit}",
            "dispatched",
            to_state="dispatched",
            job=job,
            request_id=self.request.request_id,
            params=params,
        )
        message = RunJob(
            correlation_id=self.request.correlation_id,
            sender=self.sender,
            job=job,
            params=params,
            run_id=self.run_id,
            step=unit,
            history_from=self.history_from,
        )
        return await self.system.ref(GPU).ask(
            message, timeout=JOB_ASK_TIMEOUT_S, expect=JobFinished
        )

    async def _advise(
        self,
        step_id: int,
        results: dict[str, Any],
        metrics: dict[str, str | int | float | bool],
        *,
        chapter_13: bool = False,
    ) -> Decision:
        cid = self.request.correlation_id
        built = await self.system.ref(BUNDLE).ask(
            BuildBundle(
                correlation_id=cid,
                sender=self.sender,
                step_id=step_id,
                results=results,
                run_id=self.run_id,
                is_chapter_13=chapter_13,
            ),
            timeout=120,
            expect=BundleBuilt,
        )
        return await self.system.ref(LLM).ask(
            Decide(
                correlation_id=cid,
                sender=self.sender,
                prompt=built.prompt,
                grammar_name=built.grammar_name,
                metrics=dict(metrics),
                thresholds=built.thresholds,
            ),
            timeout=900,
            expect=Decision,
        )

    async def _evaluate(self, unit: str, finished: JobFinished) -> Decision:
        decision = await self._advise(
            unit_bundle_id(unit), finished.result or {}, flat_metrics(finished.result)
        )
        await self._audit(
            "decision",
            f"{self.run_id}:{unit}",
            "advised",
            source=decision.source,
            grammar=decision.grammar_name,
            answer=decision.answer.model_dump(mode="json"),
            latency_s=round(decision.latency_s, 6),
        )
        return decision

    async def _prevalidate(self) -> Outcome | None:
        """Chapter 13's request gets a second opinion before anything runs; it is obeyed."""
        request = self.request
        results = {
            "request_type": request.request_type,
            "reason": request.reason,
            **request.evidence,
        }
        decision = await self._advise(
            CHAPTER_13_ID, results, prevalidation_metrics(results), chapter_13=True
        )
        answer = decision.answer
        await self._audit(
            "decision",
            request.request_id,
            "prevalidated",
            source=decision.source,
            answer=answer.model_dump(mode="json"),
        )
        action = answer.recommended_action if isinstance(answer, Chapter13Proposal) else None
        if action is Chapter13Action.ESCALATE or action is None:
            reason = "pre-validation: the advisor escalates this request to a person"
            return Outcome("rejected", reason, None, {"answer": answer.model_dump(mode="json")})
        if action is Chapter13Action.WAIT:
            reason = "pre-validation: the advisor recommends waiting for more draws"
            return Outcome("rejected", reason, None, {"answer": answer.model_dump(mode="json")})
        return None

    async def _candidate(self, finished: JobFinished, decision: Decision) -> None:
        """Selfplay emitted a candidate: advisory evaluation logged; Chapter 13 decides.

        The candidate is read from this run's own result file (written into the run's folder
        and validated by GPU dispatch), never from the shared artifacts folder, so it is fresh
        by construction: a stale candidate from an earlier run cannot be passed on.
        """
        try:
            result = SelfplayResult.model_validate(finished.result or {})
        except ValidationError as exc:
            self.log.warning("selfplay.no_candidate", error=str(exc)[:300])
            return
        best = result.best
        await self._audit(
            "promotion",
            best.policy_id,
            "candidate_emitted",
            run_id=self.run_id,
            fitness=best.fitness,
            advice=decision.source,
            answer=decision.answer.model_dump(mode="json"),
        )
        await self.system.ref(TRIGGER).tell(
            CandidateEmitted(
                correlation_id=self.request.correlation_id,
                sender=self.sender,
                candidate=best,
                run_id=self.run_id,
                request_id=self.request.request_id,
            )
        )

    async def _record_step(
        self, unit: str, attempt: int, action: str, decision: Decision, reason: str
    ) -> None:
        confidence = as_step_decision(decision.answer).confidence
        request = self.request

        def record(conn: sqlite3.Connection) -> None:
            step_store.record(
                conn,
                run_id=self.run_id,
                request_id=request.request_id,
                step_id=unit_bundle_id(unit),
                attempt=attempt,
                status="evaluated",
                action=action,
                confidence=confidence,
                summary=reason,
                correlation_id=request.correlation_id,
            )

        await self.services.store.run(record)
        await self._audit(
            "step",
            f"{self.run_id}:{unit}",
            action,
            from_state="evaluated",
            to_state=action,
            attempt=attempt,
            reason=reason,
            source=decision.source,
        )
