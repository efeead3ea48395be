"""What every /v1 request passes before its handler: latency, size, auth, version, limits, faults.

Every request first takes the configured latency (asyncio.sleep, so requests in flight overlap
as on a real server). Then, in Notion's order as far as it shows: a body over 500 KB is
refused 413 (before auth, as by a front proxy); a bad token is refused next (and costs no rate
budget); then a missing or unknown Notion-Version; then the rate limits. Injected faults come
last, so a faulted request counts against the rate budget but never reaches its handler.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from reelqueue.sandbox.bodies import refuse_oversized
from reelqueue.sandbox.errors import (
    NotionError,
    fault_error,
    invalid_version,
    missing_version,
    rate_limited,
    unauthorized,
)
from reelqueue.sandbox.faults import plan_request_fault
from reelqueue.sandbox.responses import NotionJSONResponse
from reelqueue.sandbox.state import SandboxState

Handler = Callable[[Request, SandboxState], Awaitable[dict[str, Any]]]

# Every Notion-Version the service accepts (Changes by version, and the upgrade guide of
# 2026-12-01, the newest).
NOTION_VERSIONS = (
    "2021-05-11",
    "2021-05-13",
    "2021-08-16",
    "2022-02-22",
    "2022-06-28",
    "2025-09-03",
    "2026-03-11",
    "2026-12-01",
)


def sandbox_state(request: Request) -> SandboxState:
    """The sandbox state of the app serving this request."""
    state: SandboxState = request.app.state.sandbox
    return state


def request_latency_s(state: SandboxState) -> float:
    """How long this request takes before it is answered: fixed, or drawn from the range."""
    low, high = state.limiter.limits.latency_ms
    return (low if low == high else state.fault_rng.uniform(low, high)) / 1000


async def admit(request: Request, state: SandboxState) -> None:
    """Raise the NotionError Notion would answer before running the handler, if any."""
    latency = request_latency_s(state)
    if latency > 0:
        await asyncio.sleep(latency)
    await refuse_oversized(request)
    authorization = request.headers.get("authorization", "")
    scheme, _, token = authorization.partition(" ")
    token = token.strip()
    if scheme.lower() != "bearer" or not token or not state.limiter.accepts(token):
        raise unauthorized()
    version = request.headers.get("notion-version")
    if not version:
        raise missing_version()
    if version.strip() not in NOTION_VERSIONS:
        raise invalid_version(version, NOTION_VERSIONS)
    refusal = state.limiter.check(token)
    if refusal is not None:
        raise rate_limited(refusal.retry_after_s, refusal.reason)
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
        raise fault_error(fault.error_status, state.faults.overload_retry_after_s)


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
            response = NotionJSONResponse(body)
        except NotionError as error:
            response = error.response(request_id)
        state.stats.record_request(endpoint_name, response.status_code)
        return response

    return Route(path, endpoint, methods=[method])
