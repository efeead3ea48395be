"""Migrations: an empty database goes to head, back to base, and up again."""

from __future__ import annotations

import asyncpg

from reelqueue.db import current_revision, downgrade, head_revision, upgrade

EXPECTED_TABLES = {"tasks", "task_events", "sync_state", "webhook_inbox", "outbox", "service_state"}


async def _tables(url: str) -> set[str]:
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
            " AND tablename <> 'alembic_version'"
        )
    finally:
        await conn.close()
    return {r["tablename"] for r in rows}


async def test_upgrade_downgrade_upgrade_round_trip(empty_database_url: str) -> None:
    assert await current_revision(empty_database_url) is None
    await upgrade(empty_database_url)
    assert await current_revision(empty_database_url) == head_revision()
    assert await _tables(empty_database_url) == EXPECTED_TABLES

    await downgrade(empty_database_url, "base")
    assert await current_revision(empty_database_url) is None
    assert await _tables(empty_database_url) == set()

    await upgrade(empty_database_url)
    assert await _tables(empty_database_url) == EXPECTED_TABLES


async def test_upgrade_twice_is_a_no_op(empty_database_url: str) -> None:
    await upgrade(empty_database_url)
    await upgrade(empty_database_url)
    assert await current_revision(empty_database_url) == head_revision()


async def test_notion_page_id_is_unique(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        insert = (
            "INSERT INTO tasks (notion_page_id, data_source_id, channel, title)"
            " VALUES ($1, 'ds', 'science', 'A video') ON CONFLICT (notion_page_id) DO NOTHING"
        )
        page = "3839ce7b-60a4-81c8-867a-f81fd71aa55c"
        await conn.execute(insert, page)
        await conn.execute(insert, page)
        assert await conn.fetchval("SELECT count(*) FROM tasks") == 1
    finally:
        await conn.close()
