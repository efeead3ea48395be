"""A worker: claims tasks, runs their steps, heartbeats its leases, and lets go cleanly.

Start/stop contract: `run(stop)` claims until `stop` is set, then stops claiming,
lets running steps finish for up to the drain timeout, and releases the leases of
those still running, so no task stays claimed by a process that has exited.
Wake-ups come by LISTEN/NOTIFY (reconnecting when the link is lost), with a poll
every `poll_s` as the fallback; each loop also returns expired leases to the queue.
Every background loop (claims, heartbeats, completions, listener, reaper) outlives
any failure: logged, counted in `health`, retried with backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import timedelta
from typing import Any

import asyncpg
import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reelqueue.config import Channels, Settings
from reelqueue.db import create_engine
from reelqueue.pipeline.reaper import Reaper
from reelqueue.pipeline.steps import (
    LeaseLost,
    PermanentStepError,
    StepContext,
    StepSet,
    TaskInfo,
    TransientStepError,
)
from reelqueue.pipeline.transitions import failure_outcome, success_path
from reelqueue.queue import (
    TASKS_CHANNEL,
    ClaimedTask,
    ClaimLimits,
    Finish,
    Listener,
    TaskRecord,
    exchange,
    heartbeat,
    waiting_status_for,
)
from reelqueue.queue.supervise import LoopHealth, attempt, describe_error
from reelqueue.statuses import StatusTable

__all__ = ["RETRYABLE", "Worker", "new_worker_id"]

log = structlog.get_logger(__name__)

RETRYABLE: tuple[type[BaseException], ...] = (TransientStepError, TimeoutError, ConnectionError)
MAX_COMPLETION_BATCH = 100
DATABASE_ERRORS = (OSError, SQLAlchemyError, asyncpg.PostgresError, asyncpg.InterfaceError)


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def new_worker_id() -> str:
    """host:pid:random, so a task's history says which process ran it."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


class Worker:
    """Runs up to `concurrency` steps at once from the shared queue."""

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
    ) -> None:
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
        self._table = StatusTable(settings.status_labels)
        self._lease = timedelta(seconds=settings.lease_s)
        self._running: dict[int, asyncio.Task[None]] = {}
        # Tasks whose lease this worker holds: claimed, and their end not yet written.
        # Slots are counted from these, so a step whose end is recorded frees its slot
        # at once, even while its coroutine is still winding down.
        self._held: set[int] = set()
        self._lost: set[int] = set()
        self._wake = asyncio.Event()
        self._completions: asyncio.Queue[tuple[Finish, asyncio.Future[bool]]] = asyncio.Queue()
        self._claiming = asyncio.Lock()
        self._claims_open = True
        self._starved = False
        self._shared = True  # whether the last claim found every cap with room to spare
        self._turns: tuple[AsyncConnection, asyncpg.Connection] | None = None
        self._last_reap = 0.0
        self.claims = LoopHealth("claims")
        self.heartbeats = LoopHealth("heartbeats")
        self.completions = LoopHealth("completions")
        self.reaper = Reaper(self._engine, settings)
        self._listener: Listener | None = None
        self.steps_done = 0
        self.started = asyncio.Event()

    @property
    def health(self) -> Iterator[LoopHealth]:
        """Each of this worker's loops: claims, heartbeats, completions, listener, reaper."""
        yield from (self.claims, self.heartbeats, self.completions)
        if self._listener is not None:
            yield self._listener.health
        yield self.reaper.health

    def _limits(self) -> ClaimLimits:
        caps = {c.id: c.max_concurrent for c in self._channels.channels if c.active}
        return ClaimLimits(channel_caps=caps, step_caps=dict(self._settings.step_caps))

    async def run(self, stop: asyncio.Event) -> None:
        """Claim and run steps until `stop` is set; then drain and release."""
        listener = self._listener = Listener(
            self._url,
            [TASKS_CHANNEL],
            lambda _channel, _payload: self._wake.set(),
            on_reconnect=self._wake.set,
            health=LoopHealth("wake-ups"),
        )
        listener.start()
        beating = asyncio.create_task(self._heartbeats(), name="heartbeats")
        completing = asyncio.create_task(self._complete(), name="completer")
        for loop in (self.claims, self.reaper.health):
            loop.started()
        self.started.set()
        log.info("worker started", worker_id=self.worker_id, concurrency=self._concurrency)
        try:
            while not stop.is_set():
                # Cleared before claiming: a wake-up arriving meanwhile is for work the
                # claim may not have seen, and must send us round again.
                self._wake.clear()
                await attempt(self.claims, self._claim, worker_id=self.worker_id)
                await self._reap()
                await self._sleep(stop)
        finally:
            self._claims_open = False
            await self._drain()
            for background in (beating, completing):
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
            await listener.stop()
            if self._turns is not None:
                with contextlib.suppress(*DATABASE_ERRORS):
                    await self._turns[0].close()
            if self._owns_engine:
                await self._engine.dispose()
            for loop in self.health:
                loop.stopped()
            log.info("worker stopped", worker_id=self.worker_id, steps_done=self.steps_done)

    async def _sleep(self, stop: asyncio.Event) -> None:
        """Until a wake-up, a free slot after a step ends, stop, or the poll interval."""
        waits = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        try:
            await asyncio.wait(waits, timeout=self._poll_s, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()

    def _free_slots(self, finishing: int = 0) -> int:
        """Slots to claim for, counting the `finishing` tasks as already gone."""
        if not self._claims_open:
            return 0
        return max(0, self._concurrency - len(self._held) + finishing)

    async def _claim(self) -> None:
        """Fill the free slots; most claims instead ride along with a completion."""
        async with self._claiming:
            if self._free_slots() == 0:
                return
            await self._exchange([])

    async def _exchange(self, finished: list[Finish]) -> list[bool]:
        """One turn (hold `_claiming`): record `finished`, claim for the slots then free,
        and start what was claimed.

        A worker whose last claim came back short (an empty queue, or caps full across
        the fleet) records its finishes alone: the slots they free then show, and every
        worker has its chance at them, instead of this one refilling them unseen.
        """
        wanted = 0 if finished and self._starved else self._free_slots(len(finished))
        turn = functools.partial(
            exchange, worker_id=self.worker_id, lease=self._lease, limits=self._limits(),
            slots=self._concurrency,
        )  # fmt: skip
        async with self._turn_connection() as conn:
            done = await turn(conn, finished=finished, claim=wanted, shared=self._shared)
            if wanted and self._shared and done.tight:
                # The caps became tight since the last turn: claim again, alone.
                again = await turn(conn, claim=wanted, shared=False)
                done = dataclasses.replace(done, claimed=again.claimed, tight=again.tight)
        self._held.difference_update(item.task.id for item in finished)
        if wanted:
            self._shared = not done.tight
            self._starved = len(done.claimed) < wanted
        self._start_all(done.claimed)
        return done.recorded

    @contextlib.asynccontextmanager
    async def _turn_connection(self) -> AsyncIterator[asyncpg.Connection]:
        """The driver connection turns run on (one at a time), checked out of the pool
        once and kept: each turn is one statement. Dropped on any error mid-turn."""
        if self._turns is None:
            pooled = await self._engine.connect().start()
            try:
                driver = (await pooled.get_raw_connection()).driver_connection
            except BaseException:
                await pooled.close()
                raise
            self._turns = (pooled, driver)
        pooled, driver = self._turns
        try:
            yield driver
        except BaseException:
            self._turns = None
            with contextlib.suppress(*DATABASE_ERRORS):
                await pooled.invalidate()
            raise

    async def _reap(self) -> None:
        """Return tasks whose worker stopped heartbeating, at most once per poll interval."""
        now = asyncio.get_running_loop().time()
        if now - self._last_reap < self._poll_s:
            return
        self._last_reap = now
        try:
            await self.reaper.reap()
        except Exception as exc:
            self.reaper.health.failed(exc)
            # Try again after the backoff, not a whole poll interval later.
            self._last_reap = now - self._poll_s + self.reaper.health.backoff_s()
            log.warning("reaper failed", error=describe_error(exc))
        else:
            self.reaper.health.ok()

    def _start_all(self, claimed: list[ClaimedTask]) -> None:
        for one in claimed:
            task = asyncio.create_task(self._execute(one), name=f"task-{one.task.id}")
            self._running[one.task.id] = task
            self._held.add(one.task.id)
            task.add_done_callback(functools.partial(self._ended, one.task.id))

    def _ended(self, task_id: int, _task: asyncio.Task[None]) -> None:
        self._running.pop(task_id, None)
        self._held.discard(task_id)
        self._lost.discard(task_id)
        if self._free_slots() > 0:
            self._wake.set()

    async def _heartbeats(self) -> None:
        interval = self._lease.total_seconds() / 3
        while True:
            # After a failure, sooner: the leases run out while the database is away.
            failing = self.heartbeats.streak > 0
            await asyncio.sleep(min(interval, self.heartbeats.backoff_s()) if failing else interval)
            ids = list(self._held)
            if not ids:
                self.heartbeats.ok()
                continue
            try:
                async with self._engine.begin() as conn:
                    lost = await heartbeat(
                        conn, worker_id=self.worker_id, task_ids=ids, lease=self._lease
                    )
            except Exception as exc:
                self.heartbeats.failed(exc)
                log.warning("heartbeat failed", error=describe_error(exc))
                continue
            self.heartbeats.ok()
            for task_id in lost & self._held:  # not those whose end was recorded meanwhile
                log.warning("lease lost; abandoning the step", task_id=task_id)
                self._lost.add(task_id)
                running = self._running.get(task_id)
                if running is not None:
                    running.cancel()

    async def _check_lease(self, task_id: int) -> None:
        if task_id in self._lost:
            raise LeaseLost(f"task {task_id} is no longer held by {self.worker_id}")

    async def _execute(self, claimed: ClaimedTask) -> None:
        task, step = claimed.task, claimed.step
        bound = log.bind(notion_page_id=task.notion_page_id, task_id=task.id, step=step)
        if step is None:
            return
        channel = self._channels.get(task.channel)
        step_set = self._step_sets.get(channel.step_set if channel else "demo")
        if channel is None or step_set is None:
            await self._fail(claimed, task.status, f"no channel or step set for {task.channel!r}",
                             transient=False)  # fmt: skip
            return
        status = task.status
        try:
            context = StepContext(
                task=TaskInfo(
                    id=task.id, notion_page_id=task.notion_page_id, title=task.title,
                    topic=task.topic, story_direction=task.story_direction,
                    channel=task.channel, priority=task.priority, attempts=task.attempts,
                ),
                step=step,
                channel=channel,
                settings=self._settings,
                artifacts_dir=self._settings.artifacts_path / str(task.id),
                outputs=dict(task.outputs),
                log=bound,
                heartbeat=lambda: self._check_lease(task.id),
            )  # fmt: skip
            result = await step_set[step](context)
        except LeaseLost:
            bound.warning("step abandoned: the task was taken away")
            return
        except asyncio.CancelledError:
            if task.id not in self._lost:
                await asyncio.shield(self._release(task, status, step))
            raise
        except RETRYABLE as exc:
            await self._fail(claimed, status, str(exc) or type(exc).__name__, transient=True)
            return
        except PermanentStepError as exc:
            await self._fail(claimed, status, str(exc), transient=False)
            return
        except Exception as exc:  # a step's own bug: report it on the page, do not retry
            bound.exception("step crashed")
            await self._fail(claimed, status, f"{type(exc).__name__}: {exc}", transient=False)
            return
        values: dict[str, Any] = {
            "outputs": {**task.outputs, step: result.as_json()},
            "step_attempts": 0,
            "resume_step": None,
            "error_log": "",
        }
        if result.url:
            values["youtube_url"] = result.url
        path = success_path(self._table, status, channel)
        await self._finish(task, status, path, values)
        self.steps_done += 1
        bound.info("step done", to_status=path[-1][0])

    async def _finish(
        self, task: TaskRecord, status: str, path: list[tuple[str, str]], values: dict[str, Any]
    ) -> bool:
        """Hand a step's end to the completer; True once recorded, False if the lease was lost."""
        done: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._completions.put_nowait((Finish(task, status, path, values), done))
        recorded = await done
        if not recorded:
            log.warning("result discarded: the lease was lost", task_id=task.id)
        return recorded

    async def _complete(self) -> None:
        """Record finished steps in batches: one transaction for all that are waiting."""
        while True:
            batch = [await self._completions.get()]
            while not self._completions.empty() and len(batch) < MAX_COMPLETION_BATCH:
                batch.append(self._completions.get_nowait())
            items = [item for item, _ in batch]
            try:
                outcomes = await self._write_completions(items)
            except Exception as exc:  # not the database's: never leave a step waiting forever
                self.completions.failed(exc)
                log.exception("results not recorded; the reaper will retry the steps",
                              tasks=[item.task.id for item in items])  # fmt: skip
                self._held.difference_update(item.task.id for item in items)
                outcomes = [False] * len(items)
            for (_, done), outcome in zip(batch, outcomes, strict=True):
                if not done.done():
                    done.set_result(outcome)

    async def _write_completions(self, items: list[Finish]) -> list[bool]:
        """Write, claiming the slots they free in the same round trip; retry while the
        database is away (up to the lease), then give up."""
        deadline = asyncio.get_running_loop().time() + self._lease.total_seconds()
        delay = 0.1
        while True:
            try:
                async with self._claiming:
                    recorded = await self._exchange(items)
                self.completions.ok()
                return recorded
            except DATABASE_ERRORS as exc:
                self.completions.failed(exc)
                if asyncio.get_running_loop().time() + delay > deadline:
                    log.warning(
                        "results not recorded; the reaper will retry the steps",
                        tasks=[item.task.id for item in items],
                        error=_first_line(exc),
                    )
                    self._held.difference_update(item.task.id for item in items)
                    return [False] * len(items)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _fail(
        self, claimed: ClaimedTask, status: str, message: str, *, transient: bool
    ) -> None:
        task, step = claimed.task, claimed.step
        assert step is not None
        outcome = failure_outcome(
            self._table, step=step, running_status=status, attempts=task.attempts,
            step_attempts=task.step_attempts + 1,
            max_attempts=self._settings.max_attempts, transient=transient, message=message,
            retry_base_s=self._settings.retry_base_s,
        )  # fmt: skip
        log.warning(
            "step failed",
            notion_page_id=task.notion_page_id,
            task_id=task.id,
            step=step,
            to_status=outcome.path[-1][0],
            error=message,
        )
        await self._finish(task, status, outcome.path, outcome.values)

    async def _release(self, task: TaskRecord, status: str, step: str) -> None:
        """Give a task back untouched (drain timeout): claimable again at once."""
        target = waiting_status_for(step)
        values = {"resume_step": step if target == "queued" else None}
        path = [(target, f"released by {self.worker_id} on shutdown")]
        with contextlib.suppress(Exception):
            await self._finish(task, status, path, values)

    async def _drain(self) -> None:
        if not self._running:
            return
        timeout = self._settings.drain_timeout_s
        log.info("draining", running=len(self._running), timeout_s=timeout)
        _, pending = await asyncio.wait(list(self._running.values()), timeout=timeout)
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending, timeout=10)
