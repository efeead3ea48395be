"""Benchmark worker processes: spawned (so the GIL caps none), set off at once, stopped at once."""

from __future__ import annotations

import asyncio
import multiprocessing
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.queues import Queue
from multiprocessing.synchronize import Event
from typing import Any

from bench.databases import server_clock

SPAWN = multiprocessing.get_context("spawn")


@dataclass(frozen=True)
class Cues:
    """Handed to each process of a fleet: it says it is ready, waits for go, runs until stop."""

    ready: Queue[str]
    go: Event
    stop: Event

    async def set_off(self, name: str) -> None:
        """Say this process is ready, then wait for the fleet's go."""
        self.ready.put(name)
        await asyncio.to_thread(self.go.wait)

    async def stopped(self) -> None:
        """Wait until the parent says stop."""
        await asyncio.to_thread(self.stop.wait)


class Fleet:
    """One process per `args` running `target(*args, cues)`: started on entering the `with`,
    told to stop and joined (each for up to `join_s`) on leaving it."""

    def __init__(
        self, target: Callable[..., None], args: Iterable[tuple[Any, ...]], join_s: float = 60
    ) -> None:
        self.cues = Cues(SPAWN.Queue(), SPAWN.Event(), SPAWN.Event())
        self._processes = [SPAWN.Process(target=target, args=(*a, self.cues)) for a in args]
        self._join_s = join_s

    def __enter__(self) -> Fleet:
        for process in self._processes:
            process.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.cues.stop.set()
        for process in self._processes:
            process.join(timeout=self._join_s)

    def wait_ready(self) -> None:
        """Until every process has said it is ready (a minute at most each)."""
        for _ in self._processes:
            self.cues.ready.get(timeout=60)

    def release(self, url: str) -> float:
        """Once every process is ready, read the server's clock at `url`, then say go: the
        reading is when the run started."""
        self.wait_ready()
        started = asyncio.run(server_clock(url))
        self.cues.go.set()
        return started
