"""A worker's turns at the queue: record finished steps and claim for the free slots at once.

One turn is one statement (`exchange`) on a connection kept out of the pool, one turn
at a time. A worker whose last claim came back short (an empty queue, or caps full
across the fleet) records its finishes alone: the slots they free then show, and every
worker has its chance at them, instead of this one refilling them unseen.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

import asyncpg
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reelqueue.pipeline.held import HeldTasks
from reelqueue.queue import ClaimedTask, ClaimLimits, Finish, exchange

__all__ = ["DATABASE_ERRORS", "Turns"]

DATABASE_ERRORS = (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError)


class Turns:
    """Takes turns for `worker_id`; what a turn claims goes to `on_claimed`."""

    def __init__(
        self,
        engine: AsyncEngine,
        held: HeldTasks,
        *,
        worker_id: str,
        lease: timedelta,
        limits: Callable[[], ClaimLimits],
        on_claimed: Callable[[list[ClaimedTask]], None],
    ) -> None:
        self._engine = engine
        self._held = held
        self._worker_id = worker_id
        self._lease = lease
        self._limits = limits
        self._on_claimed = on_claimed
        self._lock = asyncio.Lock()
        self._connection: tuple[AsyncConnection, asyncpg.Connection] | None = None
        self._starved = False
        self._shared = True  # whether the last claim found every cap with room to spare

    async def claim(self) -> None:
        """Fill the free slots (most claims instead ride along with a completion)."""
        async with self._lock:
            if self._held.free_slots() > 0:
                await self._take([])

    async def finish(self, finished: list[Finish]) -> list[bool]:
        """Record `finished` (and claim for the slots they free); which were recorded."""
        async with self._lock:
            return await self._take(finished)

    async def close(self) -> None:
        """Give the kept connection back."""
        async with self._lock:
            kept, self._connection = self._connection, None
            if kept is not None:
                with contextlib.suppress(*DATABASE_ERRORS):
                    await kept[0].close()

    async def _take(self, finished: list[Finish]) -> list[bool]:
        wanted = 0 if finished and self._starved else self._held.free_slots(len(finished))
        turn = functools.partial(
            exchange, worker_id=self._worker_id, lease=self._lease, limits=self._limits(),
            slots=self._held.concurrency,
        )  # fmt: skip
        async with self._kept_connection() as conn:
            done = await turn(conn, finished=finished, claim=wanted, shared=self._shared)
            if wanted and self._shared and done.tight:
                # The caps became tight since the last turn: claim again, alone.
                again = await turn(conn, claim=wanted, shared=False)
                done = dataclasses.replace(done, claimed=again.claimed, tight=again.tight)
        self._held.recorded(item.task.id for item in finished)
        if wanted:
            self._shared = not done.tight
            self._starved = len(done.claimed) < wanted
        self._on_claimed(done.claimed)
        return done.recorded

    @contextlib.asynccontextmanager
    async def _kept_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """The driver connection, checked out of the pool once and kept; dropped on any
        error mid-turn."""
        if self._connection is None:
            pooled = await self._engine.connect().start()
            try:
                driver = (await pooled.get_raw_connection()).driver_connection
            except BaseException:
                await pooled.close()
                raise
            self._connection = (pooled, driver)
        pooled, driver = self._connection
        try:
            yield driver
        except BaseException:
            self._connection = None
            with contextlib.suppress(*DATABASE_ERRORS):
                await pooled.invalidate()
            raise
