"""Heartbeats: extend the leases of the tasks a worker holds, and notice the ones it lost.

Every third of the lease, one statement extends every held lease; a task the worker no
longer holds (reaped, cancelled or re-queued meanwhile) has its step abandoned. A step
may also ask for its own lease to be extended (`extend`, behind `StepContext.heartbeat`):
that writes only when the lease was last extended over a third of a lease ago, so a
step calling it often costs the database nothing more.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.pipeline.held import HeldTasks
from reelqueue.pipeline.steps import LeaseLost
from reelqueue.queue import heartbeat
from reelqueue.queue.lifecycle import BackgroundService
from reelqueue.queue.supervise import LoopHealth, describe_error
from reelqueue.statuses import StatusTable

__all__ = ["Heartbeats"]

log = structlog.get_logger(__name__)


class Heartbeats(BackgroundService):
    """Keeps `held`'s leases for `worker_id`; `health` is the heartbeats loop's."""

    name = "heartbeats"

    def __init__(
        self,
        engine: AsyncEngine,
        held: HeldTasks,
        *,
        worker_id: str,
        lease: timedelta,
        health: LoopHealth,
        table: StatusTable,
    ) -> None:
        super().__init__()
        self._table = table
        self._engine = engine
        self._held = held
        self._worker_id = worker_id
        self._lease = lease
        self._interval_s = lease.total_seconds() / 3
        self._extended_at: dict[int, float] = {}
        self.health = health

    async def extend(self, task_id: int) -> None:
        """Make sure this task's lease was extended within a third of a lease (extending
        it now if not); raise `LeaseLost` if the worker no longer holds it."""
        if self._held.is_lost(task_id):
            raise LeaseLost(f"task {task_id} is no longer held by {self._worker_id}")
        now = asyncio.get_running_loop().time()
        last = max(self._extended_at.get(task_id, 0.0), self._held.claimed_at(task_id))
        if now - last < self._interval_s:
            return
        try:
            lost = await self._beat([task_id])
        except Exception as exc:  # the loop retries; the step goes on meanwhile
            log.debug("lease extension failed", task_id=task_id, error=describe_error(exc))
            return
        if task_id in lost:
            raise LeaseLost(f"task {task_id} is no longer held by {self._worker_id}")

    async def _serve(self, stopping: asyncio.Event) -> None:
        while True:
            # After a failure, sooner: the leases run out while the database is away.
            pause = self._interval_s
            if self.health.streak > 0:
                pause = min(pause, self.health.backoff_s())
            try:
                await asyncio.wait_for(stopping.wait(), pause)
                return
            except TimeoutError:
                pass
            ids = self._held.ids()
            if not ids:
                self.health.ok()
                continue
            try:
                await self._beat(ids)
            except Exception as exc:
                self.health.failed(exc)
                log.warning("heartbeat failed", error=describe_error(exc))
                continue
            self.health.ok()

    async def _beat(self, task_ids: list[int]) -> set[int]:
        """Extend these leases; the ids no longer held (their steps are abandoned)."""
        started = asyncio.get_running_loop().time()
        async with self._engine.begin() as conn:
            lost = await heartbeat(
                conn,
                worker_id=self._worker_id,
                task_ids=task_ids,
                lease=self._lease,
                table=self._table,
            )
        held = set(self._held.ids())
        self._extended_at = {i: t for i, t in self._extended_at.items() if i in held}
        self._extended_at.update((i, started) for i in task_ids if i not in lost)
        self._held.lose(lost)
        return lost
