"""Shared fixtures: every async test runs on asyncio and on trio."""

from __future__ import annotations

import pytest
from hypothesis import settings

# No per-example deadline: a deadline is a wall-clock assertion, and on a shared 2-core machine
# it fails tests that are merely slow (speed is measured in bench/, never asserted in tests).
settings.register_profile("watcher", deadline=None)
settings.load_profile("watcher")


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Run each anyio test once per backend."""
    return str(request.param)
