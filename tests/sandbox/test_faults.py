"""Faults on demand: injected errors change nothing, latency delays, hung requests hang."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from notion_client import AsyncClient

from reelqueue.sandbox import SandboxAdmin, SandboxAdminError
from tests.sandbox.conftest import wait_for_stats

CODES = {
    409: "conflict_error",
    500: "internal_server_error",
    502: "bad_gateway",
    503: "service_unavailable",
    504: "gateway_timeout",
    529: "service_overload",
}


async def test_error_rate_one_fails_every_call_and_applies_nothing(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    page = (await fast_sandbox.pages())[0]
    await fast_sandbox.set_faults(error_rate=1.0, status_codes=[503])
    answers = [
        await raw.get("/v1/users/me"),
        await raw.patch(
            f"/v1/pages/{page['id']}",
            json={"properties": {"Status": {"status": {"name": "Queued"}}}},
        ),
        await raw.post(
            "/v1/pages", json={"parent": {"data_source_id": fast_sandbox.data_source_id}}
        ),
    ]
    for answer in answers:
        assert answer.status_code == 503
        body = answer.json()
        assert set(body) == {"object", "status", "code", "message", "request_id"}
        assert (body["object"], body["status"], body["code"]) == (
            "error",
            503,
            "service_unavailable",
        )
    pages = await fast_sandbox.pages()
    assert len(pages) == 20
    assert pages[0]["properties"] == page["properties"]
    assert (await fast_sandbox.stats())["faults_injected"] == 3


@pytest.mark.parametrize(("status", "code"), sorted(CODES.items()))
async def test_each_fault_code_has_notions_error_code(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient, status: int, code: str
) -> None:
    await fast_sandbox.set_faults(error_rate=1.0, status_codes=[status])
    answer = await raw.get("/v1/users/me")
    assert (answer.status_code, answer.json()["code"]) == (status, code)


async def test_the_sdk_sees_injected_errors_as_its_typed_errors(
    fast_sandbox: SandboxAdmin, notion: AsyncClient
) -> None:
    from notion_client import APIResponseError

    await fast_sandbox.set_faults(error_rate=1.0, status_codes=[500])
    with pytest.raises(APIResponseError) as caught:
        await notion.users.me()
    assert caught.value.status == 500
    assert caught.value.request_id


async def test_an_error_rate_fails_about_that_share(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await fast_sandbox.set_faults(error_rate=0.3)
    statuses = [(await raw.get("/v1/users/me")).status_code for _ in range(200)]
    failed = sum(s != 200 for s in statuses)
    assert 30 <= failed <= 90
    assert set(statuses) - {200} <= set(CODES)


async def test_an_empty_fault_set_clears_the_faults(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await fast_sandbox.set_faults(error_rate=1.0)
    await fast_sandbox.set_faults()
    assert (await raw.get("/v1/users/me")).status_code == 200


async def test_latency_delays_each_call(fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient) -> None:
    await fast_sandbox.set_faults(latency_ms=150)
    started = time.monotonic()
    assert (await raw.get("/v1/users/me")).status_code == 200
    assert time.monotonic() - started >= 0.15


async def test_a_hung_request_answers_only_when_the_client_gives_up(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await fast_sandbox.set_faults(hang_rate=1.0)
    with pytest.raises(httpx.ReadTimeout):
        await raw.get("/v1/users/me", timeout=0.3)
    assert (await fast_sandbox.stats())["hung"] == 1


async def test_a_hung_request_is_answered_504_after_the_cap_and_changes_nothing(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    page = (await fast_sandbox.pages())[0]
    await fast_sandbox.set_faults(hang_rate=1.0, hang_max_ms=200)
    answer = await raw.patch(
        f"/v1/pages/{page['id']}", json={"properties": {"Status": {"status": {"name": "Queued"}}}}
    )
    assert (answer.status_code, answer.json()["code"]) == (504, "gateway_timeout")
    assert (await fast_sandbox.pages())[0]["properties"] == page["properties"]


async def test_a_reset_releases_hung_requests(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await fast_sandbox.set_faults(hang_rate=1.0)
    hung = asyncio.create_task(raw.get("/v1/users/me"))
    await wait_for_stats(fast_sandbox, lambda stats: stats["hung"] == 1)
    await fast_sandbox.reset(rps=1000, burst=1000)
    answer = await asyncio.wait_for(hung, timeout=2)
    assert answer.status_code == 504


@pytest.mark.parametrize(
    "faults",
    [
        {"error_rate": 2},
        {"status_codes": [418]},
        {"webhook_delay_ms": [10]},
        {"webhook_reorder": "yes"},
        {"flood": 1},
    ],
)
async def test_bad_fault_sets_are_refused(
    fast_sandbox: SandboxAdmin, faults: dict[str, object]
) -> None:
    with pytest.raises(SandboxAdminError, match="400"):
        await fast_sandbox.set_faults(**faults)
