"""The doorbell: webhook events (and outbox writes) ring it; the leader answers once per burst."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

__all__ = ["Doorbell", "Rings"]


@dataclass
class Rings:
    """What rang since the leader last answered."""

    count: int = 0
    ingest: bool = False
    push: bool = False
    pages_to_fetch: set[str] = field(default_factory=set)

    def __bool__(self) -> bool:
        return self.count > 0


class Doorbell:
    """Coalesces rings: the first ring of a burst opens a short window, then one answer.

    The window starts at the first ring and does not slide, so a steady stream of
    events still gets an answer within about `window_s` of its first event.
    """

    def __init__(self, window_s: float = 0.3) -> None:
        self._window_s = window_s
        self._pending = Rings()
        self._event: asyncio.Event | None = None

    def _signal(self) -> asyncio.Event:
        if self._event is None:
            self._event = asyncio.Event()
        return self._event

    def ring(self, *, ingest: bool = True, push: bool = False, fetch: str | None = None) -> None:
        """Note that something happened; safe to call from any task of the loop."""
        self._pending.count += 1
        self._pending.ingest |= ingest
        self._pending.push |= push
        if fetch:
            self._pending.pages_to_fetch.add(fetch)
        self._signal().set()

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
