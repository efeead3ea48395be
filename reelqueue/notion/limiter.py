"""Notion's rate limits on our side: one limiter per token, holds shared per workspace.

`TokenBucket` is a token bucket with priority lanes; `NotionLimiter`, the one per Notion
token for the whole process (`limiter_for`), adds what Notion's Request limits page
describes: a hold of every request of the token after a 429 (or of every token of the
workspace, when the 429 names the workspace limit) and a budget of requests per 60-s
window, configured or learned from the first per-connection 429.

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
import math
import time
from bisect import bisect_left, bisect_right
from collections import Counter, deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

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
        self._lanes: dict[Priority, deque[asyncio.Future[float]]] = {p: deque() for p in Priority}
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

    async def acquire(self, priority: Priority = Priority.INGEST, *, first: bool = False) -> float:
        """Wait for a token: the most urgent lane first, first come first served within it.

        `first` puts the caller at the head of its lane (a retry of a refused request).
        Returns the clock's reading when the token was handed out.
        """
        loop = self._bind_loop()
        self._refill()
        now = self._clock()
        if self._tokens >= 1 and not self.waiting and self._blocked_for(now) <= 0:
            self._tokens -= 1
            self._granted(now, Priority(priority))
            return now
        waiter: asyncio.Future[float] = loop.create_future()
        lane = self._lanes[Priority(priority)]
        if first:
            lane.appendleft(waiter)
        else:
            lane.append(waiter)
        self._wake(loop)
        try:
            return await waiter
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

    def _next_waiter(self) -> tuple[Priority, asyncio.Future[float]] | None:
        for priority in Priority:
            lane = self._lanes[priority]
            while lane and lane[0].done():
                lane.popleft()
            if lane:
                return priority, lane.popleft()
        return None

    def _blocked_for(self, now: float) -> float:
        """Seconds until gates other than the bucket allow a request (none here)."""
        return 0.0

    def _granted(self, now: float, priority: Priority) -> None:
        """Called once for every token handed out, at the moment it is handed out."""

    async def _dispatch(self) -> None:
        """Hand out tokens to waiters as they come due; return when nobody waits."""
        while True:
            self._refill()
            blocked = self._blocked_for(self._clock())
            while self._tokens >= 1 and blocked <= 0:
                next_up = self._next_waiter()
                if next_up is None:
                    return
                priority, waiter = next_up
                self._tokens -= 1
                now = self._clock()
                self._granted(now, priority)
                waiter.set_result(now)
                blocked = self._blocked_for(self._clock())
            if not self.waiting:
                return
            shortfall = (1 - self._tokens) / self._rate if self._tokens < 1 else 0.0
            # At least a microsecond: a shortfall of one float ulp must still move the clock.
            await self._sleep(max(shortfall, blocked, _MIN_SLEEP_S))


def _check(rate: float, burst: int) -> None:
    if not rate > 0:
        raise ValueError(f"rate must be greater than 0 (got {rate!r})")
    if burst < 1:
        raise ValueError(f"burst must be at least 1 (got {burst!r})")


DEFAULT_WINDOW_S = 60.0
PACING_SLACK_S = 1.0
LEARN_MARGIN_S = 1.0
LEARNED_BUDGET_TTL_S = 1800.0
CONNECTION = "connection"
WORKSPACE = "workspace"


def limit_scope(reason: str | None) -> str:
    """Which limit a 429's `rate_limit_reason` names: "workspace" or else "connection".

    Notion documents a per-connection and a per-workspace limit and says other reasons
    may appear; anything not naming the workspace is held on the connection (the token).
    """
    return WORKSPACE if reason is not None and WORKSPACE in reason.lower() else CONNECTION


def teaches_budget(reason: str | None) -> bool:
    """Whether a 429 with this reason tells the size of the connection's window budget.

    Only a reason naming the per-connection limit does; a 429 without a reason (the older
    "3 requests a second" limit) or with another reason is waited out, not learned from.
    """
    if reason is None:
        return False
    text = reason.lower()
    return WORKSPACE not in text and any(h in text for h in ("connection", "integration"))


def learn_budget(
    accepted_sent_at: Iterable[float],
    refused_sent_at: float,
    retry_after: float,
    window_s: float,
    *,
    margin_s: float = LEARN_MARGIN_S,
) -> int:
    """How many requests the window that refused us allowed: those sent since it began.

    Notion refused the request sent at `refused_sent_at` no earlier than that, and its
    window resets at most `retry_after` seconds after the refusal, so the window began at
    most `window_s` before `refused_sent_at + retry_after`; `margin_s` widens the look back
    by Retry-After's whole-second rounding, so the whole window is counted (and at most
    that second before it). Counted are the accepted requests sent since.
    """
    start = refused_sent_at + retry_after - window_s - margin_s
    return sum(1 for sent in accepted_sent_at if sent >= start)


@dataclass(frozen=True)
class RateLimitStatus:
    """What a token's limiter knows right now, for people: read-only, JSON-ready by `as_dict`.

    `limited_until` is when the current hold after a 429 ends (UTC), `limit` the limit
    that set it ("connection" or "workspace") and `reason` Notion's `rate_limit_reason`.
    `budget` is the requests per `window_s` the limiter keeps to ("configured" or
    "learned" in `budget_source`; None and "none" while it paces by the bucket alone).
    `requests_this_window` counts requests sent in the last `window_s` seconds,
    `push_requests_this_window` those of them sent at push-back's priority.
    """

    limited_until: datetime | None
    limit: str | None
    reason: str | None
    budget: int | None
    budget_source: str
    window_s: float
    requests_this_window: int
    push_requests_this_window: int
    rate: float
    burst: int
    rate_limited: int
    waiting: int
    workspace_id: str | None

    @property
    def is_limited(self) -> bool:
        """True while requests are held after a 429."""
        return self.limited_until is not None

    def as_dict(self) -> dict[str, Any]:
        """A plain copy with `limited_until` as an ISO 8601 string."""
        data = asdict(self)
        data["limited_until"] = self.limited_until.isoformat() if self.limited_until else None
        return data


class WorkspaceGate:
    """The hold shared by every token of one Notion workspace after a workspace 429."""

    def __init__(self, workspace_id: str) -> None:
        self.workspace_id = workspace_id
        self.hold_until = -math.inf
        self.reason: str | None = None

    def hold(self, until: float, reason: str | None) -> None:
        """Hold every request of the workspace until `until` (never shortens a hold)."""
        if until > self.hold_until:
            self.hold_until = until
            self.reason = reason


class NotionLimiter(TokenBucket):
    """One token's limiter: the bucket, holds after 429s, and a window budget.

    Every request waits for (1) the end of any hold of its token or of its token's
    workspace, (2) room in the window budget, when one is known: at most `budget`
    requests in any `window_s + slack_s` seconds, which keeps every fixed 60-s window of
    Notion's (whatever its phase, and with some network jitter) within the budget, and
    (3) a token of the bucket. A budget is configured, or learned from the first
    per-connection 429 (see `learn_budget`); a learned one is forgotten after half an
    hour so a bigger plan is noticed. With a budget, configured or learned, the bucket is
    set to spend it at any pace, as Notion allows. A per-connection 429 also tells when
    the window resets (the end of its hold): from then only requests that were still on
    the wire at the refusal, and not answered before the reset, count against the budget.
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        budget: int | None = None,
        window_s: float = DEFAULT_WINDOW_S,
        slack_s: float = PACING_SLACK_S,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        _check_window(budget, window_s)
        self._asked = (float(rate), burst)
        super().__init__(*_bucket_shape(rate, burst, budget, window_s), clock=clock, sleep=sleep)
        self._configured = budget
        self._window_s = float(window_s)
        self._slack_s = slack_s
        self._learned: int | None = None
        self._learned_at = -math.inf
        self._sent: list[float] = []
        self._pushed: list[float] = []
        self._counted: list[float] = []
        self._in_flight: Counter[float] = Counter()
        self._carried: Counter[float] = Counter()
        self._accepted: list[float] = []
        self._hold_until = -math.inf
        self._hold_reason: str | None = None
        self._workspace: WorkspaceGate | None = None
        self._rate_limited = 0

    @property
    def window_s(self) -> float:
        """Length of Notion's budget window in seconds."""
        return self._window_s

    @property
    def asked(self) -> tuple[float, int, int | None, float]:
        """The (rate, burst, budget, window_s) this limiter was last configured with."""
        return (*self._asked, self._configured, self._window_s)

    @property
    def budget(self) -> int | None:
        """Requests allowed per window: the learned budget if fresh, else the configured one."""
        return self._budget_and_source()[0]

    def _budget_and_source(self) -> tuple[int | None, str]:
        if self._learned is not None:
            if self._clock() - self._learned_at < LEARNED_BUDGET_TTL_S:
                return self._learned, "learned"
            self._learned = None
            self.configure(*_bucket_shape(*self._asked, self._configured, self._window_s))
        if self._configured is not None:
            return self._configured, "configured"
        return None, "none"

    @property
    def workspace_id(self) -> str | None:
        """The Notion workspace of this token, once known (from GET /v1/users/me)."""
        return self._workspace.workspace_id if self._workspace else None

    def reconfigure(
        self, rate: float, burst: int, budget: int | None, window_s: float = DEFAULT_WINDOW_S
    ) -> None:
        """Change the bucket and the configured budget from now on."""
        _check_window(budget, window_s)
        self._asked = (float(rate), burst)
        self.configure(*_bucket_shape(rate, burst, budget, window_s))
        self._configured = budget
        self._window_s = float(window_s)

    def join_workspace(self, workspace_id: str) -> None:
        """Share holds with every other token of this workspace from now on."""
        self._workspace = workspace_gate(workspace_id)

    def answered(self, sent_at: float, status: int | None) -> None:
        """Note how the request granted at `sent_at` ended: an HTTP status (all but 429 count
        as accepted) or None when no answer came."""
        _take(self._in_flight, sent_at)
        if _take(self._carried, sent_at) and self._clock() < self._hold_until:
            # On the wire at a refusal but answered before the window's reset: it landed in
            # the old window, so it does not count against the new one.
            at = bisect_left(self._counted, sent_at)
            if at < len(self._counted) and self._counted[at] == sent_at:
                del self._counted[at]
        if status is not None and status != 429:
            self._accepted.append(sent_at)
            self._prune(self._clock())

    def hold(self, seconds: float, *, reason: str | None = None) -> None:
        """Hold every request of this token for `seconds` from now (never shortens a hold)."""
        until = self._clock() + seconds
        if until > self._hold_until:
            self._hold_until = until
            self._hold_reason = reason

    def rate_limited(
        self, retry_after: float, *, reason: str | None = None, sent_at: float | None = None
    ) -> str:
        """A 429 arrived: hold the token (or its workspace) for `retry_after`; maybe learn.

        Returns the scope held, "connection" or "workspace". The first per-connection 429
        of a hold teaches the budget: requests the window accepted up to the refused one,
        sent at `sent_at` (never more than one fewer than the budget it already kept to,
        since that one was too big).
        """
        now = self._clock()
        self._rate_limited += 1
        scope = limit_scope(reason)
        if scope == WORKSPACE and self._workspace is not None:
            self._workspace.hold(now + retry_after, reason)
            return WORKSPACE
        already_held = self._hold_until > now
        self.hold(retry_after, reason=reason)
        if teaches_budget(reason) and not already_held:
            # The window resets when the hold ends: what was sent before the refusal no
            # longer counts against the budget, but for requests still on the wire, which
            # may land after the reset.
            self._carried = Counter(self._in_flight)
            self._counted = sorted(self._carried.elements())
            self._learn(now, retry_after, now if sent_at is None else sent_at)
        return CONNECTION

    def _learn(self, now: float, retry_after: float, sent_at: float) -> None:
        learned = learn_budget(self._accepted, sent_at, retry_after, self._window_s)
        if learned < 1:
            return
        kept = self.budget
        if kept is not None:
            learned = max(1, min(learned, kept - 1))
        log.info(
            "notion window budget learned",
            budget=learned,
            window_s=self._window_s,
            was=kept,
        )
        self._learned = learned
        self._learned_at = now
        # Notion keeps a window budget: spend it at any pace, from a full bucket at the reset.
        self.configure(*_bucket_shape(*self._asked, learned, self._window_s))
        self._tokens = float(self.burst)

    def status(self) -> RateLimitStatus:
        """What this limiter knows right now; see `RateLimitStatus`."""
        now = self._clock()
        self._prune(now)
        until, limit, reason = self._hold_until, CONNECTION, self._hold_reason
        gate = self._workspace
        if gate is not None and gate.hold_until > until:
            until, limit, reason = gate.hold_until, WORKSPACE, gate.reason
        held = until > now
        budget, source = self._budget_and_source()
        return RateLimitStatus(
            limited_until=datetime.now(UTC) + timedelta(seconds=until - now) if held else None,
            limit=limit if held else None,
            reason=reason if held else None,
            budget=budget,
            budget_source=source,
            window_s=self._window_s,
            requests_this_window=len(self._sent) - bisect_right(self._sent, now - self._window_s),
            push_requests_this_window=len(self._pushed)
            - bisect_right(self._pushed, now - self._window_s),
            rate=self.rate,
            burst=self.burst,
            rate_limited=self._rate_limited,
            waiting=self.waiting,
            workspace_id=self.workspace_id,
        )

    def _prune(self, now: float) -> None:
        horizon = now - 2 * (self._window_s + self._slack_s)
        for sends in (self._sent, self._counted, self._pushed):
            if sends and sends[0] < horizon:
                del sends[: bisect_left(sends, horizon)]
        if self._in_flight and len(self._in_flight) > 256:
            for sent in [t for t in self._in_flight if t < horizon]:
                del self._in_flight[sent]
        if self._accepted and len(self._accepted) > 2 * len(self._sent) + 64:
            self._accepted = [t for t in self._accepted if t >= horizon]

    def _blocked_for(self, now: float) -> float:
        """Seconds until the holds and the window budget allow one more request."""
        wait = self._hold_until - now
        if self._workspace is not None:
            wait = max(wait, self._workspace.hold_until - now)
        budget = self.budget
        if budget is not None:
            span = self._window_s + self._slack_s
            counted = self._counted
            recent = len(counted) - bisect_right(counted, now - span)
            if recent >= budget:
                wait = max(wait, counted[len(counted) - budget] + span - now)
        return max(0.0, wait)

    def _granted(self, now: float, priority: Priority) -> None:
        self._sent.append(now)
        if priority == Priority.PUSH:
            self._pushed.append(now)
        self._counted.append(now)
        self._in_flight[now] += 1
        self._prune(now)


def _take(counter: Counter[float], key: float) -> bool:
    """Remove one `key` from `counter`; whether there was one."""
    count = counter.get(key, 0)
    if count > 1:
        counter[key] = count - 1
    elif count == 1:
        del counter[key]
    return count > 0


def _check_window(budget: int | None, window_s: float) -> None:
    if budget is not None and budget < 1:
        raise ValueError(f"budget must be at least 1 (got {budget!r})")
    if not window_s > 0:
        raise ValueError(f"window_s must be greater than 0 (got {window_s!r})")


def _bucket_shape(
    rate: float, burst: int, budget: int | None, window_s: float
) -> tuple[float, int]:
    """The bucket: as asked, or with a configured budget, one that spends it at any pace."""
    if budget is None:
        return rate, burst
    return budget / window_s, budget


_limiters: dict[str, NotionLimiter] = {}
_workspaces: dict[str, WorkspaceGate] = {}


def _key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()[:16]


def workspace_gate(workspace_id: str) -> WorkspaceGate:
    """The process's one hold for this workspace, shared by all of its tokens."""
    gate = _workspaces.get(workspace_id)
    if gate is None:
        gate = _workspaces[workspace_id] = WorkspaceGate(workspace_id)
    return gate


def limiter_for(
    token: str,
    rate: float,
    burst: int,
    *,
    budget: int | None = None,
    window_s: float = DEFAULT_WINDOW_S,
) -> NotionLimiter:
    """The process's one limiter for this token (keyed by a hash of it), set as given."""
    key = _key(token)
    limiter = _limiters.get(key)
    if limiter is None:
        limiter = _limiters[key] = NotionLimiter(rate, burst, budget=budget, window_s=window_s)
    elif limiter.asked != (float(rate), burst, budget, float(window_s)):
        log.debug(
            "notion rate limit changed",
            token_hash=key,
            rate=rate,
            burst=burst,
            budget=budget,
            window_s=window_s,
        )
        limiter.reconfigure(rate, burst, budget, window_s)
    return limiter


def forget_limiters() -> None:
    """Drop every token's limiter and workspace hold, as a new process starts with none."""
    _limiters.clear()
    _workspaces.clear()
