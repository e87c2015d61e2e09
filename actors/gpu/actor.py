"""GPUDispatchActor: runs registry jobs on GPU slots (local or Ray), holding the VRAM lease.

A `RunJob` is checked at once (known job, valid parameters, enough GPUs); then it runs in a
background task so several jobs can run together — one process per GPU slot for GPU jobs
and up to `gpu.max_cpu_jobs` CPU jobs — and the reply (`JobFinished`) is given when it is
over. A job that declares a shard range (the sieve's seeds) is split over the free slots;
its shards run at once, a failed one is retried on another slot up to `gpu.shard_retries`
times, and their results are merged into the one result the step's evaluation sees.
The lease (ARCHITECTURE §5) is taken for a process placed on the slot that holds the LLM and
returned in a shielded `finally`, so no path — failure, timeout, cancellation, shutdown —
can keep it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from pydantic import ValidationError

from actors.gpu import lease as lease_store
from actors.gpu import orphans
from actors.gpu.assign import check_fits
from actors.gpu.history_file import HistoryStartError, write_history
from actors.gpu.inventory import GpuInventory, detect_inventory, wait_for_free_memory
from actors.gpu.lease import LeaseError
from actors.gpu.plugins import build_registry
from actors.gpu.runners import LocalRunner, Runner, Slot, SlotPool, Task, local_slots
from actors.gpu.shards import Piece, ShardProgress, plan_pieces
from actors.ingestion.history import latest_fingerprint
from actors.runtime import Actor, handles
from actors.services import LLM
from messages.base import new_id
from messages.dispatch import CancelJobs, JobFinished, JobProgress, RunJob
from messages.errors import ConfigError, InputError, StoppedForShutdownError
from messages.lifecycle import Describe, Described
from messages.llm import ReleaseVRAM, VRAMReleased, VRAMReturned

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from pydantic import BaseModel

    from actors.gpu.registry import JobRegistry
    from actors.gpu.runner import ProcessOutcome, ProgressEvent
    from actors.gpu.spec import JobSpec
    from actors.runtime.envelope import ReplySlot
    from actors.services import Services

__all__ = ["GPUDispatchActor", "LeaseError"]


def _latest_fingerprint(conn: sqlite3.Connection) -> str | None:
    """The real history's hash-chain value: what the job's history file is a snapshot of."""
    return latest_fingerprint(conn, "real")  # the draws table's owner: ingestion.history


@dataclass
class _Plan:
    """A validated job: its pieces, and what the run needs."""

    spec: JobSpec
    params: BaseModel
    run_dir: Path
    history: Path | None
    pieces: list[Piece]

    @property
    def sharded(self) -> bool:
        return self.spec.shard is not None and len(self.pieces) > 1


class PieceFailedError(Exception):
    """A piece failed past its retries; carries the JobFinished fields."""

    def __init__(self, *, status: str, error: str, outcome: ProcessOutcome | None) -> None:
        super().__init__(error)
        self.status = status
        self.error = error
        self.outcome = outcome


class GPUDispatchActor(Actor):
    """Runs jobs from the registry; takes and always returns the VRAM lease for GPU jobs."""

    def __init__(
        self,
        services: Services,
        *,
        registry: JobRegistry | None = None,
        inventory: GpuInventory | None = None,
        runner: Runner | None = None,
    ) -> None:
        super().__init__()
        self.services = services
        self.config = services.settings.gpu
        self.registry = registry
        self.inventory = inventory
        self.runner = runner
        self.cpu_runner = LocalRunner([])
        """CPU jobs run on this machine whatever the backend (they are cheap and local)."""
        self.pool = SlotPool(())
        self._cpu_slots = anyio.CapacityLimiter(self.config.max_cpu_jobs)
        self.leases_taken = 0
        self.leases_returned = 0
        self._stops: dict[str, anyio.Event] = {}
        """One event per running job: setting it stops the job (status `cancelled`)."""
        self._running = 0
        self._shutdown = anyio.Event()
        """Set when the daemon starts to stop: every job process is stopped at once."""

    async def on_start(self) -> None:
        if self.registry is None:
            settings = self.services.settings
            self.registry = await anyio.to_thread.run_sync(build_registry, settings)
        if self.inventory is None:
            self.inventory = await anyio.to_thread.run_sync(detect_inventory)
        await self._reap_orphans()
        await self._close_abandoned_leases()
        if self.runner is None:
            self.runner = await self._make_runner()
        self.pool = SlotPool(self.runner.slots())
        self.start_soon(self._stop_jobs_on_shutdown)
        self.log.info(
            "gpu.ready",
            backend=self.runner.name,
            gpus=len(self.inventory.gpus()),
            slots=[s.key for s in self.pool_slots()],
            jobs=list(self.registry.names()),
        )

    async def _stop_jobs_on_shutdown(self) -> None:
        """At the first word of a shutdown, stop every job process (SIGTERM, SIGKILL after
        the grace): the actors ahead of this one in the shutdown order wait for their own
        phase, so the processes are gone within one phase instead of after all of them."""
        await self.system.wait_stop_requested()
        if self._running:
            self.log.warning("jobs.stop_for_shutdown", running=self._running)
        self._shutdown.set()

    async def on_stop(self) -> None:
        if self.runner is not None:
            await self.runner.aclose()

    def pool_slots(self) -> list[Slot]:
        """Every slot of the runner."""
        return self.runner.slots() if self.runner is not None else []

    async def _make_runner(self) -> Runner:
        assert self.inventory is not None
        if self.config.backend == "ray":
            from actors.gpu.ray_runner import RayRunner  # ray is the optional `cluster` extra

            return await RayRunner.connect(self.config.ray, llm_gpu=self.config.llm_gpu)
        slots = local_slots(
            self.inventory.gpus(), cpu_slots=self.config.cpu_slots, llm_gpu=self.config.llm_gpu
        )
        return LocalRunner(slots)

    async def _reap_orphans(self) -> None:
        """Job processes of a daemon that died are killed before anything new starts."""
        for pgid, job, killed in await self.services.store.transaction(orphans.reap):
            self.log.warning("job.orphan_reaped", pgid=pgid, job=job, processes=killed)

    async def _close_abandoned_leases(self) -> None:
        """Leases still out at start-up were held by a process that died: close them on record.

        Their jobs died with that process (PR_SET_PDEATHSIG, and the orphan reaping above);
        the LLM actor of this process starts with no lease out, so there is nothing to return.
        """
        for lease_id, job, cid in await self.services.store.transaction(
            lease_store.close_abandoned
        ):
            self.log.warning("lease.closed_after_crash", lease_id=lease_id, job=job)
            await self.services.audit(
                actor=self.name,
                entity="lease",
                entity_id=lease_id,
                event="closed_after_crash",
                correlation_id=cid,
                from_state="out",
                to_state="returned",
                job=job,
            )

    # -- checks -------------------------------------------------------------------------------

    def _finished(self, msg: RunJob, status: str, **fields: Any) -> JobFinished:
        return JobFinished.caused_by(
            msg, sender=self.name, job=msg.job, run_id=msg.run_id, status=status, **fields
        )

    async def _plan(self, msg: RunJob) -> _Plan:
        assert self.registry is not None
        assert self.inventory is not None
        root = self.services.paths.root
        run_dir = self.services.paths.runs / msg.run_id / f"{msg.step or msg.job}-{new_id()[:8]}"
        spec = self.registry.get(msg.job)
        if self.config.backend == "local":
            check_fits(spec, self.inventory.gpus())
        params = self.registry.validate_params(msg.job, msg.params)
        history = run_dir / "history.jsonl" if self._wants_history(spec) else None
        fingerprint = await self.services.store.run(_latest_fingerprint) if history else None
        pieces = plan_pieces(
            self.registry,
            msg.job,
            msg.params,
            state_dir=root,
            run_dir=run_dir,
            history=history,
            seed=msg.seed if spec.seed_flag is not None else None,
            fingerprint=fingerprint,
            free_slots=self.pool.free_count() or self.pool.size,
            max_shards=self.config.max_shards,
        )
        return _Plan(spec, params, run_dir, history, pieces)

    @handles(RunJob)
    async def on_run_job(self, msg: RunJob) -> JobFinished | None:
        """Validate the job request, then run it in the background; reply when it is over."""
        try:
            plan = await self._plan(msg)
        except (InputError, ConfigError, ValueError) as exc:
            self.log.warning("job.rejected", job=msg.job, error=str(exc))
            await self._audit_job(msg, "rejected", error=str(exc))
            return self._finished(msg, "rejected", error=str(exc))
        argv = plan.pieces[0].argv
        if msg.dry_run:
            summary = {
                "argv": list(argv),
                "lease": plan.spec.needs_gpu,
                "gpus": plan.spec.gpus,
                "backend": self.config.backend,
                "shards": [
                    {
                        "shard": p.index,
                        "range": list(p.bounds) if p.bounds else None,
                        "argv": list(p.argv),
                    }
                    for p in plan.pieces
                ]
                if plan.sharded
                else [],
            }
            self.log.info("job.planned", job=msg.job, **summary)
            return self._finished(msg, "planned", argv=argv, result=summary)
        slot = self.defer_reply()
        self.system.work_started()  # the job is work in flight until its reply is given
        self.start_soon(self._run, msg, plan, slot, flow=msg)
        return None

    @handles(Describe)
    async def on_describe(self, msg: Describe) -> Described:
        """GPUs, slots, running jobs and lease counts (for `status`)."""
        gpus = self.inventory.gpus() if self.inventory is not None else ()
        state = {
            "backend": self.config.backend,
            "gpus": [
                {
                    "index": g.index,
                    "name": g.name,
                    "free_mb": g.free_bytes // 2**20,
                    "total_mb": g.total_bytes // 2**20,
                }
                for g in gpus
            ],
            "slots": [
                {"slot": s.key, "node": s.node, "gpu": s.gpu_label, "llm": s.llm}
                for s in self.pool_slots()
            ],
            "free_slots": self.pool.free_count(),
            "running_jobs": self._running,
            "leases_taken": self.leases_taken,
            "leases_returned": self.leases_returned,
        }
        return Described.caused_by(msg, sender=self.name, actor=self.name, state=state)

    @handles(CancelJobs)
    async def on_cancel_jobs(self, msg: CancelJobs) -> int:
        """Stop every running job (their process groups are killed); returns how many."""
        for stop in self._stops.values():
            stop.set()
        self.log.warning("jobs.cancel", reason=msg.reason, running=len(self._stops))
        return len(self._stops)

    def _wants_history(self, spec: JobSpec) -> bool:
        return spec.history_flag is not None or any("{history}" in a for a in spec.argv)

    # -- running ------------------------------------------------------------------------------

    async def _run(self, msg: RunJob, plan: _Plan, slot: ReplySlot | None) -> None:
        argv = plan.pieces[0].argv
        finished = self._finished(msg, "cancelled", argv=argv, error="cancelled")
        stop = self._stops.setdefault(msg.message_id, anyio.Event())
        interrupted: StoppedForShutdownError | None = None
        self._running += 1
        try:
            finished = await self._run_guarded(msg, plan, stop)
        except StoppedForShutdownError as exc:
            interrupted = exc  # no verdict: the asker leaves its request for the restart
        except Exception as exc:
            self.log.exception("job.error", job=msg.job)
            finished = self._finished(msg, "failed", argv=argv, error=repr(exc))
        finally:
            self._running -= 1
            self._stops.pop(msg.message_id, None)
            if slot is not None:
                if interrupted is not None:
                    slot.fail(interrupted)
                else:
                    slot.set(finished)
            self.system.work_finished()

    async def _run_guarded(self, msg: RunJob, plan: _Plan, stop: anyio.Event) -> JobFinished:
        argv = plan.pieces[0].argv
        dirs = [plan.run_dir, *(p.state_dir for p in plan.pieces if p.state_dir is not None)]

        def make_dirs() -> None:
            for folder in dirs:
                folder.mkdir(parents=True, exist_ok=True)

        await anyio.to_thread.run_sync(make_dirs)
        if plan.history is not None:
            history = plan.history

            def materialise(conn: sqlite3.Connection) -> tuple[int, str]:
                return write_history(conn, history, start_draw_id=msg.history_from)

            try:
                count, digest = await self.services.store.run(materialise)
            except HistoryStartError as exc:
                return self._finished(msg, "rejected", argv=argv, error=str(exc))
            self.log.info(
                "job.history", job=msg.job, draws=count, sha256=digest, start=msg.history_from
            )
        progress = ShardProgress(len(plan.pieces))
        placements: list[dict[str, Any]] = []
        started = anyio.current_time()
        retries = self.config.shard_retries if plan.sharded else 0
        failure: PieceFailedError | None = None
        last: ProcessOutcome | None = None
        halt_others = anyio.Event()

        async def one(piece: Piece) -> None:
            nonlocal failure, last
            try:
                last = await self._run_piece(
                    msg, plan, piece, stop, halt_others, progress, placements, retries
                )
            except PieceFailedError as exc:
                if failure is None:
                    failure = exc
                halt_others.set()

        async with anyio.create_task_group() as tg:
            for piece in plan.pieces:
                tg.start_soon(one, piece)
        if self._shutdown.is_set():
            # Stopped by the shutdown, not by the job or a person: no verdict is given, so the
            # request stays in progress and its unit runs again after the restart. The asker
            # hears so at once (before, it waited out its whole shutdown phase for a reply).
            self.log.info("job.stopped_for_shutdown", job=msg.job)
            reason = f"job {msg.job} was stopped by the shutdown; it runs again after the restart"
            raise StoppedForShutdownError(reason)
        duration = anyio.current_time() - started
        common: dict[str, Any] = {
            "argv": argv,
            "duration_s": duration,
            "placements": tuple(placements),
        }
        if stop.is_set():
            finished = self._finished(msg, "cancelled", error="cancelled", **common)
            await self._audit_job(msg, "cancelled", duration_s=round(duration, 3))
            return finished
        if failure is not None:
            outcome = failure.outcome
            finished = self._finished(
                msg,
                failure.status,
                error=failure.error,
                exit_code=None if outcome is None else outcome.exit_code,
                stderr_tail=("" if outcome is None else outcome.stderr_tail)[-4000:],
                **common,
            )
            self.log.info("job.finished", job=msg.job, status=failure.status, error=failure.error)
            await self._audit_job(
                msg,
                failure.status,
                error=failure.error,
                exit_code=finished.exit_code,
                duration_s=round(duration, 3),
                placements=placements,
            )
            return finished
        try:
            result = await self._merge(plan) if plan.sharded else plan.pieces[0].result
        except (InputError, ValueError, ValidationError, OSError) as exc:
            error = f"shard results do not merge: {exc}"
            await self._audit_job(msg, "failed", error=error, placements=placements)
            return self._finished(msg, "failed", error=error, **common)
        assert result is not None
        finished = self._finished(
            msg,
            "completed",
            exit_code=0,
            result=result.model_dump(mode="json"),
            stderr_tail="" if last is None else last.stderr_tail[-4000:],
            **common,
        )
        self.log.info(
            "job.finished",
            job=msg.job,
            status="completed",
            shards=len(plan.pieces),
            duration_s=round(duration, 3),
        )
        await self._audit_job(
            msg,
            "completed",
            exit_code=0,
            duration_s=round(duration, 3),
            shards=len(plan.pieces),
            placements=placements,
        )
        return finished

    async def _merge(self, plan: _Plan) -> BaseModel:
        assert plan.spec.shard is not None
        merger = plan.spec.shard.merger()
        results = [p.result for p in plan.pieces]
        dirs = [p.state_dir for p in plan.pieces]
        root = self.services.paths.root
        model = plan.spec.result_class()

        def merge() -> BaseModel:
            merged = merger(results, dirs, root, plan.params)
            return model.model_validate(merged.model_dump(mode="json"))

        return await anyio.to_thread.run_sync(merge)

    async def _run_piece(
        self,
        msg: RunJob,
        plan: _Plan,
        piece: Piece,
        stop: anyio.Event,
        halt_others: anyio.Event,
        progress: ShardProgress,
        placements: list[dict[str, Any]],
        retries: int,
    ) -> ProcessOutcome:
        """Run one piece, retrying it on another slot up to `retries` times."""
        spec = plan.spec
        label = self._label(plan, piece)
        while True:
            piece.attempts += 1
            if piece.attempts > 1:
                self._emit_progress(msg, *progress.restart(piece.index), f"{label} retried")
            outcome, slot, lease_error = await self._attempt(
                msg, plan, piece, stop, halt_others, progress
            )
            placement: dict[str, Any] = {
                "shard": piece.index,
                "shards": len(plan.pieces),
                "range": list(piece.bounds) if piece.bounds else None,
                "node": slot.node if slot else "",
                "gpu": slot.gpu_label if slot else "",
                "attempt": piece.attempts,
            }
            if outcome is None:  # stopped before it started, or the lease failed
                placement["status"] = "failed" if lease_error else "cancelled"
                placements.append(placement)
                if lease_error is not None:
                    raise PieceFailedError(status="failed", error=lease_error, outcome=None)
                return _empty_outcome()
            status, error = await self._judge(spec, piece, outcome)
            placement["status"] = status
            placement["duration_s"] = round(outcome.duration_s, 4)
            if outcome.where:
                placement["ran"] = outcome.where
            placements.append(placement)
            if status == "cancelled" or stop.is_set() or halt_others.is_set():
                return outcome
            if self._shutdown.is_set():
                return outcome
            if status == "completed":
                return outcome
            if slot is not None:
                piece.failed_on.append(slot.key)
                if outcome.where.get("error"):
                    # Lost with its worker or node: the retry goes to another node if it can.
                    piece.failed_on.extend(s.key for s in self.pool_slots() if s.node == slot.node)
            if piece.attempts > retries:
                if plan.sharded:
                    said = [line for line in outcome.stderr_tail.splitlines() if line.strip()]
                    where = f"{slot.node} gpu {slot.gpu_label}" if slot else "?"
                    error = f"{label} failed {piece.attempts} time(s), last on {where}: {error}"
                    if said:
                        error += f"; it said: {said[-1][:300]}"
                raise PieceFailedError(status=status, error=error, outcome=outcome)
            self.log.warning(
                "job.shard_retry", job=msg.job, shard=label, attempt=piece.attempts, error=error
            )
            await self._audit_job(
                msg, "shard_retried", shard=label, attempt=piece.attempts, error=error
            )

    def _label(self, plan: _Plan, piece: Piece) -> str:
        if not plan.sharded or plan.spec.shard is None or piece.bounds is None:
            return f"job {plan.spec.name}"
        shard = plan.spec.shard
        return (
            f"shard {piece.index + 1}/{len(plan.pieces)} "
            f"({shard.start}={piece.bounds[0]}, {shard.end}={piece.bounds[1]})"
        )

    async def _judge(self, spec: JobSpec, piece: Piece, outcome: ProcessOutcome) -> tuple[str, str]:
        """The piece's status and error; reads and validates its result when it completed."""
        assert self.registry is not None
        if outcome.status == "completed":
            try:
                piece.result = await anyio.to_thread.run_sync(
                    self.registry.validate_result, spec.name, piece.result_path
                )
            except InputError as exc:
                return "invalid_result", str(exc)
            return "completed", ""
        if outcome.status == "failed":
            return "failed", f"exit code {outcome.exit_code}"
        if outcome.status == "timed_out":
            return "timed_out", f"timed out after {spec.timeout_s:g} s"
        return "cancelled", "cancelled"

    async def _attempt(
        self,
        msg: RunJob,
        plan: _Plan,
        piece: Piece,
        stop: anyio.Event,
        halt_others: anyio.Event,
        progress: ShardProgress,
    ) -> tuple[ProcessOutcome | None, Slot | None, str | None]:
        """One run of a piece on one slot: (outcome or None when stopped, slot, lease error)."""
        spec = plan.spec
        if not spec.needs_gpu:
            async with self._cpu_slots:
                if stop.is_set() or self._shutdown.is_set():
                    return None, None, None
                outcome = await self._launch(msg, plan, piece, None, stop, halt_others, progress)
                return outcome, None, None
        if self.runner is not None and self.runner.name != "local":
            # A cluster changes: nodes join and leave (a lost node's slots are gone).
            self.pool.replace(await anyio.to_thread.run_sync(self.runner.slots))
        got: Slot | None = None
        with anyio.CancelScope() as waiting:
            # Waiting for a slot ends when the job is stopped (halt --now) or a sibling failed.
            async def cancel_wait() -> None:
                await _first(stop, halt_others, self._shutdown)
                waiting.cancel()

            async with anyio.create_task_group() as tg:
                tg.start_soon(cancel_wait)
                got = await self.pool.acquire(piece.failed_on)
                tg.cancel_scope.cancel()
        if got is None or stop.is_set() or halt_others.is_set() or self._shutdown.is_set():
            if got is not None:
                await self.pool.release(got)
            return None, None, None
        slot = got
        try:
            if not slot.llm:
                outcome = await self._launch(msg, plan, piece, slot, stop, halt_others, progress)
                return outcome, slot, None
            lease_id = new_id()
            await self._lease_taken(msg, lease_id, slot)
            try:
                try:
                    await self._prepare_gpu(msg, spec, lease_id, slot)
                except LeaseError as exc:
                    return None, slot, str(exc)
                outcome = await self._launch(
                    msg, plan, piece, slot, stop, halt_others, progress, lease_id=lease_id
                )
                return outcome, slot, None
            finally:
                with anyio.CancelScope(shield=True):
                    await self._lease_returned(msg, lease_id)
        finally:
            await self.pool.release(slot)

    async def _prepare_gpu(self, msg: RunJob, spec: JobSpec, lease_id: str, slot: Slot) -> None:
        deadline = self.services.settings.llm.release_deadline_s
        request = ReleaseVRAM.caused_by(
            msg, sender=self.name, lease_id=lease_id, reason=f"job {spec.name}", deadline_s=deadline
        )
        try:
            released = await self.system.ref(LLM).ask(
                request, timeout=deadline + 1, expect=VRAMReleased
            )
            self.log.info("lease.released", lease_id=lease_id, freed_bytes=released.freed_bytes)
        except Exception as exc:  # noqa: BLE001  (whatever the LLM's handler raised)
            # No usable answer (timed out, stopped, or its handler failed): go on only if the
            # memory turns out to be free (checked below); the lease is returned regardless.
            self.log.warning("lease.llm_no_answer", lease_id=lease_id, error=repr(exc))
        assert self.inventory is not None
        if slot.gpu is None or self.config.backend != "local":
            return
        need = spec.vram_mb * 1024 * 1024
        ok = await wait_for_free_memory(
            self.inventory, slot.gpu, need, deadline_s=self.config.vram_wait_s, poll_s=0.25
        )
        if not ok:
            msg_text = (
                f"GPU {slot.gpu} did not have {spec.vram_mb} MB free within "
                f"{self.config.vram_wait_s:g} s of the lease"
            )
            raise LeaseError(msg_text)

    async def _lease_taken(self, msg: RunJob, lease_id: str, slot: Slot) -> None:
        self.leases_taken += 1

        def record(conn: sqlite3.Connection) -> None:
            lease_store.record_taken(
                conn,
                lease_id,
                job=msg.job,
                correlation_id=msg.correlation_id,
                node=slot.node,
                gpu=slot.gpu_label,
            )

        await self.services.store.run(record)
        await self.services.audit(
            actor=self.name,
            entity="lease",
            entity_id=lease_id,
            event="taken",
            correlation_id=msg.correlation_id,
            to_state="out",
            job=msg.job,
            run_id=msg.run_id,
            node=slot.node,
            gpu=slot.gpu_label,
        )

    async def _lease_returned(self, msg: RunJob, lease_id: str) -> None:
        await self.system.ref(LLM).tell(
            VRAMReturned.caused_by(msg, sender=self.name, lease_id=lease_id)
        )
        self.leases_returned += 1

        def record(conn: sqlite3.Connection) -> None:
            lease_store.record_returned(conn, lease_id)

        await self.services.store.run(record)
        await self.services.audit(
            actor=self.name,
            entity="lease",
            entity_id=lease_id,
            event="returned",
            correlation_id=msg.correlation_id,
            from_state="out",
            to_state="returned",
            job=msg.job,
        )

    def _emit_progress(self, msg: RunJob, done: int, total: int, message: str) -> None:
        if self.services.progress is not None:
            self.services.progress(
                JobProgress.caused_by(
                    msg,
                    sender=self.name,
                    job=msg.job,
                    run_id=msg.run_id,
                    done=done,
                    total=total,
                    message=message,
                )
            )

    def _grace_s(self) -> float:
        # At shutdown the stop must fit in the GPU actor's phase: SIGTERM, then SIGKILL after
        # at most half the phase, so a job ignoring SIGTERM cannot stretch the shutdown.
        return min(self.config.kill_grace_s, self.services.settings.kernel.phase_timeout_s / 2)

    async def _launch(
        self,
        msg: RunJob,
        plan: _Plan,
        piece: Piece,
        slot: Slot | None,
        stop: anyio.Event,
        halt_others: anyio.Event,
        progress: ShardProgress,
        *,
        lease_id: str | None = None,
    ) -> ProcessOutcome:
        assert self.registry is not None
        assert self.runner is not None
        spec = plan.spec
        env = self.registry.build_env(msg.job, base=dict(os.environ))
        if slot is None and self.inventory is not None and self.inventory.gpus():
            env["CUDA_VISIBLE_DEVICES"] = ""  # a CPU job must not take GPU memory unleased
        workdir = self.registry.workdir(msg.job, self.services.paths.root)
        await anyio.to_thread.run_sync(lambda: workdir.mkdir(parents=True, exist_ok=True))
        label = self._label(plan, piece)
        node = slot.node if slot else "local"
        gpu = slot.gpu_label if slot else "none"

        async def on_progress(event: ProgressEvent) -> None:
            done, total = progress.update(piece.index, event.done, event.total)
            self.log.info(
                "job.progress",
                job=msg.job,
                shard=piece.index,
                done=event.done,
                total=event.total,
                message=event.message,
            )
            text = event.message or ""
            if plan.sharded:
                text = f"{len(plan.pieces)} shards: {text}".rstrip(": ")
            self._emit_progress(msg, done, total, text)

        pid_seen: list[int] = []

        async def started(pid: int) -> None:
            pid_seen.append(pid)
            if runner.name == "local":

                def remember(conn: sqlite3.Connection) -> None:
                    orphans.record(conn, pid, job=msg.job, run_id=msg.run_id)

                await self.services.store.run(remember)
            self.log.info(
                "job.started", job=msg.job, pid=pid, lease_id=lease_id, node=node, gpu=gpu
            )
            await self.services.audit(
                actor=self.name,
                entity="step",
                entity_id=f"{msg.run_id}:{msg.step or msg.job}",
                event="job_started",
                correlation_id=msg.correlation_id,
                to_state="running",
                job=msg.job,
                pid=pid,
                lease_id=lease_id,
                node=node,
                gpu=gpu,
                shard=label,
                attempt=piece.attempts,
                backend=runner.name,
            )

        task = Task(
            job=msg.job,
            argv=piece.argv,
            cwd=workdir,
            env=env,
            timeout_s=spec.timeout_s,
            shard=piece.index,
            shards=len(plan.pieces),
            state_dir=self.services.paths.root,
            outputs=(piece.state_dir or self.services.paths.root / "artifacts", plan.run_dir),
            env_extra=spec.env,
        )
        runner = self.runner if slot is not None else self.cpu_runner
        local_stop = anyio.Event()

        async def relay() -> None:
            await _first(stop, halt_others, self._shutdown)
            local_stop.set()

        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(relay)
                outcome = await runner.run(
                    task,
                    slot or Slot("local/cpu-job", "local", None, llm=False),
                    grace_s=self._grace_s(),
                    tail_bytes=self.config.output_tail_kb * 1024,
                    on_progress=on_progress,
                    on_started=started,
                    stop=local_stop,
                )
                tg.cancel_scope.cancel()
        finally:
            if pid_seen and runner.name == "local":
                with anyio.CancelScope(shield=True):

                    def drop(conn: sqlite3.Connection) -> None:
                        orphans.forget(conn, pid_seen[0])

                    await self.services.store.run(drop)
        self.log.info(
            "job.process_ended",
            job=msg.job,
            shard=label,
            status=outcome.status,
            exit_code=outcome.exit_code,
            duration_s=round(outcome.duration_s, 3),
        )
        if outcome.status == "completed" and outcome.progress_events == 0:
            # No live lines (a Ray task, a quiet job): a finished piece counts as done.
            self._emit_progress(msg, *progress.finish(piece.index), f"{label} done")
        return outcome

    async def _audit_job(self, msg: RunJob, status: str, **detail: Any) -> None:
        await self.services.audit(
            actor=self.name,
            entity="step",
            entity_id=f"{msg.run_id}:{msg.step or msg.job}",
            event=f"job_{status}",
            correlation_id=msg.correlation_id,
            from_state="running",
            to_state=status,
            job=msg.job,
            **detail,
        )


async def _first(*events: anyio.Event) -> None:
    """Return as soon as any of `events` is set."""
    async with anyio.create_task_group() as tg:

        async def wait(event: anyio.Event) -> None:
            await event.wait()
            tg.cancel_scope.cancel()

        for event in events:
            tg.start_soon(wait, event)


def _empty_outcome() -> ProcessOutcome:
    from actors.gpu.runner import ProcessOutcome

    return ProcessOutcome(
        status="cancelled",
        exit_code=None,
        duration_s=0.0,
        pid=0,
        stdout_tail="",
        stderr_tail="",
        progress_events=0,
        stdout_bytes=0,
        stderr_bytes=0,
    )
