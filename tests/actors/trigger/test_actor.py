"""The TriggerActor in the running system: a scripted LLM, a probe for the watcher."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import pytest

from actors.pending import pending_items
from actors.services import LLM, TRIGGER, WATCHER
from actors.testing import harness_settings, open_test_system, probe, scripted_llm
from actors.trigger import cli, decision_store, filing, ledger, policy_store
from actors.trigger.context import ModelRecord
from actors.trigger.detector import ModelPrior
from actors.watcher import spool
from messages.artifacts import (
    ModelMetadata,
    PolicyCandidate,
    RankingModel,
    Survivor,
    SurvivorSet,
)
from messages.chapter13 import CandidateEmitted, PoolRegistered, RegisterPool
from messages.decisions import RiskLevel
from messages.llm import Decide
from messages.requests import PipelineRerun, RequestFiled, RequestFinished
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

BOOTSTRAP = 5
"""Draws after which a first history identifies a seed (2^20 seeds x 4 families x 4 skips)."""


async def draws_without_pool(h: Harness, count: int, *, start: int = 0) -> None:
    """Real draws with no pool registered: no model yet."""
    trigger = h.system.ref(TRIGGER)
    for i in range(start, start + count):
        await trigger.tell(ingested(i, 500 + i))
        await h.system.wait_idle()


async def known_model(h: Harness, model_id: str = "m1", hits: int = 20, size: int = 20) -> None:
    """A model Chapter 13 registered, validated `hits` of `size` on its holdout."""

    def insert(conn: Any) -> None:
        ledger.upsert_model(
            conn, ModelRecord(model_id=model_id, prior=ModelPrior(hits=hits, size=size))
        )

    await h.services.store.transaction(insert)


async def predicted_draws(
    h: Harness, values: list[int], *, start: int, pooled: list[int], model_id: str = "m1"
) -> None:
    """Draws `start..`, each with a pool of `pooled` values registered just before it."""
    trigger = h.system.ref(TRIGGER)
    for offset, value in enumerate(values):
        i = start + offset
        registered = await trigger.ask(
            RegisterPool(pool=pool(i - 1 if i else None, pooled, model_id)),
            expect=PoolRegistered,
        )
        assert not registered.stale
        await trigger.tell(ingested(i, value))
        await h.system.wait_idle()


async def test_first_history_files_the_full_pipeline_once_it_identifies(tmp_path: Path) -> None:
    """No model yet: once the history identifies a seed, n_draws fires; the advisor's routine
    proposal is accepted and a full pipeline over the whole history is filed, the watcher nudged."""
    fakes = {LLM: scripted_llm([routine_proposal()]), WATCHER: probe()}
    async with open_test_system(tmp_path, fakes=fakes) as h:
        await draws_without_pool(h, BOOTSTRAP - 1)
        assert h.probe(WATCHER).of(RequestFiled) == []
        await draws_without_pool(h, 1, start=BOOTSTRAP - 1)
        nudge = await h.probe(WATCHER).expect(RequestFiled, within=10)
        decide = h.probe(LLM).of(Decide)
        found = await decisions(h)
    assert len(decide) == 1
    assert decide[0].grammar_name == "chapter_13"
    assert decide[0].metrics["scheduled_retrain"] == 1.0
    confidence = decide[0].metrics["identification_confidence"]
    assert isinstance(confidence, float)
    assert confidence > 0.99
    [decision] = found
    assert (decision["rule"], decision["outcome"], decision["status"]) == (
        "n_draws",
        "ACCEPT",
        "filed",
    )
    request = spool.parse(tmp_path / "watcher_requests" / "new" / f"{nudge.request_id}.json")
    assert isinstance(request, PipelineRerun)
    assert request.source == "trigger"
    assert request.history_from is None
    assert request.evidence["rule"] == "n_draws"
    assert request.correlation_id == nudge.correlation_id


async def test_without_a_usable_proposal_it_escalates_and_a_person_decides(
    tmp_path: Path,
) -> None:
    """An answer that is not a proposal escalates (fail closed); approve files, reject records."""
    fakes = {LLM: scripted_llm([]), WATCHER: probe()}
    settings = harness_settings(tmp_path)
    async with open_test_system(tmp_path, fakes=fakes, settings=settings) as h:
        await draws_without_pool(h, BOOTSTRAP + 1)
        assert h.probe(WATCHER).of(RequestFiled) == []
        found = await decisions(h)
        items = pending_items(h.services.settings, h.services.paths)
    assert [d["status"] for d in found] == ["pending_approval", "pending_approval"]
    assert "not a Chapter13Proposal" in found[0]["reasons"][0]
    assert [i.kind for i in items] == ["decision", "decision"]
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
        assert decision_store.decision(conn, first)["status"] == "approved"  # type: ignore[index]
        denied = decision_store.decision(conn, second)
        assert denied is not None
        assert (denied["status"], denied["note"]) == ("denied", args.reason)
        assert [(r.request_id, r.action) for r in decision_store.open_requests(conn)] == [
            (first, "pipeline_rerun")
        ]
        regime = {
            "request": {**found[0]["request"], "history_from": draw_id(2), "request_id": "r-regime"}
        }
        with_regime = {**found[0], **regime, "decision_id": "d-regime"}
        filed = filing.approve(conn, settings_paths(settings), with_regime, by="tester")
        assert filed.history_from == draw_id(2)
        [(kept,)] = conn.execute(
            "SELECT history_from FROM trigger_requests WHERE decision_id = 'd-regime'"
        ).fetchall()
        assert kept == draw_id(2)  # an approved retrain keeps its regime, as Chapter 13's own
    finally:
        conn.close()


def settings_paths(settings: Settings) -> Any:
    """The test's state directory layout."""
    from actors.paths import StatePaths

    return StatePaths(settings.state_dir)


def ledger_conn(settings: Settings) -> Any:
    """A connection to the test's store."""
    from actors.store import connect

    return connect(settings.state_dir / "state.db")


async def test_a_change_alarms_then_retrains_on_the_post_change_draws(tmp_path: Path) -> None:
    """A model validated 20/20 hits 10 draws, then misses: the detector alarms within 3 draws
    (audited with its change point); once enough post-change draws identify the new seed, the
    heuristic's proposal is accepted and the full pipeline is filed on the draws from just
    before the change point on."""
    async with open_test_system(tmp_path, fakes={WATCHER: probe()}) as h:
        await known_model(h)
        await seed_draws(h, [7] * 10 + [500] * 10)
        await predicted_draws(h, [7] * 10, start=0, pooled=[7])
        await predicted_draws(h, [500] * 3, start=10, pooled=[7])
        alarms = [r for r in audit_events(h, "decision") if r["event"] == "change_alarm"]
        waiting = [d for d in await decisions(h) if d["rule"] != "refresh"]
        await predicted_draws(h, [500] * 2, start=13, pooled=[7])
        found = await decisions(h)
    assert waiting == []  # alarmed, but waiting for the draws that identify the new seed
    [alarm] = alarms
    assert alarm["detail"]["change_point"] == draw_id(10)
    assert alarm["detail"]["statistic"] >= alarm["detail"]["threshold"]
    change = next(d for d in found if d["rule"] == "change_point")
    assert (change["outcome"], change["status"]) == ("ACCEPT", "filed")
    assert change["evidence"]["change_confidence"] >= 1 - 1 / 10_000
    request = spool.parse(tmp_path / "watcher_requests" / "new" / f"{change['decision_id']}.json")
    assert isinstance(request, PipelineRerun)
    assert request.history_from == draw_id(8)  # two draws of margin before the change point


async def test_a_weak_model_needs_far_more_misses_than_a_strong_one(tmp_path: Path) -> None:
    """A model validated at 30 % that misses 6 times in a row raises no alarm."""
    async with open_test_system(tmp_path, fakes={WATCHER: probe()}) as h:
        await known_model(h, hits=6, size=20)
        await predicted_draws(h, [7, 1, 1, 7, 1, 1] + [500] * 6, start=0, pooled=[7])
        alarms = [r for r in audit_events(h, "decision") if r["event"] == "change_alarm"]
        state = await h.services.store.run(ledger.load_state)
    assert alarms == []
    assert 0 < state.detector.statistic < 9.2


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
    assert diags == [(draw_id(0), 2)]
    assert state.draw_index == 1
    assert state.consecutive_misses == 0


async def test_completed_step_6_registers_its_pool_and_its_model(tmp_path: Path) -> None:
    """After a completed full pipeline the new pool is scored against the next draw, the model
    is remembered with its holdout as the detector's prior, and a model that beats chance
    leaves the loop out of no signal."""
    fakes = {LLM: scripted_llm([routine_proposal()]), WATCHER: probe()}
    async with open_test_system(tmp_path, fakes=fakes) as h:
        await draws_without_pool(h, BOOTSTRAP)
        nudge = await h.probe(WATCHER).expect(RequestFiled, within=10)
        art = h.services.paths.artifacts
        write_model(art / "prediction_pool.json", pool(BOOTSTRAP - 1, [42], "m2"))
        write_model(art / "model.json", ranking_model("m2"))
        write_model(art / "model.meta.json", model_meta("m2", validation=1.0, holdout=3))
        trigger = h.system.ref(TRIGGER)
        await trigger.tell(
            RequestFinished(
                request_id=nudge.request_id,
                request_type="pipeline_rerun",
                status="completed",
                units=("1", "2", "3", "4", "5", "6"),
            )
        )
        await h.system.wait_idle()
        record = await h.services.store.run(lambda c: ledger.model_record(c, "m2"))
        open_now = await h.services.store.run(decision_store.open_requests)
        await trigger.tell(ingested(BOOTSTRAP, 42))
        await h.system.wait_idle()
        scored = await rows(h, "SELECT hit, pool_id FROM trigger_scores WHERE draw_id = ?",
                            draw_id(BOOTSTRAP))  # fmt: skip
        no_signal = await h.services.store.run(ledger.load_no_signal)
        signals = [r for r in audit_events(h, "decision") if r["event"] == "signal"]
    assert record is not None
    assert (record.prior.hits, record.prior.size) == (3, 3)
    assert [r.rule for r in open_now] == []
    assert scored == [(1, f"pool-{BOOTSTRAP - 1}-42")]
    assert no_signal is None
    assert len(signals) == 1


async def test_a_retrain_that_finds_nothing_enters_no_signal_and_backs_off(
    tmp_path: Path,
) -> None:
    """The first pipeline escalates (parked, the one escalation): no signal; no GPU work is
    filed until the back-off has run out, then one retry that supersedes the parked request."""
    settings = harness_settings(tmp_path, trigger={"no_signal_backoff_draws": 5})
    fakes = {WATCHER: probe()}
    async with open_test_system(tmp_path, fakes=fakes, settings=settings) as h:
        await draws_without_pool(h, BOOTSTRAP)
        first = await h.probe(WATCHER).expect(RequestFiled, within=10)
        await h.system.ref(TRIGGER).tell(
            RequestFinished(
                request_id=first.request_id,
                request_type="pipeline_rerun",
                status="escalated",
                units=(),
                reason="step 1: no survivors",
            )
        )
        await h.system.wait_idle()
        state = await h.services.store.run(ledger.load_no_signal)
        shown = pending_items(h.services.settings, h.services.paths)
        await draws_without_pool(h, 4, start=BOOTSTRAP)
        assert len(h.probe(WATCHER).of(RequestFiled)) == 1  # backing off
        await draws_without_pool(h, 1, start=BOOTSTRAP + 4)
        filed = h.probe(WATCHER).of(RequestFiled)
        found = await decisions(h)
        parked = await h.services.store.run(decision_store.open_requests)
    assert state is not None
    assert (state.since_index, state.attempts, state.next_index) == (BOOTSTRAP, 1, BOOTSTRAP + 5)
    assert state.escalation_id == first.request_id  # the parked request is the escalation
    [item] = [i for i in shown if i.kind == "no_signal"]
    assert "next automatic retrain at draw" in item.summary
    assert "step 1: no survivors" in item.reasons[0]
    assert len(filed) == 2
    retry = next(d for d in found if d["rule"] == "no_signal_retry")
    assert (retry["outcome"], retry["status"]) == ("ACCEPT", "filed")
    assert [r.request_id for r in parked] == [filed[1].request_id]  # the first: superseded
    events = [r["event"] for r in audit_events(h, "decision")]
    assert events.count("no_signal") == 1
    skipped = [r for r in audit_events(h, "decision") if r["event"] == "skipped"]
    assert len(skipped) == 1  # recorded once with its reason, not once per draw
    assert (skipped[0]["detail"]["rule"], "no signal since draw") == (
        "n_draws",
        skipped[0]["detail"]["reason"][: len("no signal since draw")],
    )


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
            policy_store.upsert_candidate(conn, strict, "shadow", "", None)
            policy_store.settle_candidate(conn, "pol-strict", promote=True, reason="seeded")

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
            pid: status for pid, status, _r in await h.services.store.run(policy_store.policy_rows)
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
        assert policy_store.active_policy(conn)[0] == "pol-strict"
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
        statuses = await h.services.store.run(policy_store.policy_rows)
        [event] = audit_events(h, "promotion")
    assert statuses[0][:2] == ("pol-overfit", "rejected")
    assert event["event"] == "gate_failed"
    assert "train/validation gap 0.800" in event["detail"]["reasons"][0]


async def test_a_high_risk_proposal_is_escalated_even_when_routine(tmp_path: Path) -> None:
    """Risk from the advisor is only one input: a high-risk proposal goes to a person."""
    fakes = {LLM: scripted_llm([routine_proposal(risk_level=RiskLevel.HIGH)]), WATCHER: probe()}
    async with open_test_system(tmp_path, fakes=fakes) as h:
        await draws_without_pool(h, BOOTSTRAP)
        found = await decisions(h)
    assert found[0]["outcome"] == "ESCALATE"
    assert "risk level high needs a person" in found[0]["reasons"]


def ranking_model(model_id: str) -> RankingModel:
    """Step 5's model artifact (a pool of one)."""
    m = sim.model(BOOTSTRAP)
    return m.model_copy(update={"model_id": model_id, "pool_size": 1})


def model_meta(model_id: str, *, validation: float, holdout: int) -> ModelMetadata:
    """Step 5's sidecar: the holdout the detector's prior is read from."""
    return ModelMetadata(
        model_id=model_id,
        seed=0,
        method="weighted_rate",
        feature_names=("match_rate", "recent_rate", "weighted_rate"),
        train_size=BOOTSTRAP - holdout,
        holdout_size=holdout,
        train_score=1.0,
        validation_score=validation,
        overfit_ratio=1.0,
        n_draws=BOOTSTRAP,
        last_draw_id=None,
        history_fingerprint=None,
        inputs={},
    )


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
