"""Every background service keeps the one lifecycle, on a real database and sandbox.

Each is stopped before it starts, stopped twice (and by two callers at once), stopped
in a hurry (a cancelled stop), and started and stopped over and over (twenty times;
the whole service, five); after all that it still does its job. A worker, or the
whole service, cut off mid-job leaves the job claimable.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.config import DEFAULT_CHANNELS, Channel, Channels, Settings
from reelqueue.ingest import Doorbell, PageSnapshot, Poller, Reactor
from reelqueue.ingest.schema_watch import SchemaWatch
from reelqueue.ingest.webhooks import Delivery
from reelqueue.notion import NotionClient
from reelqueue.pipeline import DEMO_STEPS, Worker
from reelqueue.pipeline.reaper import Reaper
from reelqueue.pushback import Pusher
from reelqueue.queue import BackgroundService, Lifecycle, Listener
from reelqueue.queue.supervise import LoopHealth
from reelqueue.sandbox import SandboxAdmin
from reelqueue.service import Service, ServiceOptions
from reelqueue.service.coordinator import Coordinator, PushBack
from reelqueue.service.runner import load_calendars
from reelqueue.statuses import GATES, StatusTable
from reelqueue.web.server import WebServer
from tests.fixtures.sandbox import SANDBOX_DEFAULTS
from tests.fixtures.service import service_settings, until, worker_moves
from tests.service.test_webhooks import TOKEN, event, sign

TABLE = StatusTable()
AUTO = Channels(
    channels=(Channel(id="science", name="Science", auto_approve=GATES, max_concurrent=50),)
)
QUEUED = {"Status": {"status": {"name": "Queued"}}}


@dataclass
class Subject:
    """A service under test, what shows it at work, and what to close after the test."""

    service: BackgroundService
    serves: Callable[[], Awaitable[None]]
    close: Callable[[], Awaitable[None]] | None = None
    rounds: int = 20


@dataclass
class Parts:
    database_url: str
    engine: AsyncEngine
    tmp_path: Path
    sandbox: SandboxAdmin


async def count(engine: AsyncEngine, sql: str, **params: Any) -> int:
    async with engine.connect() as conn:
        return int(await conn.scalar(text(sql), params) or 0)


async def queue(engine: AsyncEngine, n: int = 1) -> list[str]:
    pages = [
        PageSnapshot(
            page_id=str(uuid.uuid4()), data_source_id="ds", last_edited_time=None,
            last_edited_by="person", in_trash=False, title="A video", channel="science",
            topic="A topic", story_direction="", status_label="Queued", priority_label=None,
            error_log="", youtube_url=None,
        )
        for _ in range(n)
    ]  # fmt: skip
    async with engine.begin() as conn:
        await Reactor(TABLE, AUTO).react(conn, pages)
    return [p.page_id for p in pages]


async def listener(parts: Parts) -> Subject:
    heard = asyncio.Event()
    service = Listener(parts.database_url, ["lifecycle_test"], lambda _c, _p: heard.set())

    async def serves() -> None:
        await asyncio.wait_for(service.connected.wait(), 10)
        heard.clear()
        async with parts.engine.begin() as conn:
            await conn.execute(text("NOTIFY lifecycle_test, 'ping'"))
        await asyncio.wait_for(heard.wait(), 10)

    return Subject(service, serves)


async def inbox_writer(parts: Parts) -> Subject:
    from reelqueue.ingest import InboxWriter

    service = InboxWriter(parts.engine, bot_user_id=None)

    async def serves() -> None:
        before = await count(parts.engine, "SELECT count(*) FROM webhook_inbox")
        service.put(
            Delivery(
                event_id=str(uuid.uuid4()), event_type="page.properties_updated",
                entity_id=None, author_ids=(), author_types=(), data_source_id=None,
                timestamp=None, body={"type": "page.properties_updated"},
            )
        )  # fmt: skip

        async def written() -> bool:
            found = await count(parts.engine, "SELECT count(*) FROM webhook_inbox")
            return found == before + 1

        await until(written, within_s=10)

    return Subject(service, serves)


async def web_server(_parts: Parts) -> Subject:
    app = FastAPI()

    @app.get("/ping")
    async def ping() -> dict[str, str]:
        return {"answer": "pong"}

    service = WebServer(app, port=0)

    async def serves() -> None:
        async with httpx.AsyncClient() as client:
            answer = await client.get(f"{service.base_url}/ping")
        assert answer.json() == {"answer": "pong"}

    return Subject(service, serves)


async def reaper(parts: Parts) -> Subject:
    service = Reaper(parts.engine, Settings(), interval_s=0.05)

    async def serves() -> None:
        (page,) = await queue(parts.engine)
        async with parts.engine.begin() as conn:
            await conn.execute(
                text(
                    "UPDATE tasks SET status = 'generating_assets', locked_by = 'gone:1',"
                    " lease_expires_at = now() - interval '1 second'"
                    " WHERE notion_page_id = :page"
                ),
                {"page": page},
            )

        async def returned() -> bool:
            sql = "SELECT count(*) FROM tasks WHERE notion_page_id = :p AND locked_by IS NULL"
            return await count(parts.engine, sql, p=page) == 1

        await until(returned, within_s=10)

    return Subject(service, serves)


@dataclass
class Calendar:
    """The sandbox's calendar, as the service reads and writes it."""

    notion: NotionClient
    pollers: list[Poller]
    pusher: Pusher


async def calendar(parts: Parts) -> Calendar:
    sandbox = parts.sandbox
    settings = Settings(
        notion_token=SecretStr(sandbox.token),
        notion_api_url=sandbox.base_url,
        notion_database_ids=[sandbox.database_id],
    )
    notion = NotionClient(sandbox.token, base_url=sandbox.base_url)
    calendars = await load_calendars(notion, settings, TABLE, DEFAULT_CHANNELS)
    channel_ids = [c.id for c in DEFAULT_CHANNELS.channels]
    watch = SchemaWatch(notion, {s.data_source_id: s for _, s in calendars}, TABLE, channel_ids)
    reactor = Reactor(TABLE, DEFAULT_CHANNELS)
    pollers = [
        Poller(parts.engine, notion, schema, reactor, TABLE, database_id=database,
               watch=watch, calendars=watch.schemas.keys())
        for database, schema in calendars
    ]  # fmt: skip
    return Calendar(notion, pollers, Pusher(parts.engine, notion, watch.schemas, TABLE))


async def coordinator(parts: Parts) -> Subject:
    made = await calendar(parts)
    service = Coordinator(
        made.pollers, made.pusher, Doorbell(0.05), poll_interval_s=30.0,
        reconcile_interval_s=600.0, engine=parts.engine,
    )  # fmt: skip
    pages = [p["id"] for p in await parts.sandbox.pages()]
    await parts.sandbox.edit(pages[:1], QUEUED)

    async def serves() -> None:
        async def ingested() -> bool:
            sql = "SELECT count(*) FROM tasks WHERE notion_page_id = :p"
            return await count(parts.engine, sql, p=pages[0]) == 1

        await until(ingested, within_s=20)

    return Subject(service, serves, made.notion.aclose)


async def push_back(parts: Parts) -> Subject:
    made = await calendar(parts)
    doorbell = Doorbell(0.05)

    async def fresh_read(_data_source_id: str) -> float:
        return time.monotonic()

    service = PushBack(
        made.pusher, doorbell, fresh_read, health=LoopHealth("push-back"), on_written=lambda: None
    )
    pages = [p["id"] for p in await parts.sandbox.pages()]
    await parts.sandbox.edit(pages, QUEUED)
    for poller in made.pollers:
        await poller.reconcile()
    moves = iter(pages)

    async def serves() -> None:
        service.pushed.clear()
        await worker_moves(parts.database_url, next(moves), "claimed")
        doorbell.ring(ingest=False, push=True)

        async def written() -> bool:
            last = service.last_push
            return service.pushed.is_set() and last is not None and last.pages_written >= 1

        await until(written, within_s=20)

    return Subject(service, serves, made.notion.aclose)


async def worker(parts: Parts) -> Subject:
    settings = Settings(
        artifacts_dir=parts.tmp_path / "artifacts", demo_step_seconds=0.0, lease_s=5.0
    )
    service = Worker(
        parts.database_url, settings, AUTO, {"demo": DEMO_STEPS}, concurrency=2, poll_s=0.5
    )

    async def serves() -> None:
        (page,) = await queue(parts.engine)

        async def published() -> bool:
            sql = "SELECT count(*) FROM tasks WHERE notion_page_id = :p AND status = 'published'"
            return await count(parts.engine, sql, p=page) == 1

        await until(published, within_s=30)

    return Subject(service, serves)


async def whole_service(parts: Parts) -> Subject:
    # Rate limits are not what this tests; Notion's would slow each start-up down.
    await parts.sandbox.reset(**{**SANDBOX_DEFAULTS, "rps": 100.0, "burst": 100})
    settings = service_settings(
        parts.sandbox,
        notion_webhook_token=SecretStr(TOKEN),
        notion_rate_limit=100.0,
        notion_rate_burst=100,
    )
    service = Service(
        settings,
        DEFAULT_CHANNELS,
        database_url=parts.database_url,
        options=ServiceOptions(port=0, leader_retry_s=0.2, deployment_settle_s=0.0),
    )
    pages = iter([p["id"] for p in await parts.sandbox.pages()])

    async def serves() -> None:
        page = next(pages)
        await parts.sandbox.edit([page], QUEUED)
        body = json.dumps(event(page)).encode()
        headers = {"content-type": "application/json", "x-notion-signature": sign(body)}
        async with httpx.AsyncClient(base_url=service.base_url) as client:
            answer = await client.post("/webhooks/notion", content=body, headers=headers)
        assert answer.status_code == 200

        async def ingested() -> bool:
            sql = "SELECT count(*) FROM tasks WHERE notion_page_id = :p"
            return await count(parts.engine, sql, p=page) == 1

        await until(ingested, within_s=20)

    return Subject(service, serves, rounds=5)


SERVICES: dict[str, Callable[[Parts], Awaitable[Subject]]] = {
    "listener": listener,
    "inbox-writer": inbox_writer,
    "web-server": web_server,
    "reaper": reaper,
    "coordinator": coordinator,
    "push-back": push_back,
    "worker": worker,
    "service": whole_service,
}


@pytest.fixture(params=list(SERVICES))
async def subject(
    request: pytest.FixtureRequest,
    database_url: str,
    engine: AsyncEngine,
    tmp_path: Path,
    sandbox: SandboxAdmin,
) -> AsyncIterator[Subject]:
    made = await SERVICES[request.param](Parts(database_url, engine, tmp_path, sandbox))
    assert isinstance(made.service, Lifecycle)
    try:
        yield made
    finally:
        await made.service.stop()
        if made.close is not None:
            await made.close()


async def test_stopping_before_starting_is_fine_and_it_starts_after(subject: Subject) -> None:
    await subject.service.stop()
    assert not subject.service.running
    await subject.service.start()
    await subject.serves()


async def test_stopping_twice_and_from_two_callers_at_once_is_fine(subject: Subject) -> None:
    await subject.service.start()
    await subject.serves()
    await asyncio.gather(subject.service.stop(), subject.service.stop())
    await subject.service.stop()
    assert not subject.service.running
    assert subject.service.failure is None


async def test_a_cancelled_stop_leaves_it_stopped_and_it_starts_again(subject: Subject) -> None:
    await subject.service.start()
    await subject.serves()
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0):
            await subject.service.stop()
    assert not subject.service.running
    await subject.service.start()
    await subject.serves()


async def test_starts_and_stops_over_and_over_leave_it_working(subject: Subject) -> None:
    for round_ in range(subject.rounds):
        started = subject.service.start()
        if round_ % 2 == 0:  # half the time stopped while still starting up
            await started
        await subject.service.stop()
        assert not subject.service.running
    assert subject.service.failure is None
    await subject.service.start()
    await subject.serves()


async def cut_off_mid_job(service: BackgroundService, engine: AsyncEngine) -> None:
    """Start `service`, and once its one task's step runs, stop it with no time to wait."""
    await service.start()
    try:

        async def running() -> bool:
            sql = "SELECT count(*) FROM tasks WHERE status = 'generating_assets'"
            return await count(engine, sql) == 1

        await until(running, within_s=20)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0):
                await service.stop()
        assert not service.running
    finally:
        await service.stop()


async def test_a_worker_cut_off_mid_job_leaves_the_job_claimable(
    database_url: str, engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = Settings(artifacts_dir=tmp_path / "a", demo_step_seconds=60.0, lease_s=30.0)
    slow = Worker(database_url, settings, AUTO, {"demo": DEMO_STEPS}, poll_s=0.5)
    (page,) = await queue(engine)
    await cut_off_mid_job(slow, engine)
    sql = "SELECT count(*) FROM tasks WHERE locked_by IS NULL AND status = 'queued'"
    assert await count(engine, sql) == 1, "given back at once, not after the 30 s lease"
    fast = Worker(
        database_url, Settings(artifacts_dir=tmp_path / "b", demo_step_seconds=0.0), AUTO,
        {"demo": DEMO_STEPS}, poll_s=0.5,
    )  # fmt: skip
    await fast.start()
    try:

        async def published() -> bool:
            sql = "SELECT count(*) FROM tasks WHERE notion_page_id = :p AND status = 'published'"
            return await count(engine, sql, p=page) == 1

        await until(published, within_s=30)
    finally:
        await fast.stop()


async def test_the_service_cut_off_mid_job_leaves_the_job_claimable(
    database_url: str, engine: AsyncEngine, tmp_path: Path, sandbox: SandboxAdmin
) -> None:
    slow = Service(
        service_settings(
            sandbox, artifacts_dir=tmp_path / "a", demo_step_seconds=60.0, lease_s=30.0
        ),
        AUTO,
        database_url=database_url,
        options=ServiceOptions(port=0, workers=1, deployment_settle_s=0.0),
    )
    (page,) = await queue(engine)
    await cut_off_mid_job(slow, engine)
    sql = (
        "SELECT count(*) FROM tasks"
        " WHERE notion_page_id = :p AND locked_by IS NULL AND status = 'queued'"
    )
    assert await count(engine, sql, p=page) == 1, "given back at once, not after the lease"


async def test_a_web_server_that_cannot_listen_says_why_when_started_and_is_stopped() -> None:
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    try:
        server = WebServer(FastAPI(), port=taken.getsockname()[1])
        with pytest.raises(OSError, match="could not listen"):
            await server.start()
        assert not server.running
        await server.stop()
    finally:
        taken.close()
