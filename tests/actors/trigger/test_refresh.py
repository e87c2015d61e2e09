"""The refresh track in the running TriggerActor: filed beside a fired rule, no cooldown."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from actors.services import LLM, TRIGGER, WATCHER
from actors.testing import harness_settings, open_test_system, probe, scripted_llm
from actors.trigger import ledger
from actors.watcher import spool
from messages.chapter13 import PoolRegistered, RegisterPool
from messages.decisions import Chapter13Action
from messages.enums import LearningLoopScope
from messages.llm import Decide
from messages.requests import LearningLoop, RequestFiled, RequestFinished
from pipeline.files import write_model

from .helpers import audit_events, decisions, ingested, pool, routine_proposal

if TYPE_CHECKING:
    from pathlib import Path

    from actors.testing import Harness

pytestmark = pytest.mark.anyio

EVERY_DRAW = {
    "max_consecutive_misses": 2,
    "cooldown_draws": 50,
    "cooldown_s": 0,
    "retrain_after_n_draws": 1,
}


async def finish(h: Harness, request_id: str, after: int | None, values: list[int]) -> None:
    """The watcher reports a step-6 learning loop completed; its pool is the artifact."""
    write_model(h.services.paths.artifacts / "prediction_pool.json", pool(after, values))
    await h.system.ref(TRIGGER).tell(
        RequestFinished(request_id=request_id, request_type="learning_loop", status="completed")
    )
    await h.system.wait_idle()


def filed(h: Harness) -> list[str]:
    """Ids of the requests the watcher was told about, in order."""
    return [m.request_id for m in h.probe(WATCHER).of(RequestFiled)]


def parse(h: Harness, request_id: str) -> Any:
    """A request from the spool's new/."""
    return spool.parse(h.services.paths.root / "watcher_requests" / "new" / f"{request_id}.json")


async def test_refresh_is_filed_after_a_rejected_rule_and_keeps_the_rules_cooldown(
    tmp_path: Path,
) -> None:
    """A miss streak fires and is rejected (the advisor says wait); the refresh is filed all the
    same, without a proposal; its completion registers the next pool and leaves the rule's
    cooldown in place, so every draw keeps being scored."""
    settings = harness_settings(tmp_path, trigger=EVERY_DRAW)
    wait = routine_proposal(recommended_action=Chapter13Action.WAIT)
    fakes = {LLM: scripted_llm([wait]), WATCHER: probe()}
    async with open_test_system(tmp_path, fakes=fakes, settings=settings) as h:
        trigger = h.system.ref(TRIGGER)
        await trigger.ask(RegisterPool(pool=pool(None, [1, 2])), expect=PoolRegistered)
        await trigger.tell(ingested(0, 500))
        await h.system.wait_idle()
        [first] = filed(h)
        await finish(h, first, 0, [1, 2])
        await trigger.tell(ingested(1, 500))
        await h.system.wait_idle()
        second = filed(h)[-1]
        await finish(h, second, 1, [3])
        await trigger.tell(ingested(2, 3))
        await h.system.wait_idle()
        found = await decisions(h)
        state = await h.services.store.run(ledger.load_state)
        scores = await h.services.store.run(
            lambda c: c.execute(
                "SELECT status, hit FROM trigger_scores ORDER BY draw_id"
            ).fetchall()
        )
        asked = h.probe(LLM).of(Decide)
        records = audit_events(h, "decision")
    assert [(d["rule"], d["outcome"], d["status"]) for d in found[:3]] == [
        ("refresh", "ACCEPT", "filed"),
        ("consecutive_misses", "REJECT", "rejected"),
        ("refresh", "ACCEPT", "filed"),
    ]
    assert found[0]["proposal"] is None
    assert "routine prediction refresh" in found[0]["reasons"][0]
    assert [tuple(r) for r in scores] == [("scored", 0), ("scored", 0), ("scored", 1)]
    assert state.cooldown is not None
    assert state.cooldown.rule == "consecutive_misses"
    assert len(asked) == 1  # the rule's proposal only: a refresh asks no advisor
    accepted = [r for r in records if r["detail"].get("rule") == "refresh"]
    assert [r["event"] for r in accepted[:2]] == ["accept", "accept"]


async def test_refresh_request_is_a_step_6_learning_loop_labelled_n_draws(tmp_path: Path) -> None:
    """The spool file: a step-6-only learning loop from the trigger, its evidence naming the
    n_draws rule and the refresh track (what the watcher's pre-validation reads)."""
    settings = harness_settings(tmp_path, trigger=EVERY_DRAW)
    async with open_test_system(tmp_path, fakes={WATCHER: probe()}, settings=settings) as h:
        trigger = h.system.ref(TRIGGER)
        await trigger.ask(RegisterPool(pool=pool(None, [7])), expect=PoolRegistered)
        await trigger.tell(ingested(0, 7))
        await h.system.wait_idle()
        [rid] = filed(h)
        request = parse(h, rid)
    assert isinstance(request, LearningLoop)
    assert request.scope is LearningLoopScope.STEP_6_ONLY
    assert request.source == "trigger"
    assert (request.evidence["rule"], request.evidence["track"]) == ("n_draws", "refresh")
    assert request.evidence["pool_age"] == 1


async def test_open_refresh_blocks_no_rule_and_a_rules_retrain_replaces_the_refresh(
    tmp_path: Path,
) -> None:
    """While a refresh is open a miss streak still files its learning loop; on that draw no
    second refresh is filed (a step-6 request is open)."""
    settings = harness_settings(tmp_path, trigger=EVERY_DRAW)
    fakes = {LLM: scripted_llm([routine_proposal()]), WATCHER: probe()}
    async with open_test_system(tmp_path, fakes=fakes, settings=settings) as h:
        trigger = h.system.ref(TRIGGER)
        await trigger.ask(RegisterPool(pool=pool(None, [1])), expect=PoolRegistered)
        await trigger.tell(ingested(0, 500))
        await h.system.wait_idle()
        await trigger.ask(RegisterPool(pool=pool(0, [1])), expect=PoolRegistered)
        await trigger.tell(ingested(1, 500))
        await h.system.wait_idle()
        found = await decisions(h)
        open_rule = await h.services.store.run(ledger.open_actions)
        refreshing = await h.services.store.run(ledger.refresh_open)
    assert [(d["rule"], d["outcome"]) for d in found] == [
        ("refresh", "ACCEPT"),
        ("consecutive_misses", "ACCEPT"),
    ]
    assert open_rule == ("learning_loop",)
    assert refreshing
    assert len(filed(h)) == 2


async def test_a_stale_refresh_pool_is_followed_at_once_by_the_next_refresh(
    tmp_path: Path,
) -> None:
    """A draw arrived while the refresh ran: its pool is stale, so the next refresh is filed as
    soon as it is registered, not one draw later."""
    settings = harness_settings(tmp_path, trigger=EVERY_DRAW)
    async with open_test_system(tmp_path, fakes={WATCHER: probe()}, settings=settings) as h:
        trigger = h.system.ref(TRIGGER)
        await trigger.ask(RegisterPool(pool=pool(None, [7])), expect=PoolRegistered)
        await trigger.tell(ingested(0, 7))
        await h.system.wait_idle()
        [first] = filed(h)
        await trigger.tell(ingested(1, 8))  # no pool yet; the open refresh holds the next one
        await h.system.wait_idle()
        assert filed(h) == [first]
        await finish(h, first, 0, [8])
        later = filed(h)
        failed = later[-1]
        await h.system.ref(TRIGGER).tell(
            RequestFinished(request_id=failed, request_type="learning_loop", status="failed")
        )
        await h.system.wait_idle()
        final = filed(h)
        state = await h.services.store.run(ledger.load_state)
    assert len(later) == 2
    assert final == later  # a failed refresh is not retried at once: no loop of failures
    assert state.pool_age == 1
    assert not state.refresh_open
