"""Helpers for the client's tests against the sandbox: a recording transport and a client."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx

from reelqueue.notion import NotionClient
from reelqueue.sandbox import SandboxAdmin


@dataclass(frozen=True)
class Exchange:
    """One attempt as it went over the wire."""

    request: httpx.Request
    sent_at: float
    status: int
    headers: httpx.Headers
    body: Any


class Recorder(httpx.AsyncBaseTransport):
    """Real HTTP to the sandbox, remembering every attempt and its answer."""

    def __init__(self) -> None:
        self._inner = httpx.AsyncHTTPTransport()
        self.exchanges: list[Exchange] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent_at = time.monotonic()
        response = await self._inner.handle_async_request(request)
        raw = await response.aread()
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        self.exchanges.append(
            Exchange(request, sent_at, response.status_code, response.headers, body)
        )
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


def client_for(
    sandbox: SandboxAdmin, transport: httpx.AsyncBaseTransport | None = None, **options: Any
) -> NotionClient:
    """A NotionClient on the sandbox; a fast limit unless the test sets one."""
    options.setdefault("rate_limit", 1000.0)
    options.setdefault("burst", 100)
    return NotionClient(sandbox.token, base_url=sandbox.base_url, transport=transport, **options)


def v1_counts(stats: dict[str, Any]) -> dict[str, dict[str, int]]:
    """The sandbox's per-endpoint counts."""
    return {endpoint: dict(counts) for endpoint, counts in stats["requests"].items()}


async def all_rows(client: NotionClient, data_source_id: str) -> list[dict[str, Any]]:
    """Every row of a data source, following cursors (up to Notion's 10,000-row limit)."""
    rows: list[dict[str, Any]] = []
    cursor: str | None = None
    while True:
        page = await client.query_data_source(data_source_id, start_cursor=cursor)
        rows += page.results
        if not page.has_more or not page.next_cursor:
            return rows
        cursor = page.next_cursor
