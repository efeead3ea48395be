"""A worker: the services that claim tasks, run their steps, keep their leases, and let go.

Each service has one idea: the claim loop (`Claimer`), the steps (`StepRunner`, over the
`HeldTasks`), the completer, the heartbeats, the wake-up listener and the reaper. The
worker starts them and, stopped, stops claiming, lets running steps finish for up to
the drain timeout, and gives back the tasks of those still running, so no task stays
claimed by a process that has exited. Wake-ups come by LISTEN/NOTIFY (reconnecting
when the link is lost), with a poll every `poll_s` as the fallback. Every loop outlives
any failure: logged, counted in `health`, retried with backoff.
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from collections.abc import Iterator
from datetime import timedelta

import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.config import Channels, Settings
from reelqueue.db import create_engine
from reelqueue.pipeline.claimer import Claimer
from reelqueue.pipeline.completer import Completer
from reelqueue.pipeline.execute import RETRYABLE, StepRunner
from reelqueue.pipeline.heartbeat import Heartbeats
from reelqueue.pipeline.held import HeldTasks
from reelqueue.pipeline.reaper import Reaper
from reelqueue.pipeline.steps import StepSet
from reelqueue.pipeline.turns import Turns
from reelqueue.queue import TASKS_CHANNEL, ClaimedTask, ClaimLimits, Listener
from reelqueue.queue.lifecycle import BackgroundService, stop_all
from reelqueue.queue.supervise import LoopHealth
from reelqueue.statuses import StatusTable

__all__ = ["RETRYABLE", "Worker", "new_worker_id"]

log = structlog.get_logger(__name__)


def new_worker_id() -> str:
    """host:pid:random, so a task's history says which process ran it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker(BackgroundService):
    """Runs up to `concurrency` steps at once from the shared queue.

    `started` is set once it claims; `claimer` and `listener` are the current run's
    (for tests: `claimer.went_round`, `listener.connected`).
    """

    name = "worker"
    up_at_once = False

    def __init__(
        self,
        database_url: str,
        settings: Settings,
        channels: Channels,
        step_sets: dict[str, StepSet],
        *,
        concurrency: int = 4,
        poll_s: float = 2.0,
        worker_id: str | None = None,
        engine: AsyncEngine | None = None,
        table: StatusTable | None = None,
    ) -> None:
        super().__init__()
        self._table = table or StatusTable(settings.status_labels)
        self.worker_id = worker_id or new_worker_id()
        self._url = database_url
        self._settings = settings
        self._channels = channels
        self._step_sets = step_sets
        self._concurrency = concurrency
        self._poll_s = poll_s
        self._owns_engine = engine is None
        self._engine = engine or create_engine(
            database_url, pool_size=max(2, concurrency), pre_ping=False
        )
        self._lease = timedelta(seconds=settings.lease_s)
        self.claims = LoopHealth("claims")
        self.heartbeats = LoopHealth("heartbeats")
        self.completions = LoopHealth("completions")
        self.wake_ups = LoopHealth("wake-ups")
        self.reaping = LoopHealth("reaper")
        self.claimer: Claimer | None = None
        self.listener: Listener | None = None
        self.steps_done = 0
        self.started = asyncio.Event()
        self._hurried = asyncio.Event()

    @property
    def health(self) -> Iterator[LoopHealth]:
        """Each of this worker's loops: claims, heartbeats, completions, listener, reaper."""
        yield from (self.claims, self.heartbeats, self.completions, self.wake_ups, self.reaping)

    def wake(self) -> None:
        """Look for work now rather than at the next poll."""
        if self.claimer is not None:
            self.claimer.wake()

    async def run(self, stop: asyncio.Event) -> None:
        """Start, work until `stop` is set (or the worker ends), then stop: drain and release."""
        try:
            await self.start()
            ended = asyncio.ensure_future(self.wait_ended())
            stopped = asyncio.ensure_future(stop.wait())
            try:
                await asyncio.wait({ended, stopped}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                ended.cancel()
                stopped.cancel()
        finally:
            await self.stop()

    def _limits(self) -> ClaimLimits:
        caps = {c.id: c.max_concurrent for c in self._channels.channels if c.active}
        return ClaimLimits(channel_caps=caps, step_caps=dict(self._settings.step_caps))

    def _hurry(self, task: asyncio.Task[None]) -> None:
        """A stop that cannot wait: give the running steps back now, skipping the drain."""
        self._hurried.set()

    def _counted(self) -> None:
        self.steps_done += 1

    async def _serve(self, stopping: asyncio.Event) -> None:
        self._hurried.clear()
        claimer: Claimer | None = None
        runner: StepRunner | None = None

        def slot_freed() -> None:
            if claimer is not None:
                claimer.wake()

        held = HeldTasks(self._concurrency, on_free=slot_freed)

        def begin(claimed: list[ClaimedTask]) -> None:
            assert runner is not None
            for one in claimed:
                held.run(one.task.id, runner.execute(one))

        turns = Turns(
            self._engine, held, worker_id=self.worker_id, lease=self._lease,
            limits=self._limits, on_claimed=begin,
        )  # fmt: skip
        completer = Completer(turns, held, lease=self._lease, health=self.completions)
        heartbeats = Heartbeats(
            self._engine, held, worker_id=self.worker_id, lease=self._lease,
            health=self.heartbeats, table=self._table,
        )  # fmt: skip
        runner = StepRunner(
            self._settings, self._channels, self._step_sets, worker_id=self.worker_id,
            finish=completer.finish, extend_lease=heartbeats.extend, is_lost=held.is_lost,
            on_done=self._counted, table=self._table,
        )  # fmt: skip
        claimer = self.claimer = Claimer(
            turns, held, poll_s=self._poll_s, health=self.claims, worker_id=self.worker_id
        )
        listener = self.listener = Listener(
            self._url,
            [TASKS_CHANNEL],
            lambda _channel, _payload: claimer.wake(),
            on_reconnect=claimer.wake,
            health=self.wake_ups,
        )
        reaper = Reaper(self._engine, self._settings, interval_s=self._poll_s,
                        health=self.reaping, table=self._table)  # fmt: skip
        try:
            for service in (completer, heartbeats, listener, reaper, claimer):
                service.start()
            self._up()
            self.started.set()
            log.info("worker started", worker_id=self.worker_id, concurrency=self._concurrency)
            await stopping.wait()
        finally:
            # Claims first; steps then drain (their ends go through the completer), and
            # what the completer still holds is written before it stops.
            await stop_all([claimer])
            held.close()
            await held.drain(self._settings.drain_timeout_s, self._hurried)
            await stop_all([completer, heartbeats, listener, reaper])
            await turns.close()
            if self._owns_engine:
                await self._engine.dispose()
            for loop in self.health:
                loop.stopped()
            self.started.clear()
            log.info("worker stopped", worker_id=self.worker_id, steps_done=self.steps_done)
