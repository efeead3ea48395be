"""What every /v1 request passes before its handler: auth, version, rate limit, faults.

The order is Notion's as far as it shows: a bad token is refused first (and costs no rate
budget), then a missing Notion-Version, then the rate limit; injected faults come last, so
a faulted request counts against the rate budget but never reaches its handler.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from reelqueue.sandbox.errors import (
    NotionError,
    fault_error,
    missing_version,
    rate_limited,
    unauthorized,
)
from reelqueue.sandbox.faults import plan_request_fault
from reelqueue.sandbox.state import SandboxState

Handler = Callable[[Request, SandboxState], Awaitable[dict[str, Any]]]


def sandbox_state(request: Request) -> SandboxState:
    """The sandbox state of the app serving this request."""
    state: SandboxState = request.app.state.sandbox
    return state


async def admit(request: Request, state: SandboxState) -> None:
    """Raise the NotionError Notion would answer before running the handler, if any."""
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or token.strip() != state.config.token:
        raise unauthorized()
    if not request.headers.get("notion-version"):
        raise missing_version()
    retry_after = state.limiter.check(token.strip())
    if retry_after is not None:
        raise rate_limited(retry_after)
    fault = plan_request_fault(state.faults, state.fault_rng)
    if fault.latency_s > 0:
        await asyncio.sleep(fault.latency_s)
    if fault.hang:
        state.stats.hung += 1
        state.stats.faults_injected += 1
        await state.hang(state.faults.hang_max_ms / 1000)
        raise fault_error(504)
    if fault.error_status is not None:
        state.stats.faults_injected += 1
        raise fault_error(fault.error_status)


def notion_route(method: str, path: str, handler: Handler) -> Route:
    """A /v1 route: gated, counted under "METHOD /v1/template", errors as Notion's bodies."""
    endpoint_name = f"{method} {path.replace('{object_id}', '{id}')}"

    async def endpoint(request: Request) -> Response:
        state = sandbox_state(request)
        request_id = str(uuid.uuid4())
        response: Response
        try:
            await admit(request, state)
            body = await handler(request, state)
            body["request_id"] = request_id
            response = JSONResponse(body)
        except NotionError as error:
            response = error.response(request_id)
        state.stats.record_request(endpoint_name, response.status_code)
        return response

    return Route(path, endpoint, methods=[method])
