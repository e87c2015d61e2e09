"""TriggerActor: Chapter 13, the authority that decides when to retrain."""

from actors.trigger.actor import TriggerActor as TriggerActor

__all__ = ["TriggerActor"]
