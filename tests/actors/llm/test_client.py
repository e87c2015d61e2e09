"""WorkerClient against real worker processes (tiny model) and scripted fake ones."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import anyio
import pytest

from actors.llm.client import (
    WorkerClient,
    WorkerCrashedError,
    WorkerRequestError,
    WorkerStartError,
    WorkerStoppedError,
    open_worker,
)

pytestmark = pytest.mark.anyio

FAKE = Path(__file__).with_name("fake_worker.py")


def fake(mode: str) -> list[str]:
    """The command of a fake worker in `mode` (see fake_worker.py)."""
    return [sys.executable, str(FAKE), mode]


def gone(pid: int) -> bool:
    """True when no process (not even a zombie) has this pid."""
    return not Path(f"/proc/{pid}").exists()


async def test_start_generate_count_stop(tiny_model: Path) -> None:
    """A real worker loads, answers, and on stop exits 0, is reaped, and reports its memory."""
    client = await WorkerClient.start(tiny_model, n_ctx=1024, n_threads=1)
    assert client.loaded is not None
    assert client.loaded.n_vocab > 256
    result = await client.generate("q", "sieve_analysis", max_tokens=2000, temperature=0.9)
    assert result.finish_reason == "stop"
    assert result.tokens_out > 0
    assert await client.count_tokens("abc") == 3
    rss = client.rss_bytes()
    assert rss > 0
    freed = await client.stop()
    assert freed > 0
    assert client.returncode == 0
    assert gone(client.pid)
    assert await client.stop() == 0  # twice is harmless


async def test_requests_after_stop_are_refused(tiny_model: Path) -> None:
    """A stopped client raises WorkerStoppedError instead of writing to a dead pipe."""
    async with open_worker(tiny_model, n_ctx=512) as client:
        pass
    with pytest.raises(WorkerStoppedError):
        await client.count_tokens("x")


async def test_broken_grammar_stops_start_up_by_name(tiny_model: Path) -> None:
    """A grammar llama.cpp refuses fails start() with its name and the parser's message."""
    with pytest.raises(WorkerStartError) as info:
        await WorkerClient.start(tiny_model, grammars={"chapter_13": "root ::= [a-"})
    assert info.value.grammar_name == "chapter_13"
    assert "grammar 'chapter_13' does not compile" in str(info.value)


async def test_missing_model_fails_start_up(tmp_path: Path) -> None:
    """A model path that does not exist fails start() naming it."""
    with pytest.raises(WorkerStartError, match=r"absent\.gguf"):
        await WorkerClient.start(tmp_path / "absent.gguf")


async def test_worker_that_cannot_start_is_reported() -> None:
    """A command that dies at once fails start() with its exit status."""
    with pytest.raises(WorkerStartError, match="exit status 1"):
        await WorkerClient.start("x.gguf", command=[sys.executable, "-c", "raise SystemExit(1)"])


async def test_request_errors_leave_the_worker_up(tiny_model: Path) -> None:
    """An unknown grammar is refused with WorkerRequestError; the next request works."""
    async with open_worker(tiny_model, n_ctx=512) as client:
        with pytest.raises(WorkerRequestError, match=r"unknown grammar 'nope'") as info:
            await client.generate("q", "nope", max_tokens=3)
        assert info.value.error_type == "EngineError"
        assert await client.count_tokens("ab") == 2


async def test_kill_9_mid_generation_raises_crashed(tiny_model: Path) -> None:
    """SIGKILL during a long generation: generate raises WorkerCrashedError, it does not hang."""
    client = await WorkerClient.start(tiny_model, n_ctx=32768, n_threads=1)
    try:
        async with anyio.create_task_group() as tg:

            async def kill_soon() -> None:
                await anyio.sleep(0.2)
                os.kill(client.pid, signal.SIGKILL)

            tg.start_soon(kill_soon)
            with pytest.raises(WorkerCrashedError, match="SIGKILL") as info:
                # Unconstrained and the tiny model never says </s>: ~30,000 tokens of work.
                await client.generate("q", None, max_tokens=30000, temperature=1.0)
        assert info.value.returncode == -signal.SIGKILL
    finally:
        await client.stop()
    assert gone(client.pid)


async def test_stop_escalates_to_kill_for_a_stubborn_worker() -> None:
    """A worker that hangs and ignores SIGTERM is killed, reaped, and its generate unblocked."""
    client = await WorkerClient.start("fake.gguf", command=fake("stubborn"))
    errors: list[BaseException] = []

    async def ask() -> None:
        try:
            await client.generate("q", "agent_decision", max_tokens=10)
        except WorkerStoppedError as exc:
            errors.append(exc)

    async with anyio.create_task_group() as tg:
        tg.start_soon(ask)
        await anyio.sleep(0.2)
        await client.stop(grace_s=0.2, term_grace_s=0.2)
    assert client.returncode == -signal.SIGKILL
    assert gone(client.pid)
    assert len(errors) == 1


async def test_protocol_garbage_is_a_crash() -> None:
    """A worker writing something that is not a protocol line raises WorkerCrashedError."""
    async with open_worker("fake.gguf", command=fake("scribble")) as client:
        with pytest.raises(WorkerCrashedError, match="broke the protocol"):
            await client.generate("q", "agent_decision", max_tokens=10)


async def test_worker_exit_mid_request_is_a_crash() -> None:
    """A worker that exits while answering raises WorkerCrashedError with its status."""
    async with open_worker("fake.gguf", command=fake("die")) as client:
        with pytest.raises(WorkerCrashedError, match="exit status 3"):
            await client.generate("q", "agent_decision", max_tokens=10)


async def test_a_cancelled_request_does_not_confuse_the_next() -> None:
    """The late reply to an abandoned generate is skipped; the next request gets its own."""
    async with open_worker("fake.gguf", command=fake("slow")) as client:
        with anyio.move_on_after(0.1):
            await client.generate("q", "agent_decision", max_tokens=10)
        assert await client.count_tokens("abcde") == 5


async def test_load_refusal_is_a_start_error() -> None:
    """A worker refusing the load (a grammar error) fails start() naming the grammar."""
    with pytest.raises(WorkerStartError) as info:
        await WorkerClient.start("fake.gguf", command=fake("fail_load"))
    assert info.value.grammar_name == "agent_decision"
