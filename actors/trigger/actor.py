"""TriggerActor (Chapter 13 decides): turns the draw stream into requests for the watcher.

Walking-skeleton rule: file one request after every N real, non-backfill draws (config
`trigger.request_every_n_draws`). Scoring, diagnostics and the real trigger rules come next.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio.to_thread

from actors.runtime import Actor, handles
from actors.services import WATCHER
from actors.watcher.spool import submit
from messages.enums import LearningLoopScope
from messages.ingestion import DrawIngested
from messages.requests import (
    LearningLoop,
    PipelineRerun,
    RequestFiled,
    RequestFinished,
    SelfplayRetrain,
)

if TYPE_CHECKING:
    from actors.services import Services


class TriggerActor(Actor):
    """Counts real draws and files a request into the spool every N of them."""

    def __init__(self, services: Services) -> None:
        super().__init__()
        self.services = services
        self.config = services.settings.trigger
        self.since_last = 0

    def _build_request(self, msg: DrawIngested) -> LearningLoop | SelfplayRetrain | PipelineRerun:
        common = {
            "correlation_id": msg.correlation_id,
            "source": "trigger",
            "reason": f"{self.config.request_every_n_draws} new draws since the last request",
            "evidence": {
                "rule": "n_draws",
                "draw_id": msg.draw.draw_id,
                "history_len": msg.history_len,
                "fingerprint": msg.fingerprint,
            },
        }
        if self.config.request_type == "selfplay_retrain":
            return SelfplayRetrain.model_validate(common)
        if self.config.request_type == "pipeline_rerun":
            return PipelineRerun.model_validate(common)
        scope = LearningLoopScope(self.config.learning_scope)
        return LearningLoop.model_validate({**common, "scope": scope})

    @handles(DrawIngested)
    async def on_draw_ingested(self, msg: DrawIngested) -> None:
        """Count the draw; at the threshold, file a request and nudge the watcher."""
        if msg.stream != "real" or msg.is_backfill:
            self.log.info(
                "trigger.draw_skipped",
                draw_id=msg.draw.draw_id,
                stream=msg.stream,
                is_backfill=msg.is_backfill,
            )
            return
        self.since_last += 1
        if self.since_last < self.config.request_every_n_draws:
            return
        self.since_last = 0
        request = self._build_request(msg)
        await anyio.to_thread.run_sync(submit, self.services.paths, request)
        self.log.info(
            "trigger.request_filed",
            request_id=request.request_id,
            request_type=request.request_type,
        )
        await self.services.audit(
            actor=self.name,
            entity="request",
            entity_id=request.request_id,
            event="filed",
            correlation_id=request.correlation_id,
            to_state="new",
            request_type=request.request_type,
            rule="n_draws",
        )
        await self.system.ref(WATCHER).tell(
            RequestFiled.caused_by(msg, sender=self.name, request_id=request.request_id)
        )

    @handles(RequestFinished)
    async def on_request_finished(self, msg: RequestFinished) -> None:
        """The watcher finished a request (cooldowns and pools hook in here)."""
        self.log.info("trigger.request_finished", request_id=msg.request_id, status=msg.status)
