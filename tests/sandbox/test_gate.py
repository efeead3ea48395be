"""The gate in front of /v1: latency on every request, Notion's versions, the 500 KB body limit."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from reelqueue.sandbox import SandboxAdmin
from reelqueue.sandbox.gate import NOTION_VERSIONS
from reelqueue.sandbox.ratelimit import parse_latency_text

LIMIT = 500_000


async def timed(request: Awaitable[httpx.Response]) -> tuple[float, httpx.Response]:
    """Seconds an awaited request took, and its answer."""
    started = time.monotonic()
    answer = await request
    return time.monotonic() - started, answer


async def test_a_request_takes_at_least_the_fixed_latency(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await fast_sandbox.reset(rps=1000, burst=1000, latency_ms=200)
    took, answer = await timed(raw.get("/v1/users/me"))
    assert answer.status_code == 200
    assert took >= 0.2


async def test_a_latency_range_is_a_lower_bound_for_every_request(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await fast_sandbox.reset(rps=1000, burst=1000, latency_ms=[150, 250])
    answers = await asyncio.gather(*(timed(raw.get("/v1/users/me")) for _ in range(4)))
    for took, answer in answers:
        assert answer.status_code == 200
        assert took >= 0.15


async def test_refused_requests_take_the_latency_too(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await fast_sandbox.reset(rps=1000, burst=1000, latency_ms=200)
    took, answer = await timed(raw.get("/v1/users/me", headers={"Authorization": "Bearer no"}))
    assert answer.status_code == 401
    assert took >= 0.2


async def test_fault_latency_comes_on_top_of_the_request_latency(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await fast_sandbox.reset(rps=1000, burst=1000, latency_ms=150)
    await fast_sandbox.set_faults(latency_ms=150)
    took, answer = await timed(raw.get("/v1/users/me"))
    assert answer.status_code == 200
    assert took >= 0.3


@pytest.mark.parametrize("version", NOTION_VERSIONS)
async def test_every_version_notion_accepts_is_accepted(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient, version: str
) -> None:
    answer = await raw.get("/v1/users/me", headers={"Notion-Version": version})
    assert answer.status_code == 200


@pytest.mark.parametrize("version", ["2024-01-01", "2025-09-04", "latest", "2022-6-28"])
async def test_an_unknown_version_is_refused_naming_the_accepted_ones(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient, version: str
) -> None:
    answer = await raw.get("/v1/users/me", headers={"Notion-Version": version})
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == "validation_error"
    assert body["message"].startswith("Notion-Version header failed validation:")
    assert all(f'"{accepted}"' in body["message"] for accepted in NOTION_VERSIONS)
    assert (await fast_sandbox.stats())["requests"] == {"GET /v1/users/me": {"400": 1}}


@pytest.fixture
async def query_url(fast_sandbox: SandboxAdmin) -> str:
    """The calendar's query endpoint."""
    return f"/v1/data_sources/{fast_sandbox.data_source_id}/query"


def padded(size: int) -> bytes:
    """A valid query body of exactly `size` bytes (JSON whitespace after the object)."""
    body = b'{"page_size": 1}'
    return body + b" " * (size - len(body))


async def test_a_body_of_500_kb_is_served(raw: httpx.AsyncClient, query_url: str) -> None:
    answer = await raw.post(
        query_url, content=padded(LIMIT), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 200
    assert len(answer.json()["results"]) == 1


async def test_a_body_over_500_kb_is_refused_with_413(
    raw: httpx.AsyncClient, query_url: str
) -> None:
    answer = await raw.post(
        query_url, content=padded(LIMIT + 1), headers={"Content-Type": "application/json"}
    )
    assert answer.status_code == 413
    body = answer.json()
    assert (body["object"], body["status"]) == ("error", 413)


async def test_a_streamed_body_over_500_kb_is_refused_too(
    raw: httpx.AsyncClient, query_url: str
) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        data = padded(LIMIT + 1)
        for start in range(0, len(data), 64_000):
            yield data[start : start + 64_000]

    answer = await raw.post(query_url, content=chunks())
    assert answer.status_code == 413


async def test_an_oversized_body_spends_no_rate_budget(
    sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await sandbox.reset(rate_model="window", budget=1, window_s=60)
    url = f"/v1/data_sources/{sandbox.data_source_id}/query"
    assert (await raw.post(url, content=padded(LIMIT + 1))).status_code == 413
    assert (await raw.post(url, json={"page_size": 1})).status_code == 200


@given(low=st.integers(0, 60_000), extra=st.integers(0, 60_000))
def test_latency_text_reads_a_value_or_a_range(low: int, extra: int) -> None:
    high = min(60_000, low + extra)
    assert parse_latency_text(str(low)) == (low, low)
    assert parse_latency_text(f"{low}-{high}") == (low, high)


@given(text=st.text(max_size=12))
def test_latency_text_is_a_range_or_a_value_error(text: str) -> None:
    try:
        low, high = parse_latency_text(text)
    except ValueError:
        return
    assert 0 <= low <= high <= 60_000
