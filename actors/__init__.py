"""Watcher's actors, their kernel (`actors.runtime`) and the system that assembles them."""
