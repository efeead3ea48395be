"""One leader per deployment: the process holding a PostgreSQL advisory lock."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime

import asyncpg
import structlog

from reelqueue.queue.supervise import LoopHealth, describe_error

__all__ = ["LEADER_LOCK_KEY", "LeaderElection"]

log = structlog.get_logger(__name__)

LEADER_LOCK_KEY = 0x7265_656C_7100  # "reelq": ingest and push-back run only under this lock

# pg_locks shows a bigint advisory key as two 32-bit halves, objsubid 1.
_HOLDS = (
    "SELECT EXISTS (SELECT 1 FROM pg_locks WHERE locktype = 'advisory'"
    " AND pid = pg_backend_pid() AND classid = $1 AND objid = $2 AND objsubid = 1 AND granted)"
)


class LeaderElection:
    """Tries for the leader lock on its own connection; holds it while that connection lives.

    The lock dies with the connection, so a leader that crashes frees it at once
    and a standby takes over on its next try (every `retry_s`). `watch` checks in
    `pg_locks`, on that connection, that the lock is still ours; a failed or slow
    check, or a lock no longer held, ends leadership and clears `is_leader`.
    `health` says whether the election can reach the database; `verified_at` is when
    the lock was last seen held.
    """

    def __init__(
        self,
        url: str,
        *,
        retry_s: float = 1.0,
        key: int = LEADER_LOCK_KEY,
        health: LoopHealth | None = None,
    ) -> None:
        self._url = url
        self._retry_s = retry_s
        self._key = key
        self._conn: asyncpg.Connection | None = None
        self.is_leader = asyncio.Event()
        self.lost = asyncio.Event()
        self.health = health or LoopHealth("leader")
        self.verified_at: datetime | None = None

    async def acquire(self, stop: asyncio.Event) -> bool:
        """Wait until this process leads (True) or `stop` is set (False)."""
        if self.health.state == "idle":
            self.health.started()
        while not stop.is_set():
            try:
                if self._conn is None or self._conn.is_closed():
                    self._conn = await asyncpg.connect(self._url, timeout=max(2.0, self._retry_s))
                got = await self._conn.fetchval(
                    "SELECT pg_try_advisory_lock($1)", self._key, timeout=max(2.0, self._retry_s)
                )
                self.health.ok()
                if got:
                    self.verified_at = datetime.now(UTC)
                    self.lost.clear()
                    self.is_leader.set()
                    log.info("became the leader: running ingest and push-back")
                    return True
            except Exception as exc:
                if self.health.streak == 0:
                    log.warning("leader election: database unreachable", error=describe_error(exc))
                self.health.failed(exc)
                await self._close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._retry_s)
        return False

    async def holds(self, timeout_s: float = 1.5) -> bool:
        """Whether the lock is ours right now, asked of PostgreSQL on the lock's connection."""
        conn = self._conn
        if conn is None or conn.is_closed():
            raise ConnectionError("the connection is closed")
        held = await conn.fetchval(
            _HOLDS, (self._key >> 32) & 0xFFFF_FFFF, self._key & 0xFFFF_FFFF, timeout=timeout_s
        )
        return bool(held)

    async def watch(self, interval_s: float = 0.5, timeout_s: float = 1.5) -> None:
        """Return when leadership is lost: the lock's connection failed, hung, or lost the lock.

        `is_leader` is cleared before returning; the caller stops its leader's work, then
        calls `release`.
        """
        while True:
            await asyncio.sleep(interval_s)
            try:
                held = await self.holds(timeout_s)
                reason = None if held else "the lock is no longer held by this connection"
            except Exception as exc:
                reason = f"the lock's connection failed: {describe_error(exc)}"
            if reason is None:
                self.verified_at = datetime.now(UTC)
                continue
            log.warning("lost leadership", reason=reason)
            self.health.failed(reason)
            self.is_leader.clear()
            self.lost.set()
            return

    async def release(self) -> None:
        """Give up leadership (closing the connection frees the lock)."""
        self.is_leader.clear()
        await self._close()

    async def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is None or conn.is_closed():
            return
        try:
            await asyncio.shield(conn.close(timeout=1))
        except Exception:
            conn.terminate()
