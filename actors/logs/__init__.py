"""`python -m actors.logs`: follow and filter the JSON logs and the audit trail."""

from actors.logs.cli import main as main

__all__ = ["main"]
