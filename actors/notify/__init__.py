"""Notifications: items that await a person, once each, through a command or Apprise URLs."""

from actors.notify.notifier import Notifier as Notifier

__all__ = ["Notifier"]
