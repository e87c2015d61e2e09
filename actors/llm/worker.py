"""The LLM worker process: `python -m actors.llm.worker`, the only module that imports llama_cpp.

It holds one llama.cpp model and answers the JSON-lines protocol of `messages.llm_worker` on
stdin/stdout. The model lives in this child process because ending the process is the only
reliable way to give llama.cpp's memory (RAM and VRAM) back; the actor's `WorkerClient` starts it,
talks to it and stops it.

`Engine` is the model itself, usable in-process (the fuzz tests and the benchmark use it that way);
`load_token_counter` gives the bundle factory the model's tokenizer without any weights.
"""

from __future__ import annotations

import collections
import ctypes
import os
import sys
import tempfile
import time
import weakref
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, Literal

import llama_cpp
import numpy as np
from llama_cpp.llama_chat_format import Jinja2ChatFormatter
from pydantic import ValidationError

from messages.errors import WatcherError
from messages.llm_worker import (
    MAX_LINE_BYTES,
    CountTokens,
    ExitWorker,
    GenerateText,
    LoadModel,
    ModelLoaded,
    ModelUnloaded,
    TextGenerated,
    TokensCounted,
    UnloadModel,
    WorkerExiting,
    WorkerFailed,
    WorkerReady,
    decode_request,
    encode_line,
)

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping

ChatFormat = Literal["template", "gemma", "raw"]

_GEMMA_TURNS = "<start_of_turn>user\n{text}<end_of_turn>\n<start_of_turn>model\n"
# Error-level and above go to stderr; everything is kept (last 200 lines) for error messages.
_LOG_KEEP = 200
_LOG_LEVELS_SHOWN = (3, 4)  # ggml's WARN and ERROR
_LOG_LEVEL_CONT = 5  # "continues the previous line"


class EngineError(WatcherError):
    """Raised by the worker's engine; the worker reports it to the client as WorkerFailed."""

    def __init__(self, message: str, grammar_name: str | None = None) -> None:
        super().__init__(message)
        self.grammar_name = grammar_name


class GrammarCompileError(EngineError):
    """Raised when llama.cpp refuses a grammar; names the grammar and quotes the parser."""


class NoModelError(EngineError):
    """Raised for a generate or count request while no model is loaded."""


class _LlamaLog:
    """Captures llama.cpp's log lines so a parser error can be quoted in the reply."""

    def __init__(self) -> None:
        self.lines: collections.deque[str] = collections.deque(maxlen=_LOG_KEEP)
        self._last_level = 0
        # Kept on the instance: ctypes must not collect a callback C still holds.
        self.callback = llama_cpp.llama_log_callback(self._on_log)

    def _on_log(self, level: int, text: bytes, _user_data: ctypes.c_void_p) -> None:
        level = self._last_level if level == _LOG_LEVEL_CONT else level
        self._last_level = level
        line = text.decode("utf-8", errors="replace")
        self.lines.append(line)
        if level in _LOG_LEVELS_SHOWN:
            sys.stderr.write(line)

    def install(self) -> None:
        """Route llama.cpp and ggml logging through this object."""
        llama_cpp.llama_log_set(self.callback, ctypes.c_void_p(0))

    @contextmanager
    def capture(self) -> Iterator[list[str]]:
        """Collect the lines logged inside the block."""
        self.lines.clear()
        got: list[str] = []
        try:
            yield got
        finally:
            got.extend(self.lines)


_LOG = _LlamaLog()
_LOG.install()


@contextmanager
def _capture_stderr() -> Iterator[list[str]]:
    """Collect what C code writes on file descriptor 2 inside the block (and pass it on)."""
    got: list[str] = []
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield got
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read().decode("utf-8", errors="replace")
            sys.stderr.write(text)
            got.extend(text.splitlines())


def rss_bytes(pid: int | str = "self") -> int:
    """Resident memory of a process from /proc (0 if it is gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text(encoding="ascii")
    except OSError:
        return 0
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


@dataclass(frozen=True, slots=True)
class Generation:
    """What one generation produced."""

    text: str
    tokens_in: int
    tokens_out: int
    seconds: float
    finish_reason: Literal["stop", "length"]


def _tokenize(vocab: Any, text: str, *, add_bos: bool, special: bool) -> list[int]:
    """llama.cpp tokenization of `text` (grows the buffer when the text needs more tokens)."""
    data = text.encode("utf-8")
    size = len(data) + 8
    buf = (llama_cpp.llama_token * size)()
    n = llama_cpp.llama_tokenize(vocab, data, len(data), buf, size, add_bos, special)
    if n < 0:
        size = -n
        buf = (llama_cpp.llama_token * size)()
        n = llama_cpp.llama_tokenize(vocab, data, len(data), buf, size, add_bos, special)
    return list(buf[:n])


def load_token_counter(model_path: Path) -> Callable[[str], int]:
    """A function giving the token count of a text with `model_path`'s own tokenizer.

    Loads the vocabulary only (no weights, a few MB for any model size), in this process.
    """
    if not Path(model_path).is_file():
        msg = f"model file {model_path} does not exist"
        raise EngineError(msg)
    params = llama_cpp.llama_model_default_params()
    params.vocab_only = True
    model = llama_cpp.llama_model_load_from_file(str(model_path).encode(), params)
    if not model:
        msg = f"cannot load the vocabulary of {model_path}"
        raise EngineError(msg)
    vocab = llama_cpp.llama_model_get_vocab(model)

    def count(text: str) -> int:
        return len(_tokenize(vocab, text, add_bos=False, special=False))

    # The vocabulary lives as long as the counter that uses it.
    weakref.finalize(count, llama_cpp.llama_model_free, model)
    return count


@dataclass
class Engine:
    """One loaded model with its compiled grammars; not thread-safe (one generation at a time)."""

    llm: llama_cpp.Llama
    chat_format: ChatFormat
    grammars: dict[str, Any] = field(default_factory=dict)
    """Grammar name -> compiled llama.cpp grammar sampler (reset before each use)."""
    _template: Any = None
    _candidates: Any = None
    _view: Any = None
    _ids: Any = None
    _single: Any = None

    @classmethod
    def load(
        cls,
        model_path: str | Path,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        chat_format: Literal["auto", "gemma", "raw"] = "auto",
        grammars: Mapping[str, str] | None = None,
    ) -> Engine:
        """Load the GGUF and compile every grammar.

        Raises:
            EngineError: the model cannot be loaded.
            GrammarCompileError: a grammar does not compile (the first one, by name).
        """
        path = Path(model_path)
        if not path.is_file():
            msg = f"model file {path} does not exist"
            raise EngineError(msg)
        try:
            llm = llama_cpp.Llama(
                model_path=str(path),
                n_ctx=n_ctx,
                n_threads=n_threads,
                n_threads_batch=n_threads,
                n_gpu_layers=n_gpu_layers,
                verbose=False,
            )
        except (ValueError, RuntimeError) as exc:
            msg = f"llama.cpp cannot load {path}: {exc}"
            raise EngineError(msg) from exc
        template = llm.metadata.get("tokenizer.chat_template") or ""
        arch = llm.metadata.get("general.architecture", "")
        resolved: ChatFormat
        if chat_format == "auto":
            resolved = "template" if template else "gemma" if arch.startswith("gemma") else "raw"
        else:
            resolved = chat_format
        engine = cls(llm=llm, chat_format=resolved)
        if resolved == "template":
            engine._template = Jinja2ChatFormatter(
                template=template,
                eos_token=llm._model.token_get_text(llm.token_eos()),
                bos_token=llm._model.token_get_text(llm.token_bos()),
                add_generation_prompt=True,
            )
        n_vocab = llm.n_vocab()
        engine._candidates = (llama_cpp.llama_token_data * n_vocab)()
        # Numpy views made once: building one per token costs more than the tiny model's step.
        engine._view = np.ctypeslib.as_array(engine._candidates)
        engine._ids = np.arange(n_vocab, dtype=np.int32)
        engine._single = (llama_cpp.llama_token_data * 1)()
        try:
            for name, text in (grammars or {}).items():
                engine.grammars[name] = engine._compile(name, text)
        except GrammarCompileError:
            engine.close()
            raise
        return engine

    @property
    def _vocab(self) -> Any:
        return self.llm._model.vocab

    def _compile(self, name: str, text: str) -> Any:
        with _LOG.capture() as lines, _capture_stderr() as printed:
            sampler = llama_cpp.llama_sampler_init_grammar(
                self._vocab, text.encode("utf-8"), b"root"
            )
        if not sampler:
            # The parser prints its message on stderr; llama.cpp's log only says "failed".
            said = [line.strip() for line in [*printed, *lines] if line.strip()]
            detail = said[0] if said else "no message"
            msg = f"grammar {name!r} does not compile: {detail}"
            raise GrammarCompileError(msg, grammar_name=name)
        return sampler

    def close(self) -> None:
        """Free the grammars and the model."""
        for sampler in self.grammars.values():
            llama_cpp.llama_sampler_free(sampler)
        self.grammars.clear()
        self.llm.close()

    def render(self, prompt: str, system: str | None = None, *, raw: bool = False) -> str:
        """The prompt text as the model sees it; system text is merged into the user turn."""
        text = f"{system}\n\n{prompt}" if system else prompt
        if raw or self.chat_format == "raw":
            return text
        if self.chat_format == "gemma":
            return _GEMMA_TURNS.format(text=text)
        response = self._template(messages=[{"role": "user", "content": text}])
        return str(response.prompt)

    def prompt_tokens(
        self, prompt: str, system: str | None = None, *, raw: bool = False
    ) -> list[int]:
        """The token ids fed to the model for `prompt` (with BOS unless the template wrote it)."""
        text = self.render(prompt, system, raw=raw)
        bos = self.llm._model.token_get_text(self.llm.token_bos())
        add_bos = self.llm._model.add_bos_token() and not (bos and text.startswith(bos))
        return _tokenize(self._vocab, text, add_bos=add_bos, special=True)

    def count_tokens(self, text: str) -> int:
        """Tokens of `text` with this model's tokenizer (no BOS, control tokens as text)."""
        return len(_tokenize(self._vocab, text, add_bos=False, special=False))

    def generate(
        self,
        prompt: str,
        grammar_name: str | None,
        *,
        max_tokens: int,
        temperature: float = 0.0,
        seed: int = 0,
        system: str | None = None,
        raw: bool = False,
    ) -> Generation:
        """Generate an answer; with a grammar, every token is one the grammar allows.

        Raises:
            EngineError: unknown grammar, or a prompt longer than the context.
        """
        started = time.perf_counter()
        grammar = None
        if grammar_name is not None:
            if grammar_name not in self.grammars:
                known = ", ".join(sorted(self.grammars))
                msg = f"unknown grammar {grammar_name!r}; known: {known}"
                raise EngineError(msg, grammar_name=grammar_name)
            grammar = self.grammars[grammar_name]
            llama_cpp.llama_sampler_reset(grammar)
        tokens = self.prompt_tokens(prompt, system, raw=raw)
        n_ctx = self.llm.n_ctx()
        if len(tokens) >= n_ctx:
            msg = f"prompt of {len(tokens)} tokens does not fit the context of {n_ctx} tokens"
            raise EngineError(msg)
        budget = min(max_tokens, n_ctx - len(tokens))
        chain = self._chain(temperature, seed)
        out = bytearray()
        finish: Literal["stop", "length"] = "length"
        n_out = 0
        try:
            # Every call starts from an empty cache: reusing a prefix would evaluate the prompt
            # in other batch shapes, and greedy answers could then differ in the last bit.
            self.llm.n_tokens = 0  # what Llama.reset() does (it is untyped)
            self.llm.eval(tokens)
            while n_out < budget:
                token = self._sample(chain, grammar)
                if llama_cpp.llama_vocab_is_eog(self._vocab, token):
                    finish = "stop"
                    break
                out += self._piece(token)
                n_out += 1
                if n_out < budget:
                    self.llm.eval([token])
        finally:
            llama_cpp.llama_sampler_free(chain)
        return Generation(
            text=out.decode("utf-8", errors="replace"),
            tokens_in=len(tokens),
            tokens_out=n_out,
            seconds=time.perf_counter() - started,
            finish_reason=finish,
        )

    @staticmethod
    def _chain(temperature: float, seed: int) -> Any:
        params = llama_cpp.llama_sampler_chain_default_params()
        chain = llama_cpp.llama_sampler_chain_init(params)
        if temperature <= 0:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_greedy())
        else:
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_temp(temperature))
            llama_cpp.llama_sampler_chain_add(chain, llama_cpp.llama_sampler_init_dist(seed))
        return chain

    def _fill(self) -> Any:
        """A token-data array over the whole vocabulary holding the last logits."""
        n_vocab = len(self._candidates)
        address = ctypes.cast(
            llama_cpp.llama_get_logits_ith(self.llm._ctx.ctx, -1), ctypes.c_void_p
        )
        logits = (ctypes.c_float * n_vocab).from_address(address.value or 0)
        view = self._view
        view["id"] = self._ids
        view["logit"] = np.frombuffer(memoryview(logits), dtype=np.float32)
        view["p"] = 0.0
        return llama_cpp.llama_token_data_array(
            data=self._candidates, size=n_vocab, selected=-1, sorted=False
        )

    def _sample(self, chain: Any, grammar: Any) -> int:
        """Sample the next token: first without the grammar, then check only that token.

        Applying the grammar to all 262,144 gemma tokens per step costs ~3x the generation time;
        checking one token is almost free, and only a rejected token pays for the full pass
        (llama.cpp's own common sampler does the same; the resulting distribution is identical).
        """
        cur = self._fill()
        llama_cpp.llama_sampler_apply(chain, ctypes.byref(cur))
        token = int(cur.data[cur.selected].id)
        if grammar is not None:
            single = self._single
            single[0].id = token
            single[0].logit = 1.0
            one = llama_cpp.llama_token_data_array(data=single, size=1, selected=-1, sorted=False)
            llama_cpp.llama_sampler_apply(grammar, ctypes.byref(one))
            if not np.isfinite(single[0].logit):
                cur = self._fill()
                llama_cpp.llama_sampler_apply(grammar, ctypes.byref(cur))
                llama_cpp.llama_sampler_apply(chain, ctypes.byref(cur))
                token = int(cur.data[cur.selected].id)
            llama_cpp.llama_sampler_accept(grammar, token)
        llama_cpp.llama_sampler_accept(chain, token)
        return token

    def accepts(self, grammar_name: str, text: str) -> bool:
        """True when grammar `grammar_name` accepts `text` as a complete answer.

        Walks the text token by token through llama.cpp's own grammar engine (the same check
        generation uses), then asks whether the answer may end there.
        """
        grammar = self.grammars[grammar_name]
        llama_cpp.llama_sampler_reset(grammar)
        tokens = _tokenize(self._vocab, text, add_bos=False, special=False)
        eos = llama_cpp.llama_vocab_eos(self._vocab)
        for token in [*tokens, eos]:
            single = self._single
            single[0].id = token
            single[0].logit = 1.0
            one = llama_cpp.llama_token_data_array(data=single, size=1, selected=-1, sorted=False)
            llama_cpp.llama_sampler_apply(grammar, ctypes.byref(one))
            if not np.isfinite(single[0].logit):
                return False
            if token != eos:
                llama_cpp.llama_sampler_accept(grammar, token)
        return True

    def _piece(self, token: int) -> bytes:
        buf = ctypes.create_string_buffer(64)
        n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, 64, 0, False)
        if n < 0:
            buf = ctypes.create_string_buffer(-n)
            n = llama_cpp.llama_token_to_piece(self._vocab, token, buf, -n, 0, False)
        return buf.raw[:n]


class Worker:
    """The request loop: one request at a time, one reply each, until exit or end of input."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self.engine: Engine | None = None

    def send(self, message: Any) -> None:
        """Write one reply line."""
        self._out.write(encode_line(message))
        self._out.flush()

    def handle(self, request: Any) -> bool:
        """Answer one request; False once the worker must exit."""
        if isinstance(request, LoadModel):
            self._unload()
            started = time.perf_counter()
            self.engine = Engine.load(
                request.model_path,
                n_ctx=request.n_ctx,
                n_threads=request.n_threads,
                n_gpu_layers=request.n_gpu_layers,
                chat_format=request.chat_format,
                grammars=request.grammars,
            )
            self.send(
                ModelLoaded.caused_by(
                    request,
                    model_path=request.model_path,
                    n_ctx=self.engine.llm.n_ctx(),
                    n_vocab=self.engine.llm.n_vocab(),
                    chat_format=self.engine.chat_format,
                    grammars=tuple(self.engine.grammars),
                    seconds=time.perf_counter() - started,
                    rss_bytes=rss_bytes(),
                )
            )
        elif isinstance(request, GenerateText):
            result = self._engine().generate(
                request.prompt,
                request.grammar_name,
                max_tokens=request.max_tokens,
                temperature=request.temperature,
                seed=request.seed,
                system=request.system,
                raw=request.raw,
            )
            self.send(
                TextGenerated.caused_by(
                    request,
                    text=result.text,
                    tokens_in=result.tokens_in,
                    tokens_out=result.tokens_out,
                    seconds=result.seconds,
                    finish_reason=result.finish_reason,
                )
            )
        elif isinstance(request, CountTokens):
            count = self._engine().count_tokens(request.text)
            self.send(TokensCounted.caused_by(request, count=count))
        elif isinstance(request, UnloadModel):
            self._unload()
            self.send(ModelUnloaded.caused_by(request, rss_bytes=rss_bytes()))
        elif isinstance(request, ExitWorker):
            self._unload()
            self.send(WorkerExiting.caused_by(request))
            return False
        return True

    def _engine(self) -> Engine:
        if self.engine is None:
            msg = "no model is loaded; send a load request first"
            raise NoModelError(msg)
        return self.engine

    def _unload(self) -> None:
        if self.engine is not None:
            self.engine.close()
            self.engine = None

    def serve(self, lines: BinaryIO) -> int:
        """Answer requests from `lines` until exit or end of input; return the exit status."""
        self.send(WorkerReady(pid=os.getpid(), llama_cpp_version=llama_cpp.__version__))
        while line := lines.readline(MAX_LINE_BYTES):
            try:
                request = decode_request(line)
            except ValidationError as exc:
                self.send(WorkerFailed(error_type="BadRequest", message=str(exc)[:2000]))
                continue
            try:
                if not self.handle(request):
                    return 0
            except EngineError as exc:
                self._reply_error(request, exc, exc.grammar_name)
            except Exception as exc:  # noqa: BLE001 - a failed request is reported, the loop goes on
                self._reply_error(request, exc, None)
        # End of input: the client is gone; free the model and leave.
        self._unload()
        return 0

    def _reply_error(self, request: Any, exc: Exception, grammar_name: str | None) -> None:
        self.send(
            WorkerFailed.caused_by(
                request,
                error_type=type(exc).__name__,
                message=str(exc)[:2000],
                grammar_name=grammar_name,
            )
        )


def main() -> int:
    """Run the worker on this process's stdin/stdout."""
    # The protocol gets its own copy of stdout; fd 1 then points at stderr, so anything that
    # prints (llama.cpp, a stray print) can never corrupt a protocol line.
    protocol = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return Worker(protocol).serve(sys.stdin.buffer)


if __name__ == "__main__":
    sys.exit(main())
