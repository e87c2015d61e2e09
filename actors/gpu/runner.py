"""Run one job process: own session, bounded output, progress lines, timeout and group kill.

The child is started from an argv list (never a shell) in a new session, so its PID is also
the id of a process group that holds every descendant that did not leave it. Whatever ends
the run — the child exiting, the timeout, a stop request or the caller being cancelled —
the group is stopped the same way: SIGTERM, up to `grace_s` for it to empty, SIGKILL. The
child is always reaped before `run_process` returns or re-raises.

Works on asyncio and trio (anyio only). Linux-first: `/proc` tells live group members from
zombies; elsewhere `killpg(pgid, 0)` is used, which also counts zombies.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import subprocess
import sys
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import anyio
import structlog
from pydantic import Field, ValidationError

from messages.base import Model

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Mapping, Sequence

    from anyio.abc import ByteReceiveStream, Process

__all__ = ["ProcessOutcome", "ProcessStatus", "ProgressEvent", "die_with_parent", "run_process"]

_log = structlog.get_logger("actors.gpu.runner")

ProcessStatus = Literal["completed", "failed", "timed_out", "cancelled"]
"""How a run ended; the dispatcher adds `invalid_result` after reading the result file."""

# 64 KiB reads: large enough that 50 MB of output is ~800 reads, small enough to stay cheap.
_READ_BYTES = 64 * 1024
# A line longer than this is cut (the rest counted, never kept): a progress line is ~100 B.
_MAX_LINE_BYTES = 64 * 1024
# 10 ms between checks while a group is being stopped: the /proc scan costs ~1-3 ms.
_GROUP_POLL_S = 0.01
# After SIGKILL the kernel needs a moment to tear processes down; 5 s means something is wrong.
_KILL_WAIT_S = 5.0
# Once the group is gone the pipes hit EOF at once; 5 s means a process escaped the group
# (setsid) and still holds them, so the readers are abandoned rather than waited on forever.
_DRAIN_S = 5.0


# PR_SET_PDEATHSIG (prctl option 1) = SIGKILL: the kernel kills the job when the daemon dies,
# even by `kill -9`. setpriv (util-linux) sets it and execs the job (~1 ms); elsewhere a
# minimal Python trampoline does the same (~15 ms), and exits at once if the daemon is
# already gone by the time the flag is set.
_SETPRIV = shutil.which("setpriv") if sys.platform == "linux" else None
_TRAMPOLINE = (
    "import ctypes,os,sys;ctypes.CDLL(None,use_errno=True).prctl(1,9,0,0,0);"
    "os.getppid()==int(sys.argv[1]) or os._exit(137);os.execvp(sys.argv[2],sys.argv[2:])"
)


def _check_program(program: str, cwd: Path, env: Mapping[str, str]) -> None:
    """Raise the OSError exec would raise, before the wrapper hides it in an exit code."""
    if os.sep in program:
        path = Path(program) if os.path.isabs(program) else cwd / program
        if not path.exists():
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)
        if path.is_dir() or not os.access(path, os.X_OK):
            raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), program)
        return
    if shutil.which(program, path=env.get("PATH", os.defpath)) is None:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), program)


def die_with_parent(args: list[str]) -> list[str]:
    """`args` wrapped so that the process gets SIGKILL when this process dies (Linux)."""
    if sys.platform != "linux":
        return args
    if _SETPRIV is not None:
        return [_SETPRIV, "--pdeathsig", "KILL", "--", *args]
    return [sys.executable, "-S", "-E", "-c", _TRAMPOLINE, str(os.getpid()), *args]


class ProgressEvent(Model):
    """One `{"event": "progress", ...}` line printed by a job on stdout."""

    seq: int = Field(ge=1)
    """1 for the first progress line of the run, then 2, 3, ... in the order printed."""
    done: int = Field(ge=0, strict=True)
    total: int = Field(ge=0, strict=True)
    message: str | None = Field(default=None, max_length=1000)


class ProcessOutcome(Model):
    """What happened to one job process, as far as the process itself can tell."""

    status: ProcessStatus
    exit_code: int | None
    """The child's exit status; negative when a signal ended it (-9 after SIGKILL)."""
    duration_s: float = Field(ge=0)
    pid: int
    """The child's PID, which is also its process group id."""
    stdout_tail: str
    """The last `tail_bytes` of stdout without the progress lines (UTF-8, errors replaced)."""
    stderr_tail: str
    """The last `tail_bytes` of stderr (UTF-8, errors replaced)."""
    progress_events: int = Field(ge=0)
    stdout_bytes: int = Field(ge=0)
    """Total bytes read from stdout, kept or not."""
    stderr_bytes: int = Field(ge=0)
    """Total bytes read from stderr, kept or not."""
    where: dict[str, Any] = Field(default_factory=dict)
    """Where it ran, as a remote runner saw it (Ray: node id, GPU ids); empty locally."""


class _LineSplitter:
    """Split a byte stream into lines, keeping at most `max_line` bytes of any one line."""

    def __init__(self, max_line: int) -> None:
        self._max = max_line
        self._buf = bytearray()
        self._dropped = 0

    def feed(self, chunk: bytes) -> list[bytes]:
        """Add a chunk; return the lines it completed (without their newline)."""
        lines: list[bytes] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            self._append(chunk[start:end])
            lines.append(self._take())
            start = end + 1
        self._append(chunk[start:])
        return lines

    def flush(self) -> bytes | None:
        """Return the last unterminated line at end of stream, if there is one."""
        if self._buf or self._dropped:
            return self._take()
        return None

    def _append(self, part: bytes) -> None:
        room = self._max - len(self._buf)
        if len(part) <= room:
            self._buf += part
        else:
            self._buf += part[:room]
            self._dropped += len(part) - room

    def _take(self) -> bytes:
        line = bytes(self._buf)
        if self._dropped:
            line += f" [line truncated: {self._dropped} bytes dropped]".encode()
        self._buf.clear()
        self._dropped = 0
        return line


class _Tail:
    """Keep the last `limit` bytes of the lines added (memory ≤ limit + one line)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._lines: deque[bytes] = deque()
        self._size = 0

    def add(self, line: bytes) -> None:
        """Append one line (a newline is added)."""
        line += b"\n"
        self._lines.append(line)
        self._size += len(line)
        while self._lines and self._size - len(self._lines[0]) >= self._limit:
            self._size -= len(self._lines.popleft())

    @property
    def size(self) -> int:
        """Bytes currently held (at most `limit` plus one line)."""
        return self._size

    def text(self) -> str:
        """The last `limit` bytes as text."""
        return b"".join(self._lines)[-self._limit :].decode("utf-8", errors="replace")


def _parse_progress(line: bytes, seq: int) -> ProgressEvent | None:
    """Return the progress event a line carries, or None when it is an ordinary line."""
    text = line.strip()
    if not (text.startswith(b"{") and text.endswith(b"}")):
        return None
    try:
        obj = json.loads(text)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("event") != "progress":
        return None
    try:
        event = ProgressEvent.model_validate(
            {
                "seq": seq,
                "done": obj.get("done"),
                "total": obj.get("total"),
                "message": obj.get("message"),
            }
        )
    except ValidationError as exc:
        _log.debug("gpu.job.bad_progress", line=text[:200].decode(errors="replace"), error=str(exc))
        return None
    if event.done > event.total:
        _log.debug("gpu.job.bad_progress", line=text[:200].decode(errors="replace"))
        return None
    return event


class _Stream:
    """One output stream's reader: tail, byte count and (for stdout) progress events."""

    def __init__(
        self,
        tail_bytes: int,
        on_progress: Callable[[ProgressEvent], Awaitable[None]] | None,
        *,
        parse_progress: bool,
    ) -> None:
        self.tail = _Tail(tail_bytes)
        self.total_bytes = 0
        self.progress_count = 0
        self._splitter = _LineSplitter(_MAX_LINE_BYTES)
        self._parse = parse_progress
        self._on_progress = on_progress
        self.done = anyio.Event()

    async def pump(self, stream: ByteReceiveStream) -> None:
        """Read the stream to its end, line by line."""
        try:
            while True:
                try:
                    chunk = await stream.receive(_READ_BYTES)
                except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    break
                self.total_bytes += len(chunk)
                for line in self._splitter.feed(chunk):
                    await self._line(line)
            last = self._splitter.flush()
            if last is not None:
                await self._line(last)
        finally:
            self.done.set()

    async def _line(self, line: bytes) -> None:
        if self._parse:
            event = _parse_progress(line, self.progress_count + 1)
            if event is not None:
                self.progress_count += 1
                if self._on_progress is not None:
                    await self._on_progress(event)
                return
        self.tail.add(line)


def _group_alive(pgid: int) -> bool:
    """True while a process of group `pgid` is alive (zombies do not count on Linux)."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        # The group id was reused by another user's processes: ours is gone.
        return False
    proc = Path("/proc")
    if not proc.is_dir():
        return True
    # Orphaned members are reparented to PID 1, which on some containers never reaps them:
    # a group of zombies must count as gone or every stop would wait out the whole grace.
    with os.scandir(proc) as entries:
        for entry in entries:
            if not entry.name.isdigit():
                continue
            try:
                stat = Path(entry.path, "stat").read_bytes()
            except OSError:
                continue
            fields = stat[stat.rfind(b")") + 2 :].split()
            if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
                return True
    return False


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    """Send `sig` to every process of the group; a group already gone is not an error."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


async def _wait_group_gone(process: Process, pgid: int) -> None:
    """Wait until the leader is reaped and no member of the group is alive."""
    await process.wait()
    # Polling: the kernel offers no event for "a process group became empty".
    while _group_alive(pgid):  # noqa: ASYNC110
        await anyio.sleep(_GROUP_POLL_S)


async def _stop_group(process: Process, pgid: int, grace_s: float) -> None:
    """SIGTERM the group, give it `grace_s` to empty, SIGKILL what is left, reap the leader."""
    if process.returncode is None or _group_alive(pgid):
        _signal_group(pgid, signal.SIGTERM)
        with anyio.move_on_after(grace_s):
            await _wait_group_gone(process, pgid)
        if process.returncode is None or _group_alive(pgid):
            _log.info("gpu.job.sigkill", pid=pgid, grace_s=grace_s)
            _signal_group(pgid, signal.SIGKILL)
    with anyio.move_on_after(_KILL_WAIT_S):
        await _wait_group_gone(process, pgid)
    if process.returncode is None:
        # SIGKILL cannot be ignored; reaching this means the kernel is stuck (D state).
        # Waiting is the only way to reap, so wait: a zombie must never be left behind.
        _log.error("gpu.job.unkillable", pid=pgid)
        await process.wait()
    elif _group_alive(pgid):
        _log.error("gpu.job.group_survived", pid=pgid)


async def _wait_exit(
    process: Process, deadline: float, stop: anyio.Event | None
) -> Literal["exited", "timed_out", "stopped"]:
    """Wait for the child to exit, the deadline to pass or `stop` to be set."""
    result: Literal["exited", "timed_out", "stopped"] = "exited"
    async with anyio.create_task_group() as tg:

        async def watch_stop(event: anyio.Event) -> None:
            nonlocal result
            await event.wait()
            if result == "exited":
                result = "stopped"
            tg.cancel_scope.cancel()

        if stop is not None:
            tg.start_soon(watch_stop, stop)
        with anyio.CancelScope(deadline=deadline) as scope:
            await process.wait()
        if scope.cancelled_caught and result == "exited":
            result = "timed_out"
        tg.cancel_scope.cancel()
    return result


def _status(ending: str, exit_code: int | None) -> ProcessStatus:
    if ending == "timed_out":
        return "timed_out"
    if ending == "stopped":
        return "cancelled"
    return "completed" if exit_code == 0 else "failed"


async def run_process(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str],
    timeout_s: float,
    grace_s: float = 5.0,
    tail_bytes: int = 64 * 1024,
    on_progress: Callable[[ProgressEvent], Awaitable[None]] | None = None,
    on_started: Callable[[int], Awaitable[None]] | None = None,
    stop: anyio.Event | None = None,
    tie_to_parent: bool = True,
) -> ProcessOutcome:
    """Run `argv` in its own session until it exits, times out or is stopped.

    Args:
        argv: the program and its arguments, one element each (no shell is involved).
        cwd: working directory of the child.
        env: the child's complete environment (nothing is inherited implicitly).
        timeout_s: seconds from start after which the group is stopped (`timed_out`).
        grace_s: seconds between SIGTERM and SIGKILL of the group.
        tail_bytes: how much of the end of stdout and of stderr is kept.
        on_progress: awaited for each progress line, in order; a slow callback slows the
            reading of stdout (and so, through the pipe, the job) rather than buffering.
        on_started: awaited once with the child's PID right after it started.
        stop: when set, the group is stopped and the status is `cancelled` (halt without
            cancelling the caller).
        tie_to_parent: start the child with PR_SET_PDEATHSIG=SIGKILL (Linux), so it dies
            with this process whatever kills it.

    Raises:
        ValueError: an empty argv or a non-positive timeout / tail size.
        OSError: the program could not be started (not found, not executable, bad cwd).
        Whatever `on_progress` / `on_started` raise, after the group has been stopped.
        The caller's cancellation, after the group has been stopped (shielded).
    """
    args = [os.fspath(a) for a in argv]
    if not args:
        msg = "argv is empty; it must name the program to run"
        raise ValueError(msg)
    if not timeout_s > 0:
        msg = f"timeout_s={timeout_s!r} must be > 0"
        raise ValueError(msg)
    if tail_bytes <= 0 or grace_s < 0:
        msg = f"tail_bytes={tail_bytes!r} must be > 0 and grace_s={grace_s!r} must be >= 0"
        raise ValueError(msg)

    if tie_to_parent:
        _check_program(args[0], Path(cwd), env)
    out = _Stream(tail_bytes, on_progress, parse_progress=True)
    err = _Stream(tail_bytes, None, parse_progress=False)
    started_at = anyio.current_time()
    # Shielded: a cancellation landing between fork and the `try` below would leak the child.
    with anyio.CancelScope(shield=True):
        process = await anyio.open_process(
            die_with_parent(args) if tie_to_parent else args,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
        )
    pid = process.pid
    assert process.stdout is not None  # PIPE was requested just above
    assert process.stderr is not None
    _log.debug("gpu.job.started", pid=pid, program=args[0])
    ending = "exited"
    try:
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(out.pump, process.stdout)
                tg.start_soon(err.pump, process.stderr)
                if on_started is not None:
                    await on_started(pid)
                ending = await _wait_exit(process, started_at + timeout_s, stop)
                if ending == "timed_out":
                    _log.info("gpu.job.timeout", pid=pid, timeout_s=timeout_s)
                # Also after a normal exit: descendants left in the group are orphans.
                await _stop_group(process, pid, grace_s)
                with anyio.move_on_after(_DRAIN_S) as drain:
                    await out.done.wait()
                    await err.done.wait()
                if drain.cancelled_caught:
                    _log.error("gpu.job.pipes_held", pid=pid, drain_s=_DRAIN_S)
                tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # Callback errors come wrapped by the task group; hand the caller the error itself.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise
    except BaseException:
        with anyio.CancelScope(shield=True):
            await _stop_group(process, pid, grace_s)
        raise
    finally:
        with anyio.CancelScope(shield=True):
            await process.aclose()

    exit_code = process.returncode
    return ProcessOutcome(
        status=_status(ending, exit_code),
        exit_code=exit_code,
        duration_s=max(0.0, anyio.current_time() - started_at),
        pid=pid,
        stdout_tail=out.tail.text(),
        stderr_tail=err.tail.text(),
        progress_events=out.progress_count,
        stdout_bytes=out.total_bytes,
        stderr_bytes=err.total_bytes,
    )
