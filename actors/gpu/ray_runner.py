"""The Ray runner (`[gpu] backend = "ray"`): each job process is a Ray task on a GPU slot."""

from __future__ import annotations

from typing import TYPE_CHECKING

from messages.errors import ConfigError

if TYPE_CHECKING:
    from actors.config import GpuRayConfig
    from actors.gpu.runners import Runner

__all__ = ["RayRunner"]


class RayRunner:
    """Runs tasks on a Ray cluster."""

    @classmethod
    async def connect(cls, config: GpuRayConfig) -> Runner:
        """Connect to (or start) Ray."""
        del config
        msg = "gpu.backend = 'ray' is not available yet"
        raise ConfigError(msg)
