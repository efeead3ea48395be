"""Shared test fixtures: a real PostgreSQL and a real Notion sandbox over loopback HTTP."""

from collections.abc import Iterator

import pytest

from reelqueue.notion import forget_limiters

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.sandbox",
    "tests.fixtures.service",
]


@pytest.fixture(autouse=True)
def fresh_limiters() -> Iterator[None]:
    """Each test starts as a new process would: no limiter has learned or held anything."""
    yield
    forget_limiters()
