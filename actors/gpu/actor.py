"""GPUDispatchActor: runs registry jobs as supervised processes, holding the VRAM lease.

A `RunJob` is checked at once (known job, valid parameters, enough GPUs); then it runs in a
background task so several jobs can run together — up to one per GPU for GPU jobs (one at a
time when the machine has none) and up to `gpu.max_cpu_jobs` CPU jobs — and the reply
(`JobFinished`) is given when the process is over. The lease (ARCHITECTURE §5) is returned in
a shielded `finally`, so no path — failure, timeout, cancellation, shutdown — can keep it.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from actors.gpu.assign import check_fits
from actors.gpu.history_file import HistoryStartError, write_history
from actors.gpu.inventory import GpuInventory, detect_inventory, wait_for_free_memory
from actors.gpu.registry import JobRegistry, JobSpec, default_registry
from actors.gpu.runner import ProcessOutcome, ProgressEvent, run_process
from actors.ingestion.history import latest_fingerprint
from actors.runtime import Actor, handles
from actors.services import LLM
from messages.base import new_id
from messages.dispatch import CancelJobs, JobFinished, JobProgress, RunJob
from messages.errors import ConfigError, InputError, WatcherError
from messages.lifecycle import Describe, Described
from messages.llm import ReleaseVRAM, VRAMReleased, VRAMReturned

if TYPE_CHECKING:
    import sqlite3
    from pathlib import Path

    from actors.runtime.envelope import ReplySlot
    from actors.services import Services


class LeaseError(WatcherError):
    """The GPU could not be made ready for a job (memory not freed before the deadline)."""


def _latest_fingerprint(conn: sqlite3.Connection) -> str | None:
    """The real history's hash-chain value: what the job's history file is a snapshot of."""
    return latest_fingerprint(conn, "real")  # the draws table's owner: ingestion.history


def _now() -> str:
    return datetime.now(UTC).isoformat()


class GPUDispatchActor(Actor):
    """Runs jobs from the registry; takes and always returns the VRAM lease for GPU jobs."""

    def __init__(
        self,
        services: Services,
        *,
        registry: JobRegistry | None = None,
        inventory: GpuInventory | None = None,
    ) -> None:
        super().__init__()
        self.services = services
        self.config = services.settings.gpu
        self.registry = registry
        self.inventory = inventory
        self._free_gpus: list[int] = []
        self._gpu_available = anyio.Condition()
        self._cpu_slots = anyio.CapacityLimiter(self.config.max_cpu_jobs)
        self.leases_taken = 0
        self.leases_returned = 0
        self._stops: dict[str, anyio.Event] = {}
        """One event per running job: setting it stops the job (status `cancelled`)."""

    async def on_start(self) -> None:
        if self.registry is None:
            self.registry = await anyio.to_thread.run_sync(default_registry)
        if self.inventory is None:
            self.inventory = await anyio.to_thread.run_sync(detect_inventory)
        await self._close_abandoned_leases()
        gpus = self.inventory.gpus()
        # No GPU: GPU jobs fall back to the CPU, one at a time, still under the lease.
        self._free_gpus = [gpu.index for gpu in gpus] or [-1]
        self.log.info("gpu.ready", gpus=len(gpus), jobs=list(self.registry.names()))

    async def _close_abandoned_leases(self) -> None:
        """Leases still out at start-up were held by a process that died: close them on record.

        Their jobs died with that process's session or were killed by an operator; the LLM
        actor of this process starts with no lease out, so there is nothing to hand back.
        """

        def close(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
            rows = conn.execute(
                "SELECT lease_id, job, correlation_id FROM leases WHERE returned_at IS NULL"
            ).fetchall()
            conn.execute(
                "UPDATE leases SET returned_at = ?, outcome = 'closed after a crash'"
                " WHERE returned_at IS NULL",
                (_now(),),
            )
            return [(str(r[0]), str(r[1]), str(r[2])) for r in rows]

        for lease_id, job, cid in await self.services.store.transaction(close):
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

    @handles(RunJob)
    async def on_run_job(self, msg: RunJob) -> JobFinished | None:
        """Validate the job request, then run it in the background; reply when it is over."""
        assert self.registry is not None
        run_dir = self.services.paths.runs / msg.run_id / f"{msg.step or msg.job}-{new_id()[:8]}"
        try:
            spec = self.registry.get(msg.job)
            assert self.inventory is not None
            check_fits(spec, self.inventory.gpus())
            history = run_dir / "history.jsonl" if self._wants_history(spec) else None
            fingerprint = await self.services.store.run(_latest_fingerprint) if history else None
            argv = self.registry.build_argv(
                msg.job,
                msg.params,
                state_dir=self.services.paths.root,
                result_path=run_dir / "result.json",
                history_path=history,
                history_fingerprint=fingerprint,
            )
        except (InputError, ConfigError) as exc:
            self.log.warning("job.rejected", job=msg.job, error=str(exc))
            await self._audit_job(msg, "rejected", error=str(exc))
            return self._finished(msg, "rejected", error=str(exc))
        if msg.dry_run:
            plan = {"argv": argv, "lease": spec.needs_gpu, "gpus": spec.gpus}
            self.log.info("job.planned", job=msg.job, **plan)
            return self._finished(msg, "planned", argv=tuple(argv), result=plan)
        slot = self.defer_reply()
        self.system.work_started()  # the job is work in flight until its reply is given
        self.start_soon(self._run, msg, spec, argv, run_dir, history, slot, flow=msg)
        return None

    @handles(Describe)
    async def on_describe(self, msg: Describe) -> Described:
        """GPUs, running jobs and lease counts (for `status`)."""
        gpus = self.inventory.gpus() if self.inventory is not None else ()
        state = {
            "gpus": [
                {
                    "index": g.index,
                    "name": g.name,
                    "free_mb": g.free_bytes // 2**20,
                    "total_mb": g.total_bytes // 2**20,
                }
                for g in gpus
            ],
            "running_jobs": len(self._stops),
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

    async def _run(
        self,
        msg: RunJob,
        spec: JobSpec,
        argv: list[str],
        run_dir: Path,
        history: Path | None,
        slot: ReplySlot | None,
    ) -> None:
        finished = self._finished(msg, "cancelled", argv=tuple(argv), error="cancelled")
        try:
            finished = await self._run_guarded(msg, spec, argv, run_dir, history)
        except Exception as exc:
            self.log.exception("job.error", job=msg.job)
            finished = self._finished(msg, "failed", argv=tuple(argv), error=repr(exc))
        finally:
            if slot is not None:
                slot.set(finished)
            self.system.work_finished()

    async def _run_guarded(
        self, msg: RunJob, spec: JobSpec, argv: list[str], run_dir: Path, history: Path | None
    ) -> JobFinished:
        await anyio.to_thread.run_sync(lambda: run_dir.mkdir(parents=True, exist_ok=True))
        if history is not None:

            def materialise(conn: sqlite3.Connection) -> tuple[int, str]:
                return write_history(conn, history, start_draw_id=msg.history_from)

            try:
                count, digest = await self.services.store.run(materialise)
            except HistoryStartError as exc:
                return self._finished(msg, "rejected", argv=tuple(argv), error=str(exc))
            self.log.info(
                "job.history", job=msg.job, draws=count, sha256=digest, start=msg.history_from
            )
        outcome: ProcessOutcome | JobFinished
        if not spec.needs_gpu:
            async with self._cpu_slots:
                outcome = await self._launch(msg, spec, argv, run_dir, gpu=None)
        else:
            gpu = await self._acquire_gpu()
            try:
                outcome = await self._with_lease(msg, spec, argv, run_dir, gpu)
            finally:
                await self._release_gpu(gpu)
        if isinstance(outcome, JobFinished):
            return outcome
        return await self._conclude(msg, spec, argv, run_dir, outcome)

    async def _acquire_gpu(self) -> int:
        async with self._gpu_available:
            while not self._free_gpus:
                await self._gpu_available.wait()
            return self._free_gpus.pop(0)

    async def _release_gpu(self, gpu: int) -> None:
        with anyio.CancelScope(shield=True):
            async with self._gpu_available:
                self._free_gpus.append(gpu)
                self._gpu_available.notify()

    async def _with_lease(
        self, msg: RunJob, spec: JobSpec, argv: list[str], run_dir: Path, gpu: int
    ) -> ProcessOutcome | JobFinished:
        lease_id = new_id()
        await self._lease_taken(msg, lease_id)
        try:
            try:
                await self._prepare_gpu(msg, spec, lease_id, gpu)
            except LeaseError as exc:
                return self._finished(
                    msg, "failed", argv=tuple(argv), error=str(exc), lease_id=lease_id
                )
            return await self._launch(msg, spec, argv, run_dir, gpu=gpu, lease_id=lease_id)
        finally:
            with anyio.CancelScope(shield=True):
                await self._lease_returned(msg, lease_id)

    async def _prepare_gpu(self, msg: RunJob, spec: JobSpec, lease_id: str, gpu: int) -> None:
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
        if gpu < 0:
            return
        need = spec.vram_mb * 1024 * 1024
        ok = await wait_for_free_memory(
            self.inventory, gpu, need, deadline_s=self.config.vram_wait_s, poll_s=0.25
        )
        if not ok:
            msg_text = (
                f"GPU {gpu} did not have {spec.vram_mb} MB free within "
                f"{self.config.vram_wait_s:g} s of the lease"
            )
            raise LeaseError(msg_text)

    async def _lease_taken(self, msg: RunJob, lease_id: str) -> None:
        self.leases_taken += 1

        def record(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO leases (lease_id, job, correlation_id, taken_at) VALUES (?, ?, ?, ?)",
                (lease_id, msg.job, msg.correlation_id, _now()),
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
        )

    async def _lease_returned(self, msg: RunJob, lease_id: str) -> None:
        await self.system.ref(LLM).tell(
            VRAMReturned.caused_by(msg, sender=self.name, lease_id=lease_id)
        )
        self.leases_returned += 1

        def record(conn: sqlite3.Connection) -> None:
            conn.execute(
                "UPDATE leases SET returned_at = ?, outcome = 'returned' WHERE lease_id = ?",
                (_now(), lease_id),
            )

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

    async def _launch(
        self,
        msg: RunJob,
        spec: JobSpec,
        argv: list[str],
        run_dir: Path,
        *,
        gpu: int | None,
        lease_id: str | None = None,
    ) -> ProcessOutcome:
        assert self.registry is not None
        indices = None if gpu is None else ([gpu] if gpu >= 0 else [])
        env = self.registry.build_env(msg.job, base=dict(os.environ), gpu_indices=indices)
        workdir = self.registry.workdir(msg.job, self.services.paths.root)
        await anyio.to_thread.run_sync(lambda: workdir.mkdir(parents=True, exist_ok=True))

        async def progress(event: ProgressEvent) -> None:
            self.log.info(
                "job.progress",
                job=msg.job,
                done=event.done,
                total=event.total,
                message=event.message,
            )
            if self.services.progress is not None:
                self.services.progress(
                    JobProgress.caused_by(
                        msg,
                        sender=self.name,
                        job=msg.job,
                        run_id=msg.run_id,
                        done=event.done,
                        total=event.total,
                        message=event.message or "",
                    )
                )

        async def started(pid: int) -> None:
            self.log.info("job.started", job=msg.job, pid=pid, lease_id=lease_id)
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
            )

        stop = self._stops.setdefault(msg.message_id, anyio.Event())
        try:
            return await run_process(
                argv,
                cwd=workdir,
                env=env,
                timeout_s=spec.timeout_s,
                grace_s=self.config.kill_grace_s,
                tail_bytes=self.config.output_tail_kb * 1024,
                on_progress=progress,
                on_started=started,
                stop=stop,
            )
        finally:
            self._stops.pop(msg.message_id, None)

    async def _conclude(
        self, msg: RunJob, spec: JobSpec, argv: list[str], run_dir: Path, outcome: ProcessOutcome
    ) -> JobFinished:
        assert self.registry is not None
        status: str = outcome.status
        result: dict[str, Any] | None = None
        error: str | None = None
        if status == "completed":
            try:
                model = await anyio.to_thread.run_sync(
                    self.registry.validate_result, msg.job, run_dir / "result.json"
                )
                result = model.model_dump(mode="json")
            except InputError as exc:
                status, error = "invalid_result", str(exc)
        elif status == "failed":
            error = f"exit code {outcome.exit_code}"
        elif status == "timed_out":
            error = f"timed out after {spec.timeout_s:g} s"
        finished = self._finished(
            msg,
            status,
            exit_code=outcome.exit_code,
            duration_s=outcome.duration_s,
            result=result,
            stderr_tail=outcome.stderr_tail[-4000:],
            error=error,
            argv=tuple(argv),
        )
        self.log.info(
            "job.finished",
            job=msg.job,
            status=status,
            exit_code=outcome.exit_code,
            duration_s=round(outcome.duration_s, 3),
            error=error,
        )
        await self._audit_job(
            msg,
            status,
            exit_code=outcome.exit_code,
            error=error,
            duration_s=round(outcome.duration_s, 3),
        )
        return finished

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
