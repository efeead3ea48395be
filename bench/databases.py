"""Databases for benchmarks: a fresh one per run on the benchmark's server, and counts."""

from __future__ import annotations

import uuid

import asyncpg

from reelqueue.db import ensure_database, with_database


async def fresh_database(server: str) -> str:
    """A new empty database on the benchmark's server."""
    name = f"bench_{uuid.uuid4().hex[:10]}"
    admin = await ensure_database(server, "postgres")
    conn = await asyncpg.connect(admin)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return with_database(admin, name)


async def count(url: str, sql: str) -> int:
    """The integer one SQL query answers (0 for NULL)."""
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql) or 0)
    finally:
        await conn.close()
