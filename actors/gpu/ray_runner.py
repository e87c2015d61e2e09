"""The Ray runner (`[gpu] backend = "ray"`): each GPU job process is a Ray task on one GPU.

`ray` (the optional `cluster` extra) is imported here only. Every Ray call runs in a worker
thread (`anyio.to_thread`), so the dispatcher works the same on asyncio and trio.

Slots: one per GPU Ray offers on each alive node, plus, on the node started with the custom
resource `llm_gpu` (`[gpu.ray] llm_resource`), one slot for the GPU that holds the LLM. A
task on a plain slot asks for `num_gpus=1` (Ray sets `CUDA_VISIBLE_DEVICES`); a task on the
LLM's slot asks for the `llm_gpu` resource instead and runs under the VRAM lease — so the head
node offers Ray only its other GPUs as `GPU` (see docs/operations.md, "Running on a Ray
cluster"). Each task is pinned to its slot's node (`NodeAffinitySchedulingStrategy`).

No shared filesystem is assumed: the task gets the job's inputs (the history file and the
state directory's `artifacts/`) as bytes, runs the job in a temporary state directory on its
node (argv paths rewritten), and returns the files the job wrote in its output folders, which
the head writes back into its state directory. Cancellation (`halt --now`, shutdown) is
`ray.cancel(force=True)`: the Ray worker dies and the job, started with PR_SET_PDEATHSIG,
dies with it. A task lost with its worker or node fails; the dispatcher retries the shard on
another slot (the slots are read again, so a removed node's slots are gone).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import structlog

from actors.gpu.runner import ProcessOutcome
from actors.gpu.runners import Slot
from messages.errors import ConfigError

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from actors.config import GpuRayConfig
    from actors.gpu.runner import ProcessStatus, ProgressEvent
    from actors.gpu.runners import Task

__all__ = ["RayRunner", "collect_inputs", "run_task_here"]

_log = structlog.get_logger("actors.gpu.ray")

# Inputs larger than this are refused: artifacts are summaries, 256 MiB is far beyond them.
_MAX_INPUT_BYTES = 256 * 1024 * 1024
# How often a waiting task is checked for a stop request (a ray.wait round-trip is ~1 ms).
_POLL_S = 0.1


def _import_ray() -> Any:
    try:
        import ray  # the `cluster` extra
    except ImportError as exc:
        msg = (
            "gpu.backend = 'ray' needs Ray: install the cluster extra "
            "(pip install -e '.[cluster]'), or set gpu.backend = 'local'"
        )
        raise ConfigError(msg) from exc
    return ray


def collect_inputs(task: Task) -> dict[str, bytes]:
    """The files a task's job may read, relative to the state directory (history, artifacts)."""
    root = task.state_dir
    assert root is not None
    files: dict[str, bytes] = {}
    total = 0
    wanted: list[Path] = []
    artifacts = root / "artifacts"
    if artifacts.is_dir():
        wanted.extend(p for p in artifacts.rglob("*") if p.is_file())
    wanted.extend(Path(a) for a in task.argv if a.endswith("history.jsonl") and Path(a).is_file())
    for path in wanted:
        rel = path.resolve().relative_to(root.resolve())
        data = path.read_bytes()
        total += len(data)
        if total > _MAX_INPUT_BYTES:
            msg = f"job inputs exceed {_MAX_INPUT_BYTES} bytes; cannot ship them to a Ray node"
            raise ConfigError(msg)
        files[str(rel)] = data
    return files


def run_task_here(
    argv: list[str],
    env_extra: dict[str, str],
    head_root: str,
    head_python: str,
    cwd_rel: str,
    inputs: dict[str, bytes],
    outputs: list[str],
    timeout_s: float,
    tail_bytes: int,
) -> dict[str, Any]:
    """Run one job process on this node, in a temporary copy of the state directory.

    The body of the Ray task (a plain function, so it can be tested without Ray): writes the
    inputs, rewrites every argv element under `head_root` to the temporary root, runs the
    process in its own session (PR_SET_PDEATHSIG: it dies with this worker), stops its group
    at the timeout, and returns its status, output tails and every file under `outputs`.
    """
    import shutil
    import signal
    import subprocess
    import sys
    import tempfile
    import time

    from actors.gpu.runner import die_with_parent

    root = Path(tempfile.mkdtemp(prefix="watcher-job-"))
    try:
        for rel, data in inputs.items():
            target = root / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        for rel in outputs:
            (root / rel).mkdir(parents=True, exist_ok=True)
        head = head_root.rstrip("/")
        local = [str(root) + a[len(head) :] if a.startswith(head) else a for a in argv]
        if local and local[0] == head_python:
            local[0] = sys.executable  # this node's interpreter (same environment, own path)
        env = {**os.environ, **env_extra}
        cwd = root / cwd_rel
        cwd.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        process = subprocess.Popen(
            die_with_parent(local),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        status = "completed"
        try:
            out, err = process.communicate(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            status = "timed_out"
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
        code = process.returncode
        if status == "completed" and code != 0:
            status = "failed"
        files: dict[str, bytes] = {}
        for rel in outputs:
            base = root / rel
            for path in base.rglob("*"):
                if path.is_file():
                    key = str(path.relative_to(root))
                    data = path.read_bytes()
                    if inputs.get(key) != data:
                        files[key] = data
        import ray

        context = ray.get_runtime_context()
        return {
            "status": status,
            "exit_code": code,
            "duration_s": time.monotonic() - started,
            "pid": process.pid,
            "stdout": out[-tail_bytes:].decode("utf-8", errors="replace"),
            "stderr": err[-tail_bytes:].decode("utf-8", errors="replace"),
            "stdout_bytes": len(out),
            "stderr_bytes": len(err),
            "files": files,
            "node_id": context.get_node_id(),
            "gpu_ids": [str(g) for g in ray.get_gpu_ids()],
            "visible": env.get("CUDA_VISIBLE_DEVICES"),
        }
    finally:
        shutil.rmtree(root, ignore_errors=True)


def _write_back(root: Path, files: dict[str, bytes]) -> None:
    """Write the files a task brought back into the head's state directory (atomically)."""
    base = root.resolve()
    for rel, data in files.items():
        target = (base / rel).resolve()
        if not target.is_relative_to(base):
            msg = f"a Ray task returned {rel!r}, which lies outside the state directory"
            raise ConfigError(msg)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
        tmp.write_bytes(data)
        tmp.replace(target)


class RayRunner:
    """Runs tasks on a Ray cluster (or a local Ray instance this daemon started)."""

    name = "ray"

    def __init__(
        self, ray: Any, config: GpuRayConfig, *, owns: bool, llm_gpu: int | None = 0
    ) -> None:
        self._ray = ray
        self._config = config
        self._owns = owns
        self._llm_gpu = 0 if llm_gpu is None else llm_gpu
        self._remote = ray.remote(max_retries=0)(run_task_here)

    @classmethod
    async def connect(cls, config: GpuRayConfig, *, llm_gpu: int | None = 0) -> RayRunner:
        """Connect to `config.address`, or start a local instance (logical `num_gpus`)."""
        ray = await anyio.to_thread.run_sync(_import_ray)

        def init() -> bool:
            if ray.is_initialized():
                return False  # an embedder (or a test session) connected already
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "configure_logging": False,
            }
            if config.address:
                kwargs["address"] = config.address
            else:
                # "local": a new instance of our own, never a cluster found on the machine.
                kwargs["address"] = "local"
                if config.num_gpus:
                    # One of the logical GPUs stands for the LLM's (the custom resource).
                    kwargs["num_gpus"] = config.num_gpus - 1
                    kwargs["resources"] = {config.llm_resource: 1}
                if config.num_cpus:
                    kwargs["num_cpus"] = config.num_cpus
            ray.init(**kwargs)
            return True

        try:
            with anyio.fail_after(config.connect_timeout_s):
                owns = await anyio.to_thread.run_sync(init, abandon_on_cancel=True)
        except TimeoutError as exc:
            msg = f"Ray at {config.address or 'a local instance'} did not start or answer"
            msg += f" within {config.connect_timeout_s:g} s (gpu.ray.connect_timeout_s)"
            raise ConfigError(msg) from exc
        except ConfigError:
            raise
        except Exception as exc:
            msg = f"cannot connect to Ray at {config.address or 'a local instance'}: {exc}"
            raise ConfigError(msg) from exc
        runner = cls(ray, config, owns=owns, llm_gpu=llm_gpu)
        _log.info("gpu.ray.connected", address=config.address or "local", slots=len(runner.slots()))
        return runner

    def slots(self) -> list[Slot]:
        """One slot per GPU of every alive node, plus the LLM's GPU where it is marked.

        Worker nodes come first, then the head node (it runs the daemon and the LLM), in node
        id order, so placement is deterministic; the LLM's GPU is handed out last anyway.
        """
        out: list[Slot] = []
        nodes = sorted(
            self._ray.nodes(),
            key=lambda n: ("node:__internal_head__" in n.get("Resources", {}), n["NodeID"]),
        )
        for node in nodes:
            if not node.get("Alive"):
                continue
            node_id = str(node["NodeID"])
            label = f"{node.get('NodeManagerAddress', '?')}/{node_id[:8]}"
            resources = node.get("Resources", {})
            out.extend(
                Slot(f"{node_id}/gpu{i}", label, i, llm=False)
                for i in range(int(resources.get("GPU", 0)))
            )
            if resources.get(self._config.llm_resource, 0) >= 1:
                out.append(Slot(f"{node_id}/llm", label, None, llm=True, label="llm"))
        return out

    async def run(
        self,
        task: Task,
        slot: Slot,
        *,
        grace_s: float,
        tail_bytes: int,
        on_progress: Callable[[ProgressEvent], Awaitable[None]],
        on_started: Callable[[int], Awaitable[None]],
        stop: anyio.Event,
    ) -> ProcessOutcome:
        """Submit the task to the slot's node, wait for it (or cancel it), bring files back."""
        del grace_s, on_progress  # a Ray task is stopped by killing its worker; no live lines
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        assert task.state_dir is not None
        root = task.state_dir

        def prepare() -> tuple[dict[str, bytes], list[str], str, str]:
            base = root.resolve()
            outs = [str(Path(o).resolve().relative_to(base)) for o in task.outputs]
            return collect_inputs(task), outs, str(task.cwd.resolve().relative_to(base)), str(base)

        inputs, outputs, cwd_rel, head_root = await anyio.to_thread.run_sync(prepare)
        node_id = slot.key.split("/", 1)[0]
        options: dict[str, Any] = {
            "scheduling_strategy": NodeAffinitySchedulingStrategy(node_id=node_id, soft=False),
            "num_cpus": 0,
        }
        env = dict(task.env_extra)
        if slot.llm:
            # The LLM's GPU is not one of Ray's `GPU`s on its node: it is asked for by the
            # custom resource and pinned here, to the index the LLM uses ([gpu] llm_gpu).
            options["resources"] = {self._config.llm_resource: 1}
            options["num_gpus"] = 0
            env["CUDA_VISIBLE_DEVICES"] = env["HIP_VISIBLE_DEVICES"] = str(self._llm_gpu)
        else:
            options["num_gpus"] = 1
        started = anyio.current_time()

        def submit() -> Any:
            return self._remote.options(**options).remote(
                list(task.argv),
                env,
                head_root,
                sys.executable,
                cwd_rel,
                inputs,
                outputs,
                task.timeout_s,
                tail_bytes,
            )

        ref = await anyio.to_thread.run_sync(submit)
        await on_started(0)
        result: dict[str, Any] | None = None
        error = ""
        try:
            while True:
                done, _ = await anyio.to_thread.run_sync(
                    lambda: self._ray.wait([ref], timeout=_POLL_S)
                )
                if done:
                    break
                if stop.is_set():
                    await self._cancel(ref)
                    return _outcome("cancelled", None, started, error="cancelled", slot=slot)
            try:
                result = await anyio.to_thread.run_sync(self._ray.get, ref)
            except self._ray.exceptions.RayError as exc:  # worker crashed, node died, task failed
                error = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                _log.warning("gpu.ray.task_lost", slot=slot.key, error=error)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await self._cancel(ref)
            raise
        if result is None:
            return _outcome("failed", None, started, error=error, slot=slot)
        await anyio.to_thread.run_sync(_write_back, root, result["files"])
        return ProcessOutcome(
            status=result["status"],
            exit_code=result["exit_code"],
            duration_s=max(0.0, anyio.current_time() - started),
            pid=int(result["pid"]),
            stdout_tail=result["stdout"],
            stderr_tail=result["stderr"],
            progress_events=0,
            stdout_bytes=int(result["stdout_bytes"]),
            stderr_bytes=int(result["stderr_bytes"]),
            where={
                "node": str(result["node_id"]),
                "ray_gpu_ids": list(result["gpu_ids"]),
                "visible_devices": result["visible"],
            },
        )

    async def _cancel(self, ref: Any) -> None:
        def cancel() -> None:
            try:
                self._ray.cancel(ref, force=True)
            except (self._ray.exceptions.RayError, ValueError) as exc:  # finished already
                _log.debug("gpu.ray.cancel", error=repr(exc))

        await anyio.to_thread.run_sync(cancel)

    async def aclose(self) -> None:
        """Disconnect (and stop the local instance) when this runner started it."""
        if self._owns:
            await anyio.to_thread.run_sync(self._ray.shutdown)


def _outcome(
    status: ProcessStatus, code: int | None, started: float, *, error: str, slot: Slot
) -> ProcessOutcome:
    return ProcessOutcome(
        status=status,
        exit_code=code,
        duration_s=max(0.0, anyio.current_time() - started),
        pid=0,
        stdout_tail="",
        stderr_tail=error,
        progress_events=0,
        stdout_bytes=0,
        stderr_bytes=len(error),
        where={"node": slot.node, "error": error},
    )
