"""The doorbell: webhook events (and outbox writes) ring it; the leader answers once per burst.

Ingest rings wake the ingest loop; push rings (outbox writes) wake the push-back loop
through a signal of their own, so neither loop is woken by the other's work.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime

__all__ = ["Doorbell", "Rings"]


@dataclass
class Rings:
    """What rang since the leader last answered."""

    count: int = 0
    ingest: bool = False
    push: bool = False
    pages_to_fetch: set[str] = field(default_factory=set)
    newest_edit: datetime | None = None
    untimed: bool = False

    def __bool__(self) -> bool:
        return self.count > 0

    def needs_read_after(self, covered_until: datetime | None) -> bool:
        """Whether some ring is for an edit that a read started at `covered_until` missed."""
        if not self.ingest:
            return False
        if self.untimed or covered_until is None:
            return True
        return self.newest_edit is not None and self.newest_edit >= covered_until


class Doorbell:
    """Coalesces rings: the first ingest ring of a burst opens a short window, then one answer.

    The window starts at the first ring and does not slide, so a steady stream of
    events still gets an answer within about `window_s` of its first event. Push-only
    rings do not open a window; they wake `wait_push` instead.
    """

    def __init__(self, window_s: float = 0.3) -> None:
        self._window_s = window_s
        self._pending = Rings()
        self._event: asyncio.Event | None = None
        self._push_event: asyncio.Event | None = None

    def _signal(self) -> asyncio.Event:
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    def _push_signal(self) -> asyncio.Event:
        if self._push_event is None:
            self._push_event = asyncio.Event()
        return self._push_event

    def ring(
        self,
        *,
        ingest: bool = True,
        push: bool = False,
        fetch: str | None = None,
        edited_at: datetime | None = None,
    ) -> None:
        """Note that something happened (an edit at `edited_at`, if known)."""
        pending = self._pending
        pending.count += 1
        pending.ingest |= ingest
        pending.push |= push
        if ingest and edited_at is None:
            pending.untimed = True
        elif ingest and edited_at is not None:
            pending.newest_edit = max(edited_at, pending.newest_edit or edited_at)
        if fetch:
            pending.pages_to_fetch.add(fetch)
        if push:
            self._push_signal().set()
        if ingest or fetch:
            self._signal().set()

    async def wait_push(self, max_wait_s: float | None) -> bool:
        """Wait for a push ring (True) or until `max_wait_s` passes (False)."""
        signal = self._push_signal()
        if not signal.is_set():
            try:
                await asyncio.wait_for(signal.wait(), max_wait_s)
            except TimeoutError:
                return False
        signal.clear()
        return True

    async def wait(self, max_wait_s: float | None) -> Rings:
        """The rings of the next burst, or empty Rings when `max_wait_s` passes first."""
        signal = self._signal()
        if not signal.is_set():
            try:
                await asyncio.wait_for(signal.wait(), max_wait_s)
            except TimeoutError:
                return Rings()
        await asyncio.sleep(self._window_s)
        rings, self._pending = self._pending, Rings()
        signal.clear()
        return rings
