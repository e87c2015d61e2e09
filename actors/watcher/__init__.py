"""WatcherActor: the spool, dispatch, step evaluation and the kill switch."""

from actors.watcher.actor import WatcherActor as WatcherActor

__all__ = ["WatcherActor"]
