"""WatcherActor (it enforces): takes requests from the spool, runs their steps, audits it all.

For each request: claim → validate → run each step through GPUDispatch → ask the BundleActor
for the step's context and the LLMActor for a verdict → apply the watcher rules (proceed /
retry / escalate) → archive the request in a terminal folder with its outcome in the store.
The kill switch (a halt file) is checked before a request starts and between steps.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import watchfiles

from actors.runtime import Actor, handles
from actors.services import BUNDLE, GPU, LLM, TRIGGER
from actors.watcher import spool
from actors.watcher.rules import Limits, as_step_decision, judge
from messages.base import new_id
from messages.bundle import BuildBundle, BundleBuilt
from messages.dispatch import JobFinished, RunJob
from messages.errors import ActorError
from messages.llm import Decide, Decision
from messages.metrics import flat_metrics
from messages.requests import ProcessSpool, RequestFiled, RequestFinished, request_steps

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from actors.services import Services
    from actors.watcher.spool import Request

SELFPLAY_BUNDLE = 99
_TERMINAL_FOLDER: dict[str, spool.Terminal] = {"completed": "done", "rejected": "rejected"}
# A request older than this is stale: the world it was filed about has moved on.
MAX_REQUEST_AGE = timedelta(hours=24)


def unit_bundle_id(unit: str) -> int:
    """The bundle type of a unit of work: its step number, or 99 for selfplay."""
    return SELFPLAY_BUNDLE if unit == "selfplay" else int(unit)


class WatcherActor(Actor):
    """Processes the spool one request at a time, in arrival order."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.paths = services.paths
        cfg = services.settings.watcher
        self.config = cfg
        self.limits = Limits(
            auto_proceed=cfg.auto_proceed_confidence,
            escalate_below=cfg.escalate_below_confidence,
            max_retries_per_step=cfg.max_retries_per_step,
            max_retries_per_run=cfg.max_retries_per_run,
        )
        self.halt_file = services.paths.root / cfg.halt_file

    async def on_start(self) -> None:
        await anyio.to_thread.run_sync(self.paths.ensure)
        await self._recover()
        if not self.services.once:
            self.start_soon(self._watch)
            self.start_soon(self._rescan)
        await self.ref.tell(ProcessSpool())

    async def _watch(self) -> None:
        async for _changes in watchfiles.awatch(self.paths.spool_dir("new"), step=1, debounce=10):
            await self.ref.tell(ProcessSpool())

    async def _rescan(self) -> None:
        while True:
            await anyio.sleep(self.config.rescan_interval_s)
            await self.ref.tell(ProcessSpool())

    # -- recovery -----------------------------------------------------------------------------

    async def _recover(self) -> None:
        """Claims left in `cur/` by a crash: archive the finished ones, requeue the others."""
        for path in await anyio.to_thread.run_sync(spool.stranded, self.paths):
            request_id = path.name.removesuffix(spool.SUFFIX)
            outcome = await self._outcome(request_id)
            if outcome is not None:
                folder = _TERMINAL_FOLDER.get(outcome, "failed")
                await anyio.to_thread.run_sync(
                    spool.finish, self.paths, path, folder, {"recovered": True, "status": outcome}
                )
                self.log.info("spool.recovered_finished", request_id=request_id, status=outcome)
            else:
                await anyio.to_thread.run_sync(spool.requeue, self.paths, path)
                self.log.warning("spool.recovered_claim", request_id=request_id)

    async def _outcome(self, request_id: str) -> str | None:
        def query(conn: sqlite3.Connection) -> str | None:
            row = conn.execute(
                "SELECT status FROM request_outcomes WHERE request_id = ?", (request_id,)
            ).fetchone()
            return None if row is None else str(row[0])

        return await self.services.store.run(query)

    # -- intake -------------------------------------------------------------------------------

    @handles(RequestFiled)
    async def on_request_filed(self, msg: RequestFiled) -> None:
        """A request was filed: process the spool (it holds the truth, the nudge only wakes)."""
        await self._process_pending()

    @handles(ProcessSpool)
    async def on_process_spool(self, msg: ProcessSpool) -> None:
        """Process every request waiting in `new/`."""
        await self._process_pending()

    def halted(self) -> bool:
        """True while the kill-switch file exists."""
        return self.halt_file.exists()

    async def _process_pending(self) -> None:
        for path in await anyio.to_thread.run_sync(spool.pending, self.paths):
            if await anyio.to_thread.run_sync(self.halted):
                self.log.warning("watcher.halted", halt_file=str(self.halt_file))
                return
            await self._process(path)

    async def _audit(
        self, request_id: str, cid: str, event: str, frm: str | None, to: str, **detail: Any
    ) -> None:
        await self.services.audit(
            actor=self.name,
            entity="request",
            entity_id=request_id,
            event=event,
            correlation_id=cid,
            from_state=frm,
            to_state=to,
            **detail,
        )

    async def _process(self, path: Path) -> None:
        request_id = path.name.removesuffix(spool.SUFFIX)
        claimed = await anyio.to_thread.run_sync(spool.claim, self.paths, path)
        if claimed is None:
            return
        cid = new_id()
        try:
            request = await anyio.to_thread.run_sync(spool.parse, claimed)
        except spool.SpoolError as exc:
            await self._audit(request_id, cid, "claimed", "received", "claimed")
            await self._reject(claimed, request_id, cid, exc.rule, exc.detail, "unknown")
            return
        cid = request.correlation_id
        await self._audit(
            request_id, cid, "claimed", "received", "claimed", request_type=request.request_type
        )
        if await self._outcome(request_id) is not None:
            detail = "this request id already reached a terminal state"
            await self._reject(
                claimed,
                request_id,
                cid,
                "duplicate request id",
                detail,
                request.request_type,
                record=False,
            )
            return
        age = datetime.now(UTC) - request.created_at
        if age > MAX_REQUEST_AGE:
            detail = f"created {age.total_seconds() / 3600:.1f} h ago; the limit is 24 h"
            await self._reject(
                claimed, request_id, cid, "request expired", detail, request.request_type
            )
            return
        await self._audit(
            request_id, cid, "validated", "claimed", "validated", request_type=request.request_type
        )
        try:
            status, reason = await self._execute(request)
        except ActorError as exc:
            # Another actor failed to answer (timeout, stopped, refused): the request fails
            # with the reason; the watcher itself carries on with the next one.
            self.log.exception("request.error", request_id=request_id)
            status, reason = "failed", f"{type(exc).__name__}: {exc}"
        folder = _TERMINAL_FOLDER.get(status, "failed")
        await self._finish(claimed, request, status, reason, folder)

    async def _reject(
        self,
        path: Path,
        request_id: str,
        cid: str,
        rule: str,
        detail: str,
        request_type: str,
        *,
        record: bool = True,
    ) -> None:
        reason = {"request_id": request_id, "rule": rule, "detail": detail}
        self.log.warning(
            "request.rejected", request_id=request_id, rule=rule, detail=detail, correlation_id=cid
        )
        if record:
            await self._record_outcome(request_id, request_type, "rejected", cid, rule, reason)
        await anyio.to_thread.run_sync(spool.finish, self.paths, path, "rejected", reason)
        await self._audit(
            request_id, cid, "rejected", "claimed", "rejected", rule=rule, detail_text=detail
        )

    async def _record_outcome(
        self,
        request_id: str,
        request_type: str,
        status: str,
        cid: str,
        reason: str,
        detail: dict[str, Any],
    ) -> None:
        now = datetime.now(UTC).isoformat()

        def record(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO request_outcomes (request_id, request_type, status, correlation_id,"
                " reason, detail, finished_at) VALUES (?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (request_id) DO NOTHING",
                (
                    request_id,
                    request_type,
                    status,
                    cid,
                    reason,
                    json.dumps(detail, default=str),
                    now,
                ),
            )
            if status in {"failed", "escalated", "halted"}:
                conn.execute(
                    "INSERT INTO incidents (incident_id, opened_at, severity, source, summary,"
                    " correlation_id) VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        new_id(),
                        now,
                        "high" if status == "escalated" else "medium",
                        f"request {request_id}",
                        f"{request_type} {status}: {reason}",
                        cid,
                    ),
                )

        await self.services.store.transaction(record)

    async def _finish(
        self, path: Path, request: Request, status: str, reason: str, folder: spool.Terminal
    ) -> None:
        rid, cid = request.request_id, request.correlation_id
        body: dict[str, Any] = {"request_id": rid, "status": status, "reason": reason}
        # The store first: if we crash before the move, recovery archives it without a rerun.
        await self._record_outcome(rid, request.request_type, status, cid, reason, body)
        await anyio.to_thread.run_sync(spool.finish, self.paths, path, folder, body)
        await self._audit(rid, cid, status, "running", status, reason=reason)
        self.log.info("request.finished", request_id=rid, status=status, reason=reason)
        await self.system.ref(TRIGGER).tell(
            RequestFinished(
                correlation_id=cid,
                sender=self.name,
                request_id=rid,
                request_type=request.request_type,
                status=status,
            )
        )

    # -- running ------------------------------------------------------------------------------

    async def _execute(self, request: Request) -> tuple[str, str]:
        run_id = new_id()
        rid, cid = request.request_id, request.correlation_id
        await self._audit(rid, cid, "running", "validated", "running", run_id=run_id)
        run_retries = 0
        for unit in request_steps(request):
            if await anyio.to_thread.run_sync(self.halted):
                return "halted", f"halt file present before step {unit}"
            params: dict[str, str | int | float | bool] = {}
            step_retries = 0
            while True:
                finished = await self._run_step(request, run_id, unit, params)
                if finished.status != "completed":
                    return "failed", f"step {unit}: job {finished.job} {finished.status}: " + (
                        finished.error or ""
                    )
                decision = await self._evaluate(request, run_id, unit, finished)
                if unit == "selfplay":
                    # Advisory only: promotion is Chapter 13's, never the watcher's.
                    break
                verdict = judge(
                    as_step_decision(decision.answer),
                    step_retries=step_retries,
                    run_retries=run_retries,
                    limits=self.limits,
                )
                await self._record_step(
                    request, run_id, unit, step_retries, verdict.action, decision, verdict.reason
                )
                if verdict.action == "proceed":
                    break
                if verdict.action == "escalate":
                    return "escalated", f"step {unit}: {verdict.reason}"
                step_retries += 1
                run_retries += 1
                params = {**params, **as_step_decision(decision.answer).suggested_params}
        return "completed", "all steps passed"

    async def _run_step(
        self, request: Request, run_id: str, unit: str, params: dict[str, str | int | float | bool]
    ) -> JobFinished:
        job = self.config.step_jobs.get(unit, "noop")
        await self.services.audit(
            actor=self.name,
            entity="step",
            entity_id=f"{run_id}:{unit}",
            event="dispatched",
            correlation_id=request.correlation_id,
            to_state="dispatched",
            job=job,
            request_id=request.request_id,
        )
        message = RunJob(
            correlation_id=request.correlation_id,
            sender=self.name,
            job=job,
            params=params,
            run_id=run_id,
            step=unit,
        )
        return await self.system.ref(GPU).ask(message, timeout=86400, expect=JobFinished)

    async def _evaluate(
        self, request: Request, run_id: str, unit: str, finished: JobFinished
    ) -> Decision:
        cid = request.correlation_id
        built = await self.system.ref(BUNDLE).ask(
            BuildBundle(
                correlation_id=cid,
                sender=self.name,
                step_id=unit_bundle_id(unit),
                results=finished.result or {},
                run_id=run_id,
            ),
            timeout=60,
            expect=BundleBuilt,
        )
        decision = await self.system.ref(LLM).ask(
            Decide(
                correlation_id=cid,
                sender=self.name,
                prompt=built.prompt,
                grammar_name=built.grammar_name,
                metrics=flat_metrics(finished.result),
                thresholds=built.thresholds,
            ),
            timeout=600,
            expect=Decision,
        )
        await self.services.audit(
            actor=self.name,
            entity="decision",
            entity_id=f"{run_id}:{unit}",
            event="advised",
            correlation_id=cid,
            source=decision.source,
            grammar=decision.grammar_name,
            answer=decision.answer.model_dump(mode="json"),
        )
        return decision

    async def _record_step(
        self,
        request: Request,
        run_id: str,
        unit: str,
        attempt: int,
        action: str,
        decision: Decision,
        reason: str,
    ) -> None:
        answer = decision.answer
        confidence = as_step_decision(answer).confidence
        now = datetime.now(UTC).isoformat()

        def record(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO step_outcomes (run_id, request_id, step_id, attempt, status, action,"
                " confidence, summary, correlation_id, recorded_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    request.request_id,
                    unit_bundle_id(unit),
                    attempt,
                    "evaluated",
                    action,
                    confidence,
                    reason,
                    request.correlation_id,
                    now,
                ),
            )

        await self.services.store.run(record)
        await self.services.audit(
            actor=self.name,
            entity="step",
            entity_id=f"{run_id}:{unit}",
            event=action,
            correlation_id=request.correlation_id,
            from_state="evaluated",
            to_state=action,
            attempt=attempt,
            reason=reason,
            source=decision.source,
        )
