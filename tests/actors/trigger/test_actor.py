"""The TriggerActor in the running system: a scripted LLM, a probe for the watcher."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import pytest

from actors.services import LLM, TRIGGER, WATCHER
from actors.testing import harness_settings, open_test_system, probe, scripted_llm
from actors.trigger import cli, ledger
from actors.watcher import spool
from messages.artifacts import PolicyCandidate, Survivor, SurvivorSet
from messages.chapter13 import CandidateEmitted, PoolRegistered, RegisterPool
from messages.decisions import RiskLevel
from messages.enums import LearningLoopScope
from messages.llm import Decide
from messages.requests import LearningLoop, RequestFiled, RequestFinished
from pipeline.files import write_model
from pipeline.selfplay import DEFAULT_POLICY

from . import sim
from .helpers import (
    audit_events,
    decisions,
    draw_id,
    ingested,
    pool,
    routine_proposal,
    rows,
    seed_draws,
)

if TYPE_CHECKING:
    from pathlib import Path

    from actors.config import Settings
    from actors.testing import Harness

pytestmark = pytest.mark.anyio

STREAK = {"max_consecutive_misses": 2, "cooldown_draws": 0, "cooldown_s": 0}


async def miss_twice(h: Harness, *, start: int = 0) -> None:
    """Two draws, each with a pool registered before it, each a miss."""
    trigger = h.system.ref(TRIGGER)
    for i in range(start, start + 2):
        registered = await trigger.ask(
            RegisterPool(pool=pool(i - 1 if i else None, [1, 2])), expect=PoolRegistered
        )
        assert not registered.stale
        await trigger.tell(ingested(i, 500))
        await h.system.wait_idle()


async def test_accepted_proposal_is_filed_into_the_spool(tmp_path: Path) -> None:
    """A miss streak fires; the LLM's routine proposal is accepted and filed, the watcher nudged."""
    settings = harness_settings(tmp_path, trigger=STREAK)
    fakes = {LLM: scripted_llm([routine_proposal()]), WATCHER: probe()}
    async with open_test_system(tmp_path, fakes=fakes, settings=settings) as h:
        await miss_twice(h)
        nudge = await h.probe(WATCHER).expect(RequestFiled, within=10)
        decide = h.probe(LLM).of(Decide)
        found = await decisions(h)
    assert len(decide) == 1
    assert decide[0].grammar_name == "chapter_13"
    assert decide[0].metrics["consecutive_misses"] == 2
    [decision] = found
    assert (decision["rule"], decision["outcome"], decision["status"]) == (
        "consecutive_misses",
        "ACCEPT",
        "filed",
    )
    path = tmp_path / "watcher_requests" / "new" / f"{nudge.request_id}.json"
    request = spool.parse(path)
    assert isinstance(request, LearningLoop)
    assert request.scope is LearningLoopScope.STEPS_5_6  # the proposal's scope
    assert request.source == "trigger"
    assert request.evidence["rule"] == "consecutive_misses"
    assert request.evidence["proposal"]["confidence"] == 0.8
    assert request.correlation_id == nudge.correlation_id


async def test_without_a_usable_proposal_it_escalates_and_a_person_decides(
    tmp_path: Path,
) -> None:
    """An answer that is not a proposal escalates (fail closed); approve files, reject records."""
    settings = harness_settings(tmp_path, trigger=STREAK)
    fakes = {LLM: scripted_llm([]), WATCHER: probe()}
    async with open_test_system(tmp_path, fakes=fakes, settings=settings) as h:
        await miss_twice(h)
        trigger = h.system.ref(TRIGGER)
        await trigger.ask(RegisterPool(pool=pool(1, [1])), expect=PoolRegistered)
        await trigger.tell(ingested(2, 500))
        await h.system.wait_idle()
        assert h.probe(WATCHER).of(RequestFiled) == []
        found = await decisions(h)
    assert [d["status"] for d in found] == ["pending_approval", "pending_approval"]
    assert "not a Chapter13Proposal" in found[0]["reasons"][0]
    assert not list((tmp_path / "watcher_requests" / "new").iterdir())

    first, second = found[0]["decision_id"], found[1]["decision_id"]
    assert cli.approve_command(argparse.Namespace(decision_id=first), settings) == 0
    assert (tmp_path / "watcher_requests" / "new" / f"{first}.json").exists()
    assert cli.approve_command(argparse.Namespace(decision_id=first), settings) == 2
    args = argparse.Namespace(decision_id=second, reason="known outage, not a model problem")
    assert cli.reject_command(args, settings) == 0
    assert cli.approve_command(argparse.Namespace(decision_id="nope"), settings) == 2
    conn = ledger_conn(settings)
    try:
        assert ledger.decision(conn, first)["status"] == "approved"  # type: ignore[index]
        denied = ledger.decision(conn, second)
        assert denied is not None
        assert (denied["status"], denied["note"]) == ("denied", args.reason)
        assert ledger.open_actions(conn) == ("learning_loop",)
    finally:
        conn.close()


def ledger_conn(settings: Settings) -> Any:
    """A connection to the test's store."""
    from actors.store import connect

    return connect(settings.state_dir / "state.db")


async def test_duplicate_and_backfill_draws_are_not_counted_as_misses(tmp_path: Path) -> None:
    """A re-delivered draw changes nothing; a backfill draw is recorded as such."""
    async with open_test_system(tmp_path, fakes={WATCHER: probe()}) as h:
        trigger = h.system.ref(TRIGGER)
        await trigger.ask(RegisterPool(pool=pool(None, [7])), expect=PoolRegistered)
        first = ingested(0, 7)
        await trigger.tell(first)
        await trigger.tell(first)
        await trigger.tell(ingested(0, 7))
        await trigger.tell(ingested(1, 3, backfill=True))
        await h.system.wait_idle()
        scores = await rows(h, "SELECT draw_id, status, hit FROM trigger_scores ORDER BY draw_id")
        diags = await rows(h, "SELECT draw_id, schema_version FROM trigger_diagnostics")
        state = await h.services.store.run(ledger.load_state)
    assert scores == [(draw_id(0), "scored", 1), (draw_id(1), "backfill", None)]
    assert diags == [(draw_id(0), 1)]
    assert state.draw_index == 1
    assert state.consecutive_misses == 0


async def test_completed_step_6_registers_its_pool_and_resets_the_cooldown(
    tmp_path: Path,
) -> None:
    """After a completed learning loop the new pool is scored against the next draw."""
    settings = harness_settings(tmp_path, trigger={**STREAK, "cooldown_draws": 50})
    fakes = {LLM: scripted_llm([routine_proposal()]), WATCHER: probe()}
    async with open_test_system(tmp_path, fakes=fakes, settings=settings) as h:
        await miss_twice(h)
        nudge = await h.probe(WATCHER).expect(RequestFiled, within=10)
        before = await h.services.store.run(ledger.load_state)
        write_model(h.services.paths.artifacts / "prediction_pool.json", pool(1, [42], "m2"))
        trigger = h.system.ref(TRIGGER)
        await trigger.tell(
            RequestFinished(
                request_id=nudge.request_id, request_type="learning_loop", status="completed"
            )
        )
        await h.system.wait_idle()
        after = await h.services.store.run(ledger.load_state)
        open_now = await h.services.store.run(ledger.open_actions)
        await trigger.tell(ingested(2, 42))
        await h.system.wait_idle()
        scored = await rows(h, "SELECT hit, pool_id FROM trigger_scores WHERE draw_id = ?",
                            draw_id(2))  # fmt: skip
    assert before.cooldown is not None
    assert before.open_actions == ("learning_loop",)
    assert after.cooldown is None
    assert after.open_actions == ()
    assert open_now == ()
    assert scored == [(1, "pool-1-42")]


def candidate(policy_id: str, **params: Any) -> PolicyCandidate:
    """A selfplay candidate with healthy figures and the given policy parameters."""
    return PolicyCandidate(
        policy_id=policy_id,
        parent_policy_id=None,
        fitness=0.5,
        metrics={"holdout_hit_rate": 0.5, "train_hit_rate": 0.55, "pool_members": 4.0},
        parameters=DEFAULT_POLICY.model_copy(update=params),
        transforms=(),
        fingerprint="sha256:" + policy_id,
        history_fingerprint=None,
        episode=1,
        seed=0,
    )


async def test_promotion_after_shadow_draws_and_rollback(tmp_path: Path) -> None:
    """A candidate better on real draws is promoted after 10 of them, a worse one is rejected,
    and `policy rollback` restores the policy before."""
    n = 40
    values = sim.stable(n + 10)
    values[5] = (values[5] + 1) % sim.MOD  # one glitch: the true seed's match rate is < 1
    settings = harness_settings(tmp_path, trigger={"retrain_after_n_draws": 1000})
    async with open_test_system(tmp_path, fakes={WATCHER: probe()}, settings=settings) as h:
        survivors = tuple(r.survivor for r in sim.model(n).ranked)
        write_model(h.services.paths.artifacts / "survivors.json", survivor_set(survivors, n))
        await seed_draws(h, values[:n])
        # The active policy only trusts perfect survivors: after the glitch it pools nothing.
        strict = candidate("pol-strict", min_match_rate=1.0)

        def activate(conn: Any) -> None:
            ledger.upsert_candidate(conn, strict, "shadow", "", None)
            ledger.settle_candidate(conn, "pol-strict", promote=True, reason="seeded")

        await h.services.store.transaction(activate)
        trigger = h.system.ref(TRIGGER)
        await trigger.tell(CandidateEmitted(candidate=candidate("pol-better", min_match_rate=0.5),
                                            run_id="r", request_id="q"))  # fmt: skip
        await trigger.tell(CandidateEmitted(candidate=candidate("pol-worse", min_match_rate=1.0,
                                                                pool_size=2),
                                            run_id="r", request_id="q"))  # fmt: skip
        await h.system.wait_idle()
        for i in range(n, n + 10):
            await seed_draws(h, [values[i]], start=i)
            await trigger.tell(ingested(i, values[i]))
            await h.system.wait_idle()
        statuses = {
            pid: status for pid, status, _r in await h.services.store.run(ledger.policy_rows)
        }
        promotions = audit_events(h, "promotion")
    assert statuses["pol-better"] == "active"
    assert statuses["pol-strict"] == "retired"
    assert statuses["pol-worse"] == "rejected"
    promoted = next(r for r in promotions if r["entity_id"] == "pol-better" and
                    r["event"] == "promoted")  # fmt: skip
    assert promoted["detail"]["candidate_hit_rate"] == 1.0
    assert promoted["detail"]["active_hit_rate"] == 0.0
    args = argparse.Namespace()
    assert cli.policy_rollback_command(args, settings) == 0
    conn = ledger_conn(settings)
    try:
        assert ledger.active_policy(conn)[0] == "pol-strict"
    finally:
        conn.close()
    assert cli.policy_rollback_command(args, settings) == 0
    assert cli.policy_rollback_command(args, settings) == 1  # back at the default: nothing left


async def test_candidate_failing_the_gate_never_enters_shadow(tmp_path: Path) -> None:
    """An overfit candidate is rejected by the gate, with the reason audited."""
    async with open_test_system(tmp_path, fakes={WATCHER: probe()}) as h:
        overfit = candidate("pol-overfit").model_copy(
            update={"metrics": {"holdout_hit_rate": 0.1, "train_hit_rate": 0.9,
                                "pool_members": 4.0}}
        )  # fmt: skip
        await h.system.ref(TRIGGER).tell(CandidateEmitted(candidate=overfit, run_id="r",
                                                          request_id="q"))  # fmt: skip
        await h.system.wait_idle()
        statuses = await h.services.store.run(ledger.policy_rows)
        [event] = audit_events(h, "promotion")
    assert statuses[0][:2] == ("pol-overfit", "rejected")
    assert event["event"] == "gate_failed"
    assert "train/validation gap 0.800" in event["detail"]["reasons"][0]


async def test_regime_shift_proposal_is_escalated_even_when_routine(tmp_path: Path) -> None:
    """Risk from the advisor is only one input: a high-risk proposal goes to a person."""
    settings = harness_settings(tmp_path, trigger=STREAK)
    fakes = {LLM: scripted_llm([routine_proposal(risk_level=RiskLevel.HIGH)]), WATCHER: probe()}
    async with open_test_system(tmp_path, fakes=fakes, settings=settings) as h:
        await miss_twice(h)
        found = await decisions(h)
    assert found[0]["outcome"] == "ESCALATE"
    assert "risk level high needs a person" in found[0]["reasons"]


def survivor_set(survivors: tuple[Survivor, ...], n: int) -> SurvivorSet:
    """Step 1's artifact around the given survivors."""
    return SurvivorSet(
        mod=sim.MOD,
        window=8,
        threshold=8,
        families=(sim.FAMILY,),
        skip_min=0,
        skip_max=0,
        seed_start=0,
        seed_end=1 << 20,
        anchors=(0,),
        n_draws=n,
        last_draw_id=None,
        history_fingerprint=None,
        truncated=False,
        survivors=survivors,
    )
