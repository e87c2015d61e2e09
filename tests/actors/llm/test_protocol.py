"""The worker protocol: every message round-trips through one JSON line; kinds are unique."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from pydantic import ValidationError

from messages.llm_worker import (
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
    decode_reply,
    decode_request,
    encode_line,
)

if TYPE_CHECKING:
    from messages.base import Message

REQUESTS: list[Message] = [
    LoadModel(model_path="/m.gguf", grammars={"g": 'root ::= "x"\n'}),
    GenerateText(prompt="line one\nline two", grammar_name=None, max_tokens=5, system="s"),
    CountTokens(text="\u00e9\u4e2d\n"),
    UnloadModel(),
    ExitWorker(),
]
REPLIES: list[Message] = [
    WorkerReady(pid=1, llama_cpp_version="0.3.36"),
    ModelLoaded(
        model_path="/m.gguf",
        n_ctx=4096,
        n_vocab=10,
        chat_format="gemma",
        grammars=("g",),
        seconds=0.5,
        rss_bytes=1,
    ),
    TextGenerated(text='{"a":\n1}', tokens_in=3, tokens_out=4, seconds=0.1, finish_reason="stop"),
    TokensCounted(count=3),
    ModelUnloaded(rss_bytes=0),
    WorkerExiting(),
    WorkerFailed(error_type="ValueError", message="bad", grammar_name="g"),
]


@pytest.mark.parametrize("message", REQUESTS, ids=lambda m: m.kind)
def test_requests_round_trip_on_one_line(message: Message) -> None:
    """A request encodes to exactly one line and decodes to an equal message."""
    line = encode_line(message)
    assert line.endswith(b"\n")
    assert line.count(b"\n") == 1
    assert decode_request(line) == message


@pytest.mark.parametrize("message", REPLIES, ids=lambda m: m.kind)
def test_replies_round_trip_on_one_line(message: Message) -> None:
    """A reply encodes to exactly one line and decodes to an equal message."""
    line = encode_line(message)
    assert line.count(b"\n") == 1
    assert decode_reply(line) == message


def test_kinds_are_unique_and_namespaced() -> None:
    """Every kind is distinct and prefixed, so the protocol never collides with actor messages."""
    kinds = [m.kind for m in [*REQUESTS, *REPLIES]]
    assert len(set(kinds)) == len(kinds)
    assert all(k.startswith("llm_worker.") for k in kinds)


@pytest.mark.parametrize(
    "line",
    [
        b'{"kind": "llm_worker.launch_missiles"}',
        encode_line(WorkerExiting()),  # a reply is not a request
        b'{"kind": "llm_worker.generate", "prompt": "p", "grammar_name": null, "max_tokens": 0}',
        b"not json",
    ],
)
def test_bad_request_lines_are_refused(line: bytes) -> None:
    """Unknown kinds, replies, out-of-range values and garbage fail validation."""
    with pytest.raises(ValidationError):
        decode_request(line)
