"""Shared test fixtures: a real PostgreSQL and a real Notion sandbox over loopback HTTP."""

import signal
from collections.abc import Iterator

import pytest
from hypothesis import settings

from reelqueue.notion import forget_limiters

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.sandbox",
    "tests.fixtures.service",
]

# No timing assertions in tests, Hypothesis's per-example deadline included: on a busy
# two-core machine a slow example is noise, not a failure (speed is measured in bench/).
settings.register_profile("reelqueue", deadline=None)
settings.load_profile("reelqueue")


def pytest_configure() -> None:
    """Let the processes tests start stop on Ctrl-C (SIGINT), as they would in a terminal.

    A suite started in the background (`make test &`, some CI runners) inherits SIGINT
    ignored, and an ignored signal stays ignored across exec, so every child would
    ignore the Ctrl-C the tests send it and hang until killed.
    """
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def fresh_limiters() -> Iterator[None]:
    """Each test starts as a new process would: no limiter has learned or held anything."""
    yield
    forget_limiters()
