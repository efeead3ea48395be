"""The migrated schema is the one the models describe, plus the queue's SQL from its one source."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest

from reelqueue.db import (
    Base,
    create_engine,
    current_revision,
    downgrade,
    head_revision,
    upgrade,
    with_database,
)
from reelqueue.db.migrate import RetiredRevision
from reelqueue.db.queue_sql import constants, pieces, render, runnable_index_sql
from reelqueue.statuses import STEPS, StatusTable

Catalog = dict[str, set[tuple[str | None, ...]]]

# The catalog as the models and the queue's SQL see it: no order of columns, no oids.
CATALOG = {
    "tables": "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
    " AND tablename <> 'alembic_version'",
    "columns": "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text,"
    " column_default::text, is_identity::text FROM information_schema.columns"
    " WHERE table_schema = 'public' AND table_name <> 'alembic_version'",
    "indexes": "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public'"
    " AND tablename <> 'alembic_version'",
    "constraints": "SELECT conrelid::regclass::text, conname, pg_get_constraintdef(oid)"
    " FROM pg_constraint WHERE connamespace = 'public'::regnamespace"
    " AND conrelid::regclass::text <> 'alembic_version'",
    "functions": "SELECT oid::regprocedure::text, prosrc FROM pg_proc"
    " WHERE pronamespace = 'public'::regnamespace",
}


async def catalog(url: str) -> Catalog:
    conn = await asyncpg.connect(url)
    try:
        return {
            name: {tuple(row) for row in await conn.fetch(query)} for name, query in CATALOG.items()
        }
    finally:
        await conn.close()


@pytest.fixture
async def model_database_url(postgres_server_url: str) -> AsyncIterator[str]:
    """A database made straight from the models (create_all), plus the queue's SQL."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(with_database(postgres_server_url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        url = with_database(postgres_server_url, name)
        engine = create_engine(url)
        async with engine.begin() as conn:
            await conn.run_sync(Base.metadata.create_all)
            for definition in pieces().values():
                await conn.exec_driver_sql(definition)
        await engine.dispose()
        yield url
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_an_upgraded_database_has_exactly_the_models_schema_and_round_trips(
    empty_database_url: str, model_database_url: str
) -> None:
    wanted = await catalog(model_database_url)
    assert {str(signature).split("(")[0] for signature, _ in wanted["functions"]} == set(pieces())
    assert len(wanted["tables"]) == len(Base.metadata.tables)

    await upgrade(empty_database_url)
    upgraded = await catalog(empty_database_url)
    assert upgraded == wanted

    await downgrade(empty_database_url, "base")
    emptied = await catalog(empty_database_url)
    assert (emptied["tables"], emptied["functions"]) == (set(), set())

    await upgrade(empty_database_url)
    assert await catalog(empty_database_url) == wanted


async def test_the_runnable_index_predicate_and_functions_come_from_the_status_table(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        indexdef = await conn.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_tasks_runnable'"
        )
        functions = dict(
            await conn.fetch(
                "SELECT proname, prosrc FROM pg_proc WHERE proname LIKE 'reelqueue\\_%'"
            )
        )
    finally:
        await conn.close()
    assert "'assets_approved'::text" in indexdef
    assert "'generating_video'" not in indexdef
    assert "WHERE status IN ('queued'" in runnable_index_sql()
    assert set(functions) == set(pieces())
    for name, definition in pieces().items():
        assert functions[name] == definition.split("$$")[1]
        assert "{{" not in definition


async def test_a_database_at_0006_upgrades_in_place_and_loses_stale_functions(
    database_url: str,
) -> None:
    await downgrade(database_url, "0006")
    conn = await asyncpg.connect(database_url)
    try:
        # The exchange as migration 0005 left it: eight arrays where one JSON array is now.
        await conn.execute(
            "CREATE FUNCTION reelqueue_exchange(text, bigint[], text[], text[], jsonb[],"
            " bigint[], text[], text[], text[], int, interval, text[], int[], text[], int[],"
            " bigint, int, boolean) RETURNS int LANGUAGE sql AS 'SELECT 0'"
        )
        await conn.execute("DROP INDEX ix_tasks_runnable")
        await conn.execute(
            "CREATE INDEX ix_tasks_runnable ON tasks (channel, priority, created_at, id)"
            " WHERE status IN ('queued')"
        )
        await conn.execute(
            "INSERT INTO tasks (notion_page_id, data_source_id, channel, title)"
            " VALUES ('page', 'ds', 'science', 'A video')"
        )
    finally:
        await conn.close()

    await upgrade(database_url)

    conn = await asyncpg.connect(database_url)
    try:
        names = {
            row[0]
            for row in await conn.fetch(
                "SELECT proname FROM pg_proc WHERE proname LIKE 'reelqueue\\_%'"
            )
        }
        overloads = await conn.fetchval(
            "SELECT count(*) FROM pg_proc WHERE proname LIKE 'reelqueue\\_%'"
        )
        indexdef = await conn.fetchval(
            "SELECT indexdef FROM pg_indexes WHERE indexname = 'ix_tasks_runnable'"
        )
        kept = await conn.fetchval("SELECT title FROM tasks WHERE notion_page_id = 'page'")
    finally:
        await conn.close()
    assert kept == "A video"
    assert names == set(pieces())
    assert overloads == len(pieces())
    assert "'approved'::text" in indexdef
    assert await current_revision(database_url) == head_revision()


async def test_a_database_at_a_squashed_revision_is_refused_with_what_to_do(
    database_url: str,
) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("UPDATE alembic_version SET version_num = '0003'")
    finally:
        await conn.close()
    with pytest.raises(RetiredRevision, match=r"at migration 0003.*to 0006 with a reelqueue"):
        await upgrade(database_url)
    assert await current_revision(database_url) == "0003"


def test_the_sql_constants_follow_the_status_table() -> None:
    table = StatusTable()
    values = constants(table)
    for step in STEPS:
        assert f"'{table.running_status_for(step)}'" in values["running_status"]
    assert values["queued"] == "'queued'"
    assert "'claimed'" not in values["running_status"], "a claim moves queued straight on"
    with pytest.raises(KeyError, match="nameless"):
        render("SELECT {{nameless}}", values)
