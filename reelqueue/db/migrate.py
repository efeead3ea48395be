"""Apply Alembic migrations from code, one process at a time, then install the queue's SQL.

The queue's functions and runnable index are (re)installed from reelqueue/db/sql by a
step after every upgrade that reaches the newest revision (reelqueue.db.queue_sql), in the
same transaction: plain SQL files rendered from the status table and run here need no
new dependency, where alembic-utils would declare each function as a Python object,
diff the catalog at autogenerate time, and still write a migration per change.
"""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import create_async_engine

from reelqueue.db.engine import sqlalchemy_url
from reelqueue.db.queue_sql import install
from reelqueue.errors import UserError
from reelqueue.statuses import StatusTable

__all__ = [
    "RETIRED_REVISIONS",
    "RetiredRevision",
    "current_revision",
    "downgrade",
    "head_revision",
    "upgrade",
]

# Revisions squashed into the first migration (0006) while reelqueue was 0.x.
RETIRED_REVISIONS = frozenset({"0001", "0002", "0003", "0004", "0005"})


class RetiredRevision(UserError):
    """The database is at a migration this reelqueue no longer carries."""


MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_MIGRATION_LOCK = 0x7265_656C  # "reel": serialises concurrent upgrades of one database


def _config(connection: Connection | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    """The newest revision this code knows."""
    head = ScriptDirectory.from_config(_config()).get_current_head()
    assert head is not None
    return head


async def _run(url: str, action: str, revision: str, table: StatusTable | None = None) -> None:
    engine = create_async_engine(sqlalchemy_url(url))
    try:
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK})

            def apply(sync_conn: Connection) -> None:
                current = MigrationContext.configure(sync_conn).get_current_revision()
                if current in RETIRED_REVISIONS:
                    raise RetiredRevision(
                        f"the database is at migration {current}, which this reelqueue no "
                        "longer carries: upgrade it to 0006 with a reelqueue from before the "
                        "squash (commit 2fe6dd9), then again with this one"
                    )
                getattr(command, action)(_config(sync_conn), revision)
                reached = MigrationContext.configure(sync_conn).get_current_revision()
                if action == "upgrade" and reached == head_revision():
                    install(sync_conn, table)

            await conn.run_sync(apply)
    finally:
        await engine.dispose()


async def upgrade(url: str, revision: str = "head", *, table: StatusTable | None = None) -> None:
    """Upgrade the database at `url` to `revision` (the newest by default), with the
    queue's SQL for `table`'s vocabulary (by default statuses.py's)."""
    await _run(url, "upgrade", revision, table)


async def downgrade(url: str, revision: str = "base") -> None:
    """Downgrade the database at `url` to `revision` (empty by default)."""
    await _run(url, "downgrade", revision)


async def current_revision(url: str) -> str | None:
    """The revision the database is at, or None for an empty database."""
    engine = create_async_engine(sqlalchemy_url(url))
    try:
        async with engine.connect() as conn:

            def read(sync_conn: Connection) -> str | None:
                return MigrationContext.configure(sync_conn).get_current_revision()

            return await conn.run_sync(read)
    finally:
        await engine.dispose()
