"""The reaper: tasks whose worker stopped heartbeating go back to the queue.

Workers reap every poll interval, and the leader reaps too, so a dead worker's tasks
come back even when no worker process is alive. Two reapers at once are fine: each
expired lease is taken by one of them (the rows are locked, others skipped).
"""

from __future__ import annotations

import asyncio

import structlog
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reelqueue.config import Settings
from reelqueue.db.retry import run_in_transaction
from reelqueue.pipeline.transitions import failure_outcome
from reelqueue.queue import ExpiredLease, TaskChange, apply_changes, expired_leases
from reelqueue.queue.lifecycle import BackgroundService, until_stopped
from reelqueue.queue.supervise import LoopHealth, attempt
from reelqueue.statuses import StatusTable

__all__ = ["Reaper"]

log = structlog.get_logger(__name__)


class Reaper(BackgroundService):
    """Returns expired leases to the queue every `interval_s`: a transient failure of the
    step, retried at once. A failed pass is counted in `health` and retried after a backoff."""

    name = "reaper"

    def __init__(
        self,
        engine: AsyncEngine,
        settings: Settings,
        *,
        interval_s: float = 2.0,
        health: LoopHealth | None = None,
        table: StatusTable | None = None,
    ) -> None:
        super().__init__()
        self._engine = engine
        self._settings = settings
        self._interval_s = interval_s
        self._table = table or StatusTable(settings.status_labels)
        self.health = health or LoopHealth("reaper")

    async def reap(self) -> list[int]:
        """One pass: the ids of the tasks returned. Database errors are the caller's."""

        async def work(conn: AsyncConnection) -> list[TaskChange]:
            changes = [self._reaped(lease) for lease in await expired_leases(conn, self._table)]
            await apply_changes(conn, changes, self._table)
            return changes

        changes = await run_in_transaction(self._engine, work, what="reaper")
        if changes:
            log.warning(
                "expired leases returned to the queue", task_ids=[c.task_id for c in changes]
            )
        return [c.task_id for c in changes]

    async def _serve(self, stopping: asyncio.Event) -> None:
        self.health.started()
        try:
            await until_stopped(stopping, self._loop())
        finally:
            self.health.stopped()

    async def _loop(self) -> None:
        while True:
            if await attempt(self.health, self.reap):
                await asyncio.sleep(self._interval_s)

    def _reaped(self, lease: ExpiredLease) -> TaskChange:
        message = f"lease expired: worker {lease.locked_by} stopped heartbeating"
        outcome = failure_outcome(
            self._table, step=lease.step, running_status=lease.status, attempts=lease.attempts,
            step_attempts=lease.step_attempts + 1, max_attempts=self._settings.max_attempts,
            transient=True, message=message, retry_base_s=self._settings.retry_base_s,
            backoff=False,
        )  # fmt: skip
        ((target, reason),) = outcome.path
        return TaskChange(
            lease.task_id, lease.notion_page_id, lease.status, target, "reaper", reason,
            outcome.values,
        )  # fmt: skip
