"""The limiter against the sandbox's window and workspace limits, over real HTTP.

Each test works with tokens of its own (issued by the sandbox), so what one test's limiter
learns or holds never reaches another test's.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

import httpx
import pytest

from reelqueue.notion import NotionClient, NotionRateLimited, NotionSendExpired
from reelqueue.sandbox import SandboxAdmin


@dataclass(frozen=True)
class Attempt:
    """One request as it went over the wire and came back."""

    sent_at: float
    answered_at: float
    status: int
    retry_after: float | None


class Wire(httpx.AsyncBaseTransport):
    """Real HTTP to the sandbox, noting when each attempt left and what came back.

    `first_429` is set when the first 429 comes back, so a test can act while a hold is on.
    """

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.attempts: list[Attempt] = []
        self.first_429 = asyncio.Event()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent_at = time.monotonic()
        response = await self._inner.handle_async_request(request)
        await response.aread()
        header = response.headers.get("retry-after")
        self.attempts.append(
            Attempt(
                sent_at,
                time.monotonic(),
                response.status_code,
                float(header) if header is not None else None,
            )
        )
        if response.status_code == 429:
            self.first_429.set()
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()

    def refusals(self) -> list[Attempt]:
        """The 429s, in the order they came back."""
        return sorted((a for a in self.attempts if a.status == 429), key=lambda a: a.answered_at)


def client(
    sandbox: SandboxAdmin,
    token: str,
    wire: Wire,
    *,
    budget: int | None = None,
    window_s: float = 60.0,
    max_attempts: int = 20,
) -> NotionClient:
    """A client of `token` whose bucket is far faster than the sandbox allows."""
    return NotionClient(
        token,
        base_url=sandbox.base_url,
        transport=wire,
        rate_limit=1000.0,
        burst=100,
        budget=budget,
        window_s=window_s,
        max_attempts=max_attempts,
    )


def assert_nothing_sent_during_a_hold(attempts: list[Attempt], held: list[Attempt]) -> None:
    """No attempt left between a 429's answer and the end of its Retry-After."""
    for refusal in held:
        assert refusal.retry_after is not None
        until = refusal.answered_at + refusal.retry_after
        during = [a for a in attempts if refusal.answered_at + 0.005 < a.sent_at < until - 0.005]
        assert during == [], (refusal, during)


async def test_a_connection_429_holds_every_caller_and_later_windows_get_none(
    sandbox: SandboxAdmin,
) -> None:
    await sandbox.reset(rate_model="window", budget=8, window_s=2.0)
    token = await sandbox.issue_token()
    wire = Wire()
    async with client(sandbox, token, wire, window_s=2.0) as notion:

        async def caller() -> None:
            for _ in range(4):
                await notion.me()

        await asyncio.gather(*(caller() for _ in range(5)))
        status = notion.rate_limit_status()
    served = await sandbox.stats()
    assert sum(a.status == 200 for a in wire.attempts) == 20
    refusals = wire.refusals()
    assert refusals, "five fast callers must meet the budget of 8"
    first = refusals[0]
    # Only requests already on the wire when the first 429 came back were refused; after
    # it, nothing left until its Retry-After had passed, and no window saw another 429.
    assert all(r.sent_at <= first.answered_at for r in refusals)
    assert_nothing_sent_during_a_hold(wire.attempts, [first])
    assert served["rate_limited"] == len(refusals)
    assert (status.budget, status.budget_source) == (8, "learned")
    assert status.rate_limited == len(refusals)


async def test_a_workspace_429_holds_the_other_tokens_of_the_workspace(
    sandbox: SandboxAdmin,
) -> None:
    await sandbox.reset(rate_model="window", budget=100, window_s=60.0)
    first_token, second_token = await sandbox.issue_token(), await sandbox.issue_token()
    first_wire, second_wire = Wire(), Wire()
    async with (
        client(sandbox, first_token, first_wire) as first,
        client(sandbox, second_token, second_wire) as second,
    ):
        me = await first.me()
        await second.me()
        workspace_id = me["bot"]["workspace_id"]
        assert first.rate_limit_status().workspace_id == workspace_id
        assert second.rate_limit_status().workspace_id == workspace_id
        assert await sandbox.hold_workspace(2) == 2
        held = asyncio.create_task(first.retrieve_data_source(sandbox.data_source_id))
        await first_wire.first_429.wait()
        status = second.rate_limit_status()
        assert status.limit == "workspace"
        assert status.reason == "workspace_rate_limit"
        assert status.limited_until is not None
        await second.retrieve_data_source(sandbox.data_source_id)
        await held
    refusal = first_wire.refusals()[0]
    assert second_wire.refusals() == []
    assert_nothing_sent_during_a_hold(second_wire.attempts + first_wire.attempts, [refusal])
    after = [a for a in second_wire.attempts if a.sent_at > refusal.sent_at]
    assert len(after) == 1
    assert refusal.retry_after is not None
    assert after[0].sent_at >= refusal.answered_at + refusal.retry_after - 0.005
    assert (await sandbox.stats())["rate_limited"] == 1


async def test_a_connection_429_does_not_hold_another_token_of_the_workspace(
    sandbox: SandboxAdmin,
) -> None:
    await sandbox.reset(rate_model="window", budget=2, window_s=30.0)
    first_token, second_token = await sandbox.issue_token(), await sandbox.issue_token()
    first_wire, second_wire = Wire(), Wire()
    async with (
        client(sandbox, first_token, first_wire, max_attempts=1) as first,
        client(sandbox, second_token, second_wire) as second,
    ):
        await first.me()
        await second.me()
        await first.me()
        with pytest.raises(NotionRateLimited):
            await first.me()
        assert first.rate_limit_status().limit == "connection"
        assert second.rate_limit_status().limited_until is None
        await second.me()
    assert second_wire.refusals() == []
    assert [a.status for a in first_wire.attempts] == [200, 200, 429]


async def test_at_300_ms_a_request_many_requests_are_in_flight_at_once(
    sandbox: SandboxAdmin,
) -> None:
    await sandbox.reset(rate_model="window", budget=40, window_s=60.0, latency_ms=300)
    token = await sandbox.issue_token()
    wire = Wire()
    async with client(sandbox, token, wire, budget=40, window_s=60.0) as notion:
        await asyncio.gather(*(notion.me() for _ in range(40)))
        status = notion.rate_limit_status()
    assert [a.status for a in wire.attempts] == [200] * 40
    most = max(
        sum(1 for b in wire.attempts if b.sent_at <= a.sent_at < b.answered_at)
        for a in wire.attempts
    )
    assert most >= 20, most
    assert status.requests_this_window == 40
    assert (status.budget, status.budget_source) == (40, "configured")


async def test_a_write_whose_send_by_passes_during_a_hold_is_never_sent(
    sandbox: SandboxAdmin,
) -> None:
    await sandbox.reset(rate_model="window", budget=2, window_s=3.0)
    token = await sandbox.issue_token()
    page_id = (await sandbox.pages())[0]["id"]
    wire = Wire()
    async with client(sandbox, token, wire, window_s=3.0) as notion:
        await notion.me()
        await notion.me()
        write = notion.update_page(
            page_id,
            {"Error Log": {"rich_text": []}},
            send_by=time.monotonic() + 0.5,
        )
        with pytest.raises(NotionSendExpired):
            await write
        late = notion.update_page(page_id, {}, send_by=time.monotonic() - 0.1)
        with pytest.raises(NotionSendExpired):
            await late
    # The PATCH met the 429 and was held; its retry would have left after its send-by time,
    # so it never went out again, and one already late never left at all.
    patches = (await sandbox.stats())["requests"].get("PATCH /v1/pages/{id}", {})
    assert patches == {"429": 1}
