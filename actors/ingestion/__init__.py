"""IngestionActor: the inbox, draw validation, and the history store."""

from actors.ingestion.actor import IngestionActor as IngestionActor

__all__ = ["IngestionActor"]
