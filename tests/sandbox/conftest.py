"""Helpers for the sandbox's own tests: an SDK client, raw HTTP, and a webhook receiver."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from notion_client import AsyncClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelqueue.sandbox import SandboxAdmin, SandboxServer

FAST = {"rps": 1000.0, "burst": 1000}
NOTION_VERSION = "2025-09-03"


@pytest.fixture(scope="module")
def client(sandbox_server: SandboxServer) -> Iterator[tuple[httpx.Client, dict[str, Any]]]:
    """A sync client on a fast, fresh sandbox (one per module, for hypothesis), with the
    sandbox's info (its ids) the requests need."""
    with httpx.Client(
        base_url=sandbox_server.base_url,
        headers={
            "Authorization": f"Bearer {sandbox_server.token}",
            "Notion-Version": NOTION_VERSION,
        },
        trust_env=False,
    ) as http:
        info = http.post("/_sandbox/reset", json={"rps": 100_000, "burst": 100_000}).json()
        yield http, info
        http.post("/_sandbox/reset", json={})


@pytest.fixture
async def fast_sandbox(sandbox: SandboxAdmin) -> SandboxAdmin:
    """The sandbox with a rate limit high enough never to matter."""
    await sandbox.reset(**FAST)
    return sandbox


@pytest.fixture
async def notion(sandbox: SandboxAdmin) -> AsyncIterator[AsyncClient]:
    """The official SDK pointed at the sandbox, without its own retries."""
    client = AsyncClient(auth=sandbox.token, base_url=sandbox.base_url, retry=False)
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture
async def raw(sandbox: SandboxAdmin) -> AsyncIterator[httpx.AsyncClient]:
    """Plain httpx against the sandbox, with the headers the SDK would send."""
    headers = {"Authorization": f"Bearer {sandbox.token}", "Notion-Version": NOTION_VERSION}
    async with httpx.AsyncClient(
        base_url=sandbox.base_url, headers=headers, timeout=10, trust_env=False
    ) as client:
        yield client


@dataclass
class Delivery:
    """One request the receiver got."""

    headers: dict[str, str]
    raw: bytes

    @property
    def body(self) -> dict[str, Any]:
        """The JSON body."""
        parsed: dict[str, Any] = json.loads(self.raw)
        return parsed


@dataclass
class WebhookReceiver:
    """An HTTP endpoint on 127.0.0.1 that records what it is sent and answers as told."""

    url: str = ""
    deliveries: list[Delivery] = field(default_factory=list)
    answers: list[int] = field(default_factory=list)
    _changed: asyncio.Condition = field(default_factory=asyncio.Condition)

    async def handle(self, request: Request) -> Response:
        """Record the request; answer the next status of `answers` (200 when none left)."""
        self.deliveries.append(Delivery(dict(request.headers), await request.body()))
        status = self.answers.pop(0) if self.answers else 200
        async with self._changed:
            self._changed.notify_all()
        return Response(status_code=status)

    @property
    def events(self) -> list[dict[str, Any]]:
        """Bodies of the deliveries that are events (not the handshake)."""
        return [d.body for d in self.deliveries if "verification_token" not in d.body]

    async def wait_for(
        self, condition: Callable[[WebhookReceiver], bool], limit_s: float = 5.0
    ) -> None:
        """Wait until `condition(self)` holds, woken by each delivery."""
        async with asyncio.timeout(limit_s), self._changed:
            await self._changed.wait_for(lambda: condition(self))


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    """A webhook receiver served by uvicorn on this test's loop."""
    hook = WebhookReceiver()
    app = Starlette(routes=[Route("/hook", hook.handle, methods=["POST"])])
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", 0))
    hook.url = f"http://127.0.0.1:{sock.getsockname()[1]}/hook"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    async with asyncio.timeout(5):
        while True:
            if server.started:
                break
            await asyncio.sleep(0.005)
    try:
        yield hook
    finally:
        server.should_exit = True
        with contextlib.suppress(asyncio.CancelledError):
            await task
        sock.close()


async def wait_for_stats(
    sandbox: SandboxAdmin, condition: Callable[[dict[str, Any]], bool], limit_s: float = 5.0
) -> dict[str, Any]:
    """Poll the admin stats until `condition` holds; return them."""
    async with asyncio.timeout(limit_s):
        while True:
            stats = await sandbox.stats()
            if condition(stats):
                return stats
            await asyncio.sleep(0.02)
