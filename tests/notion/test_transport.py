"""The retrying transport: what it retries, how long it waits, what it counts."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelqueue.notion import NotionLimiter, Priority
from reelqueue.notion.transport import (
    BASE_DELAY_S,
    MAX_DELAY_S,
    RETRY_AFTER_FLOOR_S,
    RetryingTransport,
    backoff_delay,
    bot_workspace_id,
    endpoint_template,
    error_fields,
    parse_retry_after,
    request_priority,
    retry_delay,
)
from tests.notion.clock import ManualClock

URL = "https://api.notion.com/v1/pages/0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("2", 2.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-1", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("nan", None),
        ("Wed, 01 Jul 2026 12:00:30 GMT", 30.0),
        ("Wed, 01 Jul 2026 11:59:00 GMT", 0.0),
    ],
)
def test_retry_after_is_seconds_or_an_http_date(value: str | None, seconds: float | None) -> None:
    now = datetime(2026, 7, 1, 12, 0, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == seconds


@given(
    st.datetimes(datetime(2000, 1, 1), datetime(2100, 1, 1), timezones=st.just(UTC)),
    st.integers(min_value=0, max_value=86_400),
)
def test_an_http_date_retry_after_gives_the_seconds_until_then(now: datetime, ahead: int) -> None:
    now = now.replace(microsecond=0)
    header = format_datetime(now + timedelta(seconds=ahead), usegmt=True)
    assert parse_retry_after(header, now=now) == pytest.approx(ahead)


@given(
    st.integers(min_value=1, max_value=40),
    st.floats(min_value=0, max_value=1, exclude_max=True),
)
def test_backoff_is_full_jitter_under_a_capped_exponential(attempt: int, draw: float) -> None:
    delay = backoff_delay(attempt, rand=lambda: draw)
    ceiling = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (attempt - 1))
    assert 0 <= delay < ceiling or delay == ceiling == 0
    assert delay == pytest.approx(draw * ceiling)


@given(st.floats(min_value=0, max_value=1e6), st.integers(min_value=1, max_value=10))
def test_retry_after_wins_over_backoff_with_a_floor(retry_after: float, attempt: int) -> None:
    delay = retry_delay(attempt, retry_after, rand=lambda: 0.99)
    assert delay >= min(retry_after, 300.0)
    assert delay >= RETRY_AFTER_FLOOR_S


@pytest.mark.parametrize(
    ("method", "path", "template"),
    [
        (
            "post",
            "/v1/data_sources/0123456789abcdef0123456789abcdef/query",
            "POST /v1/data_sources/{id}/query",
        ),
        ("GET", "/v1/pages/01234567-89ab-cdef-0123-456789abcdef", "GET /v1/pages/{id}"),
        ("GET", "/v1/users/me", "GET /v1/users/me"),
        ("POST", "/v1/pages", "POST /v1/pages"),
    ],
)
def test_endpoints_are_counted_by_template(method: str, path: str, template: str) -> None:
    assert endpoint_template(method, path) == template


class FakeTime:
    """A clock that jumps forward by whatever anyone sleeps, remembering each sleep."""

    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


class SpyLimiter(NotionLimiter):
    """A generous limiter on fake time that remembers the priority of every acquire."""

    def __init__(self, time: FakeTime) -> None:
        super().__init__(10_000.0, 10_000, clock=time, sleep=time.sleep)
        self.priorities: list[Priority] = []

    async def acquire(self, priority: Priority = Priority.INGEST, *, first: bool = False) -> float:
        self.priorities.append(priority)
        return await super().acquire(priority, first=first)


def scripted(answers: list[Any], seen: list[httpx.Request]) -> httpx.MockTransport:
    """A transport answering each request with the next item (a response, or an exception)."""

    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, httpx.Response)
        return answer

    return httpx.MockTransport(handle)


def notion_error(status: int, code: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"object": "error", "status": status, "code": code, "message": code, "request_id": "r"}
    return httpx.Response(status, json=body, headers=headers)


Made = tuple[RetryingTransport, list[float], list[httpx.Request], SpyLimiter]


def make(answers: list[Any], **options: Any) -> Made:
    time = FakeTime()
    seen: list[httpx.Request] = []
    limiter = SpyLimiter(time)
    transport = RetryingTransport(
        limiter, inner=scripted(answers, seen), sleep=time.sleep, rand=lambda: 0.5, **options
    )
    return transport, time.slept, seen, limiter


async def send(transport: RetryingTransport, method: str = "GET", **kwargs: Any) -> httpx.Response:
    async with httpx.AsyncClient(transport=transport) as client:
        return await client.request(method, URL, **kwargs)


@pytest.mark.parametrize("status", [409, 429, 500, 502, 503, 504, 529])
async def test_transient_statuses_are_retried_until_success(status: int) -> None:
    transport, slept, seen, limiter = make(
        [notion_error(status, "x"), notion_error(status, "x"), httpx.Response(200, json={})]
    )
    response = await send(transport, "PATCH", json={"properties": {"a": 1}})
    assert response.status_code == 200
    assert len(seen) == 3
    assert {r.content for r in seen} == {b'{"properties":{"a":1}}'}
    assert slept == [0.25, 0.5]
    assert len(limiter.priorities) == 3
    stats = transport.stats
    assert stats["requests"] == {"PATCH /v1/pages/{id}": {str(status): 2, "200": 1}}
    assert stats["retries"] == 2
    assert stats["rate_limited"] == (2 if status == 429 else 0)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_permanent_statuses_are_returned_at_once(status: int) -> None:
    transport, slept, seen, _ = make([notion_error(status, "x")])
    response = await send(transport)
    assert response.status_code == status
    assert len(seen) == 1
    assert slept == []


async def test_retry_after_is_honoured() -> None:
    transport, slept, _, _ = make(
        [notion_error(429, "rate_limited", {"Retry-After": "3"}), httpx.Response(200, json={})]
    )
    assert (await send(transport)).status_code == 200
    assert slept == [3.0]
    assert transport.stats.rate_limited == 1


async def test_when_attempts_run_out_the_last_answer_is_returned() -> None:
    transport, _, seen, _ = make([notion_error(503, "x") for _ in range(3)], max_attempts=3)
    response = await send(transport)
    assert response.status_code == 503
    assert json.loads(response.content)["code"] == "x"
    assert len(seen) == 3
    assert transport.stats["gave_up"] == 1


@pytest.mark.parametrize(
    ("error", "outcome"),
    [(httpx.ConnectError("refused"), "connection_error"), (httpx.ReadTimeout("slow"), "timeout")],
)
async def test_transport_errors_are_retried_then_raised(error: Exception, outcome: str) -> None:
    transport, slept, seen, _ = make([error, error, httpx.Response(200, json={})])
    assert (await send(transport)).status_code == 200
    assert slept == [0.25, 0.5]
    assert transport.stats["requests"]["GET /v1/pages/{id}"] == {outcome: 2, "200": 1}

    transport, _, seen, _ = make([error, error], max_attempts=2)
    with pytest.raises(type(error)):
        await send(transport)
    assert len(seen) == 2


async def test_an_unsupported_protocol_is_not_retried() -> None:
    transport, slept, _, _ = make([httpx.UnsupportedProtocol("ftp")])
    with pytest.raises(httpx.UnsupportedProtocol):
        await send(transport)
    assert slept == []


async def test_every_attempt_takes_a_token_at_the_callers_priority() -> None:
    transport, _, _, limiter = make([notion_error(500, "x"), httpx.Response(200, json={})])
    reset = request_priority.set(Priority.PUSH)
    try:
        await send(transport)
    finally:
        request_priority.reset(reset)
    assert limiter.priorities == [Priority.PUSH, Priority.PUSH]
    transport, _, _, limiter = make([httpx.Response(200, json={})])
    await send(transport)
    assert limiter.priorities == [Priority.INGEST]


def test_max_attempts_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_attempts"):
        RetryingTransport(NotionLimiter(1.0, 1), max_attempts=0)


JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=12,
)


@given(JSON, st.one_of(st.none(), st.text()))
def test_any_error_body_gives_only_the_fields_it_really_has(body: Any, reason: str | None) -> None:
    if isinstance(body, dict) and reason is not None:
        body["additional_data"] = {"rate_limit_reason": reason}
    fields = error_fields(httpx.Response(429, json=body))
    assert set(fields) <= {"code", "request_id", "rate_limit_reason"}
    assert all(isinstance(value, str) for value in fields.values())
    if isinstance(body, dict) and reason is not None:
        assert fields["rate_limit_reason"] == reason
    assert error_fields(httpx.Response(429, content=b"\xff not json")) == {}


@given(JSON)
def test_any_users_me_answer_gives_a_workspace_id_only_when_it_has_one(bot: Any) -> None:
    answer = httpx.Response(200, json={"object": "user", "type": "bot", "bot": bot})
    workspace = bot_workspace_id(answer)
    if isinstance(bot, dict) and isinstance(bot.get("workspace_id"), str) and bot["workspace_id"]:
        assert workspace == bot["workspace_id"]
    else:
        assert workspace is None


async def test_a_429_holds_the_requests_already_waiting_not_only_the_refused_one() -> None:
    time = ManualClock()
    reason = {"rate_limit_reason": "connection_rate_limit"}
    answers: list[httpx.Response] = [
        httpx.Response(
            429,
            json={"object": "error", "code": "rate_limited", "additional_data": reason},
            headers={"Retry-After": "4"},
        ),
        *[httpx.Response(200, json={}) for _ in range(3)],
    ]
    sent_at: list[float] = []

    def handle(request: httpx.Request) -> httpx.Response:
        sent_at.append(time.now)
        return answers.pop(0)

    limiter = NotionLimiter(1.0, 1, clock=time, sleep=time.sleep)
    transport = RetryingTransport(limiter, inner=httpx.MockTransport(handle), sleep=time.sleep)
    calls = asyncio.gather(*(send(transport) for _ in range(3)))
    await time.advance(10.0)
    results = await calls
    assert [r.status_code for r in results] == [200] * 3
    # The refused request went at 0; the two waiting behind it were due at 1 and 2 but
    # were held with it until 4, when the refused one went first.
    assert sent_at == [0.0, 4.0, 5.0, 6.0]
    assert limiter.status().rate_limited == 1
    assert transport.stats["retries"] == 1


async def test_a_529_with_retry_after_holds_the_token_and_one_without_backs_off_alone() -> None:
    overload = notion_error(529, "service_overload", {"Retry-After": "2"})
    transport, slept, _, limiter = make([overload, httpx.Response(200, json={})])
    assert (await send(transport)).status_code == 200
    assert slept == [2.0]
    assert limiter.status().rate_limited == 0
    transport, slept, _, limiter = make([notion_error(529, "x"), httpx.Response(200, json={})])
    assert (await send(transport)).status_code == 200
    assert slept == [0.25]


async def test_the_workspace_is_learned_from_users_me() -> None:
    me = {"object": "user", "type": "bot", "bot": {"workspace_id": "ws-transport-test"}}
    transport, _, _, limiter = make([httpx.Response(200, json=me)])
    async with httpx.AsyncClient(transport=transport) as client:
        answer = await client.get("https://api.notion.com/v1/users/me")
    assert answer.json() == me
    assert limiter.workspace_id == "ws-transport-test"
