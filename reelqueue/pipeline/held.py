"""The tasks a worker holds: each one's lease, the step running it, and the slots left.

A task is held from its claim until its end is recorded, and slots are counted from
the held tasks, so a step whose end is recorded frees its slot at once, even while
its coroutine winds down. A task whose lease was found lost is abandoned: its step is
cancelled and its end is never written.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Coroutine, Iterable
from typing import Any

import structlog

__all__ = ["HeldTasks"]

log = structlog.get_logger(__name__)

FIRST = asyncio.FIRST_COMPLETED


class HeldTasks:
    """Up to `concurrency` held tasks; `on_free` is called when a step ends with a slot free."""

    def __init__(self, concurrency: int, *, on_free: Callable[[], None]) -> None:
        self.concurrency = concurrency
        self._on_free = on_free
        self._running: dict[int, asyncio.Task[None]] = {}
        self._held: set[int] = set()
        self._lost: set[int] = set()
        self._claimed_at: dict[int, float] = {}
        self._open = True

    def ids(self) -> list[int]:
        """The ids of the tasks held now."""
        return list(self._held)

    def close(self) -> None:
        """Claim no more: every slot counts as taken from now on."""
        self._open = False

    def free_slots(self, finishing: int = 0) -> int:
        """Slots to claim for, counting the `finishing` tasks as already gone."""
        if not self._open:
            return 0
        return max(0, self.concurrency - len(self._held) + finishing)

    def run(self, task_id: int, step: Coroutine[Any, Any, None]) -> None:
        """Hold `task_id` and run its step in a task of its own."""
        self._claimed_at[task_id] = asyncio.get_running_loop().time()
        running = asyncio.create_task(step, name=f"task-{task_id}")
        self._running[task_id] = running
        self._held.add(task_id)
        running.add_done_callback(functools.partial(self._ended, task_id))

    def recorded(self, task_ids: Iterable[int]) -> None:
        """These tasks' ends are written (or given up on): their slots are free."""
        self._held.difference_update(task_ids)

    def lose(self, task_ids: Iterable[int]) -> None:
        """These leases were taken away: abandon their steps (not those ended meanwhile)."""
        for task_id in set(task_ids) & self._held:
            log.warning("lease lost; abandoning the step", task_id=task_id)
            self._lost.add(task_id)
            running = self._running.get(task_id)
            if running is not None:
                running.cancel()

    def claimed_at(self, task_id: int) -> float:
        """When (event loop time) this worker claimed the task; its lease began then."""
        return self._claimed_at.get(task_id, 0.0)

    def is_lost(self, task_id: int) -> bool:
        """Whether this task's lease was found taken away."""
        return task_id in self._lost

    async def drain(self, timeout_s: float, hurry: asyncio.Event) -> None:
        """Let running steps finish for up to `timeout_s` (or until `hurry` is set), those
        begun meanwhile too (claimed by a turn under way at the stop); then cancel the
        rest, which give their tasks back, and let them end."""
        if not self._running:
            return
        log.info("draining", running=len(self._running), timeout_s=timeout_s)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        hurried = asyncio.ensure_future(hurry.wait())
        try:
            while self._running and not hurried.done() and (left := deadline - loop.time()) > 0:
                running = set(self._running.values())
                await asyncio.wait({hurried, *running}, timeout=left, return_when=FIRST)
        finally:
            hurried.cancel()
        pending = {task for task in self._running.values() if not task.done()}
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=10)

    def _ended(self, task_id: int, _task: asyncio.Task[None]) -> None:
        self._running.pop(task_id, None)
        self._held.discard(task_id)
        self._lost.discard(task_id)
        self._claimed_at.pop(task_id, None)
        if self.free_slots() > 0:
            self._on_free()
