"""Notion as reelqueue may meet it: a loopback proxy in front of the sandbox that makes chosen
pages show values the sandbox itself would refuse to store (a number where text belongs, a
select with no name), as a real workspace's odd pages can."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

Rewrite = Callable[[dict[str, Any]], None]
HOP_HEADERS = {"host", "content-length", "transfer-encoding", "content-encoding", "connection"}


def _rewrite_pages(body: Any, rewrites: dict[str, Rewrite]) -> None:
    pages = body.get("results", []) if body.get("object") == "list" else [body]
    for page in pages:
        if isinstance(page, dict) and page.get("object") == "page" and page.get("id") in rewrites:
            rewrites[page["id"]](page["properties"])


@dataclass(frozen=True)
class Sent:
    """One request the proxy passed on, and when it left."""

    method: str
    path: str
    sent: float


def proxy_app(upstream: str, rewrites: dict[str, Rewrite], log: list[Sent]) -> Starlette:
    """Forward every request to `upstream`; rewrite the pages named in `rewrites` on the way back
    (each rewrite changes only the properties the answer holds: queries may filter them).

    Answers are sent with JSON escapes (ensure_ascii), as Notion sends them.
    """
    client = httpx.AsyncClient(base_url=upstream, timeout=None, trust_env=False)

    async def forward(request: Request) -> Response:
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP_HEADERS}
        query = request.url.query
        log.append(Sent(request.method, request.url.path, time.monotonic()))
        answer = await client.request(
            request.method,
            request.url.path + (f"?{query}" if query else ""),
            headers=headers,
            content=await request.body(),
        )
        out_headers = {k: v for k, v in answer.headers.items() if k.lower() not in HOP_HEADERS}
        content = answer.content
        if answer.status_code == 200 and request.url.path.startswith("/v1/"):
            body = answer.json()
            if isinstance(body, dict):
                _rewrite_pages(body, rewrites)
                content = json.dumps(body, ensure_ascii=True).encode()
        return Response(content, answer.status_code, out_headers)

    methods = ["GET", "POST", "PATCH", "DELETE", "PUT"]
    return Starlette(routes=[Route("/{path:path}", forward, methods=methods)])


@contextlib.asynccontextmanager
async def rewriting_proxy(
    upstream: str, rewrites: dict[str, Rewrite], log: list[Sent] | None = None
) -> AsyncIterator[str]:
    """Serve the proxy on a free loopback port for the block; yields its base URL.

    Every request passed on is appended to `log`.
    """
    app = proxy_app(upstream, rewrites, log if log is not None else [])
    config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    while not server.started:
        if task.done():
            await task
        await asyncio.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


def number_topic(properties: dict[str, Any]) -> None:
    """The Topic is a number."""
    if "Topic" in properties:
        properties["Topic"] = {"id": properties["Topic"]["id"], "type": "number", "number": 42}


def nameless_channel(properties: dict[str, Any]) -> None:
    """The Channel select has an id and a colour but no name."""
    if "Channel" in properties:
        properties["Channel"]["select"] = {"id": "a1b2", "color": "default"}
