"""Shared test fixtures: a real PostgreSQL and a real Notion sandbox over loopback HTTP."""

pytest_plugins = [
    "tests.fixtures.database",
    "tests.fixtures.sandbox",
    "tests.fixtures.service",
]
