"""Which reads may predate one of our page writes: in flight, or settled after the read began."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reelqueue.notion import PageWrites

PAGE = "0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_read_begun_before_a_write_settled_is_stale_and_one_begun_after_is_not() -> None:
    clock = Clock()
    writes = PageWrites(clock)
    read_before = clock.now
    with writes.writing(PAGE):
        assert writes.stale(PAGE, read_before)
        assert writes.stale(PAGE, clock.now + 5), "any read while the write is in flight"
        clock.now += 1
    assert writes.stale(PAGE, read_before)
    assert not writes.stale(PAGE, clock.now + 0.001)
    assert not writes.stale("11111111-2222-4333-8444-555555555555", read_before), "other pages"


def test_page_ids_match_with_or_without_dashes_and_case() -> None:
    writes = PageWrites(Clock())
    with writes.writing(PAGE.upper()):
        assert writes.stale(PAGE.replace("-", ""), 0.0)
        assert writes.in_flight() == 1
    assert writes.in_flight() == 0


def test_a_failed_write_still_counts_as_settled() -> None:
    clock = Clock()
    writes = PageWrites(clock)
    try:
        with writes.writing(PAGE):
            clock.now += 1
            raise TimeoutError
    except TimeoutError:
        pass
    assert writes.in_flight() == 0
    assert writes.stale(PAGE, 100.5), "the request may have reached Notion before it failed"


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 10)), min_size=1, max_size=30))
def test_overlapping_writes_of_one_page_hold_it_until_the_last_settles(
    steps: list[tuple[bool, float]],
) -> None:
    clock = Clock()
    writes = PageWrites(clock)
    open_writes = []
    for opens, wait in steps:
        clock.now += wait
        if opens or not open_writes:
            context = writes.writing(PAGE)
            context.__enter__()
            open_writes.append(context)
        else:
            open_writes.pop(0).__exit__(None, None, None)
        assert writes.stale(PAGE, clock.now + 1) == bool(open_writes)
    while open_writes:
        open_writes.pop().__exit__(None, None, None)
    assert not writes.stale(PAGE, clock.now + 1)
