"""Shared parts of the benchmarks against a Notion-like sandbox (latency and both rate models).

Used by `bench.load_mix`, `bench.follow_up` and `bench.workspace_limit`: the two rate
models, a per-request log of what reached the sandbox (an ASGI middleware the benchmark
wraps around the sandbox app: the sandbox itself is unchanged), a fresh database per run,
a service started against a sandbox, and the request counting every benchmark reports.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import statistics
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from pydantic import SecretStr
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bench.board import BOARD
from bench.databases import fresh_database
from reelqueue.config import Channels, Settings
from reelqueue.sandbox import SandboxAdmin, SandboxConfig, SandboxServer
from reelqueue.service import Service, ServiceOptions

# The two rate models of the brief: Notion's older 3 requests/s (the sandbox's bucket gets a
# burst of 6, a little more than the client's 3, as the other benchmarks do), and today's
# budget of 180 requests per 60-s window per connection. Both are 3 requests/s on average.
MODELS: dict[str, dict[str, Any]] = {
    "bucket": {"rate_model": "bucket", "rps": 3.0, "burst": 6},
    "window": {"rate_model": "window", "budget": 180, "window_s": 60.0},
}
# "window+budget": the window model with its budget configured in the client, as an
# operator on today's Notion sets it (NOTION_RATE_BUDGET, NOTION_RATE_WINDOW_S).
MODELS["window+budget"] = MODELS["window"]
BUDGET_PER_S = 3.0
# Uniform 150-450 ms: median and mean 300 ms, a Notion-like answer time.
LATENCY_MS = (150.0, 450.0)
PUSH = "PATCH /v1/pages/{id}"

_runs = itertools.count(1)


@dataclass(frozen=True)
class Request:
    """One /v1 request as the sandbox saw it: when it arrived and when it was answered.

    `arrived` is when the request reached the sandbox app (on loopback, when it was sent),
    before the sandbox's latency and its rate limit; `answered` when the answer started.
    Both on `time.monotonic()`, the clock every thread of this process shares.
    """

    arrived: float
    answered: float
    method: str
    path: str
    status: int
    purpose: str = ""

    @property
    def kind(self) -> str:
        """ "push" for page writes, else "ingest" (queries, page and schema reads, users/me)."""
        return "push" if self.method == "PATCH" and self.path.startswith("/v1/pages/") else "ingest"


class RequestLog:
    """Pure ASGI middleware: records every /v1 request the wrapped sandbox app answers."""

    def __init__(self, app: ASGIApp, entries: list[Request]) -> None:
        self.app = app
        self.entries = entries

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith("/v1/"):
            await self.app(scope, receive, send)
            return
        arrived = time.monotonic()
        answer = {"status": 0, "at": arrived}
        body = bytearray()

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request" and len(body) < 4096:
                body.extend(message.get("body", b""))
            return message

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                answer["status"], answer["at"] = int(message["status"]), time.monotonic()
            await send(message)

        try:
            await self.app(scope, receiving, sending)
        finally:
            self.entries.append(
                Request(
                    arrived,
                    float(answer["at"]),
                    str(scope["method"]),
                    str(scope["path"]),
                    int(answer["status"]),
                    query_purpose(bytes(body)) if str(scope["path"]).endswith("/query") else "",
                )
            )


def query_purpose(body: bytes) -> str:
    """Which of reelqueue's reads a data source query is, by the shape of its filter.

    "recent" (edited since a moment and showing a creator's status: the hot reads, the
    reads a webhook ring starts and push-back's fresh reads), "incremental" (edited since
    the watermark) or "reconcile" (every page showing an actionable status); a query for
    a further page of results (a `start_cursor`) says "(next page)".
    """
    try:
        sent = json.loads(body or b"{}")
    except ValueError:
        return "unknown"
    query_filter = sent.get("filter") or {}
    more = " (next page)" if sent.get("start_cursor") else ""
    if "and" in query_filter:
        return "recent" + more
    if "timestamp" in query_filter:
        return "incremental" + more
    if "or" in query_filter:
        return "reconcile" + more
    return "other" + more


def code_version() -> dict[str, Any]:
    """The commit measured, and the files of reelqueue/ changed in the work tree beside it."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], capture_output=True, text=True, check=False)
        return done.stdout.rstrip()

    changed = [line[3:] for line in git("status", "--porcelain", "--", "reelqueue").splitlines()]
    return {"commit": git("rev-parse", "--short", "HEAD").strip(), "uncommitted": changed}


def _not_a_disconnect(record: logging.LogRecord) -> bool:
    return not (record.exc_info and isinstance(record.exc_info[1], ClientDisconnect))


def quiet_logs() -> None:
    """Keep the servers' tracebacks of requests cut off at shutdown out of the output."""
    logging.getLogger("uvicorn.error").addFilter(_not_a_disconnect)


def client_settings(model: str) -> dict[str, Any]:
    """The service's settings for this model: the limiter's defaults, or the budget told."""
    if model.endswith("+budget"):
        return {"notion_rate_budget": 180, "notion_rate_window_s": 60.0}
    return {}


def sandbox(model: str, **options: Any) -> tuple[SandboxServer, list[Request]]:
    """A sandbox of this rate model with Notion-like latency, and its request log.

    Each run gets its own token and workspace (seed), so the process-wide limiters and
    workspace holds of one run never carry into the next.
    """
    run = next(_runs)
    config = SandboxConfig(
        status_options=BOARD,
        token=f"secret_bench_{model.replace('+', '_')}_{uuid.uuid4().hex[:12]}",
        seed=run * 7919,
        latency_ms=LATENCY_MS,
        **MODELS[model],
        **options,
    )
    server = SandboxServer(config)
    entries: list[Request] = []
    server.app.add_middleware(RequestLog, entries=entries)
    return server, entries


async def start_service(
    server: str,
    box: SandboxServer,
    channels: Channels,
    tmp: Path,
    *,
    workers: int = 8,
    step_s: float = 0.05,
    **settings: Any,
) -> tuple[Service, str]:
    """The service as `reelqueue run` runs it (default limiter settings), leading and ready."""
    url = await fresh_database(server)
    async with SandboxAdmin(box.base_url) as admin:
        info = await admin.info()
    config = Settings(
        notion_token=SecretStr(box.token),
        notion_api_url=box.base_url,
        notion_database_ids=list(info["database_ids"]),
        demo_step_seconds=step_s,
        data_dir=tmp / "data",
        artifacts_dir=tmp / f"artifacts-{uuid.uuid4().hex[:8]}",
        **settings,
    )
    service = Service(
        config, channels, database_url=url, options=ServiceOptions(port=0, workers=workers)
    )
    await service.start()
    await asyncio.wait_for(service.leading.wait(), 30)
    assert service.coordinator is not None
    await asyncio.wait_for(service.coordinator.ready.wait(), 120)
    return service, url


class Database:
    """A few kept connections for the benchmark's own reads of the service's tables."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @classmethod
    async def connect(cls, url: str) -> Database:
        return cls(await asyncpg.create_pool(url, min_size=1, max_size=3))

    async def value(self, sql: str, *args: Any) -> int:
        return int(await self.pool.fetchval(sql, *args) or 0)

    async def statuses(self, pages: list[str]) -> dict[str, str]:
        """Each page's task status (pages without a task are left out)."""
        rows = await self.pool.fetch(
            "SELECT notion_page_id, status FROM tasks WHERE notion_page_id = ANY($1::text[])",
            pages,
        )
        return {r["notion_page_id"]: r["status"] for r in rows}

    async def close(self) -> None:
        await self.pool.close()


def count_fresh_reads(service: Service) -> list[float]:
    """Times (monotonic) at which push-back asked for a fresh read, from now on."""
    coordinator = service.coordinator
    assert coordinator is not None
    push_back = coordinator.push_back
    asked: list[float] = []
    original = push_back._fresh_read

    async def fresh_read(data_source_id: str) -> float:
        asked.append(time.monotonic())
        return await original(data_source_id)

    push_back._fresh_read = fresh_read
    return asked


def status_name(page: Mapping[str, Any]) -> str | None:
    """The Status label a Notion page object shows."""
    value = page["properties"]["Status"]
    chosen = value.get(value.get("type", "status")) or {}
    name = chosen.get("name")
    return str(name) if name is not None else None


async def until(
    check: Callable[[], Awaitable[bool]], within_s: float, every_s: float = 0.02
) -> bool:
    """Whether `check` became true within `within_s` seconds."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        if await check():
            return True
        await asyncio.sleep(every_s)
    return False


def between(entries: Iterable[Request], start: float, end: float) -> list[Request]:
    """The requests that arrived in [start, end)."""
    return [e for e in entries if start <= e.arrived < end]


def counts(entries: Iterable[Request]) -> dict[str, int]:
    """Requests per "METHOD path-template status" (no status: cut off when the run stopped)."""
    found: dict[str, int] = {}
    for e in entries:
        parts = e.path.split("/")
        template = "/".join("{id}" if len(p) >= 32 else p for p in parts)
        key = f"{e.method} {template} {e.status or 'unanswered (stopped)'}"
        found[key] = found.get(key, 0) + 1
    return dict(sorted(found.items()))


def percentiles(samples: list[float]) -> dict[str, float | int | None]:
    """n, p50, p95, p99 and max of samples (seconds or ms, as given), rounded to 3 places."""
    if not samples:
        return {"n": 0, "p50": None, "p95": None, "p99": None, "max": None}
    ordered = sorted(samples)
    if len(ordered) == 1:
        cuts = [ordered[0]] * 99
    else:
        cuts = statistics.quantiles(ordered, n=100, method="inclusive")
    return {
        "n": len(ordered),
        "p50": round(cuts[49], 3),
        "p95": round(cuts[94], 3),
        "p99": round(cuts[98], 3),
        "max": round(ordered[-1], 3),
    }
