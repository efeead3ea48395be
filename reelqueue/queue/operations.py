"""What a person does to tasks from the command line: retry, cancel, approve, read history.

Each change is a history row and an outbox row, so Notion shows it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.db.models import TASK_EVENTS, TASKS
from reelqueue.errors import UserError
from reelqueue.queue.missing import missing_reason
from reelqueue.queue.tasks import TaskChange, TaskRecord, apply_changes
from reelqueue.statuses import Kind, StatusTable

__all__ = ["TaskEventRecord", "approve_task", "cancel_task", "retry_task", "task_history"]

_UNLOCK: dict[str, Any] = {"locked_by": None, "lease_expires_at": None}


@dataclass(frozen=True)
class TaskEventRecord:
    """One line of a task's history."""

    from_status: str | None
    to_status: str
    actor: str
    reason: str
    created_at: datetime


async def _task(conn: AsyncConnection, task_id: int) -> TaskRecord:
    row = (await conn.execute(select(TASKS).where(TASKS.c.id == task_id).with_for_update())).first()
    if row is None:
        raise UserError(f"task {task_id} does not exist; `reelqueue tasks` lists them")
    return TaskRecord.from_row(row)


async def _move(
    conn: AsyncConnection,
    task: TaskRecord,
    to: str,
    reason: str,
    values: dict[str, Any],
    table: StatusTable,
) -> None:
    change = TaskChange(task.id, task.notion_page_id, task.status, to, "cli", reason, values)
    await apply_changes(conn, [change], table)


async def retry_task(conn: AsyncConnection, task_id: int, table: StatusTable) -> str:
    """Queue a task again; after an error it resumes at the failed step.

    A task whose page is missing is queued but waits until the page is back, and the
    answer says so: the operator would otherwise wait for a start that cannot come.
    """
    task = await _task(conn, task_id)
    info = table[task.status]
    if not table.is_requeueable(task.status):
        raise UserError(f"task {task_id} is {info.label}, still active; nothing to retry")
    resume = info.step if info.kind is Kind.ERROR else None
    values = {
        "resume_step": resume,
        "step_attempts": 0,
        "error_log": "",
        "run_after": text("now()"),
    }
    await _move(conn, task, "queued", "retried from the command line", values | _UNLOCK, table)
    if task.page_missing is not None:
        why = missing_reason(task.page_missing)
        return f"queued, but it starts only once its Notion page is back ({why})"
    return "queued"


async def cancel_task(conn: AsyncConnection, task_id: int, table: StatusTable) -> str:
    """Cancel a task that is not finished; a running step is abandoned."""
    task = await _task(conn, task_id)
    if table[task.status].kind in {Kind.DONE, Kind.CANCELLED}:
        raise UserError(f"task {task_id} is already {table.label(task.status)}")
    await _move(conn, task, "cancelled", "cancelled from the command line", dict(_UNLOCK), table)
    return "cancelled"


async def approve_task(conn: AsyncConnection, task_id: int, table: StatusTable) -> str:
    """Open the review gate the task waits at."""
    task = await _task(conn, task_id)
    info = table[task.status]
    if info.kind is not Kind.GATE or info.approval is None:
        raise UserError(f"task {task_id} is {info.label}, not at a review gate")
    reason = f"{info.gate} review approved from the command line"
    await _move(conn, task, info.approval, reason, {}, table)
    return info.approval


async def task_history(conn: AsyncConnection, task_id: int) -> list[TaskEventRecord]:
    """Every status change of a task, oldest first."""
    await _task(conn, task_id)
    rows = await conn.execute(
        select(
            TASK_EVENTS.c.from_status,
            TASK_EVENTS.c.to_status,
            TASK_EVENTS.c.actor,
            TASK_EVENTS.c.reason,
            TASK_EVENTS.c.created_at,
        )
        .where(TASK_EVENTS.c.task_id == task_id)
        .order_by(TASK_EVENTS.c.id)
    )
    return [TaskEventRecord(*row) for row in rows.all()]
