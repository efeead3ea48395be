"""The leader's two loops: ingest (doorbell, polls, reconciles) and push-back, side by side.

Ingest never waits behind push-back: each loop runs on its own, and ingest goes ahead
of push-back in the shared rate limiter. Every read and its reactions hold one lock,
so reactions land in the order their reads started and an older read never undoes
a newer one.

Notion has no conditional write. Before each push-back cycle the pusher asks for a
fresh read (`fresh_read`): a recent read of the creator's statuses, started after the
ask (so after the task changes it is about to write); its writes then go out within
the pusher's window of that read's start.

Notion combines a page's property edits made within a minute of an earlier edit
(ours included) into one webhook sent at the end of that minute. So after we write a
page, or a creator's edit rings, the calendar is "hot" for `hot_s`: while hot, a recent
read runs every `hot_poll_interval_s` (one query per data source), so an approval,
cancel or re-queue is seen within seconds instead of a minute. When quiet, only the
incremental poll runs, once per data source per poll interval. A webhook ring is
answered by a recent read at once and, `FOLLOW_UP_POLL_S` later, by a follow-up poll of
the pages whose Status is not a creator's (the recent read took those), so a bulk edit
is not read twice.

Both loops outlive any failure (Notion, the database, a bug in one pass): it is logged,
counted in `ingest` or `push` (their `LoopHealth`), and the loop goes on after a short
backoff, so a database restart never ends ingest or push-back.
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.ingest import Doorbell, PassResult, Poller, Rings
from reelqueue.ingest.applied import (
    inbox_high_water,
    mark_applied,
    mark_applied_before,
    prune_inbox,
)
from reelqueue.logs import correlation
from reelqueue.notion import NotionError
from reelqueue.pushback import Pusher, PushResult
from reelqueue.queue.lifecycle import BackgroundService, until_stopped
from reelqueue.queue.supervise import LoopHealth, attempt, describe_error, supervise

__all__ = ["CLOCK_SKEW", "HOT_POLL_INTERVAL_S", "HOT_S", "Coordinator"]

log = structlog.get_logger(__name__)

# How far Notion's clock may run behind ours before a webhook's edit time misleads us
# into skipping a read; a wrong guess only delays that edit to the next poll.
CLOCK_SKEW = timedelta(seconds=0.25)
# How far back of the previous recent read's start the next one looks (before its minute
# floor): room for Notion's clock to run behind ours.
RECENT_OVERLAP = timedelta(seconds=2)
# Notion combines later edits of a page for a minute after an earlier one; a little more.
HOT_S = 65.0
# One recent read per data source this often while hot: about 11 % of 3 requests a second.
HOT_POLL_INTERVAL_S = 3.0
# A ring's status edits are read at once; its other edits (Priority ...) this soon after,
# by one incremental poll that also takes in the rings that come meanwhile.
FOLLOW_UP_POLL_S = 2.0
# How long push-back waits for a ring before looking at the outbox again.
PUSH_IDLE_S = 5.0


class Coordinator(BackgroundService):
    """Runs ingest and push-back while this process leads (from `start()` to `stop()`).

    Stopping cancels both loops at once, mid-pass if need be: a leader that lost its
    lock stops writing now, and a pass cut short is done again by the next leader.

    For health and tests: `last_poll_ok_at` is when a read of Notion last succeeded
    (UTC); `last_push` is what the latest push-back drain did, and `pushed` is set after
    each drain (clear it, then wait, to see the next); `read_to_write_s` keeps the last
    1,000 read-to-write lags.
    """

    def __init__(
        self,
        pollers: Sequence[Poller],
        pusher: Pusher,
        doorbell: Doorbell,
        *,
        poll_interval_s: float,
        reconcile_interval_s: float,
        engine: AsyncEngine | None = None,
        hot_s: float = HOT_S,
        hot_poll_interval_s: float = HOT_POLL_INTERVAL_S,
        ingest_health: LoopHealth | None = None,
        push_health: LoopHealth | None = None,
    ) -> None:
        super().__init__()
        self._pollers = list(pollers)
        self._by_source = {p.data_source_id: p for p in self._pollers}
        self._pusher = pusher
        self._doorbell = doorbell
        self._engine = engine
        self._poll_interval_s = poll_interval_s
        self._reconcile_interval_s = reconcile_interval_s
        self._hot_s = hot_s
        self._hot_poll_interval_s = hot_poll_interval_s
        self._read_lock = asyncio.Lock()
        self._covered_until: datetime | None = None
        # Per data source: (monotonic, wall clock) start of the last completed recent read.
        self._recent: dict[str, tuple[float, datetime]] = {}
        self._hot_until = 0.0
        # The newest inbox row when the last recent read of every data source began.
        self._recent_upto = 0
        self.passes = 0
        self.ready = asyncio.Event()
        self.last_poll_ok_at: datetime | None = None
        self.ingest = ingest_health or LoopHealth("ingest")
        self.push = push_health or LoopHealth("push-back")
        self.push_back = PushBack(
            pusher, doorbell, self.fresh_read, health=self.push, on_written=self.heat
        )

    @property
    def last_push(self) -> PushResult | None:
        """What the latest push-back drain did."""
        return self.push_back.last_push

    @property
    def pushed(self) -> asyncio.Event:
        """Set after each push-back drain."""
        return self.push_back.pushed

    @property
    def read_to_write_s(self) -> list[float]:
        """The last 1,000 read-to-write lags of push-back."""
        return self.push_back.read_to_write_s

    @property
    def hot(self) -> bool:
        """Whether a page was written or edited within the last `hot_s` seconds."""
        return time.monotonic() < self._hot_until

    def heat(self) -> None:
        """Mark the calendar hot: edits in the next minute may reach us a minute late."""
        self._hot_until = time.monotonic() + self._hot_s

    name = "coordinator"

    async def _serve(self, stopping: asyncio.Event) -> None:
        self.ingest.started()
        self.push.started()
        try:
            await until_stopped(stopping, self._lead(stopping))
        finally:
            await self.push_back.stop()
            self.ingest.stopped()
            self.push.stopped()

    async def _lead(self, stop: asyncio.Event) -> None:
        """A first full read, then ingest, with push-back beside it."""
        await self._guarded(self._reconcile_all)
        await self._guarded(self._incremental_all)
        self.ready.set()
        self.push_back.start()
        await supervise(self.ingest, functools.partial(self._ingest_loop, stop))

    async def _ingest_loop(self, stop: asyncio.Event) -> None:
        # Started again after a failure: poll at once, the failure may have hidden edits.
        again = self.ingest.state == "failing"
        next_poll = time.monotonic() + (0.0 if again else self._poll_interval_s)
        next_reconcile = time.monotonic() + self._reconcile_interval_s
        follow_up: float | None = None
        while not stop.is_set():
            now = time.monotonic()
            due = min(next_poll, next_reconcile, follow_up or next_poll)
            if self.hot:
                due = min(due, self._next_hot_read())
            rings = await self._wait(stop, max(0.0, due - now))
            if stop.is_set():
                return
            now = time.monotonic()
            if rings.ingest:
                self.heat()
            if rings.pages_to_fetch:
                await self._guarded(functools.partial(self._fetch, rings))
            if rings.needs_read_after(self._covered_until):
                if rings.needs_read_after(self._recent_covered()):
                    await self._guarded(self._recent_all)
                follow_up = follow_up or time.monotonic() + FOLLOW_UP_POLL_S
            if now >= next_poll:
                await self._guarded(self._incremental_all)
                next_poll = time.monotonic() + self._poll_interval_s
                follow_up = None
            elif follow_up is not None and now >= follow_up:
                await self._guarded(self._follow_up_all)
                follow_up = None
            elif rings.ingest and not rings.needs_read_after(self._covered_until):
                await self._mark_covered()
            if now >= next_reconcile:
                await self._guarded(self._reconcile_all)
                next_reconcile = time.monotonic() + self._reconcile_interval_s
            if self.hot and time.monotonic() >= self._next_hot_read():
                await self._guarded(self._recent_all)

    def _recent_covered(self) -> datetime | None:
        """Status edits before this moment were seen by a recent read of every data source."""
        if any(source not in self._recent for source in self._by_source):
            return None
        return min(wall for _, wall in self._recent.values()) - CLOCK_SKEW

    def _next_hot_read(self) -> float:
        """When the next recent read is due while hot (the oldest data source's)."""
        started = [self._recent.get(s, (0.0, None))[0] for s in self._by_source]
        return min(started, default=0.0) + self._hot_poll_interval_s

    async def fresh_read(self, data_source_id: str) -> float:
        """The monotonic start of a recent read of a data source begun after this call.

        A read begun earlier may have missed an edit made just before the task change
        the pusher is about to write, so none is reused. Its reactions are committed
        when this returns, so the pusher sees their effects.
        """
        poller = self._by_source.get(data_source_id)
        if poller is None:
            return time.monotonic()
        async with self._read_lock:
            return await self._recent_one(poller)

    async def _wait(self, stop: asyncio.Event, max_wait_s: float) -> Rings:
        stopper = asyncio.create_task(stop.wait())
        ringer = asyncio.create_task(self._doorbell.wait(max_wait_s))
        try:
            await asyncio.wait({stopper, ringer}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            stopper.cancel()
            if not ringer.done():
                ringer.cancel()  # also when this wait itself is cancelled
        if ringer.done() and not ringer.cancelled():
            return ringer.result()
        return Rings()

    async def _guarded(self, action: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """Run one ingest pass; any failure is logged, counted and backed off, then the loop
        goes on (the pass runs again on its next turn)."""

        name = getattr(getattr(action, "func", action), "__name__", "pass").lstrip("_")
        await attempt(self.ingest, action, during=name)

    def _log(self, result: PassResult, source: str) -> None:
        self.passes += 1
        outcomes = {k: v for k, v in result.summary.outcomes.items() if v}
        if outcomes.keys() - {"unchanged", "ignored"}:
            self.heat()
        level = log.debug if result.kind == "recent" and not outcomes else log.info
        level(
            f"{result.kind} pass",
            data_source_id=source,
            pages=result.pages,
            queries=result.queries,
            **outcomes,
        )

    async def _read(
        self, action: Callable[[], Awaitable[None]], *, covers_all: bool = True
    ) -> None:
        """Run a read under the read lock; a read of every edit marks the events it covered."""
        engine = self._engine if covers_all else None
        async with self._read_lock:
            upto = await inbox_high_water(engine) if engine is not None else 0
            await action()
        if engine is not None and await mark_applied(engine, upto):
            self._doorbell.ring(ingest=False, push=True)

    async def _incremental_all(self) -> None:
        """Read every data source's changes; edits before the start are then covered."""
        started = datetime.now(UTC)

        async def read() -> None:
            for poller in self._pollers:
                with correlation(source="poll"):
                    self._log(await poller.incremental(), poller.data_source_id)

        await self._read(read)
        self._covered_until = started - CLOCK_SKEW
        self.last_poll_ok_at = datetime.now(UTC)

    async def _follow_up_all(self) -> None:
        """After a ring's recent read: the other pages edited since the last poll.

        With the recent reads, every edit before the first of them began is covered.
        """
        covered = self._recent_covered()

        async def read() -> None:
            for poller in self._pollers:
                with correlation(source="follow-up"):
                    self._log(await poller.incremental(others_only=True), poller.data_source_id)

        upto = self._recent_upto
        await self._read(read, covers_all=False)
        if covered is not None and (self._covered_until is None or covered > self._covered_until):
            self._covered_until = covered
            await self._mark_covered()
        if self._engine is not None and await mark_applied(self._engine, upto):
            self._doorbell.ring(ingest=False, push=True)
        self.last_poll_ok_at = datetime.now(UTC)

    async def _mark_covered(self) -> None:
        """Events for edits an earlier read already covered need no read of their own."""
        if self._engine is None or self._covered_until is None:
            return
        if await mark_applied_before(self._engine, self._covered_until):
            self._doorbell.ring(ingest=False, push=True)

    async def _recent_all(self) -> None:
        async with self._read_lock:
            if self._engine is not None:
                self._recent_upto = await inbox_high_water(self._engine)
            for poller in self._pollers:
                await self._recent_one(poller)
        self.last_poll_ok_at = datetime.now(UTC)

    async def _recent_one(self, poller: Poller) -> float:
        """One recent read of a data source (the read lock is held by the caller)."""
        source = poller.data_source_id
        held = self._recent.get(source)
        since = held[1] if held is not None else datetime.now(UTC) - timedelta(seconds=60)
        started, wall = time.monotonic(), datetime.now(UTC)
        with correlation(source="recent"):
            self._log(await poller.recent(since - RECENT_OVERLAP), source)
        self._recent[source] = (started, wall)
        return started

    async def _reconcile_all(self) -> None:
        async def read() -> None:
            for poller in self._pollers:
                with correlation(source="reconcile"):
                    self._log(await poller.reconcile(), poller.data_source_id)

        await self._read(read, covers_all=False)
        self.last_poll_ok_at = datetime.now(UTC)
        if self._engine is not None and (pruned := await prune_inbox(self._engine)):
            log.info("old webhook events deleted from the inbox", events=pruned)

    async def _fetch(self, rings: Rings) -> None:
        pages = sorted(rings.pages_to_fetch)

        async def read() -> None:
            for poller in self._pollers[:1]:
                with correlation(source="fetch"):
                    self._log(await poller.fetch_pages(pages), poller.data_source_id)

        await self._read(read)


class PushBack(BackgroundService):
    """Push-back while this process leads: drains the outbox whenever the doorbell rings
    for it (or every `PUSH_IDLE_S`), each page written within the pusher's window of a
    fresh read (`fresh_read`). `pushed` is set after each drain (clear it, then wait, to
    see the next); `last_push` is what the latest did; `read_to_write_s` keeps the last
    1,000 read-to-write lags. Stopping cuts a drain short: what it had not written stays
    in the outbox."""

    name = "push-back"

    def __init__(
        self,
        pusher: Pusher,
        doorbell: Doorbell,
        fresh_read: Callable[[str], Awaitable[float]],
        *,
        health: LoopHealth,
        on_written: Callable[[], None],
    ) -> None:
        super().__init__()
        self._pusher = pusher
        self._doorbell = doorbell
        self._fresh_read = fresh_read
        self._on_written = on_written
        self.health = health
        self.last_push: PushResult | None = None
        self.pushed = asyncio.Event()
        self.read_to_write_s: list[float] = []

    async def _serve(self, stopping: asyncio.Event) -> None:
        self.health.started()
        try:
            await until_stopped(stopping, supervise(self.health, self._loop))
        finally:
            self.health.stopped()

    async def _loop(self) -> None:
        while True:
            if not await self._round():
                await self._doorbell.wait_push(PUSH_IDLE_S)

    async def _round(self) -> bool:
        """Drain one batch of the outbox; whether it wrote or settled any page."""
        if not await self._pusher.pending_pages():
            self.health.ok()
            return False
        try:
            with correlation(source="push"):
                result = await self._pusher.push_pending(self._fresh_read)
        except NotionError as exc:
            self.health.failed(exc)
            log.warning(
                "push-back failed; retrying on the next turn",
                error=describe_error(exc),
                failures=self.health.failures,
            )
            await asyncio.sleep(max(1.0, self.health.backoff_s()))
            return False
        self.health.ok()
        self.read_to_write_s = (self.read_to_write_s + result.read_to_write_s)[-1000:]
        self.last_push = result
        self.pushed.set()
        if result.pages_written:
            self._on_written()
        if result.pages_written or result.pages_missing or result.failures:
            log.info(
                "push-back pass",
                written=result.pages_written,
                unchanged=result.pages_unchanged,
                held=result.pages_held,
                reads=result.reads,
                failures=result.failures,
                longest_read_to_write_s=round(max(result.read_to_write_s, default=0.0), 3),
            )
        if result.paused:
            await asyncio.sleep(1.0)
            return False
        return bool(result.pages_written or result.pages_unchanged or result.pages_missing)
