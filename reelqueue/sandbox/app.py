"""The sandbox as an ASGI app: Notion's /v1 routes, the /_sandbox admin routes, and 404s."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from reelqueue.sandbox import admin, api
from reelqueue.sandbox.config import SandboxConfig
from reelqueue.sandbox.errors import invalid_request_url
from reelqueue.sandbox.gate import sandbox_state
from reelqueue.sandbox.state import SandboxState


async def _unknown_route(request: Request, exc: Exception) -> Response:
    """Notion answers any unknown path or method with 400 invalid_request_url."""
    response = invalid_request_url().response(str(uuid.uuid4()))
    if request.url.path.startswith("/v1/"):
        sandbox_state(request).stats.record_request(
            f"{request.method} (unknown route)", response.status_code
        )
    return response


def create_app(config: SandboxConfig) -> Starlette:
    """A sandbox app seeded from `config`; its SandboxState is `app.state.sandbox`."""
    state = SandboxState(config)

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield
        state.release_hung()
        await state.webhooks.close()

    app = Starlette(
        routes=[*api.ROUTES, *admin.ROUTES],
        exception_handlers={404: _unknown_route, 405: _unknown_route},
        lifespan=lifespan,
    )
    app.state.sandbox = state
    return app
