"""LISTEN on PostgreSQL channels with one connection, reconnecting when it is lost."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Sequence

import asyncpg
import structlog

from reelqueue.queue.lifecycle import BackgroundService, until_stopped
from reelqueue.queue.supervise import LoopHealth, describe_error

__all__ = ["Listener"]

log = structlog.get_logger(__name__)

Callback = Callable[[str, str], None]


class Listener(BackgroundService):
    """Calls `callback(channel, payload)` for each notification on `channels`.

    A lost connection (server restart, `pg_terminate_backend`), or any other failure,
    is re-opened with a short backoff and `on_reconnect` is called, since notifications
    sent while disconnected are gone: the caller should look for work it may have missed.
    `health` says whether it is listening, and counts the failures. It follows the
    service lifecycle (`start()`, `stop()`).
    """

    name = "listener"

    def __init__(
        self,
        url: str,
        channels: Sequence[str],
        callback: Callback,
        *,
        on_reconnect: Callable[[], None] | None = None,
        check_interval_s: float = 1.0,
        health: LoopHealth | None = None,
    ) -> None:
        super().__init__()
        self._url = url
        self._channels = list(channels)
        self._callback = callback
        self._on_reconnect = on_reconnect
        self._check_interval_s = check_interval_s
        self.connected = asyncio.Event()
        self.reconnects = 0
        self.health = health or LoopHealth("listener")

    async def _serve(self, stopping: asyncio.Event) -> None:
        self.health.started()
        try:
            await until_stopped(stopping, self._listen())
        finally:
            self.health.stopped()

    def _deliver(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        try:
            self._callback(channel, payload)
        except Exception:
            log.exception("notification handler failed", channel=channel)

    async def _listen(self) -> None:
        first = True
        while True:
            conn: asyncpg.Connection | None = None
            try:
                conn = await asyncpg.connect(self._url, timeout=max(2.0, self._check_interval_s))
                for channel in self._channels:
                    await conn.add_listener(channel, self._deliver)
                self.connected.set()
                self.health.ok()
                if not first:
                    self.reconnects += 1
                    log.info("listener reconnected", channels=self._channels)
                    if self._on_reconnect is not None:
                        self._on_reconnect()
                first = False
                while not conn.is_closed():
                    await asyncio.sleep(self._check_interval_s)
                    await conn.execute("SELECT 1", timeout=max(2.0, self._check_interval_s))
                raise ConnectionError("the listening connection was closed")
            except Exception as exc:
                self.health.failed(exc)
                delay = self.health.backoff_s()
                log.warning(
                    "listener connection lost",
                    channels=self._channels,
                    error=describe_error(exc),
                    failures=self.health.failures,
                    retry_in_s=round(delay, 2),
                )
            finally:
                self.connected.clear()
                if conn is not None and not conn.is_closed():
                    with contextlib.suppress(Exception):
                        await asyncio.shield(conn.close(timeout=1))
            await asyncio.sleep(delay)
