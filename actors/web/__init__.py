"""The operator's console: dashboard, `/metrics`, `/healthz` and the static report."""

from actors.web.console import open_console as open_console

__all__ = ["open_console"]
