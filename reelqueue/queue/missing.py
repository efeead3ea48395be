"""Pages that were deleted or are no longer shared: their tasks are marked, once."""

from __future__ import annotations

from collections.abc import Mapping

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.queue.tasks import TaskChange, apply_changes, load_tasks_by_page
from reelqueue.statuses import StatusTable

__all__ = ["mark_missing"]

log = structlog.get_logger(__name__)

_STATUSES = StatusTable()  # kinds only: labels do not matter here
_REASONS = {
    "deleted": "the page was deleted in Notion",
    "unshared": "the page is no longer shared with the integration",
}


async def mark_missing(conn: AsyncConnection, gone: Mapping[str, str]) -> int:
    """Mark the tasks of these pages (page id -> 'deleted' | 'unshared'); cancel active ones.

    Returns how many tasks were newly marked; a task already marked is left alone,
    so each disappearance is logged once.
    """
    tasks = await load_tasks_by_page(conn, gone, lock=True)
    changes: list[TaskChange] = []
    for page_id, task in tasks.items():
        if task.page_missing is not None:
            continue
        reason = _REASONS.get(gone[page_id], gone[page_id])
        target = "cancelled" if _STATUSES.is_active(task.status) else task.status
        log.warning(
            "task's page is gone",
            notion_page_id=page_id,
            task_id=task.id,
            reason=reason,
            status=target,
        )
        changes.append(
            TaskChange(
                task_id=task.id,
                notion_page_id=page_id,
                from_status=task.status,
                to_status=target,
                actor="notion",
                reason=reason,
                values={"page_missing": gone[page_id]},
                push=False,
            )
        )
    await apply_changes(conn, changes)
    return len(changes)
