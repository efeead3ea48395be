"""The doorbell: a burst of rings gets one answer, promptly; covered edits need no read."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from reelqueue.ingest import Doorbell, Rings


async def test_a_burst_of_rings_is_answered_once_within_the_window() -> None:
    bell = Doorbell(window_s=0.1)
    for n in range(20):
        bell.ring(fetch=f"page-{n % 3}")
    # No deadline of its own: only the window can end this wait (the bound fails the test).
    rings = await asyncio.wait_for(bell.wait(None), 10)
    assert rings.count == 20
    assert rings.pages_to_fetch == {"page-0", "page-1", "page-2"}
    bell.ring(fetch="page-9")
    after = await bell.wait(5)
    assert (after.count, after.pages_to_fetch) == (1, {"page-9"}), "the burst was answered twice"


async def test_rings_during_the_window_join_it_and_later_ones_wait() -> None:
    bell = Doorbell(window_s=0.2)
    bell.ring()
    waiter = asyncio.create_task(bell.wait(5))
    await asyncio.sleep(0)  # one turn of the loop: the waiter sees the ring and opens its window
    assert not waiter.done()
    bell.ring(push=True, ingest=False)
    first = await waiter
    assert first.count == 2
    assert first.push
    bell.ring()
    second = await bell.wait(5)
    assert second.count == 1
    assert not second.push


async def test_no_ring_returns_empty_after_the_wait() -> None:
    rings = await Doorbell(window_s=0.01).wait(0.05)
    assert not rings
    assert rings.count == 0


def test_an_edit_before_the_last_read_began_needs_no_new_read() -> None:
    read_began = datetime(2026, 11, 24, 12, 0, 10, tzinfo=UTC)
    covered = Rings(count=1, ingest=True, newest_edit=read_began - timedelta(seconds=1))
    later = Rings(count=1, ingest=True, newest_edit=read_began + timedelta(seconds=1))
    unknown = Rings(count=1, ingest=True, untimed=True)
    push_only = Rings(count=1, push=True)
    assert not covered.needs_read_after(read_began)
    assert later.needs_read_after(read_began)
    assert unknown.needs_read_after(read_began)
    assert covered.needs_read_after(None), "before any read, every ring needs one"
    assert not push_only.needs_read_after(None)


async def test_ring_keeps_the_newest_edit_time() -> None:
    bell = Doorbell(window_s=0.01)
    base = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)
    for seconds in (5, 1, 9, 3):
        bell.ring(edited_at=base + timedelta(seconds=seconds))
    rings = await bell.wait(1)
    assert rings.newest_edit == base + timedelta(seconds=9)
    assert not rings.untimed
