"""The webhook inbox writer: events are answered at once and recorded in batches after.

Notion wants a fast 2xx, and a burst of events should not queue behind one database
transaction each. Verified events wait in memory for a moment and are written in one
statement per batch. An event lost to a crash in that moment costs nothing but a
few seconds: webhooks are only a doorbell, and the poller reconciles. A batch the
database refuses is written again one delivery at a time, so one odd event costs only
itself.
"""

from __future__ import annotations

import asyncio
from collections import Counter, deque

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.ingest.webhooks import Delivery, record_events
from reelqueue.queue.lifecycle import BackgroundService

__all__ = ["InboxWriter"]

log = structlog.get_logger(__name__)


class InboxWriter(BackgroundService):
    """Batches verified deliveries into the inbox; follows the service lifecycle, and
    writes what is waiting before it stops. Deliveries taken while it is stopped wait
    for the next start."""

    name = "inbox-writer"

    def __init__(
        self, engine: AsyncEngine, *, bot_user_id: str | None, max_batch: int = 500
    ) -> None:
        super().__init__()
        self._engine = engine
        self._bot_user_id = bot_user_id
        self._max_batch = max_batch
        self._waiting: deque[Delivery] = deque()
        self._arrived = asyncio.Event()
        self.verdicts: Counter[str] = Counter()
        self.idle = asyncio.Event()
        self.idle.set()

    def put(self, delivery: Delivery) -> None:
        """Take one verified delivery; it is written shortly after."""
        self.idle.clear()
        self._waiting.append(delivery)
        self._arrived.set()

    def _take(self) -> list[Delivery]:
        batch: list[Delivery] = []
        while self._waiting and len(batch) < self._max_batch:
            batch.append(self._waiting.popleft())
        return batch

    async def _serve(self, stopping: asyncio.Event) -> None:
        while True:
            if not self._waiting:
                self.idle.set()
                if stopping.is_set():
                    return
                await self._arrival(stopping)
            await self._write(self._take())

    async def _arrival(self, stopping: asyncio.Event) -> None:
        """Until a delivery waits, or the writer is asked to stop."""
        self._arrived.clear()
        if self._waiting:
            return
        arrived = asyncio.ensure_future(self._arrived.wait())
        stopped = asyncio.ensure_future(stopping.wait())
        try:
            await asyncio.wait({arrived, stopped}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopped.cancel()
            arrived.cancel()

    async def _write(self, batch: list[Delivery]) -> None:
        if not batch:
            return
        try:
            await self._record(batch)
        except Exception as exc:  # a lost event only delays its edit to the next poll
            if len(batch) == 1:
                log.warning(
                    "webhook event not recorded",
                    event_id=batch[0].event_id[:64],
                    error=_first_line(exc),
                )
                return
            lost = 0
            for delivery in batch:
                try:
                    await self._record([delivery])
                except Exception as again:  # as above, for this event alone
                    lost += 1
                    log.warning(
                        "webhook event not recorded",
                        event_id=delivery.event_id[:64],
                        error=_first_line(again),
                    )
            if lost:
                log.warning("webhook events not recorded", events=lost, of=len(batch))

    async def _record(self, batch: list[Delivery]) -> None:
        async with self._engine.begin() as conn:
            verdicts = await record_events(conn, batch, bot_user_id=self._bot_user_id)
        self.verdicts.update(v.value for v in verdicts)
        log.debug("webhook events recorded", events=len(batch))


def _first_line(exc: BaseException) -> str:
    """An error in one short line: its type and the first line of its message."""
    orig = getattr(exc, "orig", None) or exc
    lines = str(orig).strip().splitlines()
    return f"{type(orig).__name__}: {lines[0][:200]}" if lines else type(orig).__name__
