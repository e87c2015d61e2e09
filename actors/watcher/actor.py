"""WatcherActor (it enforces): takes requests from the spool, runs them, audits every move.

For each request: claim → validate → (Chapter 13's requests: a pre-validation the advisor's
verdict of which is obeyed) → run each unit through `Execution` → archive the request in a
terminal folder with its outcome in the store. The kill switch (a halt file) is checked before a
request starts and between units; `halt --now` also cancels the running job. An escalation
halts the watcher, records the evidence, runs the notification command, and says how to resume;
`resume` continues the request where it stopped.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import watchfiles

from actors.runtime import Actor, handles
from actors.services import GPU, TRIGGER
from actors.watcher import outcomes, spool
from actors.watcher import progress as progress_store
from actors.watcher.execution import Execution, Outcome
from actors.watcher.halt import HaltState, read_halt, resume_command, write_halt
from actors.watcher.reconcile import reconcile_audit
from messages.base import new_id
from messages.dispatch import CancelJobs
from messages.errors import ActorError, StoppedForShutdownError
from messages.requests import ProcessSpool, RequestFiled, RequestFinished, SupersedeRequest

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from actors.services import Services
    from actors.watcher.spool import Request

_TERMINAL_FOLDER: dict[str, spool.Terminal] = {
    "completed": "done",
    "rejected": "rejected",
    "failed": "failed",
}
# A request older than this is stale: the world it was filed about has moved on.
MAX_REQUEST_AGE = timedelta(hours=24)
# How often the halt file is looked at: `halt --now` cancels a running job within this.
HALT_POLL_S = 0.5


class WatcherActor(Actor):
    """Processes the spool one request at a time, in arrival order."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.paths = services.paths
        self.config = services.settings.watcher
        self.halt_file = services.paths.root / self.config.halt_file

    async def on_start(self) -> None:
        await anyio.to_thread.run_sync(self.paths.ensure)
        await self._recover()
        await reconcile_audit(self.services, self.name)  # exactly-once terminal audit
        if not self.services.once:
            self.start_soon(self._watch)
            self.start_soon(self._rescan)
            self.start_soon(self._watch_halt)
        await self.ref.tell(ProcessSpool())

    async def _watch(self) -> None:
        folder = self.paths.spool_dir("new")
        # rust_timeout: a cancelled awatch waits for its thread to return; 0.5 s bounds how
        # long that delays shutdown (the default, 5 s, used up a whole shutdown phase).
        async for _changes in watchfiles.awatch(folder, step=1, debounce=10, rust_timeout=500):
            await self.ref.tell(ProcessSpool())

    async def _rescan(self) -> None:
        while True:
            await anyio.sleep(self.config.rescan_interval_s)
            await self.ref.tell(ProcessSpool())

    async def _watch_halt(self) -> None:
        """Cancel the running job on `halt --now`; pick the spool up again on `resume`."""
        was: HaltState | None = await anyio.to_thread.run_sync(read_halt, self.halt_file)
        cancelled = False
        while True:
            await anyio.sleep(HALT_POLL_S)
            now = await anyio.to_thread.run_sync(read_halt, self.halt_file)
            if now is not None and now.now and not cancelled:
                cancelled = True
                self.log.warning("watcher.halt_now", reason=now.reason)
                await self.system.ref(GPU).tell(CancelJobs(reason=f"halt --now: {now.reason}"))
            if now is None and was is not None:
                cancelled = False
                self.log.info("watcher.resumed")
                await self.ref.tell(ProcessSpool())
            was = now

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
        return await self.services.store.run(lambda conn: outcomes.status_of(conn, request_id))

    async def _started(self, request_id: str) -> bool:
        return await self.services.store.run(lambda conn: progress_store.started(conn, request_id))

    # -- intake -------------------------------------------------------------------------------

    @handles(RequestFiled)
    async def on_request_filed(self, msg: RequestFiled) -> None:
        """A request was filed: process the spool (it holds the truth, the nudge only wakes)."""
        await self._process_pending()

    @handles(ProcessSpool)
    async def on_process_spool(self, msg: ProcessSpool) -> None:
        """Process every request waiting in `new/`."""
        await self._process_pending()

    async def _process_pending(self) -> None:
        for path in await anyio.to_thread.run_sync(spool.pending, self.paths):
            if self.system.stop_requested:
                return  # nothing new is claimed once the system is stopping
            halt = await anyio.to_thread.run_sync(read_halt, self.halt_file)
            if halt is not None:
                self.log.warning(
                    "watcher.halted", reason=halt.reason, resume=resume_command(self.paths.root)
                )
                return
            await self._process(path)

    async def _audit(
        self, request_id: str, cid: str, event: str, frm: str | None, to: str | None, **detail: Any
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
        try:
            request = await anyio.to_thread.run_sync(
                spool.parse, claimed, self.services.settings.spool
            )
        except spool.SpoolError as exc:
            cid = new_id()
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
        resumed = await self._started(request_id)
        age = datetime.now(UTC) - request.created_at
        if age > MAX_REQUEST_AGE and not resumed:
            detail = f"created {age.total_seconds() / 3600:.1f} h ago; the limit is 24 h"
            await self._reject(
                claimed, request_id, cid, "request expired", detail, request.request_type
            )
            return
        problem = await anyio.to_thread.run_sync(spool.artifact_problem, self.paths, request)
        if problem is not None and not resumed:
            await self._reject(
                claimed,
                request_id,
                cid,
                "referenced artifact missing",
                problem,
                request.request_type,
            )
            return
        if not resumed:
            await self._audit(
                request_id,
                cid,
                "validated",
                "claimed",
                "validated",
                request_type=request.request_type,
            )
        execution = Execution(self.system, self.services, self.log, self.name, request)
        try:
            outcome = await execution.run()
        except StoppedForShutdownError as exc:
            # Not an outcome: the request stays claimed, with its progress, and is requeued
            # by `_recover` at the next start (its interrupted unit runs again).
            self.log.info("request.left_for_restart", request_id=request_id, reason=str(exc))
            return
        except ActorError as exc:
            # Another actor did not answer (timeout, stopped, refused): the request fails with
            # the reason; the watcher itself carries on with the next one.
            self.log.exception("request.error", request_id=request_id)
            outcome = Outcome("failed", f"{type(exc).__name__}: {exc}")
        if outcome.status in {"halted", "escalated"}:
            await self._pause(claimed, request, outcome)
        else:
            await self._finish(claimed, request, outcome)

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
        def record(conn: sqlite3.Connection) -> None:
            fresh = outcomes.record(
                conn,
                request_id=request_id,
                request_type=request_type,
                status=status,
                correlation_id=cid,
                reason=reason,
                detail=detail,
            )
            if fresh and status == "failed":
                outcomes.open_incident(
                    conn,
                    severity="medium",
                    source=f"request {request_id}",
                    summary=f"{request_type} failed: {reason}",
                    correlation_id=cid,
                )

        await self.services.store.transaction(record)

    async def _finish(self, path: Path, request: Request, outcome: Outcome) -> None:
        rid, cid, status = request.request_id, request.correlation_id, outcome.status
        body: dict[str, Any] = {"request_id": rid, "status": status, "reason": outcome.reason}
        if outcome.evidence:
            body["evidence"] = outcome.evidence
        # The store first: if we crash before the move, recovery archives it without a rerun.
        await self._record_outcome(rid, request.request_type, status, cid, outcome.reason, body)
        await anyio.to_thread.run_sync(
            spool.finish, self.paths, path, _TERMINAL_FOLDER[status], body
        )
        await self._audit(rid, cid, status, "running", status, reason=outcome.reason)
        self.log.info("request.finished", request_id=rid, status=status, reason=outcome.reason)
        await self._tell_trigger(request, outcome)

    async def _tell_trigger(self, request: Request, outcome: Outcome) -> None:
        """Chapter 13 hears how its request ended (or that a person now holds it)."""
        await self.system.ref(TRIGGER).tell(
            RequestFinished(
                correlation_id=request.correlation_id,
                sender=self.name,
                request_id=request.request_id,
                request_type=request.request_type,
                status=outcome.status,
                units=outcome.units,
                gpu_seconds=outcome.gpu_seconds,
                history_from=outcome.history_from or request.history_from,
                reason=outcome.reason[:2000],
            )
        )

    async def _pause(self, path: Path, request: Request, outcome: Outcome) -> None:
        """Halted: back to `new/`, waiting for `resume`. Escalated: parked in `held/` with a
        person (or, with `on_escalation = "halt"`, back to `new/` with the watcher halted)."""
        rid, cid = request.request_id, request.correlation_id
        parked = outcome.status == "escalated" and self.config.on_escalation == "park"
        if outcome.status == "escalated":
            await self._escalate(request, outcome, parked=parked)
        if parked:
            await anyio.to_thread.run_sync(spool.park, self.paths, path)
        else:
            await anyio.to_thread.run_sync(spool.requeue, self.paths, path)
        resume = resume_command(self.paths.root, rid if parked else None)
        await self._audit(
            rid,
            cid,
            outcome.status,
            "running",
            "parked" if parked else outcome.status,
            reason=outcome.reason,
            unit=outcome.unit,
            resume=resume,
        )
        self.log.warning(
            "request.paused",
            request_id=rid,
            status="parked" if parked else outcome.status,
            reason=outcome.reason,
            resume=resume,
        )
        if outcome.status == "escalated":
            await self._tell_trigger(request, outcome)

    async def _escalate(self, request: Request, outcome: Outcome, *, parked: bool) -> None:
        """Record the evidence, tell a person (if configured), say how to resume; halt the
        watcher only with `on_escalation = "halt"` (the operator's choice)."""
        rid = request.request_id
        if not parked:
            state = HaltState(
                reason=outcome.reason, halted_at=datetime.now(UTC), by="escalation", request_id=rid
            )
            await anyio.to_thread.run_sync(write_halt, self.halt_file, state)

        def record(conn: sqlite3.Connection) -> None:
            outcomes.open_incident(
                conn,
                severity="high",
                source=f"request {rid}",
                summary=f"escalated: {outcome.reason}",
                correlation_id=request.correlation_id,
            )

        await self.services.store.transaction(record)
        resume = resume_command(self.paths.root, rid if parked else None)
        await self.services.audit(
            actor=self.name,
            entity="request",
            entity_id=rid,
            event="escalation",
            correlation_id=request.correlation_id,
            to_state="parked" if parked else "halted",
            reason=outcome.reason,
            evidence=outcome.evidence or {},
            resume=resume,
        )

    @handles(SupersedeRequest)
    async def on_supersede(self, msg: SupersedeRequest) -> None:
        """A parked request gave way to a newer one of its kind: it ends, `superseded`."""
        found = await anyio.to_thread.run_sync(spool.find, self.paths, msg.request_id)
        if found is None or found[0] not in {"held", "new"}:
            self.log.info("request.supersede_ignored", request_id=msg.request_id,
                          where=None if found is None else found[0])  # fmt: skip
            return
        rid = msg.request_id
        reason = {"request_id": rid, "rule": "superseded", "detail": f"superseded by {msg.by}"}
        try:
            request_type: str = spool.parse(found[1]).request_type
        except spool.SpoolError:
            request_type = "unknown"
        await self._record_outcome(
            rid, request_type, "superseded", msg.correlation_id, f"superseded by {msg.by}", reason
        )
        await self.services.store.transaction(
            lambda conn: outcomes.resolve_incidents(conn, f"request {rid}")
        )
        await anyio.to_thread.run_sync(spool.finish, self.paths, found[1], "rejected", reason)
        await self._audit(rid, msg.correlation_id, "superseded", found[0], "superseded", by=msg.by)
        self.log.info("request.superseded", request_id=rid, by=msg.by)
