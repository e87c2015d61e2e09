"""Every message kind round-trips through JSON unchanged; bad kinds and fields are refused."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from bundle_factory.selftest import SAMPLE_RESULTS
from messages.artifacts import PolicyCandidate, PredictionPool
from messages.bundle import BuildBundle, BundleBuilt
from messages.chapter13 import CandidateEmitted, PoolRegistered, RegisterPool
from messages.decisions import MetricThreshold, StepAction, StepDecision
from messages.dispatch import CancelJobs, JobFinished, JobProgress, RunJob
from messages.ingestion import Draw, DrawIngested, InboxFileSeen, IngestInbox, InjectDraws
from messages.lifecycle import Describe, Described, Shutdown, SystemStarted
from messages.llm import Decide, Decision, ReleaseVRAM, VRAMReleased, VRAMReturned
from messages.requests import ProcessSpool, RequestFiled, RequestFinished
from messages.union import AnyMessage, parse_message

if TYPE_CHECKING:
    from messages.base import Message

text = st.text(min_size=1, max_size=40)
ids = st.text(alphabet="abcdef0123456789", min_size=1, max_size=32)
scalars = st.one_of(
    st.integers(-(10**6), 10**6),
    st.booleans(),
    text,
    st.floats(allow_nan=False, allow_infinity=False, width=32),
)
stamps = st.datetimes(
    min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
)
draws = st.builds(
    Draw,
    draw_id=ids,
    timestamp=stamps,
    value=st.integers(0, 999),
    metadata=st.dictionaries(text, scalars, max_size=3),
)
decisions = st.builds(
    StepDecision,
    success_condition_met=st.booleans(),
    confidence=st.floats(0, 1),
    reasoning=st.from_regex(r"[a-z .,0-9]{0,80}", fullmatch=True),
    recommended_action=st.sampled_from(StepAction),
)
thresholds = st.builds(
    MetricThreshold,
    metric=text,
    min=st.none() | st.floats(-10, 10),
    max=st.none() | st.floats(-10, 10),
)

# Real artifacts of the reference pipeline (trimmed), as the nested payloads of some kinds.
POOL = PredictionPool.model_validate(SAMPLE_RESULTS[6]["pool"])
CANDIDATE = PolicyCandidate.model_validate(SAMPLE_RESULTS[99]["best"])

STRATEGIES: dict[type[Message], st.SearchStrategy[Any]] = {
    RegisterPool: st.builds(RegisterPool, pool=st.just(POOL), request_id=st.none() | ids),
    PoolRegistered: st.builds(
        PoolRegistered, pool_id=ids, after_draw_id=st.none() | ids, stale=st.booleans()
    ),
    CandidateEmitted: st.builds(
        CandidateEmitted, candidate=st.just(CANDIDATE), run_id=ids, request_id=ids
    ),
    DrawIngested: st.builds(
        DrawIngested,
        draw=draws,
        stream=st.sampled_from(["real", "synthetic"]),
        is_backfill=st.booleans(),
        history_len=st.integers(1, 10**6),
        fingerprint=ids,
    ),
    InboxFileSeen: st.builds(InboxFileSeen, path=text),
    IngestInbox: st.builds(IngestInbox),
    InjectDraws: st.builds(InjectDraws, count=st.integers(1, 1000)),
    RequestFiled: st.builds(RequestFiled, request_id=ids),
    ProcessSpool: st.builds(ProcessSpool),
    RequestFinished: st.builds(
        RequestFinished,
        request_id=ids,
        request_type=st.sampled_from(
            ["selfplay_retrain", "learning_loop", "pipeline_rerun", "unknown"]
        ),
        status=st.sampled_from(
            ["completed", "failed", "rejected", "halted", "escalated", "superseded"]
        ),
        units=st.lists(st.sampled_from(["1", "3", "6", "selfplay"]), max_size=3).map(tuple),
        gpu_seconds=st.floats(0, 1e6),
        history_from=st.none() | ids,
    ),
    BuildBundle: st.builds(
        BuildBundle,
        step_id=st.integers(1, 99),
        results=st.dictionaries(text, scalars, max_size=4),
        run_id=ids,
    ),
    BundleBuilt: st.builds(
        BundleBuilt,
        prompt=text,
        grammar_name=text,
        bundle=st.dictionaries(text, scalars, max_size=3),
        thresholds=st.lists(thresholds, max_size=3).map(tuple),
    ),
    Decide: st.builds(
        Decide, prompt=text, grammar_name=text, metrics=st.dictionaries(text, scalars, max_size=3)
    ),
    Decision: st.builds(
        Decision,
        grammar_name=st.just("agent_decision"),
        answer=decisions,
        source=st.sampled_from(["llm", "heuristic", "fail_closed"]),
        attempts=st.integers(0, 3),
    ),
    ReleaseVRAM: st.builds(ReleaseVRAM, lease_id=ids, reason=text, deadline_s=st.floats(0.1, 100)),
    VRAMReleased: st.builds(VRAMReleased, lease_id=ids, freed_bytes=st.integers(0, 2**40)),
    VRAMReturned: st.builds(VRAMReturned, lease_id=ids),
    RunJob: st.builds(
        RunJob, job=text, run_id=ids, params=st.dictionaries(text, st.integers() | text, max_size=3)
    ),
    JobProgress: st.builds(
        JobProgress, job=text, run_id=ids, done=st.integers(0, 100), total=st.integers(0, 100)
    ),
    Shutdown: st.builds(Shutdown, reason=st.text(max_size=40)),
    CancelJobs: st.builds(CancelJobs, reason=st.text(max_size=40)),
    Describe: st.builds(Describe),
    SystemStarted: st.builds(SystemStarted, actors=st.lists(text, max_size=3).map(tuple)),
    Described: st.builds(Described, actor=text, state=st.dictionaries(text, scalars, max_size=3)),
    JobFinished: st.builds(
        JobFinished,
        job=text,
        run_id=ids,
        status=st.sampled_from(["completed", "failed", "timed_out", "cancelled"]),
        result=st.none() | st.dictionaries(text, scalars, max_size=3),
    ),
}


def test_every_kind_of_the_union_has_a_strategy() -> None:
    """The round-trip test covers every member of the union (none forgotten)."""
    members = set(AnyMessage.__origin__.__args__)  # type: ignore[attr-defined]
    assert members == set(STRATEGIES)


@pytest.mark.parametrize("kind", list(STRATEGIES), ids=lambda k: k.__name__)
def test_every_kind_round_trips_through_json(kind: type[Message]) -> None:
    """model -> JSON -> parse_message gives an equal model of the same class."""

    @given(STRATEGIES[kind])
    def check(message: Message) -> None:
        back = parse_message(message.model_dump_json())
        assert type(back) is kind
        assert back == message

    check()


def test_unknown_kind_is_refused_naming_the_kinds() -> None:
    """A JSON message of an unknown kind fails validation with the tag in the error."""
    with pytest.raises(ValidationError, match="reboot"):
        parse_message('{"kind": "reboot", "message_id": "x"}')


def test_extra_field_is_refused() -> None:
    """A field the model does not declare is an error, not silently dropped."""
    good = RequestFiled(request_id="r1").model_dump()
    with pytest.raises(ValidationError, match="extra"):
        parse_message(__import__("json").dumps({**good, "surprise": 1}, default=str))


def test_messages_are_frozen_and_caused_by_carries_the_flow() -> None:
    """Messages cannot be changed; caused_by keeps the correlation id and sets causation."""
    first = RequestFiled(request_id="r1")
    with pytest.raises(ValidationError):
        first.request_id = "r2"  # type: ignore[misc]
    second = ProcessSpool.caused_by(first)
    assert second.correlation_id == first.correlation_id
    assert second.causation_id == first.message_id
    assert second.message_id != first.message_id
