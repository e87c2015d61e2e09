"""The worker's engine (in process, tiny model) and its request loop (in process, byte streams)."""

from __future__ import annotations

import io
import json
from typing import TYPE_CHECKING

import pytest

from grammars import load_grammar
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
    encode_line,
)
from tests.actors.llm.tiny_gguf import build_tiny_gguf

if TYPE_CHECKING:
    from pathlib import Path

    from actors.llm.worker import Engine


def test_same_seed_same_answer_other_seed_other_answer(tiny_engine: Engine) -> None:
    """Sampling is reproducible from the seed, and the seed matters."""
    runs = [
        tiny_engine.generate("q", "agent_decision", max_tokens=2000, temperature=1.0, seed=s).text
        for s in (7, 7, 8)
    ]
    assert runs[0] == runs[1]
    assert runs[0] != runs[2]


def test_temperature_zero_is_deterministic(tiny_engine: Engine) -> None:
    """Greedy decoding gives the same answer every time."""
    first = tiny_engine.generate("q", "chapter_13", max_tokens=2000, temperature=0.0, seed=1)
    second = tiny_engine.generate("q", "chapter_13", max_tokens=2000, temperature=0.0, seed=2)
    assert first.text == second.text
    assert first.finish_reason == "stop"


def test_max_tokens_cuts_the_answer_and_says_so(tiny_engine: Engine) -> None:
    """A budget too small for the answer stops at max_tokens with finish_reason length."""
    result = tiny_engine.generate("q", "agent_decision", max_tokens=5, temperature=1.0, seed=3)
    assert result.tokens_out == 5
    assert result.finish_reason == "length"
    with pytest.raises(json.JSONDecodeError):
        json.loads(result.text)


def test_unknown_grammar_names_the_known_ones(tiny_engine: Engine) -> None:
    """Generation with a grammar that was not compiled fails naming the compiled ones."""
    from actors.llm.worker import EngineError  # after the conftest's importorskip

    with pytest.raises(EngineError, match="unknown grammar 'nope'; known: agent_decision"):
        tiny_engine.generate("q", "nope", max_tokens=5)


def test_prompt_longer_than_the_context_is_refused(tiny_model: Path) -> None:
    """A prompt that does not fit n_ctx fails with both numbers, before any generation."""
    from actors.llm.worker import Engine, EngineError

    engine = Engine.load(tiny_model, n_ctx=256)
    try:
        with pytest.raises(EngineError, match=r"prompt of \d+ tokens does not fit .* 256"):
            engine.generate("x" * 400, None, max_tokens=5)
    finally:
        engine.close()


def test_token_counter_agrees_with_the_engine(tiny_engine: Engine, tiny_model: Path) -> None:
    """load_token_counter (vocabulary only) counts like the loaded model."""
    from actors.llm.worker import load_token_counter

    count = load_token_counter(tiny_model)
    for text in ("", "abc", '{"confidence": 0.5}', "unicode: \u00e9\u4e2d"):
        assert count(text) == tiny_engine.count_tokens(text)
    assert count("abc") == 3  # one token per character in the tiny vocabulary


def test_missing_model_file_is_named(tmp_path: Path) -> None:
    """Loading a path that does not exist fails naming the path."""
    from actors.llm.worker import Engine, EngineError

    with pytest.raises(EngineError, match="does not exist"):
        Engine.load(tmp_path / "absent.gguf")


TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def test_chat_template_from_the_gguf_is_used_with_system_merged(tmp_path: Path) -> None:
    """A GGUF with a chat template gets it; system text goes into the single user turn."""
    from actors.llm.worker import Engine

    path = build_tiny_gguf(tmp_path / "templated.gguf", chat_template=TEMPLATE)
    engine = Engine.load(path, n_ctx=512)
    try:
        assert engine.chat_format == "template"
        text = engine.render("judge this", system="you are strict")
        assert text == "<|user|>you are strict\n\njudge this<|end|><|assistant|>"
    finally:
        engine.close()


def test_gemma_turns_and_raw_prompts(tiny_model: Path) -> None:
    """Without a template, chat_format gemma writes gemma turns; raw leaves the text alone."""
    from actors.llm.worker import Engine

    gemma = Engine.load(tiny_model, n_ctx=512, chat_format="gemma")
    raw = Engine.load(tiny_model, n_ctx=512)  # auto: no template, not gemma -> raw
    try:
        assert gemma.render("q", system="s") == (
            "<start_of_turn>user\ns\n\nq<end_of_turn>\n<start_of_turn>model\n"
        )
        assert raw.chat_format == "raw"
        assert raw.render("q", system="s") == "s\n\nq"
    finally:
        gemma.close()
        raw.close()


def _serve(tiny_model: Path, requests: list[bytes]) -> list[object]:
    from actors.llm.worker import Worker

    out = io.BytesIO()
    status = Worker(out).serve(io.BytesIO(b"".join(requests)))
    assert status == 0
    return [decode_reply(line) for line in out.getvalue().splitlines()]


def test_request_loop_answers_each_request_in_order(tiny_model: Path) -> None:
    """ready, then one reply per request, each caused by its request, then exit."""
    load = LoadModel(
        model_path=str(tiny_model),
        n_ctx=1024,
        grammars={"agent_decision": load_grammar("agent_decision")},
    )
    generate = GenerateText(prompt="q", grammar_name="agent_decision", max_tokens=2000, seed=1)
    count = CountTokens(text="abcd")
    unload = UnloadModel()
    bye = ExitWorker()
    after = CountTokens(text="never read")
    replies = _serve(
        tiny_model, [encode_line(m) for m in (load, generate, count, unload, bye, after)]
    )
    assert [type(r) for r in replies] == [
        WorkerReady,
        ModelLoaded,
        TextGenerated,
        TokensCounted,
        ModelUnloaded,
        WorkerExiting,
    ]
    requests = [load, generate, count, unload, bye]
    assert [r.causation_id for r in replies[1:]] == [m.message_id for m in requests]  # type: ignore[attr-defined]
    loaded = replies[1]
    assert isinstance(loaded, ModelLoaded)
    assert loaded.grammars == ("agent_decision",)
    assert loaded.rss_bytes > 0
    counted = replies[3]
    assert isinstance(counted, TokensCounted)
    assert counted.count == 4


def test_bad_requests_get_errors_and_the_loop_goes_on(tiny_model: Path) -> None:
    """Garbage, a generate before load and a broken grammar are answered, not fatal."""
    broken = LoadModel(model_path=str(tiny_model), grammars={"mine": "root ::= nothing-here"})
    replies = _serve(
        tiny_model,
        [
            b"not json\n",
            encode_line(GenerateText(prompt="q", grammar_name=None, max_tokens=3)),
            encode_line(broken),
            encode_line(ExitWorker()),
        ],
    )
    kinds = [type(r) for r in replies]
    assert kinds == [WorkerReady, WorkerFailed, WorkerFailed, WorkerFailed, WorkerExiting]
    bad, no_model, grammar = replies[1:4]
    assert isinstance(bad, WorkerFailed)
    assert bad.error_type == "BadRequest"
    assert isinstance(no_model, WorkerFailed)
    assert no_model.error_type == "NoModelError"
    assert isinstance(grammar, WorkerFailed)
    assert grammar.error_type == "GrammarCompileError"
    assert grammar.grammar_name == "mine"
    assert "Undefined rule identifier 'nothing-here'" in grammar.message


def test_end_of_input_ends_the_loop(tiny_model: Path) -> None:
    """When the client goes away (stdin closes) the worker frees the model and exits 0."""
    replies = _serve(tiny_model, [encode_line(LoadModel(model_path=str(tiny_model)))])
    assert [type(r) for r in replies] == [WorkerReady, ModelLoaded]
