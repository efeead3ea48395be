"""Stopping `reelqueue run`'s service: everything is asked at once, nothing taken in is lost.

A start that fails, or is stopped, half-way leaves nothing running, and a later start works.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from reelqueue.config import DEFAULT_CHANNELS
from reelqueue.sandbox import SandboxAdmin
from reelqueue.service import Service, ServiceOptions
from tests.fixtures.sandbox import SANDBOX_DEFAULTS
from tests.fixtures.service import StartService, fetchval, ready, service_settings, until
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

        async def being_received() -> bool:
            metrics = (await client.get("/metrics")).text
            return "reelqueue_webhook_deliveries_in_progress 1.0" in metrics

        await until(being_received, within_s=5)  # the server has the head, awaits the body
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


def unthrottled(sandbox: SandboxAdmin, database_url: str, port: int = 0) -> Service:
    """A service with one worker whose Notion calls are not held back by rate limits."""
    return Service(
        service_settings(sandbox, notion_rate_limit=100.0, notion_rate_burst=100),
        DEFAULT_CHANNELS,
        database_url=database_url,
        options=ServiceOptions(port=port, leader_retry_s=0.2, workers=1, deployment_settle_s=0.0),
    )


async def nothing_left_running(service: Service, database_url: str) -> None:
    assert not service.running
    others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
    assert others == [], "a task of the service is still running"
    connections = await fetchval(
        database_url,
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    assert connections == 0, "database connections were left open"


async def test_a_start_that_fails_half_way_leaves_nothing_running_and_a_later_start_works(
    sandbox: SandboxAdmin, database_url: str
) -> None:
    await sandbox.reset(**{**SANDBOX_DEFAULTS, "rps": 100.0, "burst": 100})  # not under test
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    service = unthrottled(sandbox, database_url, port)
    try:
        # Migrated, Notion checked, deployment claimed, inbox writer begun: then no port.
        with pytest.raises(OSError, match="could not listen"):
            await service.start()
        await nothing_left_running(service, database_url)
        taken.close()
        await service.start()
        await ready(service)
        async with httpx.AsyncClient(base_url=service.base_url) as client:
            answer = await client.get("/healthz")
        assert answer.status_code == 200
        assert service.base_url.endswith(f":{port}")
    finally:
        taken.close()
        await service.stop()


@pytest.mark.parametrize("reached", ["notion", "bot_user_id", "schemas"])
async def test_a_stop_during_start_up_leaves_nothing_running_and_a_later_start_works(
    sandbox: SandboxAdmin, database_url: str, reached: str
) -> None:
    await sandbox.reset(**{**SANDBOX_DEFAULTS, "rps": 100.0, "burst": 100})  # not under test
    await sandbox.set_faults(latency_ms=100)  # each Notion call takes a moment to stop in
    service = unthrottled(sandbox, database_url)
    try:
        starting = service.start()

        async def begun() -> bool:
            return getattr(service, reached) is not None

        await until(begun, within_s=20)
        await service.stop()
        await starting
        await nothing_left_running(service, database_url)
        await sandbox.set_faults()
        await service.start()
        await ready(service)
        async with httpx.AsyncClient(base_url=service.base_url) as client:
            answer = await client.get("/healthz")
        assert answer.status_code == 200
    finally:
        await service.stop()
