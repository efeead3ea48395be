"""The claim loop: take work for the free slots whenever there may be some.

Woken by a notification of new work, by a step ending with a slot free, or by the
poll interval as the fallback. `went_round` is set after each round (clear it, then
wait, to see the next).
"""

from __future__ import annotations

import asyncio

from reelqueue.pipeline.held import HeldTasks
from reelqueue.pipeline.turns import Turns
from reelqueue.queue.lifecycle import BackgroundService
from reelqueue.queue.supervise import LoopHealth, attempt

__all__ = ["Claimer"]


class Claimer(BackgroundService):
    """Claims through `turns` for `held`'s free slots; stopped, it closes them for good."""

    name = "claims"

    def __init__(
        self,
        turns: Turns,
        held: HeldTasks,
        *,
        poll_s: float,
        health: LoopHealth,
        worker_id: str,
    ) -> None:
        super().__init__()
        self._turns = turns
        self._held = held
        self._poll_s = poll_s
        self._worker_id = worker_id
        self._wake = asyncio.Event()
        self.health = health
        self.went_round = asyncio.Event()

    def wake(self) -> None:
        """There may be work (or a free slot): claim again now."""
        self._wake.set()

    async def _serve(self, stopping: asyncio.Event) -> None:
        self.health.started()
        try:
            while not stopping.is_set():
                # Cleared before claiming: a wake-up arriving meanwhile is for work the
                # claim may not have seen, and must send us round again.
                self._wake.clear()
                await attempt(self.health, self._turns.claim, worker_id=self._worker_id)
                self.went_round.set()
                await self._sleep(stopping)
        finally:
            self._held.close()

    async def _sleep(self, stopping: asyncio.Event) -> None:
        """Until a wake-up, stop, or the poll interval."""
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stopping.wait())]
        try:
            await asyncio.wait(waits, timeout=self._poll_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
