"""Our writes to Notion pages in flight, so a read from before one is not taken as news.

Notion has no conditional write and answers reads in any order with writes. A read that
started before one of our writes to a page settled (answered, and what it wrote recorded
as what the page shows) may show the page as it was before the write; compared with what
we recorded, our own old value would look like a creator's edit (an old Queued, a
re-queue). Readers ask `stale(page, read_at)` and leave such a page to a later read.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager

__all__ = ["PageWrites"]

# Settle times older than this are dropped: no read runs for so long.
_FORGET_AFTER_S = 600.0
_PRUNE_AT = 10_000


def _key(page_id: str) -> str:
    return page_id.replace("-", "").lower()


class PageWrites:
    """Which pages have a write of ours in flight, and when each page's last one settled."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._in_flight: Counter[str] = Counter()
        self._settled: dict[str, float] = {}

    @contextmanager
    def writing(self, page_id: str) -> Iterator[None]:
        """Hold the page as written from before the request leaves until its outcome is stored."""
        key = _key(page_id)
        self._in_flight[key] += 1
        try:
            yield
        finally:
            self._in_flight[key] -= 1
            if self._in_flight[key] <= 0:
                del self._in_flight[key]
            now = self._clock()
            self._settled[key] = now
            if len(self._settled) > _PRUNE_AT:
                horizon = now - _FORGET_AFTER_S
                self._settled = {k: at for k, at in self._settled.items() if at >= horizon}

    def stale(self, page_id: str, read_at: float) -> bool:
        """Whether a read of the page begun at `read_at` (clock time) may predate our write."""
        key = _key(page_id)
        return self._in_flight[key] > 0 or self._settled.get(key, float("-inf")) >= read_at

    def in_flight(self) -> int:
        """How many pages have a write in flight now."""
        return len(self._in_flight)
