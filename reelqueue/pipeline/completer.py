"""The completer: records the ends of steps in batches, one turn for all that are waiting.

While the database is away it tries again, up to one lease; then it gives up and the
reaper returns those tasks once their leases run out. Stopped, it writes what is
waiting first; an end handed over after that is answered "not recorded" at once, so
no step ever waits on it forever.
"""

from __future__ import annotations

import asyncio
from collections import deque
from datetime import timedelta

import structlog

from reelqueue.pipeline.held import HeldTasks
from reelqueue.pipeline.turns import DATABASE_ERRORS, Turns
from reelqueue.queue import Finish
from reelqueue.queue.lifecycle import BackgroundService
from reelqueue.queue.supervise import LoopHealth, describe_error

__all__ = ["MAX_COMPLETION_BATCH", "Completer"]

log = structlog.get_logger(__name__)

MAX_COMPLETION_BATCH = 100

Waiting = tuple[Finish, "asyncio.Future[bool]"]


class Completer(BackgroundService):
    """Writes finished steps through `turns`; `health` is the completions loop's."""

    name = "completer"

    def __init__(
        self, turns: Turns, held: HeldTasks, *, lease: timedelta, health: LoopHealth
    ) -> None:
        super().__init__()
        self._turns = turns
        self._held = held
        self._lease = lease
        self.health = health
        self._waiting: deque[Waiting] = deque()
        self._arrived = asyncio.Event()

    async def finish(self, item: Finish) -> bool:
        """Hand over a step's end; True once recorded, False if not (lease lost, stopped)."""
        if not self.running:
            return False
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        self._arrived.set()
        return await done

    async def _serve(self, stopping: asyncio.Event) -> None:
        try:
            while await self._next(stopping):
                batch = [self._waiting.popleft()]
                while self._waiting and len(batch) < MAX_COMPLETION_BATCH:
                    batch.append(self._waiting.popleft())
                await self._record(batch)
        finally:
            while self._waiting:
                _, done = self._waiting.popleft()
                if not done.done():
                    done.set_result(False)

    async def _next(self, stopping: asyncio.Event) -> bool:
        """Wait for an end to record; False once stopping with none left."""
        while not self._waiting:
            if stopping.is_set():
                return False
            self._arrived.clear()
            arrived = asyncio.ensure_future(self._arrived.wait())
            stopped = asyncio.ensure_future(stopping.wait())
            try:
                await asyncio.wait({arrived, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiter in (arrived, stopped):
                    waiter.cancel()
        return True

    async def _record(self, batch: list[Waiting]) -> None:
        items = [item for item, _ in batch]
        try:
            outcomes = await self._write(items)
        except Exception as exc:  # not the database's: never leave a step waiting forever
            self.health.failed(exc)
            log.exception("results not recorded; the reaper will retry the steps",
                          tasks=[item.task.id for item in items])  # fmt: skip
            self._held.recorded(item.task.id for item in items)
            outcomes = [False] * len(items)
        for (_, done), outcome in zip(batch, outcomes, strict=True):
            if not done.done():
                done.set_result(outcome)

    async def _write(self, items: list[Finish]) -> list[bool]:
        """Write, retrying while the database is away (up to the lease), then give up."""
        deadline = asyncio.get_running_loop().time() + self._lease.total_seconds()
        delay = 0.1
        while True:
            try:
                recorded = await self._turns.finish(items)
                self.health.ok()
                return recorded
            except DATABASE_ERRORS as exc:
                self.health.failed(exc)
                if asyncio.get_running_loop().time() + delay > deadline:
                    log.warning(
                        "results not recorded; the reaper will retry the steps",
                        tasks=[item.task.id for item in items],
                        error=describe_error(exc),
                    )
                    self._held.recorded(item.task.id for item in items)
                    return [False] * len(items)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
