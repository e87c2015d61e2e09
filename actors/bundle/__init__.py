"""BundleActor: the only place LLM context is assembled."""

from actors.bundle.actor import BundleActor as BundleActor

__all__ = ["BundleActor"]
