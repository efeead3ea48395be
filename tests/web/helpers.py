"""Talk to a running service's web app as Notion (or a stranger) would."""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx

from reelqueue.service import Service


def sign(body: bytes, token: str) -> str:
    """X-Notion-Signature for a body signed with `token`."""
    return "sha256=" + hmac.new(token.encode(), body, hashlib.sha256).hexdigest()


def event_body(page_id: str, subscription_id: str, **extra: Any) -> bytes:
    """A page.properties_updated event of one subscription, as raw JSON."""
    body: dict[str, Any] = {
        "id": str(uuid.uuid4()),
        "timestamp": "2026-12-03T12:00:00.000Z",
        "workspace_id": "7a1f0e52-3f2a-4c53-9a55-0e3c3f0c1a01",
        "workspace_name": "Studio",
        "subscription_id": subscription_id,
        "integration_id": str(uuid.uuid4()),
        "type": "page.properties_updated",
        "authors": [{"id": str(uuid.uuid4()), "type": "person"}],
        "attempt_number": 1,
        "api_version": "2025-09-03",
        "entity": {"id": page_id, "type": "page"},
        "data": {"parent": {"id": str(uuid.uuid4()), "type": "database"}},
    }
    body.update(extra)
    return json.dumps(body).encode()


async def handshake(service: Service, token: str) -> httpx.Response:
    """An unsigned verification POST, as Notion sends when a subscription is created."""
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        return await client.post("/webhooks/notion", json={"verification_token": token})


async def deliver(
    service: Service, token: str, subscription_id: str, page_id: str, **extra: Any
) -> httpx.Response:
    """A signed event delivery."""
    raw = event_body(page_id, subscription_id, **extra)
    headers = {"content-type": "application/json", "x-notion-signature": sign(raw, token)}
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        return await client.post("/webhooks/notion", content=raw, headers=headers)


async def health(service: Service, **params: str) -> httpx.Response:
    """GET /healthz."""
    async with httpx.AsyncClient(base_url=service.base_url) as client:
        return await client.get("/healthz", params=params)
