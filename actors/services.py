"""What every actor of one system shares: settings, paths, the store and the audit trail."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from actors.audit import AuditRecord, Entity

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from actors.audit import AuditLog
    from actors.config import Settings
    from actors.paths import StatePaths
    from actors.store import Store
    from messages.dispatch import JobProgress

# The six actors' names: how they find each other (and what the harness replaces).
INGESTION = "ingestion"
TRIGGER = "trigger"
WATCHER = "watcher"
LLM = "llm"
GPU = "gpu"
BUNDLE = "bundle"
# Spawn order: dependencies first. Shutdown runs in reverse: intake stops first, LLM last.
SPAWN_ORDER = (BUNDLE, LLM, GPU, WATCHER, TRIGGER, INGESTION)


@dataclass(frozen=True)
class Services:
    """Shared, long-lived resources handed to each actor's constructor."""

    settings: Settings
    paths: StatePaths
    store: Store
    audit_log: AuditLog
    once: bool = False
    """`--once`: process what is pending and do not watch folders."""
    progress: Callable[[JobProgress], None] | None = None
    """Shown job progress (the CLI's progress bars in foreground runs)."""
    config_path: Path | None = None
    """The configuration file, re-read where a switch must take effect at once (injector)."""

    async def audit(
        self,
        *,
        actor: str,
        entity: Entity,
        entity_id: str,
        event: str,
        correlation_id: str,
        from_state: str | None = None,
        to_state: str | None = None,
        **detail: Any,
    ) -> None:
        """Append one audit record (off the event loop)."""
        await self.audit_log.append(
            AuditRecord(
                correlation_id=correlation_id,
                entity=entity,
                entity_id=entity_id,
                event=event,
                from_state=from_state,
                to_state=to_state,
                actor=actor,
                detail=detail,
            )
        )
