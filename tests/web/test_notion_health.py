"""Notion health: failing from the first failed request of a run until an answer; hangs count."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from reelqueue.web.health import NotionHealth, iso
from reelqueue.web.webhook_keys import LogLimiter

START = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        return self.now

    def tick(self, seconds: float = 1.0) -> None:
        self.now += timedelta(seconds=seconds)


@dataclass(frozen=True)
class Held:
    limited_until: datetime | None
    limit: str | None = "workspace"


OUTCOMES = st.lists(st.sampled_from([200, 404, 429, 500, 503, 401, "timeout"]), max_size=30)


@given(outcomes=OUTCOMES)
def test_failing_since_is_when_the_first_failure_after_the_last_answer_was_sent(
    outcomes: list[int | str],
) -> None:
    clock = Clock()
    health = NotionHealth(clock=clock)
    expected: datetime | None = None
    for outcome in outcomes:
        ticket = health.sent()
        clock.tick()
        if outcome == "timeout":
            health.failed(ticket, "ReadTimeout")
        else:
            assert isinstance(outcome, int)
            health.answered(ticket, outcome)
        failed = outcome == "timeout" or outcome in {500, 503, 401}
        if failed and expected is None:
            expected = ticket[1]
        elif not failed and outcome != 429:
            expected = None
        view = health.view()
        assert view.failing_since == expected
        assert (view.state == "failing") == (expected is not None)


def test_a_request_without_an_answer_counts_as_failing_from_when_it_was_sent() -> None:
    clock = Clock()
    health = NotionHealth(stall_after_s=10, clock=clock)
    assert health.view().state == "unknown"
    health.answered(health.sent(), 200)
    ticket = health.sent()
    clock.tick(9)
    assert health.view().state == "ok"
    clock.tick(2)
    view = health.view()
    assert view.state == "failing"
    assert view.failing_since == ticket[1]
    assert view.detail == f"failing since {iso(ticket[1])}: no answer for 11 s"
    health.answered(ticket, 200)
    assert health.view().state == "ok"


def test_rate_limited_until_comes_from_the_limiter() -> None:
    clock = Clock()
    hold: list[Held] = [Held(START + timedelta(seconds=30))]
    health = NotionHealth(clock=clock, rate_limit_status=lambda: hold[0])
    health.answered(health.sent(), 429)
    view = health.view()
    assert view.state == "rate-limited"
    assert view.detail == "rate-limited until 2026-12-03T12:00:30Z (workspace limit)"
    clock.tick(31)
    assert health.view().state == "unknown"
    health.answered(health.sent(), 200)
    assert health.view().state == "ok"


def test_the_log_limiter_lets_one_line_a_minute_through_per_cause() -> None:
    now = [0.0]
    limiter = LogLimiter(60, clock=lambda: now[0])
    assert limiter.allow("a") == 0
    assert limiter.allow("a") is None
    assert limiter.allow("b") == 0
    now[0] = 59.0
    assert limiter.allow("a") is None
    now[0] = 61.0
    assert limiter.allow("a") == 2
