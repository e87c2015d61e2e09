"""`WorkerClient`: the actor's async handle on the LLM worker process (anyio: asyncio and trio).

The client starts `python -m actors.llm.worker` in its own session, loads the model (every grammar
compiled, or start-up fails naming the grammar), sends one request at a time and matches each reply
to its request. `stop()` asks the worker to exit, then terminates it, then kills it — by its own
pid, never by name — and waits for it, so no zombie is left and its memory is back with the system.
A worker that dies while a request is in flight makes that request raise `WorkerCrashedError`
(with the exit status and the tail of the worker's stderr): a crash never hangs the caller.

::

    WatcherError
    └── LLMWorkerError
        ├── WorkerStartError      the process or the model load failed (a grammar named if at fault)
        ├── WorkerCrashedError    the process died or broke the protocol
        ├── WorkerStoppedError    a request on a stopped client, or one cut short by stop()
        └── WorkerRequestError    the worker refused one request (it is still up)
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Literal, TypeVar

import anyio
from anyio.streams.buffered import BufferedByteReceiveStream
from pydantic import ValidationError

from grammars import GRAMMAR_NAMES, load_grammar
from messages.base import Message
from messages.errors import WatcherError
from messages.llm_worker import (
    MAX_LINE_BYTES,
    CountTokens,
    ExitWorker,
    GenerateText,
    LoadModel,
    ModelLoaded,
    TextGenerated,
    TokensCounted,
    WorkerFailed,
    WorkerReady,
    WorkerReply,
    decode_reply,
    encode_line,
)

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Mapping, Sequence

    from anyio.abc import Process

_R = TypeVar("_R", bound=Message)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
"""The folder holding the `actors` package: put on the worker's PYTHONPATH."""

WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "actors.llm.worker")
"""How the real worker is started (tests pass another command to run a fake one)."""

_STDERR_TAIL = 2000  # bytes of the worker's stderr quoted in a crash message
_TERM_GRACE_S = 2.0  # after SIGTERM; llama.cpp holds no handler, so it dies at once in practice
_KILL_WAIT_S = 10.0  # after SIGKILL the kernel needs only to reap; 10 s means something is wrong


class LLMWorkerError(WatcherError):
    """Base of the errors raised by WorkerClient."""


class WorkerStartError(LLMWorkerError):
    """Raised by start() when the worker cannot start or load the model; the process is gone."""

    def __init__(self, message: str, grammar_name: str | None = None) -> None:
        super().__init__(message)
        self.grammar_name = grammar_name


class WorkerCrashedError(LLMWorkerError):
    """Raised when the worker process died (or wrote garbage) while the client waited on it."""

    def __init__(self, message: str, returncode: int | None = None) -> None:
        super().__init__(message)
        self.returncode = returncode


class WorkerStoppedError(LLMWorkerError):
    """Raised for a request on a stopped client, or one that stop() cut short."""


class WorkerRequestError(LLMWorkerError):
    """Raised when the worker answered a request with an error (unknown grammar, no model...)."""

    def __init__(self, message: str, error_type: str, grammar_name: str | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.grammar_name = grammar_name


@dataclass(frozen=True, slots=True)
class GenerateResult:
    """One generation: the raw text and what it cost."""

    text: str
    tokens_in: int
    tokens_out: int
    seconds: float
    """Time inside the worker (model time, without the pipe)."""
    finish_reason: Literal["stop", "length"] = "stop"
    """length: the answer was cut by max_tokens or the context, so it is likely incomplete."""


def _describe_exit(returncode: int | None) -> str:
    if returncode is None:
        return "no exit status"
    if returncode < 0:
        try:
            return f"signal {signal.Signals(-returncode).name}"
        except ValueError:
            return f"signal {-returncode}"
    return f"exit status {returncode}"


def proc_rss_bytes(pid: int) -> int:
    """Resident memory of process `pid` from /proc/<pid>/status (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _worker_env(extra: Mapping[str, str] | None) -> dict[str, str]:
    env = dict(os.environ)
    path = env.get("PYTHONPATH")
    env["PYTHONPATH"] = f"{PROJECT_ROOT}{os.pathsep}{path}" if path else str(PROJECT_ROOT)
    if extra:
        env.update(extra)
    return env


class WorkerClient:
    """An async handle on one worker process; make one with `start()` (or `open_worker()`)."""

    def __init__(self, process: Process, stderr: IO[bytes]) -> None:
        self._process = process
        self._stderr = stderr
        if process.stdout is None or process.stdin is None:
            msg = "the LLM worker must be started with stdin and stdout pipes"
            raise WorkerStartError(msg)
        self._stdin = process.stdin
        self._reader = BufferedByteReceiveStream(process.stdout)
        # One request at a time: llama.cpp serves one generation, and replies come in order.
        self._request_lock = anyio.Lock()
        # Writes are locked apart from requests so stop() can send "exit" during a generation.
        self._send_lock = anyio.Lock()
        self._stopping = False
        self._stopped = False
        self.in_flight: str | None = None
        """The kind of the request written to the worker and not answered yet (None: idle)."""
        self._sent = anyio.Event()
        self.loaded: ModelLoaded | None = None
        """The worker's load report (model, context, grammars, load seconds)."""

    @classmethod
    async def start(
        cls,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        chat_format: Literal["auto", "gemma", "raw"] = "auto",
        grammars: Mapping[str, str] | None = None,
        command: Sequence[str] = WORKER_COMMAND,
        env: Mapping[str, str] | None = None,
        load_timeout_s: float = 300.0,
    ) -> WorkerClient:
        """Spawn a worker and load the model with every grammar compiled.

        `grammars` defaults to every grammar of the `grammars` package.

        Raises:
            WorkerStartError: the process did not start, did not announce itself, or the load
                failed (a grammar that does not compile is named, with the parser's message).
        """
        if grammars is None:
            grammars = {name: load_grammar(name) for name in GRAMMAR_NAMES}
        stderr = tempfile.TemporaryFile()  # noqa: SIM115 - owned by the client, closed by stop()
        try:
            process = await anyio.open_process(
                list(command),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                env=_worker_env(env),
                # Its own session: a Ctrl-C at the terminal is the actor's to handle, not the
                # worker's; the actor stops it in order.
                start_new_session=True,
            )
        except OSError as exc:
            stderr.close()
            msg = f"cannot start the LLM worker {list(command)!r}: {exc}"
            raise WorkerStartError(msg) from exc
        client = cls(process, stderr)
        request = LoadModel(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads,
            n_gpu_layers=n_gpu_layers,
            chat_format=chat_format,
            grammars=dict(grammars),
        )
        try:
            with anyio.fail_after(load_timeout_s):
                await client._expect_ready()
                client.loaded = await client._request(request, ModelLoaded)
        except WorkerRequestError as exc:
            await client.stop(grace_s=1.0)
            msg = f"LLM worker failed to load {model_path}: {exc}"
            raise WorkerStartError(msg, grammar_name=exc.grammar_name) from exc
        except (LLMWorkerError, TimeoutError) as exc:
            await client.stop(grace_s=1.0)
            what = f"no answer in {load_timeout_s:g} s" if isinstance(exc, TimeoutError) else exc
            msg = f"LLM worker failed to start with {model_path}: {what}"
            raise WorkerStartError(msg) from exc
        except BaseException:
            with anyio.CancelScope(shield=True):
                await client.stop(grace_s=0.0)
            raise
        return client

    @property
    def pid(self) -> int:
        """The worker's process id."""
        return self._process.pid

    @property
    def returncode(self) -> int | None:
        """The worker's exit status once it has ended and been waited for, else None."""
        return self._process.returncode

    @property
    def running(self) -> bool:
        """True until the worker has ended (or stop() began)."""
        return not self._stopping and self._process.returncode is None

    def rss_bytes(self) -> int:
        """The worker's resident memory now, from /proc (0 once it is gone)."""
        return proc_rss_bytes(self.pid) if self._process.returncode is None else 0

    async def generate(
        self,
        prompt: str,
        grammar_name: str | None,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        system: str | None = None,
        raw: bool = False,
    ) -> GenerateResult:
        """Generate an answer constrained by `grammar_name` (None: unconstrained text).

        Raises:
            WorkerCrashedError: the worker died before answering.
            WorkerStoppedError: the client is stopped or stop() began meanwhile.
            WorkerRequestError: the worker refused the request (unknown grammar, prompt too long).
        """
        request = GenerateText(
            prompt=prompt,
            grammar_name=grammar_name,
            max_tokens=max_tokens,
            temperature=temperature,
            seed=seed,
            system=system,
            raw=raw,
        )
        reply = await self._request(request, TextGenerated)
        return GenerateResult(
            text=reply.text,
            tokens_in=reply.tokens_in,
            tokens_out=reply.tokens_out,
            seconds=reply.seconds,
            finish_reason=reply.finish_reason,
        )

    async def count_tokens(self, text: str) -> int:
        """Tokens of `text` with the loaded model's tokenizer (same errors as generate)."""
        return (await self._request(CountTokens(text=text), TokensCounted)).count

    async def stop(self, grace_s: float = 5.0, *, term_grace_s: float = _TERM_GRACE_S) -> int:
        """End the worker; return its resident memory just before (the bytes given back).

        Asks it to exit and waits `grace_s` (a generation in flight may finish meanwhile), then
        SIGTERM and `term_grace_s`, then SIGKILL — its own pid only — and always waits for it,
        so the process is reaped. Safe to call twice.
        """
        if self._stopped:
            return 0
        self._stopping = True
        freed = self.rss_bytes()
        with anyio.CancelScope(shield=True):
            if self._process.returncode is None:
                with anyio.move_on_after(grace_s):
                    # A worker already dying refuses the line; the wait below tells.
                    with contextlib.suppress(
                        anyio.BrokenResourceError, anyio.ClosedResourceError, OSError
                    ):
                        await self._send(ExitWorker())
                    await self._process.wait()
            if self._process.returncode is None:
                self._signal(signal.SIGTERM)
                with anyio.move_on_after(term_grace_s):
                    await self._process.wait()
            if self._process.returncode is None:
                self._signal(signal.SIGKILL)
                with anyio.fail_after(_KILL_WAIT_S):
                    await self._process.wait()
            await self._process.aclose()
            self._stderr.close()
            self._stopped = True
        return freed

    def _signal(self, signum: signal.Signals) -> None:
        """Signal the worker by its own pid (never a group, never a name)."""
        # ProcessLookupError: it ended between the check and the signal.
        with contextlib.suppress(ProcessLookupError):
            self._process.send_signal(signum)

    async def _send(self, message: Message) -> None:
        async with self._send_lock:
            await self._stdin.send(encode_line(message))

    async def _expect_ready(self) -> WorkerReady:
        reply = await self._receive("start-up")
        if not isinstance(reply, WorkerReady):
            msg = f"LLM worker pid {self.pid} began with {reply.kind!r} instead of ready"
            raise WorkerCrashedError(msg)
        return reply

    async def _request(self, request: Message, expect: type[_R]) -> _R:
        async with self._request_lock:
            if self._stopping:
                msg = f"LLM worker pid {self.pid} is stopped; start a new one"
                raise WorkerStoppedError(msg)
            try:
                await self._send(request)
            except (anyio.BrokenResourceError, anyio.ClosedResourceError, OSError) as exc:
                raise await self._gone(f"sending {request.kind}") from exc
            self.in_flight = request.kind
            self._sent.set()
            self._sent = anyio.Event()
            try:
                return await self._await_reply(request, expect)
            finally:
                self.in_flight = None

    async def wait_in_flight(self, kind: str) -> None:
        """Return once a request of `kind` (e.g. `generate_text`) has been written to the worker
        and is not answered yet: the moment a test kills the worker mid-generation."""
        while self.in_flight != kind:
            await self._sent.wait()

    async def _await_reply(self, request: Message, expect: type[_R]) -> _R:
        while True:
            reply = await self._receive(request.kind)
            if reply.causation_id != request.message_id:
                continue  # the answer to a request its caller abandoned (cancelled)
            if isinstance(reply, WorkerFailed):
                raise WorkerRequestError(
                    f"LLM worker refused {request.kind}: {reply.error_type}: {reply.message}",
                    error_type=reply.error_type,
                    grammar_name=reply.grammar_name,
                )
            if not isinstance(reply, expect):
                msg = f"LLM worker answered {request.kind} with {reply.kind}"
                raise WorkerCrashedError(msg)
            return reply

    async def _receive(self, during: str) -> WorkerReply:
        try:
            line = await self._reader.receive_until(b"\n", MAX_LINE_BYTES)
        except (anyio.IncompleteRead, anyio.EndOfStream, anyio.BrokenResourceError) as exc:
            raise await self._gone(during) from exc
        except anyio.DelimiterNotFound as exc:
            msg = f"LLM worker pid {self.pid} wrote a line over {MAX_LINE_BYTES} bytes"
            raise WorkerCrashedError(msg) from exc
        try:
            return decode_reply(line)
        except ValidationError as exc:
            msg = f"LLM worker pid {self.pid} broke the protocol during {during}: {line[:200]!r}"
            raise WorkerCrashedError(msg) from exc

    async def _gone(self, during: str) -> LLMWorkerError:
        """The error for a worker whose output ended: stopped on purpose, or crashed."""
        if self._stopping:
            return WorkerStoppedError(f"LLM worker pid {self.pid} was stopped during {during}")
        with anyio.move_on_after(_TERM_GRACE_S):
            await self._process.wait()
        status = _describe_exit(self._process.returncode)
        msg = f"LLM worker pid {self.pid} died ({status}) during {during}{self._stderr_tail()}"
        return WorkerCrashedError(msg, returncode=self._process.returncode)

    def _stderr_tail(self) -> str:
        try:
            self._stderr.seek(0, os.SEEK_END)
            size = self._stderr.tell()
            self._stderr.seek(max(0, size - _STDERR_TAIL))
            tail = self._stderr.read().decode("utf-8", errors="replace").strip()
        except (OSError, ValueError):
            return ""
        return f"; stderr ends: {tail}" if tail else ""


@asynccontextmanager
async def open_worker(model_path: str | Path, **options: Any) -> AsyncIterator[WorkerClient]:
    """Start a worker (options as for `WorkerClient.start`) and stop it when the block ends."""
    client = await WorkerClient.start(model_path, **options)
    try:
        yield client
    finally:
        await client.stop()
