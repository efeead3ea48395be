"""One leader per deployment: the process holding a PostgreSQL advisory lock."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
import structlog

__all__ = ["LEADER_LOCK_KEY", "LeaderElection"]

log = structlog.get_logger(__name__)

LEADER_LOCK_KEY = 0x7265_656C_7100  # "reelq": ingest and push-back run only under this lock


class LeaderElection:
    """Tries for the leader lock on its own connection; holds it while that connection lives.

    The lock dies with the connection, so a leader that crashes frees it at once
    and a standby takes over on its next try (every `retry_s`). Leadership is lost,
    and `is_leader` cleared, as soon as the connection fails a check.
    """

    def __init__(self, url: str, *, retry_s: float = 1.0, key: int = LEADER_LOCK_KEY) -> None:
        self._url = url
        self._retry_s = retry_s
        self._key = key
        self._conn: asyncpg.Connection | None = None
        self.is_leader = asyncio.Event()
        self.lost = asyncio.Event()

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this process leads (True) or `stop` is set (False)."""
        while not stop.is_set():
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self._url)
                if await self._conn.fetchval("SELECT pg_try_advisory_lock($1)", self._key):
                    self.lost.clear()
                    self.is_leader.set()
                    log.info("became the leader: running ingest and push-back")
                    return True
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("leader election: database unreachable", error=str(exc))
                await self._close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._retry_s)
        return False

    async def watch(self, interval_s: float = 1.0) -> None:
        """Return when leadership is lost (the lock's connection failed)."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                assert self._conn is not None
                await self._conn.execute("SELECT 1")
            except (OSError, AssertionError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("lost leadership: the lock's connection failed", error=str(exc))
                self.is_leader.clear()
                self.lost.set()
                await self._close()
                return

    async def release(self) -> None:
        """Give up leadership (closing the connection frees the lock)."""
        self.is_leader.clear()
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.is_closed():
            with contextlib.suppress(Exception):
                await conn.close(timeout=1)
