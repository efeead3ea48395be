"""Pages that left the calendar (deleted, no longer shared, moved out) and came back.

A deleted or unshared page cancels an active task: the creator took the page away.
A page moved out of the calendar only holds its task: a move is undone as easily as
it is made (a drag to the wrong board), and cancelling would throw away a paid step
that is running. A held task keeps its status and its running step finishes, but
nothing new starts (the claim passes over a task whose page is missing, so a retry
keeps its wait and counts for when the page is back) and push-back waits, since a
page outside the calendar has no Status to write. When a read sees the page in the
calendar again, the mark is cleared and the task goes on."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import structlog
from sqlalchemy import insert, text
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.db.models import TASK_EVENTS
from reelqueue.queue.page_view import fields_to_write, page_fields
from reelqueue.queue.tasks import (
    TASKS_CHANNEL,
    TaskChange,
    TaskRecord,
    apply_changes,
    load_tasks_by_page,
)
from reelqueue.statuses import StatusTable

__all__ = ["MOVED", "hold_moved", "mark_missing", "missing_reason", "release_found"]

log = structlog.get_logger(__name__)

MOVED = "moved"
_REASONS = {
    "deleted": "the page was deleted in Notion",
    "unshared": "the page is no longer shared with the integration",
    MOVED: "the page was moved out of the calendar",
}


def missing_reason(mark: str) -> str:
    """Why a task's page is missing, in words, from its `page_missing` mark."""
    return _REASONS.get(mark, mark)


# Tasks held before the claim passed over missing pages waited at infinity: run them
# again at once; a retry's own wait is kept.
_RUN_AGAIN = text("CASE WHEN run_after = 'infinity' THEN now() ELSE run_after END")


async def _note(conn: AsyncConnection, changes: Sequence[TaskChange]) -> None:
    """History rows for changes that leave the status as it is (apply_changes skips those)."""
    rows = [
        {
            "task_id": c.task_id,
            "from_status": c.from_status,
            "to_status": c.to_status,
            "actor": c.actor,
            "reason": c.reason,
        }
        for c in changes
    ]
    if rows:
        await conn.execute(insert(TASK_EVENTS), rows)


async def mark_missing(conn: AsyncConnection, gone: Mapping[str, str], table: StatusTable) -> int:
    """Mark the tasks of these pages (page id -> 'deleted' | 'unshared'); cancel active ones.

    Returns how many tasks were newly marked; a task already marked is left alone,
    so each disappearance is logged once. A page moved out and then deleted is
    marked deleted: the deletion, not the move, says what the creator wants.
    """
    tasks = await load_tasks_by_page(conn, gone, lock=True)
    changes: list[TaskChange] = []
    for page_id, task in tasks.items():
        if task.page_missing is not None and task.page_missing != MOVED:
            continue
        reason = missing_reason(gone[page_id])
        target = "cancelled" if table.is_active(task.status) else task.status
        log.warning(
            "task's page is gone",
            notion_page_id=page_id,
            task_id=task.id,
            reason=reason,
            status=target,
        )
        values: dict[str, Any] = {"page_missing": gone[page_id]}
        if task.page_missing == MOVED:
            values["run_after"] = _RUN_AGAIN
        changes.append(
            TaskChange(
                task_id=task.id,
                notion_page_id=page_id,
                from_status=task.status,
                to_status=target,
                actor="notion",
                reason=reason,
                values=values,
                push=False,
            )
        )
    await apply_changes(conn, changes, table)
    return len(changes)


def _hold_reason(task: TaskRecord, where: str, table: StatusTable) -> str:
    if not table.is_active(task.status):
        return f"{_REASONS[MOVED]} (to {where}); reelqueue stops updating it until it is moved back"
    return (
        f"held: {_REASONS[MOVED]} (to {where}); a step already running "
        "finishes, nothing new starts and the page is not updated until it is moved back; "
        "to stop the video, move it back and set it to Cancelled, or delete the page"
    )


async def hold_moved(conn: AsyncConnection, moved: Mapping[str, str], table: StatusTable) -> int:
    """Hold the tasks of pages moved out of the calendar (page id -> where they went).

    Returns how many tasks were newly held; each gets a history row saying why.
    """
    tasks = await load_tasks_by_page(conn, moved, lock=True)
    changes: list[TaskChange] = []
    for page_id, task in tasks.items():
        if task.page_missing is not None:
            continue
        reason = _hold_reason(task, moved[page_id], table)
        log.warning(
            "task held: its page was moved out of the calendar",
            notion_page_id=page_id,
            task_id=task.id,
            moved_to=moved[page_id],
            status=task.status,
        )
        changes.append(
            TaskChange(
                task_id=task.id,
                notion_page_id=page_id,
                from_status=task.status,
                to_status=task.status,
                actor="notion",
                reason=reason,
                values={"page_missing": MOVED},
                push=False,
            )
        )
    await apply_changes(conn, changes, table)
    await _note(conn, changes)
    return len(changes)


async def release_found(conn: AsyncConnection, page_ids: Iterable[str], table: StatusTable) -> int:
    """Clear the mark of tasks whose pages a read just found in the calendar again.

    Call it in the transaction of the reactions to that read. A page moved back takes
    its task up where it was held (the page is written if it fell behind). A page
    restored from the trash or shared again has its Status read as a fresh edit, so
    the reactions act on it (Queued queues the cancelled task again); whatever the
    page then shows, push-back brings it in line with the task.
    """
    ids = list(page_ids)
    if not ids:
        return 0
    marked = await conn.scalars(
        text(
            "SELECT notion_page_id FROM tasks WHERE page_missing IS NOT NULL"
            " AND notion_page_id = ANY(CAST(:pages AS text[]))"
        ),
        {"pages": ids},
    )
    found = list(marked.all())
    if not found:
        return 0
    tasks = await load_tasks_by_page(conn, found, lock=True)
    changes: list[TaskChange] = []
    for page_id, task in tasks.items():
        if task.page_missing is None:
            continue
        values: dict[str, Any] = {"page_missing": None}
        if task.page_missing == MOVED:
            values["run_after"] = _RUN_AGAIN
            desired = page_fields(table, task.status, task.error_log, task.youtube_url)
            push = bool(fields_to_write(desired, task.notion_seen))
            reason = (
                f"the page is back in the calendar: picked up again at {table.label(task.status)}"
            )
        else:
            values["notion_seen"] = {**task.notion_seen, "status": None}
            push = False
            was = "restored from the trash" if task.page_missing == "deleted" else "shared again"
            reason = f"the page was {was}: its Status is read again"
        log.info("task's page is back", notion_page_id=page_id, task_id=task.id, reason=reason)
        changes.append(
            TaskChange(
                task_id=task.id,
                notion_page_id=page_id,
                from_status=task.status,
                to_status=task.status,
                actor="notion",
                reason=reason,
                values=values,
                push=push,
            )
        )
    await apply_changes(conn, changes, table)
    await _note(conn, changes)
    if any(task.status in table.runnable for task in tasks.values()):
        # The status did not change, so apply_changes does not wake the workers.
        await conn.execute(text("SELECT pg_notify(:channel, '')"), {"channel": TASKS_CHANNEL})
    return len(changes)
