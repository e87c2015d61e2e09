"""LLMActor: owns the model's worker process, answers `Decide`, gives VRAM back on demand.

Every answer is grammar-constrained and parsed into its model, then returned with its source
(llm | heuristic | fail_closed). With no model configured, or while a GPU lease is out and
`llm.while_leased = "heuristic"`, the deterministic heuristic advisor answers, and the log says
so. `ReleaseVRAM` stops the worker (its own PID only) and replies with the memory freed;
`VRAMReturned` lets it load again (eagerly or on the next decision, per config).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio
import anyio.to_thread

from actors.llm.client import WorkerClient, WorkerStoppedError
from actors.llm.decide import decide
from actors.llm.heuristic import heuristic_decision
from actors.llm.models import resolve_model
from actors.runtime import Actor, handles
from actors.runtime.context import current
from grammars import grammar_max_tokens
from messages.lifecycle import Describe, Described
from messages.llm import Decide, Decision, ReleaseVRAM, VRAMReleased, VRAMReturned

if TYPE_CHECKING:
    from pathlib import Path

    from actors.runtime.envelope import ReplySlot
    from actors.services import Services
    from messages.decisions import DecisionModel


class LLMActor(Actor):
    """The only owner of the LLM worker process."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.config = services.settings.llm
        self.model_path: Path | None = None
        self.client: WorkerClient | None = None
        self.leases: set[str] = set()
        self.waiting: list[tuple[Decide, ReplySlot | None]] = []
        self.last_used = 0.0

    async def on_start(self) -> None:
        cache = self.services.paths.cache
        self.model_path = await anyio.to_thread.run_sync(
            lambda: resolve_model(self.config.model, cache_dir=cache)
        )
        if self.model_path is None:
            self.log.info("llm.heuristic_only", reason="llm.model is 'none'")
            return
        # Loaded at start-up whatever `reload` says: a model that will not load, or a grammar
        # llama.cpp will not compile, must stop start-up (naming it), not the first decision.
        await self._ensure_worker()
        self.start_soon(self._cut_generation_on_shutdown)
        if self.config.idle_unload_s is not None:
            self.start_soon(self._unload_when_idle, self.config.idle_unload_s)

    async def _cut_generation_on_shutdown(self) -> None:
        """At the first word of a shutdown, end a worker that is mid-generation.

        Its answer (up to a minute on a CPU) would come after the system has stopped caring,
        and waiting for it stretched the stop far past its bound: the worker reads `exit` only
        once the generation is over. The caller gets the heuristic's answer at once.
        """
        await self.system.wait_stop_requested()
        if self.client is not None and self.client.in_flight is not None:
            # Shielded: the LLM's own phase may come meanwhile; the stop (bounded by the
            # client's kill deadline) and its audit record must not be cut in two.
            with anyio.CancelScope(shield=True):
                await self._stop_worker("shutdown during a generation")

    async def _unload_when_idle(self, idle_s: float) -> None:
        # Polled from a task, so a worker idle for `idle_s` is stopped even with no message.
        while True:
            await anyio.sleep(min(idle_s, 5.0))
            idle_for = anyio.current_time() - self.last_used
            if self.client is not None and not self.leases and idle_for >= idle_s:
                await self._stop_worker(f"idle for {idle_for:.0f} s")

    async def on_stop(self) -> None:
        await self._stop_worker("shutdown")

    # -- the worker ---------------------------------------------------------------------------

    async def _ensure_worker(self) -> WorkerClient:
        if self.client is None:
            assert self.model_path is not None
            cfg = self.config
            self.client = await WorkerClient.start(
                self.model_path,
                n_ctx=cfg.n_ctx,
                n_threads=cfg.n_threads,
                n_gpu_layers=cfg.n_gpu_layers,
            )
            self.last_used = anyio.current_time()
            self.log.info("llm.worker_started", pid=self.client.pid, model=str(self.model_path))
            await self._audit("worker_started", to_state="loaded", pid=self.client.pid)
        return self.client

    async def _stop_worker(self, reason: str) -> int:
        client, self.client = self.client, None
        if client is None:
            return 0
        pid = client.pid
        # A shutdown does not wait for a generation (see _cut_generation_on_shutdown).
        cut = client.in_flight is not None and self.system.stop_requested
        freed = await client.stop(grace_s=0.0 if cut else 5.0)
        self.log.info("llm.worker_stopped", pid=pid, freed_bytes=freed, reason=reason)
        await self._audit(
            "worker_stopped",
            from_state="loaded",
            to_state="unloaded",
            pid=pid,
            freed_bytes=freed,
            reason=reason,
        )
        return freed

    async def _audit(self, event: str, **detail: object) -> None:
        await self.services.audit(
            actor=self.name,
            entity="llm",
            entity_id=str(self.model_path or "heuristic"),
            event=event,
            correlation_id=_flow_id(),
            **detail,  # type: ignore[arg-type]
        )

    # -- decisions ----------------------------------------------------------------------------

    @handles(Decide)
    async def on_decide(self, msg: Decide) -> Decision | None:
        """Answer with the model when it may run, else with the heuristic; never fail open.

        With `while_leased = "wait"` a decision asked while the lease is out is answered when
        the lease comes back (the reply is deferred; the mailbox keeps flowing).
        """
        if self.leases and self.model_path is not None and self.config.while_leased == "wait":
            self.waiting.append((msg, self.defer_reply()))
            self.log.info("llm.decision_waits_for_lease", leases=len(self.leases))
            return None
        return await self._answer(msg)

    async def _answer(self, msg: Decide) -> Decision:
        def heuristic() -> DecisionModel:
            metrics = {k: v for k, v in msg.metrics.items() if v is not None}
            return heuristic_decision(msg.grammar_name, metrics, msg.thresholds)

        start = anyio.current_time()
        tokens = {"in": 0, "out": 0}
        use_model = (
            self.model_path is not None and not self.leases and not self.system.stop_requested
        )

        async def generate(prompt: str, grammar_name: str) -> str:
            if self.system.stop_requested:
                # No new worker (and no second attempt) once the system is stopping.
                msg = "the system is shutting down"
                raise WorkerStoppedError(msg)
            client = await self._ensure_worker()
            self.last_used = anyio.current_time()
            result = await client.generate(
                prompt,
                grammar_name,
                # The grammar's worst case: a valid answer is never cut off.
                max_tokens=min(self.config.max_tokens, grammar_max_tokens(grammar_name)),
                temperature=self.config.temperature,
                seed=self.config.seed,
            )
            tokens["in"] += result.tokens_in
            tokens["out"] += result.tokens_out
            return result.text

        outcome = await decide(
            msg.prompt,
            msg.grammar_name,
            generate=generate if use_model else None,
            heuristic=heuristic,
        )
        if outcome.source != "llm":
            why = (
                "no model configured"
                if self.model_path is None
                else (
                    "GPU lease out"
                    if self.leases
                    else "shutting down"
                    if self.system.stop_requested and not outcome.error
                    else (outcome.error or "model answer unusable")
                )
            )
            self.log.info("llm.fallback", source=outcome.source, reason=why)
        if outcome.error and self.client is not None and not self.client.running:
            # The worker died (segfault, OOM): reap it; the next decision starts a new one.
            await self._stop_worker(f"worker died: {outcome.error}")
        return Decision.caused_by(
            msg,
            sender=self.name,
            grammar_name=msg.grammar_name,
            answer=outcome.answer,
            source=outcome.source,
            attempts=outcome.attempts,
            tokens_in=tokens["in"],
            tokens_out=tokens["out"],
            latency_s=anyio.current_time() - start,
            raw_text=outcome.raw_text or "",
        )

    @handles(Describe)
    async def on_describe(self, msg: Describe) -> Described:
        """The model, the worker process, the leases out (for `status`)."""
        client = self.client
        state = {
            "model": str(self.model_path) if self.model_path else "none (heuristic advisor)",
            "worker_pid": client.pid if client is not None else None,
            "worker_running": bool(client is not None and client.running),
            "worker_rss_bytes": client.rss_bytes() if client is not None and client.running else 0,
            "leases_out": sorted(self.leases),
            "decisions_waiting": len(self.waiting),
        }
        return Described.caused_by(msg, sender=self.name, actor=self.name, state=state)

    # -- the lease ----------------------------------------------------------------------------

    @handles(ReleaseVRAM)
    async def on_release_vram(self, msg: ReleaseVRAM) -> VRAMReleased:
        """Stop the worker so a job can have the memory; reply with how much was freed."""
        self.leases.add(msg.lease_id)
        freed = 0
        with anyio.move_on_after(msg.deadline_s):
            freed = await self._stop_worker(f"lease {msg.lease_id}: {msg.reason}")
        await self._audit("vram_released", lease_id=msg.lease_id, freed_bytes=freed)
        return VRAMReleased.caused_by(
            msg, sender=self.name, lease_id=msg.lease_id, freed_bytes=freed
        )

    @handles(VRAMReturned)
    async def on_vram_returned(self, msg: VRAMReturned) -> None:
        """A job is over: when no lease is left, the model may load again."""
        self.leases.discard(msg.lease_id)
        await self._audit("vram_returned", lease_id=msg.lease_id)
        if self.leases:
            return
        stopping = self.system.stop_requested
        if self.model_path is not None and self.config.reload == "eager" and not stopping:
            await self._ensure_worker()
        waiting, self.waiting = self.waiting, []
        for decide_msg, slot in waiting:
            try:
                answer = await self._answer(decide_msg)
            except Exception as exc:
                if slot is not None:
                    slot.fail(exc)
                raise
            if slot is not None:
                slot.set(answer)


def _flow_id() -> str:
    ctx = current.get()
    return (ctx.correlation_id if ctx else None) or "llm"
