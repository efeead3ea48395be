"""Stopping `reelqueue run`'s service: everything is asked at once, nothing taken in is lost."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
from pydantic import SecretStr

from reelqueue.sandbox import SandboxAdmin
from tests.fixtures.service import StartService, fetchval, ready, until
from tests.service.test_webhooks import TOKEN, event, sign


async def test_the_worker_stops_at_once_while_a_webhook_in_flight_is_still_recorded(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    service = await start_service(workers=1, notion_webhook_token=SecretStr(TOKEN))
    await ready(service)
    worker = service.worker
    assert worker is not None
    assert worker.running
    page = (await sandbox.pages())[0]["id"]
    body = json.dumps(event(page)).encode()
    half_sent = asyncio.Event()
    rest = asyncio.Event()

    async def trickle() -> AsyncIterator[bytes]:
        yield body[:10]
        half_sent.set()
        await rest.wait()
        yield body[10:]

    headers = {"content-type": "application/json", "x-notion-signature": sign(body)}
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        posting = asyncio.create_task(
            client.post("/webhooks/notion", content=trickle(), headers=headers)
        )
        await asyncio.wait_for(half_sent.wait(), 10)
        await asyncio.sleep(0.1)  # the server, in this loop, reads the head sent
        stopping = asyncio.create_task(service.stop())

        async def worker_stopped() -> bool:
            return not worker.running

        # The web server still waits for the webhook's body, yet the worker is stopped.
        await until(worker_stopped, within_s=5)
        assert not stopping.done()
        rest.set()
        answer = await posting
        await stopping
    assert answer.status_code == 200
    recorded = await fetchval(
        database_url, "SELECT count(*) FROM webhook_inbox WHERE entity_id = $1", page
    )
    assert recorded == 1
