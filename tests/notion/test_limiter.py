"""The token bucket on a hand-driven clock: burst, rate, priority lanes, FIFO, no early tokens."""

from __future__ import annotations

import asyncio
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from reelqueue.notion import Priority, TokenBucket, limiter_for
from reelqueue.notion.limiter import _limiters
from tests.notion.clock import ManualClock, settle


class Grants:
    """Callers that record when (and in which order) they got their token."""

    def __init__(self, bucket: TokenBucket, clock: ManualClock) -> None:
        self.bucket = bucket
        self.clock = clock
        self.order: list[str] = []
        self.times: dict[str, float] = {}
        self.tasks: list[asyncio.Task[None]] = []

    def start(self, name: str, priority: Priority = Priority.INGEST) -> asyncio.Task[None]:
        async def call() -> None:
            await self.bucket.acquire(priority)
            self.order.append(name)
            self.times[name] = self.clock.now

        task = asyncio.create_task(call())
        self.tasks.append(task)
        return task


def make(rate: float, burst: int) -> tuple[ManualClock, Grants]:
    clock = ManualClock()
    return clock, Grants(TokenBucket(rate, burst, clock=clock, sleep=clock.sleep), clock)


async def test_the_burst_is_granted_at_once_and_the_rest_at_the_rate() -> None:
    clock, grants = make(rate=2.0, burst=3)
    for i in range(6):
        grants.start(f"c{i}")
    await settle()
    assert grants.order == ["c0", "c1", "c2"]
    await clock.advance(0.499)
    assert len(grants.order) == 3
    await clock.advance(0.001)
    assert grants.order == ["c0", "c1", "c2", "c3"]
    await clock.advance(1.0)
    assert grants.times == {"c0": 0, "c1": 0, "c2": 0, "c3": 0.5, "c4": 1.0, "c5": 1.5}


async def test_a_waiting_ingest_caller_is_served_before_waiting_push_callers() -> None:
    clock, grants = make(rate=1.0, burst=1)
    grants.start("first")
    await settle()
    for name in ("push-a", "push-b", "push-c"):
        grants.start(name, Priority.PUSH)
    await settle()
    for name in ("ingest-x", "ingest-y"):
        grants.start(name, Priority.INGEST)
    await clock.advance(5.0)
    assert grants.order == ["first", "ingest-x", "ingest-y", "push-a", "push-b", "push-c"]


async def test_callers_of_one_priority_are_served_first_come_first_served() -> None:
    clock, grants = make(rate=10.0, burst=1)
    names = [f"p{i}" for i in range(30)]
    for name in names:
        grants.start(name, Priority.PUSH)
        await asyncio.sleep(0)
    await clock.advance(3.0)
    assert grants.order == names


async def test_a_newcomer_never_overtakes_a_waiter() -> None:
    clock, grants = make(rate=1.0, burst=1)
    grants.start("a")
    grants.start("b")
    await settle()
    await clock.advance(1.0)
    grants.start("late")
    await clock.advance(0.0)
    assert grants.order == ["a", "b"]
    await clock.advance(1.0)
    assert grants.order == ["a", "b", "late"]


async def test_a_cancelled_waiter_gives_its_turn_to_the_next() -> None:
    clock, grants = make(rate=1.0, burst=1)
    grants.start("a")
    doomed = grants.start("doomed")
    grants.start("b")
    await settle()
    doomed.cancel()
    await clock.advance(1.0)
    assert grants.order == ["a", "b"]
    assert grants.bucket.waiting == 0


@settings(max_examples=40, deadline=None)
@given(
    rate=st.floats(min_value=0.5, max_value=50.0),
    burst=st.integers(min_value=1, max_value=8),
    callers=st.integers(min_value=1, max_value=25),
)
def test_no_token_is_granted_before_the_bucket_allows_it(
    rate: float, burst: int, callers: int
) -> None:
    async def scenario() -> dict[str, float]:
        clock, grants = make(rate, burst)
        for i in range(callers):
            grants.start(f"c{i:02}")
        await clock.advance(callers / rate + 1)
        return grants.times

    times = asyncio.run(scenario())
    for i in range(callers):
        ideal = max(0.0, (i - burst + 1) / rate)
        # Never early; late by at most the microsecond a float-rounding shortfall may cost.
        assert ideal - 1e-9 <= times[f"c{i:02}"] <= ideal + 1e-6 * (i + 1)


async def test_on_the_real_clock_no_token_comes_early_and_every_caller_gets_one() -> None:
    """How close to the ideal pace it keeps is measured by bench/limiter.py, not here."""
    bucket = TokenBucket(20.0, 1)
    started = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(bucket.acquire() for _ in range(11))), 10)
    assert time.monotonic() - started >= 0.5, "ten tokens beyond the burst, at 20 a second"


def test_one_bucket_serves_one_loop_after_another() -> None:
    clock = ManualClock()
    bucket = TokenBucket(1.0, 1, clock=clock, sleep=clock.sleep)

    async def leave_a_waiter_behind() -> None:
        await bucket.acquire()
        waiter = asyncio.create_task(bucket.acquire())
        await settle()
        assert bucket.waiting == 1
        assert not waiter.done()

    async def acquire_later() -> None:
        clock.now += 1.0
        await asyncio.wait_for(bucket.acquire(), timeout=1)

    asyncio.run(leave_a_waiter_behind())
    asyncio.run(acquire_later())


def test_configure_keeps_earned_tokens_up_to_the_new_burst() -> None:
    clock = ManualClock()
    bucket = TokenBucket(1.0, 5, clock=clock)
    bucket.configure(10.0, 2)
    assert bucket.available() == 2
    assert (bucket.rate, bucket.burst) == (10.0, 2)
    with pytest.raises(ValueError, match="rate"):
        bucket.configure(0, 2)
    with pytest.raises(ValueError, match="burst"):
        TokenBucket(1.0, 0)


def test_one_bucket_per_token_keyed_by_a_hash() -> None:
    token = "secret_limiter_test_token_value"
    first = limiter_for(token, 3.0, 3)
    assert limiter_for(token, 3.0, 3) is first
    assert limiter_for(token + "x", 3.0, 3) is not first
    changed = limiter_for(token, 5.0, 2)
    assert changed is first
    assert (changed.rate, changed.burst) == (5.0, 2)
    assert all(token not in key for key in _limiters)
