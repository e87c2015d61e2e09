"""The cooldown's seconds, on trio's MockClock: time moves only when the test moves it."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from trio.testing import MockClock

from actors.services import LLM, TRIGGER, WATCHER
from actors.testing import harness_settings, open_test_system, probe, scripted_llm
from actors.trigger import ledger
from actors.trigger.context import ModelRecord
from actors.trigger.detector import ModelPrior
from messages.chapter13 import PoolRegistered, RegisterPool
from messages.llm import Decide

from .helpers import ingested, pool

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.anyio

CLOCK = MockClock()


@pytest.fixture
def anyio_backend() -> tuple[str, dict[str, MockClock]]:
    """Trio with a mock clock that never moves on its own (so no timeout fires by accident)."""
    return "trio", {"clock": CLOCK}


async def test_cooldown_holds_for_its_seconds_then_releases(tmp_path: Path) -> None:
    """With a 600 s cooldown and none in draws, confidence drift (pools sure of values that
    never come, from a model that does not beat chance, so the change detector stays out)
    fires once the window is full, is blocked right after, and fires again after 600 s."""
    settings = harness_settings(
        tmp_path, trigger={"window": 2, "cooldown_draws": 0, "cooldown_s": 600}
    )
    fakes = {LLM: scripted_llm([]), WATCHER: probe()}
    async with open_test_system(tmp_path, fakes=fakes, settings=settings) as h:
        trigger = h.system.ref(TRIGGER)
        record = ModelRecord(model_id="m1", prior=ModelPrior(hits=0, size=20))
        await h.services.store.transaction(lambda conn: ledger.upsert_model(conn, record))
        values = list(range(600))

        async def miss(i: int) -> int:
            await trigger.ask(
                RegisterPool(pool=pool(i - 1 if i else None, values)), expect=PoolRegistered
            )
            await trigger.tell(ingested(i, 999))
            await h.system.wait_idle()
            return len(h.probe(LLM).of(Decide))

        assert await miss(0) == 0
        assert await miss(1) == 1
        CLOCK.jump(599)
        assert await miss(2) == 1
        CLOCK.jump(1)
        assert await miss(3) == 2
