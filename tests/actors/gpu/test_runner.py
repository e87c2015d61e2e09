"""run_process: real child processes, their output, progress lines, timeouts and group kills."""

from __future__ import annotations

import os
import sys
import tracemalloc
from pathlib import Path

import anyio
import pytest

from actors.gpu.runner import ProgressEvent, _LineSplitter, _Tail, run_process

JOB = Path(__file__).parent / "jobs" / "testjob.py"
pytestmark = pytest.mark.anyio


def _argv(*args: str) -> list[str]:
    return [sys.executable, str(JOB), *args]


def _env() -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "PYTHONUNBUFFERED": "1"}


def _gone(pid: int) -> bool:
    """True when `pid` no longer runs: absent, or a zombie of someone else (not ours to reap)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_bytes()
    except FileNotFoundError:
        return True
    return stat[stat.rfind(b")") + 2 :].split()[0] in (b"Z", b"X")


def _reaped(pid: int) -> bool:
    """True when `pid` does not exist at all, not even as a zombie."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_success_keeps_plain_lines_and_forwards_progress_in_order(tmp_path: Path) -> None:
    """A successful job is `completed`, exit 0; progress lines arrive in order, not in the tail."""
    seen: list[ProgressEvent] = []
    started: list[int] = []

    async def on_progress(event: ProgressEvent) -> None:
        seen.append(event)

    async def on_started(pid: int) -> None:
        started.append(pid)

    result = tmp_path / "result.json"
    outcome = await run_process(
        _argv("ok", str(result), "20"),
        cwd=tmp_path,
        env=_env(),
        timeout_s=30,
        on_progress=on_progress,
        on_started=on_started,
    )
    assert outcome.status == "completed"
    assert outcome.exit_code == 0
    assert started == [outcome.pid]
    assert [(e.seq, e.done, e.total, e.message) for e in seen] == [
        (i, i, 20, f"step {i}") for i in range(1, 21)
    ]
    assert outcome.progress_events == 20
    assert "plain line 20" in outcome.stdout_tail
    assert '"progress"' not in outcome.stdout_tail
    assert result.exists()
    assert _reaped(outcome.pid)


async def test_nonzero_exit_is_failed_with_stderr_tail(tmp_path: Path) -> None:
    """A non-zero exit is `failed` with its exit code, and the end of stderr is kept."""
    outcome = await run_process(_argv("fail"), cwd=tmp_path, env=_env(), timeout_s=30)
    assert outcome.status == "failed"
    assert outcome.exit_code == 3
    assert outcome.stderr_tail.endswith("fatal: the job broke on purpose\n")
    assert "stderr line 0" in outcome.stderr_tail
    assert _reaped(outcome.pid)


async def test_stderr_tail_is_bounded(tmp_path: Path) -> None:
    """Only the last `tail_bytes` of stderr are kept."""
    outcome = await run_process(
        _argv("fail"), cwd=tmp_path, env=_env(), timeout_s=30, tail_bytes=40
    )
    full = "".join(f"stderr line {i}\n" for i in range(5)) + "fatal: the job broke on purpose\n"
    assert outcome.stderr_tail == full[-40:]
    assert len(outcome.stderr_tail.encode()) <= 40


@pytest.mark.parametrize("ignore_term", [False, True], ids=["term", "needs-kill"])
async def test_timeout_kills_child_and_grandchild(tmp_path: Path, ignore_term: bool) -> None:
    """Past its timeout the whole group dies (SIGTERM, then SIGKILL if ignored); child is reaped."""
    pidfile = tmp_path / "pids"
    args = ["hang", str(pidfile)] + (["term"] if ignore_term else [])
    outcome = await run_process(_argv(*args), cwd=tmp_path, env=_env(), timeout_s=1.0, grace_s=0.3)
    child, grandchild = (int(p) for p in pidfile.read_text().split())
    assert outcome.status == "timed_out"
    assert outcome.pid == child
    assert outcome.exit_code == (-9 if ignore_term else -15)
    assert _reaped(child)
    assert _gone(grandchild)


async def test_cancelling_the_caller_kills_the_group(tmp_path: Path) -> None:
    """When the calling task is cancelled, the group is killed before the cancellation goes on."""
    pidfile = tmp_path / "pids"
    spawned = anyio.Event()

    async def on_progress(event: ProgressEvent) -> None:
        spawned.set()

    async with anyio.create_task_group() as tg:

        async def run() -> None:
            await run_process(
                _argv("hang", str(pidfile), "term"),
                cwd=tmp_path,
                env=_env(),
                timeout_s=60,
                grace_s=0.2,
                on_progress=on_progress,
            )
            pytest.fail("run_process returned instead of propagating the cancellation")

        tg.start_soon(run)
        await spawned.wait()
        tg.cancel_scope.cancel()

    child, grandchild = (int(p) for p in pidfile.read_text().split())
    assert _reaped(child)
    assert _gone(grandchild)


async def test_stop_event_cancels_and_reports(tmp_path: Path) -> None:
    """Setting `stop` kills the group and the outcome says `cancelled`."""
    pidfile = tmp_path / "pids"
    stop = anyio.Event()

    async def on_progress(event: ProgressEvent) -> None:
        stop.set()

    outcome = await run_process(
        _argv("hang", str(pidfile)),
        cwd=tmp_path,
        env=_env(),
        timeout_s=60,
        grace_s=1,
        on_progress=on_progress,
        stop=stop,
    )
    child, grandchild = (int(p) for p in pidfile.read_text().split())
    assert outcome.status == "cancelled"
    assert _reaped(child)
    assert _gone(grandchild)


async def test_callback_error_kills_group_and_propagates_unwrapped(tmp_path: Path) -> None:
    """An error raised by on_progress reaches the caller as itself, after the group is killed."""
    pidfile = tmp_path / "pids"

    async def on_progress(event: ProgressEvent) -> None:
        raise RuntimeError("callback broke")

    with pytest.raises(RuntimeError, match="callback broke"):
        await run_process(
            _argv("hang", str(pidfile)),
            cwd=tmp_path,
            env=_env(),
            timeout_s=60,
            grace_s=1,
            on_progress=on_progress,
        )
    child, grandchild = (int(p) for p in pidfile.read_text().split())
    assert _reaped(child)
    assert _gone(grandchild)


async def test_orphans_left_by_a_finished_job_are_killed(tmp_path: Path) -> None:
    """A job that exits 0 but leaves a grandchild running: `completed`, and the orphan dies."""
    pidfile = tmp_path / "pids"
    outcome = await run_process(
        _argv("orphan", str(pidfile)), cwd=tmp_path, env=_env(), timeout_s=30, grace_s=0.5
    )
    child, grandchild = (int(p) for p in pidfile.read_text().split())
    assert outcome.status == "completed"
    assert outcome.exit_code == 0
    assert _reaped(child)
    assert _gone(grandchild)


async def test_lines_that_are_not_valid_progress_go_to_the_tail(tmp_path: Path) -> None:
    """Malformed or foreign JSON lines are ordinary output; only valid progress is forwarded."""
    seen: list[ProgressEvent] = []

    async def on_progress(event: ProgressEvent) -> None:
        seen.append(event)

    outcome = await run_process(
        _argv("mixed"), cwd=tmp_path, env=_env(), timeout_s=30, on_progress=on_progress
    )
    assert [(e.seq, e.done, e.total) for e in seen] == [(1, 2, 5)]
    assert outcome.progress_events == 1
    tail = outcome.stdout_tail.splitlines()
    assert len(tail) == 5
    assert tail[0] == '{"event": "progress", "done": "three", "total": 5}'
    assert tail[-1] == "{not json}"


async def test_fifty_megabytes_of_output_keep_memory_bounded(tmp_path: Path) -> None:
    """50 MB on stdout and on stderr: tails stay within tail_bytes, peak memory far below 50 MB."""
    tracemalloc.start()
    try:
        outcome = await run_process(
            _argv("flood", "25"), cwd=tmp_path, env=_env(), timeout_s=120, tail_bytes=16 * 1024
        )
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert outcome.status == "completed"
    assert outcome.stdout_bytes > 25 * 1024 * 1024
    assert outcome.stderr_bytes == 25 * 1024 * 1024
    assert len(outcome.stdout_tail.encode()) <= 16 * 1024
    assert len(outcome.stderr_tail.encode()) <= 16 * 1024
    assert outcome.stdout_tail.endswith("bytes dropped]\nlast line\n")
    # Buffering the output would cost >= 50 MB; reads, one line and the tails cost < 2 MB.
    assert peak < 5 * 1024 * 1024


async def test_missing_program_raises_oserror(tmp_path: Path) -> None:
    """A program that does not exist fails to start with an OSError, not an outcome."""
    with pytest.raises(OSError, match="no-such-program"):
        await run_process(
            [str(tmp_path / "no-such-program")], cwd=tmp_path, env=_env(), timeout_s=5
        )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"argv": []}, "argv is empty"),
        ({"timeout_s": 0}, "timeout_s=0 must be > 0"),
        ({"tail_bytes": 0}, "tail_bytes=0 must be > 0"),
    ],
)
async def test_bad_arguments_are_refused(
    tmp_path: Path, kwargs: dict[str, object], match: str
) -> None:
    """Arguments that make no sense raise ValueError naming the argument and the rule."""
    call: dict[str, object] = {"argv": _argv("ok"), "timeout_s": 5.0, **kwargs}
    with pytest.raises(ValueError, match=match):
        await run_process(cwd=tmp_path, env=_env(), **call)  # type: ignore[arg-type]


def test_line_splitter_truncates_long_lines() -> None:
    """A line longer than the limit is cut and the dropped byte count is noted."""
    splitter = _LineSplitter(4)
    assert splitter.feed(b"ab") == []
    assert splitter.feed(b"cdef\ngh\n") == [b"abcd [line truncated: 2 bytes dropped]", b"gh"]
    assert splitter.feed(b"tail") == []
    assert splitter.flush() == b"tail"
    assert splitter.flush() is None


def test_tail_keeps_only_the_last_bytes() -> None:
    """The tail holds at most its limit plus one line, and renders exactly the last bytes."""
    tail = _Tail(10)
    for i in range(100):
        tail.add(f"line{i}".encode())
        assert tail.size <= 10 + len(f"line{i}\n")
    assert tail.text() == "ne98\nline99\n"[-10:]
