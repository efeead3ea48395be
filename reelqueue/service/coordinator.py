"""The leader's loop: answer the doorbell, poll on an interval, reconcile, then push back.

Every push-back batch follows an incremental read in the same loop (and ingest
goes ahead of push-back in the rate limiter), so a change the creator just made
is taken in before we write.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime, timedelta

import structlog

from reelqueue.ingest import Doorbell, PassResult, Poller, Rings
from reelqueue.logs import correlation
from reelqueue.notion import NotionError
from reelqueue.pushback import Pusher

__all__ = ["CLOCK_SKEW", "Coordinator"]

log = structlog.get_logger(__name__)

# How far Notion's clock may run behind ours before a webhook's edit time misleads us
# into skipping a read; a wrong guess only delays that edit to the next poll.
CLOCK_SKEW = timedelta(seconds=0.25)


class Coordinator:
    """Runs ingest and push-back while this process leads."""

    def __init__(
        self,
        pollers: Sequence[Poller],
        pusher: Pusher,
        doorbell: Doorbell,
        *,
        poll_interval_s: float,
        reconcile_interval_s: float,
    ) -> None:
        self._pollers = list(pollers)
        self._pusher = pusher
        self._doorbell = doorbell
        self._poll_interval_s = poll_interval_s
        self._reconcile_interval_s = reconcile_interval_s
        self.passes = 0
        self.ready = asyncio.Event()
        self._covered_until: datetime | None = None
        self.last_notion_error: str | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Lead until `stop` is set (or the task is cancelled on lost leadership)."""
        await self._guarded(self._reconcile_all)
        next_poll = time.monotonic() + self._poll_interval_s
        next_reconcile = time.monotonic() + self._reconcile_interval_s
        await self._guarded(self._push_all)
        self.ready.set()
        while not stop.is_set():
            now = time.monotonic()
            rings = await self._wait(stop, max(0.0, min(next_poll, next_reconcile) - now))
            now = time.monotonic()
            if rings.pages_to_fetch:
                await self._guarded(functools.partial(self._fetch, rings))
            if rings.needs_read_after(self._covered_until) or now >= next_poll:
                await self._guarded(self._incremental_all)
                next_poll = time.monotonic() + self._poll_interval_s
            if now >= next_reconcile:
                await self._guarded(self._reconcile_all)
                next_reconcile = time.monotonic() + self._reconcile_interval_s
            await self._guarded(self._push_all)

    async def _wait(self, stop: asyncio.Event, max_wait_s: float) -> Rings:
        stopper = asyncio.create_task(stop.wait())
        ringer = asyncio.create_task(self._doorbell.wait(max_wait_s))
        try:
            await asyncio.wait({stopper, ringer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
        if ringer.done():
            return ringer.result()
        ringer.cancel()
        return Rings()

    async def _guarded(self, action: Callable[[], Awaitable[None]]) -> None:
        """Run one pass; a Notion outage is logged and retried on the next turn."""
        try:
            await action()
        except NotionError as exc:
            self.last_notion_error = str(exc)
            log.warning("pass failed; retrying on the next turn", error=str(exc))
        else:
            self.last_notion_error = None

    def _log(self, result: PassResult, source: str) -> None:
        self.passes += 1
        outcomes = {k: v for k, v in result.summary.outcomes.items() if v}
        log.info(
            f"{result.kind} pass",
            data_source_id=source,
            pages=result.pages,
            queries=result.queries,
            **outcomes,
        )

    async def _incremental_all(self) -> None:
        """Read every data source's changes; edits before the start are then covered."""
        started = datetime.now(UTC)
        for poller in self._pollers:
            with correlation(source="poll"):
                self._log(await poller.incremental(), poller.data_source_id)
        self._covered_until = started - CLOCK_SKEW

    async def _reconcile_all(self) -> None:
        for poller in self._pollers:
            with correlation(source="reconcile"):
                self._log(await poller.reconcile(), poller.data_source_id)

    async def _fetch(self, rings: Rings) -> None:
        pages = sorted(rings.pages_to_fetch)
        for poller in self._pollers[:1]:
            with correlation(source="fetch"):
                self._log(await poller.fetch_pages(pages), poller.data_source_id)

    async def _push_all(self) -> None:
        """Drain the outbox, each batch right after an incremental read.

        Notion has no conditional write, so the read just before the write is what
        keeps us from overwriting a change the creator made since our last look.
        """
        while await self._pusher.pending_pages():
            await self._incremental_all()
            with correlation(source="push"):
                result = await self._pusher.push_pending()
            if result.pages_written or result.pages_missing:
                log.info(
                    "push-back pass",
                    written=result.pages_written,
                    unchanged=result.pages_unchanged,
                    failures=result.failures,
                )
            if result.failures and not (result.pages_written or result.pages_unchanged):
                return
