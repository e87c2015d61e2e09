"""A scripted stand-in for the LLM worker: `python fake_worker.py MODE`.

It speaks the real protocol (ready, load, count, unload, exit) and misbehaves on generate:

    garbage     answers "this is not json"
    truncated   answers a StepDecision cut off mid-way
    escalate    answers a valid StepDecision that escalates
    old_bug     answers {"decision": "proceed"}: the key the old dispatcher read
    proceed     answers a valid StepDecision that proceeds
    hang        never answers (the request stays in flight)
    stubborn    never answers and ignores SIGTERM (only SIGKILL ends it)
    slow        answers "proceed" after 0.5 s
    scribble    writes a line that is not a protocol message
    die         exits with status 3
    fail_load   refuses the load with a grammar error
"""

from __future__ import annotations

import json
import signal
import sys
import time
from typing import TYPE_CHECKING

from messages.decisions import StepAction, StepDecision
from messages.llm_worker import (
    CountTokens,
    GenerateText,
    LoadModel,
    ModelLoaded,
    ModelUnloaded,
    TextGenerated,
    TokensCounted,
    WorkerExiting,
    WorkerFailed,
    WorkerReady,
    decode_request,
    encode_line,
)

if TYPE_CHECKING:
    from messages.base import Message


def _decision(action: StepAction) -> str:
    return StepDecision(
        success_condition_met=action is StepAction.PROCEED,
        confidence=0.9,
        reasoning="scripted",
        recommended_action=action,
    ).model_dump_json(exclude={"schema_version"})


_TEXTS = {
    "garbage": "this is not json",
    "truncated": _decision(StepAction.PROCEED)[:40],
    "escalate": _decision(StepAction.ESCALATE),
    "old_bug": json.dumps({"decision": "proceed"}),
    "proceed": _decision(StepAction.PROCEED),
    "slow": _decision(StepAction.PROCEED),
}


def main() -> int:
    """Serve the protocol on stdin/stdout, misbehaving as `sys.argv[1]` says."""
    mode = sys.argv[1]
    out = sys.stdout.buffer

    def send(message: Message) -> None:
        out.write(encode_line(message))
        out.flush()

    if mode == "stubborn":
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    send(WorkerReady(pid=0, llama_cpp_version="fake"))
    for line in sys.stdin.buffer:
        request = decode_request(line)
        if isinstance(request, LoadModel):
            if mode == "fail_load":
                send(
                    WorkerFailed.caused_by(
                        request,
                        error_type="GrammarCompileError",
                        message="grammar 'agent_decision' does not compile: scripted",
                        grammar_name="agent_decision",
                    )
                )
                continue
            send(
                ModelLoaded.caused_by(
                    request,
                    model_path=request.model_path,
                    n_ctx=request.n_ctx,
                    n_vocab=1,
                    chat_format="raw",
                    grammars=tuple(request.grammars),
                    seconds=0.0,
                    rss_bytes=0,
                )
            )
        elif isinstance(request, GenerateText):
            if mode in {"hang", "stubborn"}:
                time.sleep(3600)
            if mode == "die":
                return 3
            if mode == "scribble":
                out.write(b"Segmentation fault? no: just noise\n")
                out.flush()
                continue
            if mode == "slow":
                time.sleep(0.5)
            text = _TEXTS[mode]
            send(
                TextGenerated.caused_by(
                    request,
                    text=text,
                    tokens_in=len(request.prompt),
                    tokens_out=len(text),
                    seconds=0.0,
                    finish_reason="stop",
                )
            )
        elif isinstance(request, CountTokens):
            send(TokensCounted.caused_by(request, count=len(request.text)))
        elif request.kind == "llm_worker.unload":
            send(ModelUnloaded.caused_by(request, rss_bytes=0))
        else:
            send(WorkerExiting.caused_by(request))
            return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
