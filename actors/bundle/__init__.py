"""BundleActor: the only place LLM context is assembled; SqliteRetriever: its tier 2."""

from actors.bundle.actor import BundleActor as BundleActor
from actors.bundle.retrieval import SqliteRetriever as SqliteRetriever

__all__ = ["BundleActor", "SqliteRetriever"]
