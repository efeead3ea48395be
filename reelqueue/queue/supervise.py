"""Background loops that outlive their failures: each is logged, counted, and retried with backoff.

A `LoopHealth` says how one loop is doing (ok, failing since when and why, how many
failures so far); `supervise` runs a loop again after any exception, and `attempt` runs
one pass of a loop, so a database restart or a bug in one pass never leaves a task dead.
Cancellation is never caught: stopping a loop stays prompt.
"""

from __future__ import annotations

import asyncio
import random
import re
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any, Literal

import asyncpg
import structlog
from sqlalchemy.exc import SQLAlchemyError

from reelqueue.errors import ReelqueueError

__all__ = [
    "BACKOFF_BASE_S",
    "BACKOFF_CAP_S",
    "LoopHealth",
    "LoopState",
    "attempt",
    "combined",
    "describe_error",
    "supervise",
]

log = structlog.get_logger(__name__)

LoopState = Literal["ok", "failing", "starting", "idle"]

BACKOFF_BASE_S = 0.1
# Short enough that a loop is back within a few seconds of its database or Notion.
BACKOFF_CAP_S = 2.0
MAX_ERROR_CHARS = 300
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/]*@")
# Failures of the database, the network or Notion: expected in an outage, logged in one line.
# Anything else is a bug, logged with its traceback.
OUTAGE_ERRORS = (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, SQLAlchemyError,
                 ReelqueueError)  # fmt: skip


def describe_error(error: BaseException) -> str:
    """The error's type and first line, with any URL password masked: fit for /healthz."""
    lines = _URL_PASSWORD.sub(r"\1***@", str(error)).strip().splitlines()
    text = f"{type(error).__name__}: {lines[0]}" if lines else type(error).__name__
    return text[:MAX_ERROR_CHARS]


class LoopHealth:
    """One background loop's state: ok, failing (since when, why), starting, or idle (not run).

    `failures` counts every failure since the process started; `streak` the failures
    since the last success, which sets the next backoff.
    """

    def __init__(
        self, name: str, *, clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ) -> None:
        self.name = name
        self._clock = clock
        self.state: LoopState = "idle"
        self.since: datetime = clock()
        self.failures = 0
        self.streak = 0
        self.last_error: str | None = None
        self.last_error_at: datetime | None = None
        self.last_ok_at: datetime | None = None

    def _enter(self, state: LoopState) -> None:
        if self.state != state:
            self.state, self.since = state, self._clock()

    def started(self) -> None:
        """The loop begins (or begins again): not yet known to work."""
        self.streak = 0
        self._enter("starting")

    def stopped(self) -> None:
        """The loop no longer runs in this process (stopped, or another process leads)."""
        self.streak = 0
        self._enter("idle")

    def ok(self) -> None:
        """A pass succeeded."""
        self.streak = 0
        self.last_ok_at = self._clock()
        self._enter("ok")

    def failed(self, error: BaseException | str) -> None:
        """A pass failed: count it and keep why (without secrets)."""
        self.failures += 1
        self.streak += 1
        self.last_error = error if isinstance(error, str) else describe_error(error)
        self.last_error_at = self._clock()
        self._enter("failing")

    def backoff_s(self, cap_s: float = BACKOFF_CAP_S) -> float:
        """How long to wait before the next try: doubling per failure in a row, capped."""
        if self.streak == 0:
            return 0.0
        delay: float = min(cap_s, BACKOFF_BASE_S * 2.0 ** min(self.streak - 1, 30))
        return delay * random.uniform(0.8, 1.0)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: state, since when, failures, and the last error with its time."""
        return {
            "state": self.state,
            "since": _iso(self.since),
            "failures": self.failures,
            "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at),
            "last_ok_at": _iso(self.last_ok_at),
        }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


_RANK: dict[LoopState, int] = {"failing": 3, "starting": 2, "ok": 1, "idle": 0}


def combined(name: str, parts: Iterable[LoopHealth]) -> LoopHealth:
    """One view of several loops of a role: the worst state, all failures, the latest error."""
    parts = list(parts)
    view = LoopHealth(name)
    if not parts:
        return view
    worst = max(parts, key=lambda p: (_RANK[p.state], -p.since.timestamp()))
    same = [p for p in parts if p.state == worst.state]
    view.state, view.since = worst.state, min(p.since for p in same)
    view.failures = sum(p.failures for p in parts)
    view.streak = max(p.streak for p in parts)
    errored = [p for p in parts if p.last_error_at is not None]
    if errored:
        latest = max(errored, key=lambda p: p.last_error_at or p.since)
        view.last_error, view.last_error_at = latest.last_error, latest.last_error_at
    oks = [p.last_ok_at for p in parts if p.last_ok_at is not None]
    view.last_ok_at = max(oks) if oks else None
    return view


def _log_failure(
    health: LoopHealth, error: Exception, delay: float, what: str, **context: Any
) -> None:
    # A bug's traceback once per run of failures: enough to find it, not a flood.
    traceback = health.streak == 1 and not isinstance(error, OUTAGE_ERRORS)
    log.warning(
        what,
        loop=health.name,
        error=describe_error(error),
        failures=health.failures,
        in_a_row=health.streak,
        retry_in_s=round(delay, 2),
        exc_info=error if traceback else None,
        **context,
    )


async def attempt(
    health: LoopHealth,
    action: Callable[[], Awaitable[object]],
    *,
    cap_s: float = BACKOFF_CAP_S,
    **context: Any,
) -> bool:
    """Run one pass of a loop; log, count and back off after any exception. Whether it worked."""
    try:
        await action()
    except Exception as exc:
        health.failed(exc)
        delay = health.backoff_s(cap_s)
        _log_failure(health, exc, delay, "pass failed; retrying", **context)
        await asyncio.sleep(delay)
        return False
    health.ok()
    return True


async def supervise(
    health: LoopHealth,
    body: Callable[[], Awaitable[object]],
    *,
    cap_s: float = BACKOFF_CAP_S,
    **context: Any,
) -> None:
    """Run `body` until it returns; after any exception, log and count it, back off, run it again.

    `body` should call `health.ok()` when a pass works, so the backoff starts short again.
    """
    if health.state == "idle":
        health.started()
    while True:
        try:
            await body()
        except Exception as exc:
            health.failed(exc)
            delay = health.backoff_s(cap_s)
            _log_failure(health, exc, delay, "background loop failed; starting it again", **context)
            await asyncio.sleep(delay)
        else:
            return
