"""The JSON-lines protocol between the LLM actor's client and its worker process.

One message per line, UTF-8 JSON, in both directions; the `kind` field tells the model. The
client writes requests on the worker's stdin, the worker answers each one on its stdout with a
reply whose `causation_id` is the request's `message_id` (so a reply to an abandoned request can be
recognised and skipped). The worker announces itself with `WorkerReady` before reading anything.

::

    client -> worker            worker -> client
    LoadModel                   ModelLoaded | WorkerFailed
    GenerateText                TextGenerated | WorkerFailed
    CountTokens                 TokensCounted | WorkerFailed
    UnloadModel                 ModelUnloaded
    ExitWorker                  WorkerExiting, then the process exits 0
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from messages.base import Message

MAX_LINE_BYTES = 16 * 1024 * 1024
"""A protocol line longer than this is refused (a generated answer is ~2 KB; grammars ~10 KB)."""


class LoadModel(Message):
    """Load a GGUF model and compile every grammar given; replaces a model already loaded."""

    kind: Literal["llm_worker.load"] = "llm_worker.load"
    model_path: str
    n_ctx: int = Field(default=4096, ge=256)
    n_threads: int | None = Field(default=None, ge=1)
    """CPU threads; None lets llama.cpp choose."""
    n_gpu_layers: int = Field(default=0, ge=-1)
    """Layers offloaded to the GPU; -1 offloads all of them."""
    chat_format: Literal["auto", "gemma", "raw"] = "auto"
    """auto: the GGUF's chat template, else gemma turns for gemma models, else the raw prompt."""
    grammars: dict[str, str] = Field(default_factory=dict)
    """Grammar name -> GBNF text; all are compiled at load, the first failure fails the load."""


class GenerateText(Message):
    """Generate an answer to `prompt`, constrained by grammar `grammar_name` (None: free text)."""

    kind: Literal["llm_worker.generate"] = "llm_worker.generate"
    prompt: str
    grammar_name: str | None
    max_tokens: int = Field(ge=1)
    temperature: float = Field(default=0.0, ge=0.0, le=5.0)
    """0 is greedy (deterministic); above 0 samples with `seed`."""
    seed: int = Field(default=0, ge=0, lt=2**32)
    system: str | None = None
    """System text; merged into the user turn (gemma has no system role)."""
    raw: bool = False
    """Skip the chat template and feed `prompt` as is."""


class CountTokens(Message):
    """Count the tokens of `text` with the loaded model's tokenizer (no BOS)."""

    kind: Literal["llm_worker.count_tokens"] = "llm_worker.count_tokens"
    text: str


class UnloadModel(Message):
    """Free the model (the process stays up, holding no model memory it can give back)."""

    kind: Literal["llm_worker.unload"] = "llm_worker.unload"


class ExitWorker(Message):
    """Free the model and end the process: the only reliable way to return llama.cpp's memory."""

    kind: Literal["llm_worker.exit"] = "llm_worker.exit"


class WorkerReady(Message):
    """First line the worker writes: it started and imported llama.cpp."""

    kind: Literal["llm_worker.ready"] = "llm_worker.ready"
    pid: int
    llama_cpp_version: str


class ModelLoaded(Message):
    """The model is loaded and every grammar compiled."""

    kind: Literal["llm_worker.loaded"] = "llm_worker.loaded"
    model_path: str
    n_ctx: int
    n_vocab: int
    chat_format: Literal["template", "gemma", "raw"]
    """The prompt format in use: the GGUF's own template, gemma turns, or none."""
    grammars: tuple[str, ...]
    seconds: float
    rss_bytes: int
    """The worker's resident memory after the load."""


class TextGenerated(Message):
    """The answer to a GenerateText."""

    kind: Literal["llm_worker.generated"] = "llm_worker.generated"
    text: str
    tokens_in: int
    tokens_out: int
    seconds: float
    finish_reason: Literal["stop", "length"]
    """stop: the model (or grammar) ended the answer; length: max_tokens or n_ctx cut it."""


class TokensCounted(Message):
    """The answer to a CountTokens."""

    kind: Literal["llm_worker.tokens_counted"] = "llm_worker.tokens_counted"
    count: int


class ModelUnloaded(Message):
    """The model is freed."""

    kind: Literal["llm_worker.unloaded"] = "llm_worker.unloaded"
    rss_bytes: int


class WorkerExiting(Message):
    """The worker is about to exit with status 0."""

    kind: Literal["llm_worker.exiting"] = "llm_worker.exiting"


class WorkerFailed(Message):
    """A request failed; the worker is still up and reads the next request."""

    kind: Literal["llm_worker.failed"] = "llm_worker.failed"
    error_type: str
    """The failure's class name, e.g. GrammarCompileError, NoModelError, ValueError."""
    message: str
    grammar_name: str | None = None
    """The grammar at fault, for grammar failures."""


WorkerRequest = Annotated[
    LoadModel | GenerateText | CountTokens | UnloadModel | ExitWorker,
    Field(discriminator="kind"),
]
"""Any message the client sends."""

WorkerReply = Annotated[
    WorkerReady
    | ModelLoaded
    | TextGenerated
    | TokensCounted
    | ModelUnloaded
    | WorkerExiting
    | WorkerFailed,
    Field(discriminator="kind"),
]
"""Any message the worker sends."""

REQUEST_ADAPTER: TypeAdapter[WorkerRequest] = TypeAdapter(WorkerRequest)
REPLY_ADAPTER: TypeAdapter[WorkerReply] = TypeAdapter(WorkerReply)


def encode_line(message: Message) -> bytes:
    """One protocol line: compact JSON and a newline (JSON escapes any newline inside)."""
    return message.model_dump_json().encode("utf-8") + b"\n"


def decode_request(line: bytes | str) -> WorkerRequest:
    """Parse one request line; raises pydantic's ValidationError on anything else."""
    return REQUEST_ADAPTER.validate_json(line)


def decode_reply(line: bytes | str) -> WorkerReply:
    """Parse one reply line; raises pydantic's ValidationError on anything else."""
    return REPLY_ADAPTER.validate_json(line)
