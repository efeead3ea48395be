"""Connections: which server to use, the async engine and sessions, raw asyncpg connections."""

from __future__ import annotations

import contextlib
from urllib.parse import urlsplit, urlunsplit

import asyncpg
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from reelqueue.config import Settings
from reelqueue.db.embedded import start_embedded_server
from reelqueue.errors import UserError

__all__ = [
    "DEFAULT_DATABASE",
    "DatabaseUnavailable",
    "create_engine",
    "ensure_database",
    "libpq_url",
    "resolve_database_url",
    "session_factory",
    "sqlalchemy_url",
    "with_database",
]

DEFAULT_DATABASE = "reelqueue"


class DatabaseUnavailable(UserError):
    """The database server could not be reached or refused us."""


def libpq_url(url: str) -> str:
    """The plain `postgresql://` form of a URL, as asyncpg and psql expect it."""
    scheme, rest = url.split("://", 1)
    if scheme.split("+")[0] not in {"postgresql", "postgres"}:
        raise UserError(
            f"DATABASE_URL must start with postgresql:// (got a {scheme}:// URL); "
            "reelqueue runs on PostgreSQL only"
        )
    return f"postgresql://{rest}"


def sqlalchemy_url(url: str) -> str:
    """The SQLAlchemy form of a PostgreSQL URL, with the asyncpg driver."""
    return "postgresql+asyncpg://" + libpq_url(url).split("://", 1)[1]


def with_database(url: str, database: str) -> str:
    """The same server URL pointing at another database."""
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


def _redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


async def ensure_database(server_url: str, database: str) -> str:
    """Create `database` on the server if it is missing; return its URL."""
    try:
        conn = await asyncpg.connect(libpq_url(server_url))
    except (OSError, asyncpg.PostgresError) as exc:
        raise DatabaseUnavailable(
            f"cannot connect to PostgreSQL at {_redacted(server_url)} ({exc}); "
            "check DATABASE_URL, or unset it to use the embedded server"
        ) from None
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database)
        if not exists:
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                await conn.execute(f'CREATE DATABASE "{database}"')
    finally:
        await conn.close()
    return with_database(libpq_url(server_url), database)


async def resolve_database_url(settings: Settings) -> str:
    """DATABASE_URL when set; otherwise the embedded server's `reelqueue` database."""
    if settings.database_url:
        return libpq_url(settings.database_url)
    server = start_embedded_server(settings.data_dir)
    return await ensure_database(server, DEFAULT_DATABASE)


def create_engine(url: str, *, pool_size: int = 5, pre_ping: bool = True) -> AsyncEngine:
    """An async engine on asyncpg with a small pool.

    `pre_ping` checks each connection before use (a round trip); a caller that retries
    on database errors anyway, such as a worker, can do without it.
    """
    return create_async_engine(
        sqlalchemy_url(url), pool_size=pool_size, max_overflow=pool_size, pool_pre_ping=pre_ping
    )


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded values after commit (tasks are read after they change)."""
    return async_sessionmaker(engine, expire_on_commit=False)
