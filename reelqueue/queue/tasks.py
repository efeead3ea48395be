"""Task rows: read them, insert a batch in one statement, and change them with history.

Every status change writes its `task_events` row, and a task whose Notion-visible
fields changed gets an outbox row, in the caller's transaction.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.db.models import TASKS
from reelqueue.queue.page_view import fields_to_write, page_fields
from reelqueue.statuses import StatusTable

__all__ = [
    "OUTBOX_CHANNEL",
    "TASKS_CHANNEL",
    "NewTask",
    "TaskChange",
    "TaskRecord",
    "apply_changes",
    "insert_tasks",
    "load_tasks",
    "load_tasks_by_page",
    "record_changes",
]

OUTBOX_CHANNEL = "reelqueue_outbox"
TASKS_CHANNEL = "reelqueue_tasks"


@dataclass(frozen=True)
class TaskRecord:
    """A task as read from the database."""

    id: int
    notion_page_id: str
    data_source_id: str
    channel: str
    title: str
    topic: str
    story_direction: str
    priority: int
    status: str
    attempts: int
    error_log: str
    youtube_url: str | None
    resume_step: str | None
    notion_seen: dict[str, Any]
    step_attempts: int
    outputs: dict[str, Any]
    page_missing: str | None
    version: int
    updated_at: datetime

    @classmethod
    def from_row(cls, row: Any) -> TaskRecord:
        """Build from a SQLAlchemy row with at least the dataclass's columns."""
        return cls.from_mapping(row._mapping)

    @classmethod
    def from_mapping(cls, row: Mapping[str, Any]) -> TaskRecord:
        """Build from a mapping with at least the dataclass's columns."""
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})


_COLUMNS = [TASKS.c[name] for name in TaskRecord.__dataclass_fields__]


@dataclass(frozen=True)
class NewTask:
    """A task to create from a Notion page."""

    notion_page_id: str
    data_source_id: str
    channel: str
    title: str
    topic: str
    story_direction: str
    priority: int
    status: str
    notion_seen: dict[str, Any]
    error_log: str = ""


@dataclass(frozen=True)
class TaskChange:
    """One change to a task: a status move (or not), other columns, and why.

    `push` asks push-back to bring the page in line with the task (an outbox row);
    a change that only records what Notion already shows needs none.
    """

    task_id: int
    notion_page_id: str
    from_status: str | None
    to_status: str
    actor: str
    reason: str = ""
    values: Mapping[str, Any] = field(default_factory=dict)
    push: bool = True


async def load_tasks_by_page(
    conn: AsyncConnection, page_ids: Iterable[str], *, lock: bool = False
) -> dict[str, TaskRecord]:
    """The tasks of these pages, keyed by page id; `lock` holds them until commit."""
    ids = sorted(set(page_ids))
    if not ids:
        return {}
    query = select(*_COLUMNS).where(TASKS.c.notion_page_id.in_(ids)).order_by(TASKS.c.id)
    if lock:
        query = query.with_for_update()
    rows = (await conn.execute(query)).all()
    return {row.notion_page_id: TaskRecord.from_row(row) for row in rows}


async def load_tasks(
    conn: AsyncConnection, *, status: str | None = None, limit: int | None = None
) -> list[TaskRecord]:
    """Tasks in id order, optionally of one status."""
    query = select(*_COLUMNS).order_by(TASKS.c.id)
    if status is not None:
        query = query.where(TASKS.c.status == status)
    if limit is not None:
        query = query.limit(limit)
    return [TaskRecord.from_row(row) for row in (await conn.execute(query)).all()]


_INSERT_TASKS = text(
    """
    WITH created AS (
        INSERT INTO tasks (notion_page_id, data_source_id, channel, title, topic, story_direction,
                           priority, status, error_log, notion_seen)
        SELECT r.task ->> 0, r.task ->> 1, r.task ->> 2, r.task ->> 3, r.task ->> 4, r.task ->> 5,
               CAST(r.task ->> 6 AS smallint), r.task ->> 7, r.task ->> 8, r.task -> 9
        FROM jsonb_array_elements(CAST(:tasks AS jsonb)) AS r(task)
        ON CONFLICT (notion_page_id) DO NOTHING
        RETURNING id, notion_page_id, status, updated_at
    ), events AS (
        INSERT INTO task_events (task_id, from_status, to_status, actor, reason)
        SELECT c.id, NULL, c.status, CAST(:actor AS text), CAST(:reason AS text)
        FROM created AS c
        ORDER BY c.id
    ), pushes AS (
        INSERT INTO outbox (task_id, notion_page_id, properties)
        SELECT c.id, c.notion_page_id, jsonb_build_object('status', c.status)
        FROM created AS c
        JOIN jsonb_array_elements_text(CAST(:push_pages AS jsonb)) AS p(page)
          ON p.page = c.notion_page_id
        ORDER BY c.id
        RETURNING 1
    ), woken AS (
        SELECT pg_notify(w.channel, '')
        FROM (SELECT CAST(:outbox_channel AS text) WHERE EXISTS (SELECT FROM pushes)
              UNION ALL
              SELECT CAST(:tasks_channel AS text)
              WHERE EXISTS (SELECT FROM created WHERE status = ANY(CAST(:runnable AS text[]))))
             AS w(channel)
    )
    SELECT c.id, c.notion_page_id, c.updated_at
    FROM created AS c
    -- Reading `woken` is what sends the NOTIFYs: a SELECT CTE nothing reads never runs.
    WHERE (SELECT count(*) FROM woken) >= 0
    ORDER BY c.id
    """
)

_RECORD = text(
    """
    WITH events AS (
        INSERT INTO task_events (task_id, from_status, to_status, actor, reason)
        SELECT * FROM unnest(CAST(:event_tasks AS bigint[]), CAST(:event_from AS text[]),
                             CAST(:event_to AS text[]), CAST(:event_actors AS text[]),
                             CAST(:event_reasons AS text[]))
    ), pushes AS (
        INSERT INTO outbox (task_id, notion_page_id, properties)
        SELECT u.task, u.page, jsonb_build_object('status', u.status)
        FROM unnest(CAST(:push_tasks AS bigint[]), CAST(:push_pages AS text[]),
                    CAST(:push_statuses AS text[])) AS u(task, page, status)
    )
    SELECT pg_notify(channel, '') FROM unnest(CAST(:channels AS text[])) AS channel
    """
)


def _arrays(items: Sequence[Any], **attributes: str) -> dict[str, list[Any]]:
    """Statement parameters as one array per attribute, for `unnest`."""
    return {name: [getattr(item, attr) for item in items] for name, attr in attributes.items()}


async def insert_tasks(
    conn: AsyncConnection,
    new: Sequence[NewTask],
    *,
    actor: str,
    table: StatusTable,
    reason: str = "",
) -> list[TaskRecord]:
    """Insert tasks, history and outbox rows in one statement, skipping pages that have a task.

    Returns the tasks actually created, in order. A task gets an outbox row where the
    page does not already show what it says, and wakes push-back and the workers as
    `record_changes` does. The rows go as one JSON document: asyncpg encodes big
    arrays element by element, and the server parses JSON faster than ten arrays.
    """
    batch: dict[str, NewTask] = {}
    for task in new:
        # Of a page's duplicates the first is inserted and the others conflict with it.
        batch.setdefault(task.notion_page_id, task)
    if not batch:
        return []
    document = json.dumps(
        [
            (
                task.notion_page_id,
                task.data_source_id,
                task.channel,
                task.title,
                task.topic,
                task.story_direction,
                task.priority,
                task.status,
                task.error_log,
                task.notion_seen,
            )
            for task in batch.values()
        ],
        ensure_ascii=False,
    )
    # A new task has no YouTube URL, so whether its page needs a write is known now.
    desired: dict[tuple[str, str], dict[str, Any]] = {}
    push_pages = []
    for task in batch.values():
        key = (task.status, task.error_log)
        if key not in desired:
            desired[key] = page_fields(table, task.status, task.error_log, None)
        if fields_to_write(desired[key], task.notion_seen):
            push_pages.append(task.notion_page_id)
    rows = await conn.execute(
        _INSERT_TASKS,
        {
            "tasks": document,
            "push_pages": json.dumps(push_pages, ensure_ascii=False),
            "actor": actor,
            "reason": reason,
            "outbox_channel": OUTBOX_CHANNEL,
            "tasks_channel": TASKS_CHANNEL,
            "runnable": list(table.runnable),
        },
    )
    # The rest of each row is what a new task starts with (the columns' defaults).
    return [
        TaskRecord(
            id=task_id,
            notion_page_id=page,
            data_source_id=task.data_source_id,
            channel=task.channel,
            title=task.title,
            topic=task.topic,
            story_direction=task.story_direction,
            priority=task.priority,
            status=task.status,
            attempts=0,
            error_log=task.error_log,
            youtube_url=None,
            resume_step=None,
            notion_seen=dict(task.notion_seen),
            step_attempts=0,
            outputs={},
            page_missing=None,
            version=1,
            updated_at=updated_at,
        )
        for task_id, page, updated_at in rows
        for task in (batch[page],)
    ]


async def apply_changes(
    conn: AsyncConnection, changes: Sequence[TaskChange], table: StatusTable
) -> None:
    """Apply changes to existing tasks, with their history and outbox rows.

    A task moved out of a running status gives up its lease, so its worker's next
    heartbeat finds the task gone and abandons the step.
    """
    for change in changes:
        values = dict(change.values)
        if change.to_status not in table.running:
            values.setdefault("locked_by", None)
            values.setdefault("lease_expires_at", None)
        await conn.execute(
            update(TASKS)
            .where(TASKS.c.id == change.task_id)
            .values(
                status=change.to_status,
                updated_at=func.now(),
                version=TASKS.c.version + 1,
                **values,
            )
        )
    await record_changes(conn, changes, table)


async def record_changes(
    conn: AsyncConnection, changes: Sequence[TaskChange], table: StatusTable
) -> None:
    """Write the history and outbox rows of changes already made to the task rows.

    One statement, whatever the number of changes. Notion-visible changes wake
    push-back, and a task that became runnable wakes the workers (NOTIFY, at commit).
    """
    moves = [c for c in changes if c.from_status != c.to_status]
    pushes = [c for c in changes if c.push]
    channels = [OUTBOX_CHANNEL] if pushes else []
    if any(c.to_status in table.runnable for c in moves):
        channels.append(TASKS_CHANNEL)
    if not moves and not pushes:
        return
    await conn.execute(
        _RECORD,
        _arrays(
            moves,
            event_tasks="task_id",
            event_from="from_status",
            event_to="to_status",
            event_actors="actor",
            event_reasons="reason",
        )
        | _arrays(
            pushes, push_tasks="task_id", push_pages="notion_page_id", push_statuses="to_status"
        )
        | {"channels": channels},
    )
