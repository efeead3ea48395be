"""Chaos fixtures: one sandbox process and one PostgreSQL of the suite's own for the session."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from reelqueue.sandbox import SandboxAdmin
from tests.chaos.harness import (
    HEAL_TIMES,
    SANDBOX_RESET,
    Chaos,
    Postgres,
    SandboxProcess,
    service_env,
)


@pytest.fixture(scope="session")
def chaos_sandbox() -> Iterator[SandboxProcess]:
    """`reelqueue sandbox` as its own process for the whole session."""
    process = SandboxProcess()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(scope="session")
def chaos_postgres(tmp_path_factory: pytest.TempPathFactory) -> Postgres:
    """An embedded PostgreSQL only the chaos scenarios use (and may kill)."""
    postgres = Postgres(tmp_path_factory.mktemp("chaos-pg"))
    asyncio.run(postgres.build_template())
    return postgres


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """The time to heal after each fault, from its end to the first progress."""
    if HEAL_TIMES:
        terminalreporter.write_sep("-", "chaos: time to heal (fault's end to first progress)")
        for fault, seconds in HEAL_TIMES.items():
            terminalreporter.write_line(f"{fault}: {seconds:.2f} s")


@pytest.fixture
async def chaos(
    request: pytest.FixtureRequest,
    chaos_sandbox: SandboxProcess,
    chaos_postgres: Postgres,
    tmp_path: Path,
) -> AsyncIterator[Chaos]:
    """A fresh calendar and database; every process the scenario starts is stopped after."""
    admin = SandboxAdmin(chaos_sandbox.base_url)
    await admin.reset(videos=20, **SANDBOX_RESET)
    database = await chaos_postgres.new_database()
    database_url = chaos_postgres.database_url(database)
    scenario = Chaos(
        name=request.node.name,
        sandbox=admin,
        postgres=chaos_postgres,
        database_url=database_url,
        env=service_env(tmp_path, admin, database_url),
    )
    try:
        yield scenario
    finally:
        await asyncio.to_thread(scenario.stop_all)
        await admin.set_faults()
        await admin.aclose()
        await chaos_postgres.drop_database(database)
