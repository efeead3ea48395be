"""One lifecycle for every background service: `start()` and `stop()`, safe in any order.

The contract (the idea of River's `startstop`):

- `start()` begins the service at once and returns an awaitable that resolves once it
  is up, or raises why it could not start. Starting a running service does nothing.
- `stop()` asks the service to wind down, waits until it has, and returns with it
  stopped. Stopping before starting, twice, or from two callers at once, is fine.
- A cancelled `stop()` hurries the service (by default, cancels it) and waits a
  bounded moment for it to end before passing the cancellation on: it never hangs.
- A stopped service can be started again (a start while a stop is under way does
  nothing: start once `stop()` has returned).

`BackgroundService` implements it once over one asyncio task; a service writes only
its `_serve(stopping)`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Coroutine, Iterable
from typing import Any, ClassVar, Protocol, runtime_checkable

import structlog

__all__ = ["CANCEL_GRACE_S", "BackgroundService", "Lifecycle", "stop_all", "until_stopped"]

log = structlog.get_logger(__name__)

# How long a cancelled stop waits for the service to end before giving up on it.
CANCEL_GRACE_S = 5.0


@runtime_checkable
class Lifecycle(Protocol):
    """Anything that follows the lifecycle contract."""

    def start(self) -> Awaitable[None]:
        """Begin at once; await the result to know the service is up (or why it is not)."""
        ...

    async def stop(self) -> None:
        """Wind down and return stopped; fine before start, twice, and when cancelled."""
        ...


class BackgroundService:
    """The contract over one asyncio task running `_serve(stopping)`.

    `_serve` returns promptly once `stopping` is set and tolerates being cancelled. A
    service that needs a moment before it serves (binding a port) sets `up_at_once =
    False` and calls `self._up()` when it serves. An error `_serve` ends on is raised to
    whoever awaits `start()` if it came before `_up()`, and logged (kept in `failure`)
    after.
    """

    name: str = "service"
    up_at_once: ClassVar[bool] = True

    def __init__(self) -> None:
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._ready: asyncio.Future[None] | None = None
        self.failure: BaseException | None = None

    @property
    def running(self) -> bool:
        """Whether a run is under way (started, and not yet ended)."""
        return self._task is not None and not self._task.done()

    def start(self) -> Awaitable[None]:
        """Begin serving in a background task (if not running); await to know it is up."""
        if not self.running:
            loop = asyncio.get_running_loop()
            self._stopping = asyncio.Event()
            self._ready = loop.create_future()
            self.failure = None
            self._task = loop.create_task(self._main(self._stopping, self._ready), name=self.name)
        assert self._ready is not None
        return asyncio.shield(self._ready)

    async def stop(self) -> None:
        """Ask the run to end and wait until it has; a cancelled wait hurries the run."""
        task = self._task
        if task is None:
            return
        self._stopping.set()
        try:
            await asyncio.wait({task})
        except asyncio.CancelledError:
            self._hurry(task)
            await asyncio.wait({task}, timeout=CANCEL_GRACE_S)
            task.cancel()  # the last resort, if hurrying was not enough
            raise
        finally:
            if task.done() and self._task is task:
                self._task = None

    async def wait_ended(self) -> None:
        """Return when the current run ends (at once if none is under way)."""
        task = self._task
        if task is not None:
            await asyncio.wait({task})

    def _hurry(self, task: asyncio.Task[None]) -> None:
        """A stop that cannot wait: end now. The run is cancelled unless a service whose
        stop has several steps (each needing the last) overrides this to rush them."""
        task.cancel()

    def _up(self) -> None:
        """The service serves: whoever awaits `start()` goes on."""
        if self._ready is not None and not self._ready.done():
            self._ready.set_result(None)

    async def _serve(self, stopping: asyncio.Event) -> None:
        raise NotImplementedError

    async def _main(self, stopping: asyncio.Event, ready: asyncio.Future[None]) -> None:
        if self.up_at_once:
            self._up()
        try:
            await self._serve(stopping)
        except Exception as exc:
            self.failure = exc
            if ready.done():
                log.exception("background service ended on an error", service=self.name)
            else:
                ready.set_exception(exc)
        finally:
            if not ready.done():
                ready.set_result(None)


async def until_stopped(stopping: asyncio.Event, body: Coroutine[Any, Any, None]) -> None:
    """Run `body` until it returns or `stopping` is set, then cancel it: for loops whose
    every pass may be dropped midway (a rolled-back transaction, a closed connection)."""
    running = asyncio.ensure_future(body)
    waiting = asyncio.ensure_future(stopping.wait())
    try:
        await asyncio.wait({running, waiting}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiting.cancel()
        running.cancel()
        await asyncio.wait({running})
    if not running.cancelled() and (error := running.exception()) is not None:
        raise error


async def stop_all(services: Iterable[Lifecycle]) -> None:
    """Stop each service in turn, in the order given, even when an earlier stop fails.

    Cancelled, it cancels the stops of the services not yet stopped too (each then ends
    within its grace), so a cancelled composite stop leaves nothing running behind it.
    """
    pending = list(services)
    while pending:
        service = pending.pop(0)
        try:
            await service.stop()
        except asyncio.CancelledError:
            await _cancel_stops(pending)
            raise
        except Exception:
            log.exception("a service failed to stop", service=type(service).__name__)


async def _cancel_stops(services: list[Lifecycle]) -> None:
    stops = [asyncio.ensure_future(service.stop()) for service in services]
    if not stops:
        return
    await asyncio.sleep(0)  # let each stop begin (ask its service) before cancelling it
    for stopping in stops:
        stopping.cancel()
    await asyncio.wait(stops, timeout=CANCEL_GRACE_S)
