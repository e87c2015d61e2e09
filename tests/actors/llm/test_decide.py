"""The fail-closed decision procedure: retry once, then heuristic, then escalate; never proceed."""

from __future__ import annotations

import json
import os
import signal
import sys
from pathlib import Path

import anyio
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from actors.llm.client import open_worker
from actors.llm.decide import (
    DecisionOutcome,
    corrective_prompt,
    decide,
    fail_closed_answer,
    permits_action,
)
from actors.llm.heuristic import heuristic_decision
from grammars import GRAMMAR_NAMES, UnknownGrammarError
from messages.decisions import (
    GRAMMAR_MODELS,
    DecisionModel,
    MetricThreshold,
    StepAction,
    StepDecision,
)

FAKE = Path(__file__).with_name("fake_worker.py")

PROCEED = StepDecision(
    success_condition_met=True,
    confidence=0.9,
    reasoning="fine",
    recommended_action=StepAction.PROCEED,
)
PROCEED_TEXT = PROCEED.model_dump_json(exclude={"schema_version"})


def scripted(*texts: str | Exception) -> tuple[list[str], object]:
    """A generate function answering `texts` in turn, and the list of prompts it received."""
    prompts: list[str] = []
    answers = list(texts)

    async def generate(prompt: str, grammar_name: str) -> str:
        prompts.append(prompt)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    return prompts, generate


def passing_heuristic() -> DecisionModel:
    """The heuristic on metrics that pass: it proceeds (deterministic rules, not a default)."""
    return heuristic_decision(
        "agent_decision", {"accuracy": 0.95}, [MetricThreshold(metric="accuracy", min=0.9)]
    )


def broken_heuristic() -> DecisionModel:
    """A heuristic that fails."""
    raise RuntimeError("no metrics store")


async def run(generate: object, heuristic: object = passing_heuristic) -> DecisionOutcome:
    return await decide(
        "judge step 3",
        "agent_decision",
        generate=generate,  # type: ignore[arg-type]
        heuristic=heuristic,  # type: ignore[arg-type]
    )


@pytest.mark.anyio
async def test_no_model_means_heuristic() -> None:
    """generate=None: the heuristic answers, source heuristic, no attempts, no error."""
    outcome = await run(None)
    assert (outcome.source, outcome.attempts, outcome.error) == ("heuristic", 0, None)
    assert outcome.answer == passing_heuristic()


@pytest.mark.anyio
async def test_valid_first_answer_is_used() -> None:
    """A parsable answer is the LLM's decision after one attempt."""
    prompts, generate = scripted(PROCEED_TEXT)
    outcome = await run(generate)
    assert (outcome.source, outcome.attempts, outcome.raw_text) == ("llm", 1, PROCEED_TEXT)
    assert outcome.answer == PROCEED
    assert prompts == ["judge step 3"]


@pytest.mark.anyio
async def test_one_corrective_retry_says_what_was_wrong() -> None:
    """An invalid answer gets one retry whose prompt quotes the problem; a good retry is used."""
    prompts, generate = scripted('{"success_condition_met": tru', PROCEED_TEXT)
    outcome = await run(generate)
    assert (outcome.source, outcome.attempts) == ("llm", 2)
    assert prompts[1].startswith("judge step 3\n\nYour previous answer could not be used: ")
    assert "not valid JSON" in prompts[1]


@pytest.mark.anyio
async def test_two_invalid_answers_go_to_the_heuristic() -> None:
    """After the retry fails too, the heuristic answers and the error keeps both problems."""
    _, generate = scripted('{"decision": "proceed"}', "garbage")
    outcome = await run(generate, heuristic=lambda: fail_closed_answer("agent_decision", "x"))
    assert (outcome.source, outcome.attempts) == ("heuristic", 2)
    assert outcome.error is not None
    assert "attempt 1: " in outcome.error
    assert "attempt 1: decision: Extra inputs are not permitted" in outcome.error
    assert "attempt 2: not valid JSON" in outcome.error


@pytest.mark.anyio
async def test_a_crash_goes_straight_to_the_heuristic() -> None:
    """A failing generate is not retried: the heuristic answers at once."""
    prompts, generate = scripted(ConnectionError("worker died"))
    outcome = await run(generate)
    assert (outcome.source, outcome.attempts) == ("heuristic", 1)
    assert outcome.error == "generate failed: ConnectionError: worker died"
    assert len(prompts) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    "heuristic",
    [broken_heuristic, lambda: fail_closed_answer("chapter_13", "wrong model")],
)
async def test_heuristic_failure_escalates(heuristic: object) -> None:
    """A heuristic that raises or answers the wrong model leads to the escalate answer."""
    _, generate = scripted("garbage", "garbage")
    outcome = await run(generate, heuristic=heuristic)
    assert outcome.source == "fail_closed"
    assert isinstance(outcome.answer, StepDecision)
    assert outcome.answer.recommended_action is StepAction.ESCALATE
    assert outcome.answer.confidence == 0.0


@pytest.mark.anyio
async def test_cancellation_is_not_swallowed() -> None:
    """A cancelled decide does not turn into a heuristic answer."""

    async def forever(prompt: str, grammar_name: str) -> str:
        await anyio.sleep_forever()
        raise AssertionError

    outcomes: list[DecisionOutcome] = []
    with anyio.move_on_after(0.01):
        outcomes.append(await run(forever))
    assert outcomes == []


@pytest.mark.anyio
async def test_unknown_grammar_is_an_error() -> None:
    """decide refuses a grammar it has no model for, naming the known ones."""
    with pytest.raises(UnknownGrammarError, match="known: agent_decision"):
        await decide("p", "nope", generate=None, heuristic=passing_heuristic)


@pytest.mark.parametrize("name", GRAMMAR_NAMES)
def test_fail_closed_answers_never_permit_action(name: str) -> None:
    """Every grammar's escalate answer is its own model and permits nothing."""
    answer = fail_closed_answer(name, 'a reason with "quotes" and\nnewlines')
    assert type(answer) is GRAMMAR_MODELS[name]
    assert not permits_action(answer)


def _valid_texts() -> list[str]:
    return [PROCEED_TEXT, json.dumps({"decision": "proceed", "confidence": 0.99})]


GARBAGE = st.one_of(
    st.text(max_size=200),
    st.sampled_from(_valid_texts()).flatmap(
        lambda t: st.integers(0, len(t) - 1).map(lambda n: t[:n])  # truncated answers
    ),
    st.dictionaries(st.text(max_size=10), st.sampled_from(["proceed", 1.0, True, None])).map(
        json.dumps
    ),
    st.just(PROCEED_TEXT.replace("0.9", "1.9")),  # out of range
    st.just(PROCEED_TEXT.replace('"proceed"', '"PROCEED"')),  # not an enum value
)


@settings(max_examples=150, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    first=GARBAGE,
    second=GARBAGE,
    heuristic=st.sampled_from(
        [broken_heuristic, lambda: fail_closed_answer("agent_decision", "escalate")]
    ),
)
def test_garbage_never_becomes_proceed(first: str, second: str, heuristic: object) -> None:
    """Whatever invalid text the model writes, the outcome is never an LLM 'proceed'."""
    _, generate = scripted(first, second)
    outcome = anyio.run(run, generate, heuristic)
    assert outcome.source in {"heuristic", "fail_closed"}
    assert not permits_action(outcome.answer)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("mode", "source", "action"),
    [
        ("garbage", "heuristic", StepAction.ESCALATE),
        ("truncated", "heuristic", StepAction.ESCALATE),
        ("old_bug", "heuristic", StepAction.ESCALATE),
        ("die", "heuristic", StepAction.ESCALATE),
        ("escalate", "llm", StepAction.ESCALATE),
    ],
)
async def test_fake_worker_answers_end_in_escalate(
    mode: str, source: str, action: StepAction
) -> None:
    """Through a real client: garbage, truncation, the old key bug or a crash never proceed."""
    failing = heuristic_decision("agent_decision", {}, [MetricThreshold(metric="a", min=1)])
    async with open_worker("fake.gguf", command=[sys.executable, str(FAKE), mode]) as client:

        async def generate(prompt: str, grammar_name: str) -> str:
            result = await client.generate(prompt, grammar_name, max_tokens=100)
            return result.text

        outcome = await decide(
            "judge", "agent_decision", generate=generate, heuristic=lambda: failing
        )
    assert outcome.source == source
    assert isinstance(outcome.answer, StepDecision)
    assert outcome.answer.recommended_action is action


def test_corrective_prompt_keeps_the_original() -> None:
    """The retry prompt is the original prompt plus the problem."""
    text = corrective_prompt("ORIGINAL", "confidence: too big")
    assert text.startswith("ORIGINAL\n\n")
    assert "confidence: too big" in text


@pytest.mark.anyio
async def test_kill_9_of_a_real_worker_still_gets_an_answer(tiny_model: Path) -> None:
    """SIGKILL mid-generation: the caller gets the heuristic's answer, typed error recorded."""
    async with open_worker(tiny_model, n_ctx=32768, n_threads=1) as client:

        async def generate(prompt: str, grammar_name: str) -> str:
            # No grammar and a model that never ends: a long generation to be killed in.
            result = await client.generate(prompt, None, max_tokens=30000, temperature=1.0)
            return result.text

        async def kill_soon() -> None:
            await anyio.sleep(0.2)
            os.kill(client.pid, signal.SIGKILL)

        async with anyio.create_task_group() as tg:
            tg.start_soon(kill_soon)
            outcome = await run(
                generate, heuristic=lambda: fail_closed_answer("agent_decision", "x")
            )
    assert outcome.source == "heuristic"
    assert outcome.attempts == 1
    assert outcome.error is not None
    assert outcome.error.startswith("generate failed: WorkerCrashedError")
    assert not permits_action(outcome.answer)
