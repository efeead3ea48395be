"""A token bucket with priority lanes, one per Notion token for the whole process.

Callers wait in the lane of their priority; whenever a token is due, the first caller of
the most urgent non-empty lane gets it (FIFO within a lane). A newcomer never overtakes a
waiter. One dispatcher task sleeps exactly until the next token is due, so there is no
polling. The bucket's arithmetic is tied to a monotonic clock, not to an event loop: the
waiters and the dispatcher live in the running loop and are dropped when a later call
comes from another loop (pytest runs each test in a loop of its own).
"""

from __future__ import annotations

import asyncio
import enum
import hashlib
import time
from collections import deque
from collections.abc import Awaitable, Callable

import structlog

log = structlog.get_logger(__name__)

_MIN_SLEEP_S = 1e-6

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class Priority(enum.IntEnum):
    """Which callers go first when the bucket is empty: lower values are served first."""

    INGEST = 0
    PUSH = 1


class TokenBucket:
    """`rate` tokens a second, at most `burst` saved up; `acquire()` takes one.

    `clock` and `sleep` are injectable so tests can drive time by hand.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        _check(rate, burst)
        self._rate = float(rate)
        self._burst = burst
        self._clock = clock
        self._sleep = sleep
        self._tokens = float(burst)
        self._updated = clock()
        self._lanes: dict[Priority, deque[asyncio.Future[None]]] = {p: deque() for p in Priority}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatcher: asyncio.Task[None] | None = None

    @property
    def rate(self) -> float:
        """Tokens added per second."""
        return self._rate

    @property
    def burst(self) -> int:
        """Most tokens the bucket holds."""
        return self._burst

    @property
    def waiting(self) -> int:
        """Callers waiting for a token in the current loop."""
        return sum(1 for lane in self._lanes.values() for f in lane if not f.done())

    def configure(self, rate: float, burst: int) -> None:
        """Change rate and burst from now on; tokens already earned are kept up to the burst."""
        _check(rate, burst)
        self._refill()
        self._rate = float(rate)
        self._burst = burst
        self._tokens = min(self._tokens, float(burst))

    def available(self) -> float:
        """Tokens in the bucket right now (fractional)."""
        self._refill()
        return self._tokens

    async def acquire(self, priority: Priority = Priority.INGEST) -> None:
        """Wait for a token: the most urgent lane first, first come first served within it."""
        loop = self._bind_loop()
        self._refill()
        if self._tokens >= 1 and not self.waiting:
            self._tokens -= 1
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._lanes[Priority(priority)].append(waiter)
        self._wake(loop)
        try:
            await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._tokens = min(self._tokens + 1, float(self._burst))
                self._wake(loop)
            raise

    def _refill(self) -> None:
        now = self._clock()
        elapsed = now - self._updated
        if elapsed > 0:
            self._tokens = min(float(self._burst), self._tokens + elapsed * self._rate)
        self._updated = now

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:
            if self._loop is not None and self._loop.is_running():
                raise RuntimeError("a TokenBucket cannot serve two running event loops at once")
            self._loop = loop
            self._dispatcher = None
            for lane in self._lanes.values():
                lane.clear()
        return loop

    def _wake(self, loop: asyncio.AbstractEventLoop) -> None:
        if self._dispatcher is None or self._dispatcher.done():
            self._dispatcher = loop.create_task(self._dispatch(), name="notion-rate-limiter")

    def _next_waiter(self) -> asyncio.Future[None] | None:
        for priority in Priority:
            lane = self._lanes[priority]
            while lane and lane[0].done():
                lane.popleft()
            if lane:
                return lane.popleft()
        return None

    async def _dispatch(self) -> None:
        """Hand out tokens to waiters as they come due; return when nobody waits."""
        while True:
            self._refill()
            while self._tokens >= 1:
                waiter = self._next_waiter()
                if waiter is None:
                    return
                self._tokens -= 1
                waiter.set_result(None)
            if not self.waiting:
                return
            # At least a microsecond: a shortfall of one float ulp must still move the clock.
            await self._sleep(max((1 - self._tokens) / self._rate, _MIN_SLEEP_S))


def _check(rate: float, burst: int) -> None:
    if not rate > 0:
        raise ValueError(f"rate must be greater than 0 (got {rate!r})")
    if burst < 1:
        raise ValueError(f"burst must be at least 1 (got {burst!r})")


_buckets: dict[str, TokenBucket] = {}


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def limiter_for(token: str, rate: float, burst: int) -> TokenBucket:
    """The process's one bucket for this token (keyed by a hash of it), set to rate and burst."""
    key = _key(token)
    bucket = _buckets.get(key)
    if bucket is None:
        bucket = _buckets[key] = TokenBucket(rate, burst)
    elif (bucket.rate, bucket.burst) != (float(rate), burst):
        log.debug(
            "notion rate limit changed",
            token_hash=key,
            rate=rate,
            burst=burst,
            was_rate=bucket.rate,
            was_burst=bucket.burst,
        )
        bucket.configure(rate, burst)
    return bucket
