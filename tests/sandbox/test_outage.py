"""An outage of hung requests ends when the fault set is replaced; admin answers carry any text."""

from __future__ import annotations

import asyncio
import json

import httpx

from reelqueue.sandbox import SandboxAdmin
from tests.sandbox.conftest import wait_for_stats


async def test_replacing_the_faults_releases_hung_requests_and_the_next_ones_answer(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    page = (await fast_sandbox.pages())[0]
    await fast_sandbox.set_faults(hang_rate=1.0, hang_max_ms=3_600_000)
    hung = [
        asyncio.create_task(raw.get("/v1/users/me", timeout=60)),
        asyncio.create_task(
            raw.patch(
                f"/v1/pages/{page['id']}",
                json={"properties": {"Status": {"status": {"name": "Queued"}}}},
                timeout=60,
            )
        ),
    ]
    await wait_for_stats(fast_sandbox, lambda stats: stats["hung"] == 2)
    assert not any(task.done() for task in hung)

    await fast_sandbox.set_faults()
    answers = await asyncio.wait_for(asyncio.gather(*hung), timeout=5)
    assert [answer.status_code for answer in answers] == [504, 504]
    assert (await fast_sandbox.pages())[0]["properties"] == page["properties"]
    assert (await raw.get("/v1/users/me")).status_code == 200


async def test_a_new_hang_after_a_release_hangs_again(
    fast_sandbox: SandboxAdmin, raw: httpx.AsyncClient
) -> None:
    await fast_sandbox.set_faults(hang_rate=1.0, hang_max_ms=3_600_000)
    first = asyncio.create_task(raw.get("/v1/users/me", timeout=60))
    await wait_for_stats(fast_sandbox, lambda stats: stats["hung"] == 1)
    await fast_sandbox.set_faults(hang_rate=1.0, hang_max_ms=3_600_000)
    assert (await asyncio.wait_for(first, timeout=5)).status_code == 504
    second = asyncio.create_task(raw.get("/v1/users/me", timeout=60))
    await wait_for_stats(fast_sandbox, lambda stats: stats["hung"] == 2)
    assert not second.done()
    await fast_sandbox.set_faults()
    assert (await asyncio.wait_for(second, timeout=5)).status_code == 504


async def test_the_admin_api_creates_and_lists_a_page_with_a_lone_surrogate(
    fast_sandbox: SandboxAdmin,
) -> None:
    title = "Half a pair \ud83d here"
    body = {"properties": {"Title": {"title": [{"text": {"content": title}}]}}}
    async with httpx.AsyncClient(base_url=fast_sandbox.base_url, trust_env=False) as client:
        created = await client.post(
            "/_sandbox/pages",
            content=json.dumps(body),
            headers={"Content-Type": "application/json"},
        )
        assert created.status_code == 200, created.text
        listed = await client.get("/_sandbox/pages")
    assert listed.status_code == 200
    page = next(p for p in json.loads(listed.content)["pages"] if p["id"] == created.json()["id"])
    assert page["properties"]["Title"]["title"][0]["plain_text"] == title
