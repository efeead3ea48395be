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

from reelqueue.db.models import RUNNABLE_STATUSES, TASKS
from reelqueue.queue.page_view import fields_to_write, page_fields
from reelqueue.statuses import Kind, StatusTable

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

_RUNNING = frozenset(StatusTable().statuses_of(Kind.RUNNING))
_tasks = TASKS


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


_COLUMNS = [_tasks.c[name] for name in TaskRecord.__dataclass_fields__]


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
    query = select(*_COLUMNS).where(_tasks.c.notion_page_id.in_(ids)).order_by(_tasks.c.id)
    if lock:
        query = query.with_for_update()
    rows = (await conn.execute(query)).all()
    return {row.notion_page_id: TaskRecord.from_row(row) for row in rows}


async def load_tasks(
    conn: AsyncConnection, *, status: str | None = None, limit: int | None = None
) -> list[TaskRecord]:
    """Tasks in id order, optionally of one status."""
    query = select(*_COLUMNS).order_by(_tasks.c.id)
    if status is not None:
        query = query.where(_tasks.c.status == status)
    if limit is not None:
        query = query.limit(limit)
    return [TaskRecord.from_row(row) for row in (await conn.execute(query)).all()]


_INSERT_TASKS = text(
    """
    INSERT INTO tasks (notion_page_id, data_source_id, channel, title, topic, story_direction,
                       priority, status, notion_seen, error_log)
    SELECT u.page, u.source, u.channel, u.title, u.topic, u.story, u.priority, u.status,
           CAST(u.seen AS jsonb), u.error_log
    FROM unnest(CAST(:pages AS text[]), CAST(:sources AS text[]), CAST(:channels AS text[]),
                CAST(:titles AS text[]), CAST(:topics AS text[]), CAST(:stories AS text[]),
                CAST(:priorities AS smallint[]), CAST(:statuses AS text[]),
                CAST(:seen AS text[]), CAST(:error_logs AS text[]))
         AS u(page, source, channel, title, topic, story, priority, status, seen, error_log)
    ON CONFLICT (notion_page_id) DO NOTHING
    RETURNING *
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
    """Insert tasks in one statement (arrays, however many), skipping pages that have one.

    Returns the tasks actually created, each with its first history row, and an
    outbox row where the page does not already show what the task says.
    """
    if not new:
        return []
    columns = _arrays(
        new,
        pages="notion_page_id",
        sources="data_source_id",
        channels="channel",
        titles="title",
        topics="topic",
        stories="story_direction",
        priorities="priority",
        statuses="status",
        error_logs="error_log",
    )
    columns["seen"] = [json.dumps(task.notion_seen) for task in new]
    rows = await conn.execute(_INSERT_TASKS, columns)
    created = [TaskRecord.from_mapping(dict(row)) for row in rows.mappings()]
    changes = [
        TaskChange(
            task_id=task.id,
            notion_page_id=task.notion_page_id,
            from_status=None,
            to_status=task.status,
            actor=actor,
            reason=reason,
            push=bool(
                fields_to_write(
                    page_fields(table, task.status, task.error_log, task.youtube_url),
                    task.notion_seen,
                )
            ),
        )
        for task in created
    ]
    await record_changes(conn, changes)
    return created


async def apply_changes(conn: AsyncConnection, changes: Sequence[TaskChange]) -> None:
    """Apply changes to existing tasks, with their history and outbox rows.

    A task moved out of a running status gives up its lease, so its worker's next
    heartbeat finds the task gone and abandons the step.
    """
    for change in changes:
        values = dict(change.values)
        if change.to_status not in _RUNNING:
            values.setdefault("locked_by", None)
            values.setdefault("lease_expires_at", None)
        await conn.execute(
            update(_tasks)
            .where(_tasks.c.id == change.task_id)
            .values(
                status=change.to_status,
                updated_at=func.now(),
                version=_tasks.c.version + 1,
                **values,
            )
        )
    await record_changes(conn, changes)


async def record_changes(conn: AsyncConnection, changes: Sequence[TaskChange]) -> None:
    """Write the history and outbox rows of changes already made to the task rows.

    One statement, whatever the number of changes. Notion-visible changes wake
    push-back, and a task that became runnable wakes the workers (NOTIFY, at commit).
    """
    moves = [c for c in changes if c.from_status != c.to_status]
    pushes = [c for c in changes if c.push]
    channels = [OUTBOX_CHANNEL] if pushes else []
    if any(c.to_status in RUNNABLE_STATUSES for c in moves):
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
