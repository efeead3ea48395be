"""Push-back: drain the outbox to Notion, one PATCH per page, only what changed.

Outbox rows only say "this page may be behind"; the pusher writes the task's
current Status, Error Log and YouTube URL wherever they differ from what Notion
showed at our last look, so the latest state wins and nothing is written twice.
It runs right after an ingest pass, so a change the creator made meanwhile has
already been taken in (and has changed the task) instead of being overwritten.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from sqlalchemy import Delete, cast, delete, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.calendar import CalendarSchema
from reelqueue.db.models import OUTBOX, TASKS
from reelqueue.notion import (
    NotionAPIError,
    NotionClient,
    NotionNotFound,
    NotionRateLimited,
    NotionUnavailable,
    Priority,
    build_date,
    build_rich_text,
    build_status,
    build_url,
)
from reelqueue.queue import (
    TaskRecord,
    fields_to_write,
    load_tasks_by_page,
    mark_missing,
    page_fields,
)
from reelqueue.statuses import StatusTable

__all__ = ["PushResult", "Pusher", "changed_fields"]

log = structlog.get_logger(__name__)

_outbox = OUTBOX
_tasks = TASKS


@dataclass
class PushResult:
    """What one drain of the outbox did."""

    pages_written: int = 0
    pages_unchanged: int = 0
    pages_missing: int = 0
    failures: int = 0
    properties_written: dict[str, int] = field(default_factory=dict)


def changed_fields(task: TaskRecord, table: StatusTable) -> dict[str, Any]:
    """The page fields that differ from what Notion showed at our last look."""
    desired = page_fields(table, task.status, task.error_log, task.youtube_url)
    return fields_to_write(desired, task.notion_seen)


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
    ) -> None:
        self._engine = engine
        self._notion = notion
        self._schemas = schemas
        self._table = table
        self._batch = batch
        self._max_attempts = max_attempts

    async def pending_pages(self) -> int:
        """How many pages have outbox rows waiting."""
        async with self._engine.connect() as conn:
            count = await conn.scalar(
                select(func.count(func.distinct(_outbox.c.notion_page_id))).where(
                    _outbox.c.sent_at.is_(None)
                )
            )
        return int(count or 0)

    async def push_pending(self) -> PushResult:
        """Drain up to one batch of pages from the outbox; transient failures wait."""
        result = PushResult()
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(_outbox.c.notion_page_id, func.max(_outbox.c.id).label("upto"))
                    .where(_outbox.c.sent_at.is_(None))
                    .group_by(_outbox.c.notion_page_id)
                    .order_by(func.min(_outbox.c.id))
                    .limit(self._batch)
                )
            ).all()
            tasks = await load_tasks_by_page(conn, (r.notion_page_id for r in rows))
        for row in rows:
            task = tasks.get(row.notion_page_id)
            try:
                await self._push_one(row.notion_page_id, row.upto, task, result)
            except (NotionUnavailable, NotionRateLimited) as exc:
                log.warning(
                    "push-back paused: Notion is unavailable",
                    notion_page_id=row.notion_page_id,
                    error=str(exc),
                )
                result.failures += 1
                break
        return result

    async def _push_one(
        self, page_id: str, upto: int, task: TaskRecord | None, result: PushResult
    ) -> None:
        if task is None or task.page_missing is not None:
            await self._done(page_id, upto)
            return
        changes = changed_fields(task, self._table)
        schema = self._schemas.get(task.data_source_id)
        if not changes or schema is None:
            result.pages_unchanged += 1
            await self._done(page_id, upto)
            return
        properties = self._properties(schema, changes)
        try:
            await self._notion.update_page(page_id, properties, priority=Priority.PUSH)
        except NotionNotFound:
            async with self._engine.begin() as conn:
                result.pages_missing += await mark_missing(conn, {page_id: "unshared"})
            await self._done(page_id, upto)
            return
        except NotionAPIError as exc:
            if isinstance(exc, NotionUnavailable | NotionRateLimited):
                raise
            await self._failed(page_id, upto, exc)
            result.failures += 1
            return
        async with self._engine.begin() as conn:
            await conn.execute(
                update(_tasks)
                .where(_tasks.c.id == task.id)
                .values(notion_seen=_tasks.c.notion_seen.op("||")(_jsonb(changes)))
            )
            await conn.execute(_sent(page_id, upto))
        result.pages_written += 1
        for name in properties:
            result.properties_written[name] = result.properties_written.get(name, 0) + 1
        log.info("page updated", notion_page_id=page_id, task_id=task.id, fields=sorted(changes))

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
        async with self._engine.begin() as conn:
            await conn.execute(_sent(page_id, upto))

    async def _failed(self, page_id: str, upto: int, error: NotionAPIError) -> None:
        pending = (_outbox.c.notion_page_id == page_id) & (_outbox.c.id <= upto)
        async with self._engine.begin() as conn:
            counts = (
                await conn.scalars(
                    update(_outbox)
                    .where(pending, _outbox.c.sent_at.is_(None))
                    .values(attempts=_outbox.c.attempts + 1, last_error=str(error))
                    .returning(_outbox.c.attempts)
                )
            ).all()
            attempts = max(counts, default=0)
            if attempts >= self._max_attempts:
                await conn.execute(update(_outbox).where(pending).values(sent_at=func.now()))
                log.error(
                    "push-back gave up on a page",
                    notion_page_id=page_id,
                    attempts=attempts,
                    error=str(error),
                )
            else:
                log.warning("push-back failed", notion_page_id=page_id, error=str(error))


def _sent(page_id: str, upto: int) -> Delete:
    """Drop a page's outbox rows up to the newest one this push covered."""
    return delete(_outbox).where(_outbox.c.notion_page_id == page_id, _outbox.c.id <= upto)


def _jsonb(values: Mapping[str, Any]) -> Any:
    return cast(dict(values), JSONB)
