"""Task rows: read them, insert a batch in one statement, and change them with history.

Every status change writes its `task_events` row, and a task whose Notion-visible
fields changed gets an outbox row, in the caller's transaction.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.db.models import OUTBOX, RUNNABLE_STATUSES, TASK_EVENTS, TASKS
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
_events = TASK_EVENTS
_outbox = OUTBOX


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
        """Build from a row with at least the dataclass's columns."""
        return cls(**{name: getattr(row, name) for name in cls.__dataclass_fields__})

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


async def insert_tasks(
    conn: AsyncConnection,
    new: Sequence[NewTask],
    *,
    actor: str,
    table: StatusTable,
    reason: str = "",
) -> list[TaskRecord]:
    """Insert tasks in one statement, skipping pages that already have one.

    Returns the tasks actually created, each with its first history row, and an
    outbox row where the page does not already show what the task says.
    """
    if not new:
        return []
    statement = (
        pg_insert(_tasks)
        .values([vars(task) for task in new])
        .on_conflict_do_nothing(index_elements=["notion_page_id"])
        .returning(*_COLUMNS)
    )
    created = [TaskRecord.from_row(row) for row in (await conn.execute(statement)).all()]
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

    A task that became runnable wakes the workers (NOTIFY, delivered at commit).
    """
    moves = [c for c in changes if c.from_status != c.to_status]
    if moves:
        await conn.execute(
            insert(_events),
            [
                {
                    "task_id": c.task_id,
                    "from_status": c.from_status,
                    "to_status": c.to_status,
                    "actor": c.actor,
                    "reason": c.reason,
                }
                for c in moves
            ],
        )
    pushes = [c for c in changes if c.push]
    if pushes:
        await conn.execute(
            insert(_outbox),
            [
                {
                    "task_id": c.task_id,
                    "notion_page_id": c.notion_page_id,
                    "properties": {"status": c.to_status},
                }
                for c in pushes
            ],
        )
        await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": OUTBOX_CHANNEL})
    if any(c.to_status in RUNNABLE_STATUSES and c.from_status != c.to_status for c in changes):
        await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": TASKS_CHANNEL})
