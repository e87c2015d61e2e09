"""The refresh track in the running TriggerActor: a pool for every draw, beside the rules."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from actors.services import TRIGGER, WATCHER
from actors.testing import open_test_system, probe
from actors.trigger import decision_store, ledger
from actors.trigger.context import ModelRecord
from actors.trigger.detector import ModelPrior
from actors.watcher import spool
from messages.chapter13 import PoolRegistered, RegisterPool
from messages.enums import LearningLoopScope
from messages.requests import LearningLoop, RequestFiled, RequestFinished
from pipeline.files import write_model

from .helpers import decisions, draw_id, ingested, pool

if TYPE_CHECKING:
    from pathlib import Path

    from actors.testing import Harness

pytestmark = pytest.mark.anyio


async def finish(h: Harness, request_id: str, after: int | None, values: list[int]) -> None:
    """The watcher reports a step-6 learning loop completed; its pool is the artifact."""
    write_model(h.services.paths.artifacts / "prediction_pool.json", pool(after, values))
    await h.system.ref(TRIGGER).tell(
        RequestFinished(
            request_id=request_id, request_type="learning_loop", status="completed", units=("6",)
        )
    )
    await h.system.wait_idle()


def filed(h: Harness) -> list[str]:
    """Ids of the requests the watcher was told about, in order."""
    return [m.request_id for m in h.probe(WATCHER).of(RequestFiled)]


def parse(h: Harness, request_id: str) -> Any:
    """A request from the spool's new/."""
    return spool.parse(h.services.paths.root / "watcher_requests" / "new" / f"{request_id}.json")


async def regime_model(h: Harness, history_from: str | None) -> None:
    """The model in force, trained on the history from `history_from` on."""
    record = ModelRecord(
        model_id="m1", prior=ModelPrior(hits=20, size=20), history_from=history_from
    )
    await h.services.store.transaction(lambda conn: ledger.upsert_model(conn, record))


async def test_every_draw_is_followed_by_a_refresh_on_the_defaults(tmp_path: Path) -> None:
    """On the embedded defaults a pool is made after each draw: a step-6 learning loop from the
    trigger on the model's own regime, its evidence naming the refresh track."""
    async with open_test_system(tmp_path, fakes={WATCHER: probe()}) as h:
        await regime_model(h, draw_id(0))
        trigger = h.system.ref(TRIGGER)
        await trigger.ask(RegisterPool(pool=pool(None, [7])), expect=PoolRegistered)
        await trigger.tell(ingested(0, 7))
        await h.system.wait_idle()
        [rid] = filed(h)
        request = parse(h, rid)
        [decision] = await decisions(h)
    assert isinstance(request, LearningLoop)
    assert request.scope is LearningLoopScope.STEP_6_ONLY
    assert request.source == "trigger"
    assert request.history_from == draw_id(0)
    assert (request.evidence["rule"], request.evidence["track"]) == ("n_draws", "refresh")
    assert request.evidence["pool_age"] == 1
    assert (decision["rule"], decision["outcome"], decision["status"]) == (
        "refresh",
        "ACCEPT",
        "filed",
    )


async def test_a_parked_retrain_holds_no_refresh_back(tmp_path: Path) -> None:
    """A retrain the watcher parked with a person makes no pool: the loop goes on predicting
    from the model it has (an open, unparked one would make the next pool)."""
    async with open_test_system(tmp_path, fakes={WATCHER: probe()}) as h:
        await regime_model(h, None)

        def open_retrain(conn: Any) -> None:
            decision_store.insert_request(conn, "r-1", "pipeline_rerun", "change_point", None)

        await h.services.store.transaction(open_retrain)
        trigger = h.system.ref(TRIGGER)
        await trigger.ask(RegisterPool(pool=pool(None, [7])), expect=PoolRegistered)
        await trigger.tell(ingested(0, 7))
        await h.system.wait_idle()
        assert filed(h) == []  # the open retrain will make the next pool
        await trigger.tell(
            RequestFinished(request_id="r-1", request_type="pipeline_rerun", status="escalated")
        )
        await h.system.wait_idle()
        await trigger.tell(ingested(1, 7))
        await h.system.wait_idle()
        parked = await h.services.store.run(decision_store.open_requests)
    assert len(filed(h)) == 1
    assert [(r.request_id, r.parked) for r in parked if r.rule != "refresh"] == [("r-1", True)]


async def test_a_stale_refresh_pool_is_followed_at_once_by_the_next_refresh(
    tmp_path: Path,
) -> None:
    """A draw arrived while the refresh ran: its pool is stale, so the next refresh is filed as
    soon as it is registered, not one draw later; a failed refresh is not retried at once."""
    async with open_test_system(tmp_path, fakes={WATCHER: probe()}) as h:
        await regime_model(h, None)
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
        still_open = await h.services.store.run(decision_store.open_requests)
    assert len(later) == 2
    assert final == later  # a failed refresh is not retried at once: no loop of failures
    assert still_open == ()
