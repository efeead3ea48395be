"""Integration webhooks: subscriptions, the handshake, and signed, aggregated event delivery.

Changes to one page are gathered for `window_ms`; then one event per page and type is
sent (a `page.properties_updated` lists the union of the property ids changed, never their
values). Every body is signed `X-Notion-Signature: sha256=<hex HMAC-SHA256(verification
token, raw body)>`. A non-2xx answer or a connection error is retried with
`attempt_number` + 1, up to 8 attempts, after 0.2 s doubling up to 2 s. Subscriptions are
considered verified as soon as the handshake was attempted: the sandbox needs no one to
paste the token back. Delivery runs as tasks on the sandbox's own loop, so it never holds
up an API request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import httpx

from reelqueue.sandbox.faults import FaultSet
from reelqueue.sandbox.ids import new_id
from reelqueue.sandbox.stats import Stats
from reelqueue.sandbox.timestamps import format_precise

API_VERSION = "2025-09-03"
EVENT_TYPES = ("page.created", "page.properties_updated", "page.deleted", "page.undeleted")
MAX_ATTEMPTS = 8
FIRST_RETRY_S = 0.2
MAX_RETRY_S = 2.0
DELIVERY_TIMEOUT_S = 5.0
_SAME_BATCH_S = 0.01


def sign(verification_token: str, raw_body: bytes) -> str:
    """The X-Notion-Signature header value for a body."""
    digest = hmac.new(verification_token.encode(), raw_body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


@dataclass(frozen=True)
class Subscription:
    """Where events go, the token that signs them, and which event types it wants."""

    id: str
    url: str
    verification_token: str
    event_types: tuple[str, ...] | None = None

    def wants(self, event_type: str) -> bool:
        """Whether this subscription receives events of this type."""
        return self.event_types is None or event_type in self.event_types

    def to_json(self) -> dict[str, Any]:
        """The subscription as the admin API shows it."""
        types = list(self.event_types) if self.event_types is not None else list(EVENT_TYPES)
        return {
            "id": self.id,
            "url": self.url,
            "verification_token": self.verification_token,
            "event_types": types,
        }


@dataclass(frozen=True)
class WebhookSource:
    """The workspace and integration named in every event."""

    workspace_id: str
    workspace_name: str
    integration_id: str


@dataclass
class PendingEvent:
    """Changes to one page, of one event type, gathered until the window closes."""

    page_id: str
    type: str
    parent: dict[str, Any]
    occurred: datetime
    deadline: float
    property_ids: list[str] = field(default_factory=list)
    authors: list[dict[str, Any]] = field(default_factory=list)

    def body(
        self, source: WebhookSource, sub: Subscription, event_id: str, attempt: int
    ) -> dict[str, Any]:
        """The event body for one delivery attempt, keys in Notion's order."""
        data: dict[str, Any] = {"parent": dict(self.parent)}
        if self.type == "page.properties_updated":
            data["updated_properties"] = list(self.property_ids)
        return {
            "id": event_id,
            "timestamp": format_precise(self.occurred),
            "workspace_id": source.workspace_id,
            "workspace_name": source.workspace_name,
            "subscription_id": sub.id,
            "integration_id": source.integration_id,
            "authors": [dict(a) for a in self.authors],
            "attempt_number": attempt,
            "api_version": API_VERSION,
            "type": self.type,
            "entity": {"id": self.page_id, "type": "page"},
            "data": data,
        }


class WebhookDispatcher:
    """Gathers page changes into events and delivers them to every subscription."""

    def __init__(
        self,
        source: WebhookSource,
        stats: Stats,
        rng: random.Random,
        faults: Callable[[], FaultSet],
        window_ms: int,
    ) -> None:
        self.source = source
        self.window_ms = window_ms
        self.subscriptions: dict[str, Subscription] = {}
        self._stats = stats
        self._rng = rng
        self._faults = faults
        self._pending: dict[tuple[str, str], PendingEvent] = {}
        self._timers: list[asyncio.TimerHandle] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_S, trust_env=False)
        return self._client

    async def subscribe(
        self, url: str, event_types: tuple[str, ...] | None
    ) -> tuple[Subscription, int | None]:
        """Add a subscription and POST its handshake; also return the handshake's status."""
        subscription = Subscription(
            id=new_id(self._rng),
            url=url,
            verification_token="secret_" + secrets.token_urlsafe(32),
            event_types=event_types,
        )
        self.subscriptions[subscription.id] = subscription
        self._stats.webhooks["handshakes"] += 1
        try:
            answer = await self._http().post(
                url, json={"verification_token": subscription.verification_token}
            )
        except httpx.HTTPError:
            return subscription, None
        return subscription, answer.status_code

    def record(
        self,
        page_id: str,
        event_type: str,
        parent: dict[str, Any],
        author: dict[str, Any],
        occurred: datetime,
        property_ids: list[str] | None = None,
    ) -> None:
        """Note a change; it joins the page's pending event of that type, or opens one."""
        if not any(sub.wants(event_type) for sub in self.subscriptions.values()):
            return
        loop = asyncio.get_running_loop()
        key = (page_id, event_type)
        pending = self._pending.get(key)
        if pending is None:
            pending = PendingEvent(
                page_id, event_type, parent, occurred, loop.time() + self.window_ms / 1000
            )
            self._pending[key] = pending
            self._timers.append(loop.call_later(self.window_ms / 1000, self._flush_due))
        pending.occurred = occurred
        for property_id in property_ids or []:
            if property_id not in pending.property_ids:
                pending.property_ids.append(property_id)
        if author not in pending.authors:
            pending.authors.append(author)

    def _flush_due(self) -> None:
        loop = asyncio.get_running_loop()
        self._timers = [t for t in self._timers if not t.cancelled() and t.when() > loop.time()]
        cutoff = loop.time() + _SAME_BATCH_S
        due = [key for key, pending in self._pending.items() if pending.deadline <= cutoff]
        batch = [self._pending.pop(key) for key in due]
        faults = self._faults()
        deliveries = [
            (sub, pending)
            for pending in batch
            for sub in self.subscriptions.values()
            if sub.wants(pending.type)
        ]
        if faults.webhook_reorder:
            self._rng.shuffle(deliveries)
        for sub, pending in deliveries:
            if self._rng.random() < faults.webhook_drop_rate:
                self._stats.webhooks["dropped"] += 1
                continue
            event_id = new_id(self._rng)
            copies = 1
            if self._rng.random() < faults.webhook_duplicate_rate:
                copies = 2
                self._stats.webhooks["duplicated"] += 1
            low, high = faults.webhook_delay_ms
            for _ in range(copies):
                delay_s = self._rng.uniform(low, high) / 1000
                self._spawn(self._deliver(sub, pending, event_id, delay_s))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, sub: Subscription, pending: PendingEvent, event_id: str, delay_s: float
    ) -> None:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            raw = json.dumps(pending.body(self.source, sub, event_id, attempt)).encode()
            headers = {
                "Content-Type": "application/json",
                "User-Agent": "notion-api",
                "X-Notion-Signature": sign(sub.verification_token, raw),
            }
            self._stats.webhooks["sent"] += 1
            try:
                answer = await self._http().post(sub.url, content=raw, headers=headers)
                delivered = answer.is_success
            except httpx.HTTPError:
                delivered = False
            if delivered:
                self._stats.webhooks["delivered"] += 1
                return
            self._stats.webhooks["failed"] += 1
            if attempt == MAX_ATTEMPTS:
                self._stats.webhooks["abandoned"] += 1
                return
            await asyncio.sleep(min(FIRST_RETRY_S * 2 ** (attempt - 1), MAX_RETRY_S))
            self._stats.webhooks["retried"] += 1

    def clear(self) -> None:
        """Forget subscriptions and pending events; stop deliveries under way."""
        self.subscriptions.clear()
        self._pending.clear()
        for timer in self._timers:
            timer.cancel()
        self._timers.clear()
        for task in list(self._tasks):
            task.cancel()

    async def close(self) -> None:
        """Stop everything and close the HTTP client."""
        self.clear()
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()
            self._client = None
