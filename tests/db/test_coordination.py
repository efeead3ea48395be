"""Coordination through PostgreSQL: one leader at a time, and LISTEN that survives a lost link."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg

from reelqueue.queue import LeaderElection, Listener
from reelqueue.queue.supervise import LoopHealth
from tests.fixtures.service import until


class Tries(LoopHealth):
    """An election's health that counts its answered tries for the lock."""

    def __init__(self) -> None:
        super().__init__("leader")
        self.answered = 0

    def ok(self) -> None:
        self.answered += 1
        super().ok()


async def answered(tries: Tries, count: int, acquiring: asyncio.Task[bool]) -> None:
    """Wait until `count` tries for the lock were answered, or the acquiring task ended."""

    async def enough() -> bool:
        return tries.answered >= count or acquiring.done()

    await until(enough, within_s=5, every_s=0.01)


async def test_only_one_process_leads_and_a_standby_takes_over(database_url: str) -> None:
    stop = asyncio.Event()
    first = LeaderElection(database_url, retry_s=0.05, key=4242)
    tries = Tries()
    second = LeaderElection(database_url, retry_s=0.05, key=4242, health=tries)
    assert await first.acquire(stop)
    contender = asyncio.create_task(second.acquire(stop))
    await answered(tries, 2, contender)
    assert not contender.done(), "a second leader while the first holds the lock"
    await first.release()
    assert await asyncio.wait_for(contender, 5)
    assert second.is_leader.is_set()
    assert not first.is_leader.is_set()
    await second.release()


async def test_a_leader_whose_connection_dies_knows_it(database_url: str) -> None:
    stop = asyncio.Event()
    leader = LeaderElection(database_url, retry_s=0.05, key=4343)
    assert await leader.acquire(stop)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_locks"
            " WHERE locktype = 'advisory' AND objid = 4343"
        )
    finally:
        await conn.close()
    await asyncio.wait_for(leader.watch(interval_s=0.05), 5)
    assert leader.lost.is_set()
    assert not leader.is_leader.is_set()


async def test_acquire_gives_up_when_asked_to_stop(database_url: str) -> None:
    stop = asyncio.Event()
    holder = LeaderElection(database_url, retry_s=0.05, key=4444)
    tries = Tries()
    waiter = LeaderElection(database_url, retry_s=0.05, key=4444, health=tries)
    assert await holder.acquire(stop)
    other_stop = asyncio.Event()
    task = asyncio.create_task(waiter.acquire(other_stop))
    await answered(tries, 1, task)  # refused once: now it waits to try again
    other_stop.set()
    assert await asyncio.wait_for(task, 2) is False
    await holder.release()
    await waiter.release()


async def test_notifications_resume_after_the_connection_is_terminated(database_url: str) -> None:
    received: list[str] = []
    reconnected = asyncio.Event()

    def heard(payload: str) -> Callable[[], Awaitable[bool]]:
        async def check() -> bool:
            return payload in received

        return check

    listener = Listener(
        database_url,
        ["test_channel"],
        lambda _channel, payload: received.append(payload),
        on_reconnect=reconnected.set,
        check_interval_s=0.05,
    )
    listener.start()
    await asyncio.wait_for(listener.connected.wait(), 5)
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("NOTIFY test_channel, 'before'")
        await until(heard("before"), within_s=5)
        await conn.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
        await asyncio.wait_for(reconnected.wait(), 10)
        await conn.execute("NOTIFY test_channel, 'after'")
        await until(heard("after"), within_s=5)
    finally:
        await conn.close()
        await listener.stop()
        await listener.stop()
    assert received[0] == "before"
    assert "after" in received
    assert listener.reconnects == 1
