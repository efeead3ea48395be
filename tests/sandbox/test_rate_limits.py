"""Notion's current limits: a window budget per connection and a limit shared by the workspace."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from reelqueue.sandbox import SandboxAdmin, SandboxAdminError
from reelqueue.sandbox.ratelimit import (
    CONNECTION_REASON,
    WORKSPACE_REASON,
    FixedWindow,
    RateLimiter,
    RequestLimits,
)
from tests.sandbox.conftest import NOTION_VERSION


def rate_limit_reason(answer: httpx.Response) -> Any:
    """The `additional_data.rate_limit_reason` of a 429, or None when it has none."""
    return answer.json().get("additional_data", {}).get("rate_limit_reason")


@pytest.fixture
async def second(sandbox: SandboxAdmin) -> AsyncIterator[httpx.AsyncClient]:
    """Plain httpx on the sandbox with a second token of the same workspace (a new reset
    first: the token lasts until the next one)."""
    await sandbox.reset(rate_model="window", budget=100, workspace_budget=4, workspace_window_s=120)
    token = await sandbox.issue_token()
    headers = {"Authorization": f"Bearer {token}", "Notion-Version": NOTION_VERSION}
    async with httpx.AsyncClient(
        base_url=sandbox.base_url, headers=headers, timeout=10, trust_env=False
    ) as client:
        yield client


async def test_a_window_budget_can_be_spent_in_one_burst_then_waits_for_the_reset(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await sandbox.reset(rate_model="window", budget=5, window_s=60)
    burst = await asyncio.gather(*(raw.get("/v1/users/me") for _ in range(5)))
    assert [a.status_code for a in burst] == [200] * 5
    refused = await raw.get("/v1/users/me")
    assert refused.status_code == 429
    assert refused.json()["code"] == "rate_limited"
    assert rate_limit_reason(refused) == CONNECTION_REASON
    retry_after = refused.headers["Retry-After"]
    assert retry_after.isdigit()
    assert 55 <= int(retry_after) <= 60, "the seconds until the 60-s window resets"


async def test_waiting_retry_after_gives_the_whole_budget_back(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await sandbox.reset(rate_model="window", budget=3, window_s=0.5)
    for _ in range(3):
        assert (await raw.get("/v1/users/me")).status_code == 200
    refused = await raw.get("/v1/users/me")
    assert refused.status_code == 429
    assert refused.headers["Retry-After"] == "1"
    await asyncio.sleep(int(refused.headers["Retry-After"]))
    again = await asyncio.gather(*(raw.get("/v1/users/me") for _ in range(3)))
    assert [a.status_code for a in again] == [200] * 3


async def test_refused_requests_do_not_spend_the_next_window(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await sandbox.reset(rate_model="window", budget=2, window_s=0.5)
    answers = [(await raw.get("/v1/users/me")).status_code for _ in range(6)]
    assert answers == [200, 200, 429, 429, 429, 429]
    await asyncio.sleep(1)
    assert [(await raw.get("/v1/users/me")).status_code for _ in range(2)] == [200, 200]
    assert (await sandbox.stats())["rate_limited"] == 4


async def test_a_second_token_is_another_connection_of_the_same_workspace(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await sandbox.reset(rate_model="window", budget=2, window_s=60)
    token = await sandbox.issue_token()
    other = {"Authorization": f"Bearer {token}"}
    assert [(await raw.get("/v1/users/me")).status_code for _ in range(3)] == [200, 200, 429]
    mine = await raw.get("/v1/users/me", headers=other)
    assert mine.status_code == 200, "the second token has a budget of its own"
    assert mine.json()["id"] == sandbox.bot_user_id


async def test_the_workspace_limit_refuses_every_token_once_their_sum_is_spent(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient, second: httpx.AsyncClient
) -> None:
    for _ in range(3):
        assert (await raw.get("/v1/users/me")).status_code == 200
    assert (await second.get("/v1/users/me")).status_code == 200
    for client in (raw, second):
        refused = await client.get("/v1/users/me")
        assert refused.status_code == 429, "each token is well within its own budget of 100"
        assert rate_limit_reason(refused) == WORKSPACE_REASON
        assert 60 < int(refused.headers["Retry-After"]) <= 120, "longer than a minute"


async def test_a_forced_workspace_limit_holds_every_token_for_its_seconds(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient, second: httpx.AsyncClient
) -> None:
    assert await sandbox.hold_workspace(90) == 90
    for client in (raw, second):
        refused = await client.get("/v1/users/me")
        assert refused.status_code == 429
        assert rate_limit_reason(refused) == WORKSPACE_REASON
        assert int(refused.headers["Retry-After"]) in (89, 90)
    assert await sandbox.hold_workspace(0) == 0
    assert (await raw.get("/v1/users/me")).status_code == 200
    assert (await second.get("/v1/users/me")).status_code == 200


async def test_a_reset_drops_issued_tokens(sandbox: SandboxAdmin, raw: httpx.AsyncClient) -> None:
    token = await sandbox.issue_token()
    headers = {"Authorization": f"Bearer {token}"}
    assert (await raw.get("/v1/users/me", headers=headers)).status_code == 200
    await sandbox.reset(rps=1000, burst=1000)
    assert (await raw.get("/v1/users/me", headers=headers)).status_code == 401


async def test_the_bucket_model_answers_as_notion_did_before_it_named_its_limits(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await sandbox.reset(rate_model="bucket", rps=1, burst=2)
    statuses = [(await raw.get("/v1/users/me")).status_code for _ in range(3)]
    assert statuses == [200, 200, 429]
    refused = await raw.get("/v1/users/me")
    assert "additional_data" not in refused.json()
    assert int(refused.headers["Retry-After"]) == 1


async def test_an_overloaded_answer_carries_retry_after(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await fast_sandbox.set_faults(error_rate=1.0, status_codes=[529])
    answer = await raw.get("/v1/users/me")
    assert (answer.status_code, answer.json()["code"]) == (529, "service_overload")
    assert answer.headers["Retry-After"] == "1"
    await fast_sandbox.set_faults(error_rate=1.0, status_codes=[529], overload_retry_after_s=7)
    assert (await raw.get("/v1/users/me")).headers["Retry-After"] == "7"


@pytest.mark.parametrize(
    "options",
    [
        {"rate_model": "window", "rps": 10},
        {"rate_model": "bucket", "budget": 10},
        {"rate_model": "sliding"},
        {"rate_model": "window", "budget": 0},
        {"workspace_budget": -1},
        {"latency_ms": [300, 100]},
        {"latency_ms": "fast"},
    ],
)
async def test_a_reset_refuses_limits_that_make_no_sense(
    sandbox: SandboxAdmin, options: dict[str, Any]
) -> None:
    with pytest.raises(SandboxAdminError, match="400"):
        await sandbox.reset(**options)


def test_the_sandbox_command_serves_the_window_budget_it_is_given() -> None:
    process = subprocess.Popen(
        [sys.executable, "-m", "reelqueue", "sandbox", "--port", "0", "--budget", "2"],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(6)]
        base_url = lines[0].split()[-1]
        assert "limits: 2 requests per 60 s per token" in lines[5]
        headers = {"Authorization": "Bearer secret_sandbox_token", "Notion-Version": "2026-03-11"}
        with httpx.Client(base_url=base_url, headers=headers, trust_env=False) as http:
            answers = [http.get("/v1/users/me") for _ in range(3)]
        assert [a.status_code for a in answers] == [200, 200, 429]
        assert rate_limit_reason(answers[2]) == CONNECTION_REASON
    finally:
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("flags", "error"),
    [
        (["--rps", "5"], "--rps and --burst shape the bucket model"),
        (["--rate-model", "bucket", "--budget", "9"], "--budget and --window-s"),
        (["--latency-ms", "soon"], "latency must be milliseconds"),
    ],
)
def test_the_sandbox_command_refuses_settings_that_do_not_fit(flags: list[str], error: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "reelqueue", "sandbox", "--port", "0", *flags],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert error in done.stderr


class Clock:
    """A hand-driven clock."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@given(
    budget=st.integers(1, 20),
    window_s=st.floats(0.5, 120),
    gaps=st.lists(st.floats(0, 30), min_size=1, max_size=200),
)
def test_a_window_never_grants_more_than_its_budget_and_names_its_reset(
    budget: int, window_s: float, gaps: list[float]
) -> None:
    clock = Clock()
    window = FixedWindow(budget, window_s, clock)
    granted: list[float] = []
    for gap in gaps:
        clock.now += gap
        wait = window.take()
        if wait == 0.0:
            granted.append(clock.now)
            continue
        assert 0 < wait <= window_s
        assert window.wait() == wait, "asking again changes nothing"
        clock.now += wait
        assert window.wait() == 0.0, "after the wait it names, a request fits"
        clock.now -= wait
    for i, start in enumerate(granted):
        within = sum(1 for t in granted[i:] if t < start + window_s)
        assert within <= 2 * budget, "fixed windows: at most two budgets in any window's span"


@given(
    budget=st.integers(1, 10),
    workspace_budget=st.integers(1, 30),
    picks=st.lists(st.integers(0, 2), min_size=1, max_size=120),
)
def test_the_workspace_budget_caps_what_all_tokens_get_together(
    budget: int, workspace_budget: int, picks: list[int]
) -> None:
    clock = Clock()
    limits = RequestLimits(budget=budget, workspace_budget=workspace_budget, window_s=60)
    limiter = RateLimiter(limits, "first", clock)
    tokens = ["first", limiter.add_connection(), limiter.add_connection()]
    granted = [0, 0, 0]
    for pick in picks:
        refusal = limiter.check(tokens[pick])
        if refusal is None:
            granted[pick] += 1
        else:
            assert refusal.reason in (CONNECTION_REASON, WORKSPACE_REASON)
            assert 1 <= refusal.retry_after_s <= 60
    assert all(count <= budget for count in granted)
    wanted = sum(min(budget, picks.count(i)) for i in range(3))
    assert sum(granted) == min(workspace_budget, wanted), "refusals cost nothing"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner),
    max_leaves=5,
)


@given(
    data=st.dictionaries(
        st.sampled_from(sorted(RequestLimits.__dataclass_fields__)), json_values, max_size=5
    ),
    base=st.sampled_from([RequestLimits(), RequestLimits(rate_model="bucket")]),
)
@example(data={"rps": 10**400, "burst": 10**400}, base=RequestLimits(rate_model="bucket"))
@example(data={"workspace_budget": 10**400, "latency_ms": [0, 10**400]}, base=RequestLimits())
def test_limits_from_any_reset_body_are_valid_or_a_value_error(
    data: dict[str, Any], base: RequestLimits
) -> None:
    try:
        limits = RequestLimits.from_json(data, base)
    except ValueError:
        return
    assert limits.rate_model in ("window", "bucket")
    assert limits.budget >= 1
    assert limits.burst >= 1
    assert limits.rps > 0
    assert 0 < limits.window_s <= 86_400
    assert 0 <= limits.latency_ms[0] <= limits.latency_ms[1]
