"""Holds after 429s, the workspace they share, and the window budget, on a hand-driven clock."""

from __future__ import annotations

import asyncio
import json
import math
from collections import Counter
from dataclasses import dataclass, field

import httpx
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from reelqueue.notion import NotionLimiter, Priority, RateLimitStatus
from reelqueue.notion.limiter import (
    LEARNED_BUDGET_TTL_S,
    learn_budget,
    limit_scope,
    teaches_budget,
)
from reelqueue.notion.transport import RetryingTransport
from tests.notion.clock import ManualClock, settle

CONNECTION_REASON = "connection_rate_limited"
WORKSPACE_REASON = "workspace_rate_limited"


class Callers:
    """Tasks that each wait for one permit and note when they got it."""

    def __init__(self, limiter: NotionLimiter, clock: ManualClock) -> None:
        self.limiter = limiter
        self.clock = clock
        self.times: dict[str, float] = {}
        self.order: list[str] = []

    def start(self, name: str, priority: Priority = Priority.INGEST) -> None:
        async def call() -> None:
            await self.limiter.acquire(priority)
            self.times[name] = self.clock.now
            self.order.append(name)

        asyncio.get_running_loop().create_task(call())


def limiter(
    clock: ManualClock,
    *,
    rate: float = 1000.0,
    burst: int = 1000,
    budget: int | None = None,
    window_s: float = 60.0,
) -> NotionLimiter:
    return NotionLimiter(
        rate, burst, budget=budget, window_s=window_s, clock=clock, sleep=clock.sleep
    )


async def test_a_429_holds_every_waiting_and_later_caller_until_retry_after() -> None:
    clock = ManualClock()
    lim = limiter(clock)
    callers = Callers(lim, clock)
    callers.start("before")
    await settle()
    assert lim.rate_limited(5.0, reason=CONNECTION_REASON) == "connection"
    for name in ("a", "b", "c"):
        callers.start(name)
    await clock.advance(4.999)
    assert callers.order == ["before"]
    callers.start("late")
    await clock.advance(0.001)
    assert callers.order == ["before", "a", "b", "c", "late"]
    assert set(callers.times.values()) == {0.0, 5.0}


async def test_after_a_hold_ingest_callers_still_go_before_push_callers() -> None:
    clock = ManualClock()
    lim = limiter(clock, rate=1.0, burst=1)
    callers = Callers(lim, clock)
    lim.hold(3.0)
    for name in ("push-1", "push-2"):
        callers.start(name, Priority.PUSH)
    await settle()
    callers.start("ingest", Priority.INGEST)
    await clock.advance(10.0)
    assert callers.order == ["ingest", "push-1", "push-2"]
    assert callers.times["ingest"] == 3.0


async def test_a_retried_request_goes_to_the_head_of_its_lane() -> None:
    clock = ManualClock()
    lim = limiter(clock, rate=1.0, burst=1)
    callers = Callers(lim, clock)
    lim.hold(2.0)
    callers.start("waiting")
    await settle()

    async def retry() -> None:
        await lim.acquire(Priority.INGEST, first=True)
        callers.order.append("retry")

    task = asyncio.get_running_loop().create_task(retry())
    await clock.advance(5.0)
    await task
    assert callers.order == ["retry", "waiting"]


async def test_a_workspace_429_holds_every_token_of_that_workspace_and_no_other() -> None:
    clock = ManualClock()
    first, second, elsewhere = limiter(clock), limiter(clock), limiter(clock)
    first.join_workspace("ws-rate-window-a")
    second.join_workspace("ws-rate-window-a")
    elsewhere.join_workspace("ws-rate-window-b")
    assert first.rate_limited(90.0, reason=WORKSPACE_REASON) == "workspace"
    callers = {name: Callers(lim, clock) for name, lim in [("1", first), ("2", second)]}
    other = Callers(elsewhere, clock)
    callers["1"].start("x")
    callers["2"].start("y")
    other.start("z")
    await clock.advance(89.0)
    assert other.times == {"z": 0.0}
    assert callers["1"].times == callers["2"].times == {}
    await clock.advance(1.0)
    assert callers["1"].times == {"x": 90.0}
    assert callers["2"].times == {"y": 90.0}
    status = second.status()
    assert status.limited_until is None
    assert first.status().rate_limited == 1


async def test_a_connection_429_holds_only_its_own_token() -> None:
    clock = ManualClock()
    first, second = limiter(clock), limiter(clock)
    first.join_workspace("ws-rate-window-c")
    second.join_workspace("ws-rate-window-c")
    first.rate_limited(30.0, reason=CONNECTION_REASON)
    other = Callers(second, clock)
    other.start("free")
    await settle()
    assert other.times == {"free": 0.0}


async def test_a_workspace_429_before_the_workspace_is_known_holds_the_token() -> None:
    clock = ManualClock()
    lim = limiter(clock)
    assert lim.rate_limited(7.0, reason=WORKSPACE_REASON) == "connection"
    callers = Callers(lim, clock)
    callers.start("a")
    await clock.advance(6.9)
    assert callers.times == {}
    await clock.advance(0.1)
    assert callers.times == {"a": 7.0}


async def test_a_configured_budget_is_spent_at_once_and_kept_to_over_any_window() -> None:
    clock = ManualClock()
    lim = limiter(clock, budget=5, window_s=10.0, rate=3.0, burst=3)
    callers = Callers(lim, clock)
    for i in range(12):
        callers.start(f"c{i:02}")
    await clock.advance(30.0)
    times = [callers.times[f"c{i:02}"] for i in range(12)]
    # The budget replaces the 3/s bucket: five at once, then five a window (plus the slack).
    assert times == [0.0] * 5 + [11.0] * 5 + [22.0] * 2
    status = lim.status()
    assert (status.budget, status.budget_source, status.window_s) == (5, "configured", 10.0)


async def test_the_status_counts_push_backs_own_requests_in_the_window_apart() -> None:
    """Push-back sizes its share by its own requests, so ingest's reads are told apart."""
    clock = ManualClock()
    lim = limiter(clock, budget=20, window_s=60.0)
    callers = Callers(lim, clock)
    for i in range(5):
        callers.start(f"ingest{i}")
    for i in range(3):
        callers.start(f"push{i}", Priority.PUSH)
    await settle()
    status = lim.status()
    assert (status.requests_this_window, status.push_requests_this_window) == (8, 3)
    await clock.advance(61.0)
    status = lim.status()
    assert (status.requests_this_window, status.push_requests_this_window) == (0, 0)


async def test_the_status_says_until_when_which_limit_and_what_was_learned() -> None:
    clock = ManualClock()
    lim = limiter(clock, rate=10.0, burst=10)
    lim.join_workspace("ws-rate-window-d")
    callers = Callers(lim, clock)
    for i in range(8):
        callers.start(f"c{i}")
    await clock.advance(1.0)
    for sent in callers.times.values():
        lim.answered(sent, 200)
    before = lim.status()
    assert before == RateLimitStatus(
        limited_until=None,
        limit=None,
        reason=None,
        budget=None,
        budget_source="none",
        window_s=60.0,
        requests_this_window=8,
        push_requests_this_window=0,
        rate=10.0,
        burst=10,
        rate_limited=0,
        waiting=0,
        workspace_id="ws-rate-window-d",
    )
    lim.rate_limited(59.0, reason=CONNECTION_REASON)
    status = lim.status()
    assert status.is_limited
    assert (status.limit, status.reason) == ("connection", CONNECTION_REASON)
    assert (status.budget, status.budget_source) == (8, "learned")
    data = status.as_dict()
    assert isinstance(data["limited_until"], str)
    assert json.loads(json.dumps(data))["budget"] == 8
    await clock.advance(59.0)
    assert not lim.status().is_limited


@pytest.mark.parametrize(
    ("reason", "scope", "teaches"),
    [
        (None, "connection", False),
        ("connection_rate_limited", "connection", True),
        ("integration_limit", "connection", True),
        ("workspace_rate_limited", "workspace", False),
        ("Workspace_Limit", "workspace", False),
        ("endpoint_specific", "connection", False),
    ],
)
def test_rate_limit_reasons_are_sorted_into_the_two_limits(
    reason: str | None, scope: str, teaches: bool
) -> None:
    assert limit_scope(reason) == scope
    assert teaches_budget(reason) is teaches


@dataclass
class FixedWindow:
    """Notion's per-connection limit as documented: `budget` per `window_s`, any pace."""

    budget: int
    window_s: float
    phase: float

    def window_of(self, t: float) -> int:
        return math.floor((t - self.phase) / self.window_s)

    def reset_after(self, t: float) -> float:
        return (self.window_of(t) + 1) * self.window_s + self.phase - t


@settings(max_examples=200, deadline=None)
@given(
    budget=st.integers(min_value=1, max_value=200),
    phase=st.floats(min_value=0, max_value=59.999),
    gaps=st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=400),
)
def test_the_learned_budget_counts_the_whole_refusing_window_and_at_most_a_second_more(
    budget: int, phase: float, gaps: list[float]
) -> None:
    server = FixedWindow(budget, 60.0, phase)
    counts: Counter[int] = Counter()
    accepted: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        window = server.window_of(now)
        if counts[window] < budget:
            counts[window] += 1
            accepted.append(now)
            continue
        retry_after = math.ceil(server.reset_after(now))
        learned = learn_budget(accepted, now, retry_after, 60.0)
        start = window * 60.0 + phase
        just_before = sum(1 for t in accepted if start - 1.0 <= t < start)
        assert budget <= learned <= budget + just_before
        return


class SimulatedNotion(httpx.AsyncBaseTransport):
    """Notion's window limit behind `latency_s` of network each way, on the manual clock."""

    def __init__(self, clock: ManualClock, server: FixedWindow, latency_s: float) -> None:
        self.clock = clock
        self.server = server
        self.latency_s = latency_s
        self.counts: Counter[int] = Counter()
        self.refused: list[tuple[float, int]] = []
        self.accepted: list[float] = []
        self.sent: list[float] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(self.clock.now)
        await self.clock.sleep(self.latency_s)
        now = self.clock.now
        window = self.server.window_of(now)
        if self.counts[window] < self.server.budget:
            self.counts[window] += 1
            self.accepted.append(now)
            answer = httpx.Response(200, json={"object": "page"})
        else:
            self.refused.append((now, window))
            body = {
                "object": "error",
                "status": 429,
                "code": "rate_limited",
                "message": "You have been rate limited.",
                "additional_data": {"rate_limit_reason": CONNECTION_REASON},
            }
            retry_after = str(math.ceil(self.server.reset_after(now)))
            answer = httpx.Response(429, json=body, headers={"Retry-After": retry_after})
        await self.clock.sleep(self.latency_s)
        return answer


@dataclass
class Run:
    notion: SimulatedNotion
    limiter: NotionLimiter
    completed: list[float] = field(default_factory=list)


async def saturate(
    budget: int, phase: float, latency_s: float, callers: int, rate: float, windows: int
) -> Run:
    clock = ManualClock()
    notion = SimulatedNotion(clock, FixedWindow(budget, 60.0, phase), latency_s)
    lim = NotionLimiter(rate, 3, clock=clock, sleep=clock.sleep)
    transport = RetryingTransport(lim, inner=notion, sleep=clock.sleep, max_attempts=1000)
    run = Run(notion, lim)
    end = windows * 60.0

    async def caller() -> None:
        while clock.now < end:
            request = httpx.Request("GET", "https://api.notion.com/v1/pages/p")
            response = await transport.handle_async_request(request)
            assert response.status_code == 200
            run.completed.append(clock.now)

    tasks = [asyncio.get_running_loop().create_task(caller()) for _ in range(callers)]
    await clock.advance(end + 120.0)
    await asyncio.gather(*tasks)
    return run


@settings(max_examples=25, deadline=None)
@given(
    budget=st.integers(min_value=20, max_value=120),
    phase=st.floats(min_value=0, max_value=59.9),
    latency_s=st.floats(min_value=0.0, max_value=0.4),
    callers=st.integers(min_value=1, max_value=12),
    rate=st.floats(min_value=2.5, max_value=8.0),
)
def test_once_learned_few_windows_see_a_429_and_the_budget_is_spent(
    budget: int, phase: float, latency_s: float, callers: int, rate: float
) -> None:
    # Enough demand to meet the budget: the bucket and the callers' round trips both allow it.
    assume(min(rate, callers / max(2 * latency_s, 1e-9)) * 60.0 > budget * 1.2)
    windows = 6
    run = asyncio.run(saturate(budget, phase, latency_s, callers, rate, windows))
    notion = run.notion
    refusing = sorted({window for _, window in notion.refused})
    assert refusing, "a bucket faster than the budget must meet the window limit"
    first = refusing[0]
    # Every 429 of a window came from requests already on the wire when the first one came
    # back: nothing sent after a 429's answer was refused in that window.
    for when, window in notion.refused:
        first_answer = min(t for t, w in notion.refused if w == window) + latency_s
        assert when <= first_answer + latency_s + 1e-9
    later = [w for w in refusing if w > first]
    assert len(later) <= max(1, (windows - 1) // 3)
    # The budget is spent in every window after the one that taught it (all but one request:
    # the second of slack shifts each window's start a little).
    for window in range(first + 1, notion.server.window_of(windows * 60.0)):
        assert notion.counts[window] >= budget - 1, (window, notion.counts[window])
    assert run.limiter.status().budget_source == "learned"


async def test_a_learned_budget_is_forgotten_after_half_an_hour() -> None:
    clock = ManualClock()
    lim = limiter(clock, rate=3.0, burst=3)
    callers = Callers(lim, clock)
    for i in range(5):
        callers.start(f"c{i}")
    await clock.advance(2.0)
    for sent in callers.times.values():
        lim.answered(sent, 200)
    lim.rate_limited(58.0, reason=CONNECTION_REASON)
    learned = lim.status()
    assert (learned.budget, learned.rate, learned.burst) == (5, 5 / 60, 5)
    clock.now += LEARNED_BUDGET_TTL_S
    forgotten = lim.status()
    assert (forgotten.budget, forgotten.budget_source) == (None, "none")
    assert (forgotten.rate, forgotten.burst) == (3.0, 3)
