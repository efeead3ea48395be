"""Push-back: drain the outbox to Notion, only what changed, several pages in flight at once.

Outbox rows only say "this page may be behind"; the pusher writes the task's
current Status, Error Log and YouTube URL wherever they differ from what Notion
showed at our last look, so the latest state wins and nothing is written twice.

Notion has no conditional write, so the only guard against overwriting a creator's
edit is to read just before writing. Each cycle asks for a fresh read of the data
source (`FreshRead`, run by the coordinator: its reactions land before the pusher
looks at the tasks), then sends only as many writes as the rate limiter can send
within `window_s` of that read's start, up to `concurrency` at a time. A page with a
webhook event not yet taken in by ingest is held back until a read has covered it.
With a window budget (spendable at any pace) cycles overlap: the next read starts as
soon as the last write a read allows has left, while earlier writes are still on the
wire, so the budget goes out in one burst. Under plain pacing the next read waits until
each of the cycle's writes has left, since a read started before would take a token they
wait for.

Each write holds its page in `PageWrites` from before it leaves until its outcome is
stored, so ingest leaves out reads of the page begun meanwhile. A task that moved while
its write was on the way (the write carried the old state) gets a new outbox row.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Delete, cast, delete, func, select, text, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reelqueue.calendar import CalendarSchema
from reelqueue.db.models import OUTBOX, TASKS
from reelqueue.db.retry import run_in_transaction
from reelqueue.notion import (
    NotionAPIError,
    NotionClient,
    NotionNotFound,
    NotionRateLimited,
    NotionSendExpired,
    NotionUnavailable,
    PageWrites,
    Priority,
    build_date,
    build_rich_text,
    build_status,
    build_url,
)
from reelqueue.queue import (
    TaskChange,
    TaskRecord,
    fields_to_write,
    load_tasks_by_page,
    mark_missing,
    page_fields,
    record_changes,
)
from reelqueue.statuses import StatusTable

__all__ = [
    "HELD_EVENT_TYPES",
    "INGEST_HEADROOM",
    "INGEST_RESERVE",
    "FreshRead",
    "PushResult",
    "Pusher",
    "changed_fields",
]

log = structlog.get_logger(__name__)


# Returns the monotonic start time of a completed read of the data source whose
# reactions are already committed.
FreshRead = Callable[[str], Awaitable[float]]

# The share of a window budget push-back leaves to ingest's reads, and the part of the
# budget kept free for them at any moment, whatever ingest has already spent.
INGEST_RESERVE = 0.2
INGEST_HEADROOM = 0.1

HELD_EVENT_TYPES = ("page.created", "page.properties_updated", "page.moved", "page.undeleted")

# Inbox events of a page that a read has not yet taken in, not written by our bot alone.
_UNAPPLIED = """
    SELECT DISTINCT replace(lower(w.entity_id), '-', '') AS page
    FROM webhook_inbox w
    WHERE w.processed_at IS NULL
      AND w.entity_id IS NOT NULL
      AND w.event_type = ANY(CAST(:types AS text[]))
      AND NOT (
        jsonb_typeof(w.payload -> 'authors') = 'array'
        AND jsonb_array_length(w.payload -> 'authors') > 0
        AND NOT EXISTS (
          SELECT 1 FROM jsonb_array_elements(w.payload -> 'authors') a
          WHERE replace(lower(a ->> 'id'), '-', '') IS DISTINCT FROM :bot
        )
      )
"""

_PENDING = text(
    f"""
    WITH pending AS (
      SELECT notion_page_id, max(id) AS upto, min(id) AS first
      FROM outbox WHERE sent_at IS NULL GROUP BY notion_page_id
    ), held AS ({_UNAPPLIED})
    SELECT p.notion_page_id, p.upto, (h.page IS NOT NULL) AS held
    FROM pending p LEFT JOIN held h ON h.page = replace(p.notion_page_id, '-', '')
    ORDER BY (h.page IS NOT NULL), p.first
    LIMIT :batch
    """
)

_HELD = text(
    f"""
    WITH held AS ({_UNAPPLIED})
    SELECT page FROM held WHERE page = ANY(CAST(:pages AS text[]))
    """
)


@dataclass
class PushResult:
    """What one drain of the outbox did.

    `read_to_write_s` holds, per write, the seconds from the start of the read it
    relied on to the moment it was handed to the client (never more than `window_s`).
    """

    pages_written: int = 0
    pages_unchanged: int = 0
    pages_missing: int = 0
    pages_held: int = 0
    failures: int = 0
    reads: int = 0
    paused: bool = False
    properties_written: dict[str, int] = field(default_factory=dict)
    read_to_write_s: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class _Pending:
    page_id: str
    upto: int


def changed_fields(task: TaskRecord, table: StatusTable) -> dict[str, Any]:
    """The page fields that differ from what Notion showed at our last look."""
    desired = page_fields(table, task.status, task.error_log, task.youtube_url)
    return fields_to_write(desired, task.notion_seen)


def _bare(page_id: str) -> str:
    return page_id.replace("-", "").lower()


class Pusher:
    """Writes tasks' states to their Notion pages through the shared rate limiter."""

    def __init__(
        self,
        engine: AsyncEngine,
        notion: NotionClient,
        schemas: Mapping[str, CalendarSchema],
        table: StatusTable,
        *,
        batch: int = 100,
        max_attempts: int = 5,
        concurrency: int = 8,
        window_s: float = 1.7,
        bot_user_id: str | None = None,
        page_writes: PageWrites | None = None,
    ) -> None:
        self._engine = engine
        self._notion = notion
        self._schemas = schemas
        self._table = table
        self._batch = batch
        self._max_attempts = max_attempts
        self._concurrency = concurrency
        self._window_s = window_s
        self._bot = _bare(bot_user_id) if bot_user_id else ""
        self._writes = page_writes or PageWrites()

    @property
    def window_s(self) -> float:
        """Longest time from a read's start to a write that relies on it."""
        return self._window_s

    async def pending_pages(self) -> int:
        """How many pages have outbox rows waiting."""
        async with self._engine.connect() as conn:
            count = await conn.scalar(
                select(func.count(func.distinct(OUTBOX.c.notion_page_id))).where(
                    OUTBOX.c.sent_at.is_(None)
                )
            )
        return int(count or 0)

    async def push_pending(self, fresh_read: FreshRead | None = None) -> PushResult:
        """Drain up to one batch of pages; each write relies on a read started just before.

        Without `fresh_read` the pusher relies on the caller's last read (tests, tools).
        Transient failures pause the drain; the rows stay for the next one.
        """
        result = PushResult()
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    _PENDING,
                    {"types": list(HELD_EVENT_TYPES), "bot": self._bot, "batch": self._batch},
                )
            ).all()
            tasks = await load_tasks_by_page(conn, (r.notion_page_id for r in rows))
        queues: dict[str, deque[_Pending]] = {}
        for row in rows:
            if row.held:
                result.pages_held += 1
                continue
            task = tasks.get(row.notion_page_id)
            if task is None or task.page_missing is not None:
                await self._done(row.notion_page_id, row.upto)
                continue
            schema = self._schemas.get(task.data_source_id)
            if schema is not None and schema.lacks(changed_fields(task, self._table)):
                # The property was removed or retyped in Notion: the write waits for the fix.
                result.pages_held += 1
                continue
            queues.setdefault(task.data_source_id, deque()).append(
                _Pending(row.notion_page_id, row.upto)
            )
        in_flight: list[asyncio.Task[None]] = []
        slots = asyncio.Semaphore(self._concurrency)
        try:
            for source, queue in queues.items():
                while queue and not result.paused:
                    await self._cycle(source, queue, fresh_read, result, slots, in_flight)
        finally:
            if in_flight:
                await asyncio.gather(*in_flight)
        return result

    async def _cycle(
        self,
        source: str,
        queue: deque[_Pending],
        fresh_read: FreshRead | None,
        result: PushResult,
        slots: asyncio.Semaphore,
        in_flight: list[asyncio.Task[None]],
    ) -> None:
        """One fresh read, then launch the writes that fit in the window after it."""
        if self._room(time.monotonic()) < 1:
            queue.clear()
            result.paused = True
            return
        if fresh_read is not None:
            read_at = await fresh_read(source)
            result.reads += 1
        else:
            read_at = time.monotonic()
        pending = list(queue)
        queue.clear()
        pages = [p.page_id for p in pending]
        async with self._engine.connect() as conn:
            tasks = await load_tasks_by_page(conn, pages)
            held = await self._held(conn, pages)
        writes: list[tuple[_Pending, TaskRecord, dict[str, Any]]] = []
        schema = self._schemas.get(source)
        for item in pending:
            task = tasks.get(item.page_id)
            if _bare(item.page_id) in held:
                result.pages_held += 1
                continue
            if task is None or task.page_missing is not None:
                await self._done(item.page_id, item.upto)
                continue
            changes = changed_fields(task, self._table)
            if not changes or schema is None:
                result.pages_unchanged += 1
                await self._done(item.page_id, item.upto)
                continue
            writes.append((item, task, changes))
        room = self._room(read_at)
        launched: list[asyncio.Task[None]] = []
        left: list[asyncio.Event] = []
        for index, (item, task, changes) in enumerate(writes):
            await slots.acquire()
            lag = time.monotonic() - read_at
            if index >= room or lag > self._window_s or result.paused:
                slots.release()
                queue.extend(w[0] for w in writes[index:])
                break
            result.read_to_write_s.append(lag)
            assert schema is not None
            left.append(asyncio.Event())
            write = self._write(item, task, changes, schema, result, read_at, left[-1])
            launched.append(asyncio.create_task(_released(write, slots, left[-1])))
        in_flight.extend(launched)
        if launched and self._notion.rate_limit_status().budget is None:
            # Paced writes wait for their tokens: a read started before they have all left
            # would take one of them. Once they have, the next read may start.
            await asyncio.gather(*(event.wait() for event in left))

    def _room(self, read_at: float) -> int:
        """How many writes the limiter can send before `window_s` after the read has passed.

        None while Notion holds us back after a 429; within a window budget, push-back
        spends at most its share (all but `INGEST_RESERVE`) and always leaves
        `INGEST_HEADROOM` of the budget free, so a creator's edit never waits a window out.
        """
        status = self._notion.rate_limit_status()
        if status.is_limited:
            return 0
        left = self._window_s - (time.monotonic() - read_at)
        if left <= 0:
            return 0
        limiter = self._notion.limiter
        tokens = limiter.available() - limiter.waiting + limiter.rate * left
        room = max(1, math.floor(tokens))
        if status.budget is not None:
            # Push-back's own share of the window, less what ingest may still need of it.
            share = math.floor(status.budget * (1 - INGEST_RESERVE))
            headroom = math.ceil(status.budget * INGEST_HEADROOM)
            spare = min(
                share - status.push_requests_this_window,
                status.budget - status.requests_this_window - headroom,
            )
            room = min(room, max(0, spare))
        return room

    async def _held(self, conn: AsyncConnection, pages: Collection[str]) -> set[str]:
        """Pages (bare ids) with webhook events that no read has taken in yet."""
        if not pages:
            return set()
        found = await conn.scalars(
            _HELD,
            {
                "types": list(HELD_EVENT_TYPES),
                "bot": self._bot,
                "pages": [_bare(p) for p in pages],
            },
        )
        return set(found.all())

    async def _write(
        self,
        item: _Pending,
        task: TaskRecord,
        changes: dict[str, Any],
        schema: CalendarSchema,
        result: PushResult,
        read_at: float,
        left: asyncio.Event,
    ) -> None:
        with self._writes.writing(item.page_id):
            page_id, upto = item.page_id, item.upto
            properties = self._properties(schema, changes)
            try:
                await self._notion.update_page(
                    page_id,
                    schema.by_id(properties),
                    priority=Priority.PUSH,
                    send_by=read_at + self._window_s,
                    leaving=left.set,
                )
            except NotionSendExpired:
                # It waited past its read's window (a hold, a retry): the next cycle reads again.
                return
            except NotionNotFound:
                async with self._engine.begin() as conn:
                    result.pages_missing += await mark_missing(
                        conn, {page_id: "unshared"}, self._table
                    )
                await self._done(page_id, upto)
                return
            except (NotionUnavailable, NotionRateLimited) as exc:
                log.warning(
                    "push-back paused: Notion is unavailable",
                    notion_page_id=page_id,
                    error=str(exc),
                )
                result.failures += 1
                result.paused = True
                return
            except NotionAPIError as exc:
                await self._failed(page_id, upto, exc)
                result.failures += 1
                return

            async def record(conn: AsyncConnection) -> None:
                await conn.execute(
                    update(TASKS)
                    .where(TASKS.c.id == task.id)
                    .values(notion_seen=TASKS.c.notion_seen.op("||")(_jsonb(changes)))
                )
                await conn.execute(_sent(page_id, upto))
                now = (await load_tasks_by_page(conn, [page_id])).get(page_id)
                if (
                    now is not None
                    and now.page_missing is None
                    and changed_fields(now, self._table)
                ):
                    # The task moved while the write was on its way: the page is behind again.
                    await record_changes(conn, [_behind(now)], self._table)

            await run_in_transaction(self._engine, record, what="page written")
            result.pages_written += 1
            for name in properties:
                result.properties_written[name] = result.properties_written.get(name, 0) + 1
            log.info(
                "page updated", notion_page_id=page_id, task_id=task.id, fields=sorted(changes)
            )

    def _properties(self, schema: CalendarSchema, changes: Mapping[str, Any]) -> dict[str, Any]:
        names = schema.names
        properties: dict[str, Any] = {}
        if "status" in changes:
            properties[names.status] = build_status(schema.status_type, changes["status"])
        if "error_log" in changes:
            properties[names.error_log] = build_rich_text(changes["error_log"])
        if "youtube_url" in changes:
            properties[names.youtube_url] = build_url(changes["youtube_url"])
        if schema.has(names.updated):
            properties[names.updated] = build_date(datetime.now(UTC))
        return properties

    async def _done(self, page_id: str, upto: int) -> None:
        async def drop(conn: AsyncConnection) -> None:
            await conn.execute(_sent(page_id, upto))

        await run_in_transaction(self._engine, drop, what="outbox rows dropped")

    async def _failed(self, page_id: str, upto: int, error: NotionAPIError) -> None:
        pending = (OUTBOX.c.notion_page_id == page_id) & (OUTBOX.c.id <= upto)
        async with self._engine.begin() as conn:
            counts = (
                await conn.scalars(
                    update(OUTBOX)
                    .where(pending, OUTBOX.c.sent_at.is_(None))
                    .values(attempts=OUTBOX.c.attempts + 1, last_error=str(error))
                    .returning(OUTBOX.c.attempts)
                )
            ).all()
            attempts = max(counts, default=0)
            if attempts >= self._max_attempts:
                await conn.execute(update(OUTBOX).where(pending).values(sent_at=func.now()))
                log.error(
                    "push-back gave up on a page",
                    notion_page_id=page_id,
                    attempts=attempts,
                    error=str(error),
                )
            else:
                log.warning("push-back failed", notion_page_id=page_id, error=str(error))


async def _released(write: Awaitable[None], slots: asyncio.Semaphore, left: asyncio.Event) -> None:
    """Run one write and give its slot back; `left` is set at the latest when it ends."""
    try:
        await write
    finally:
        left.set()
        slots.release()


def _behind(task: TaskRecord) -> TaskChange:
    """An outbox row (and a wake-up) for a page that no longer shows its task."""
    return TaskChange(
        task_id=task.id,
        notion_page_id=task.notion_page_id,
        from_status=task.status,
        to_status=task.status,
        actor="push-back",
        push=True,
    )


def _sent(page_id: str, upto: int) -> Delete:
    """Drop a page's outbox rows up to the newest one this push covered."""
    return delete(OUTBOX).where(OUTBOX.c.notion_page_id == page_id, OUTBOX.c.id <= upto)


def _jsonb(values: Mapping[str, Any]) -> Any:
    return cast(dict(values), JSONB)
