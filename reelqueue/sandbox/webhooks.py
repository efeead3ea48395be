"""Integration webhooks: subscriptions, the handshake, verification, and signed event delivery.

A new subscription gets one POST `{"verification_token": "secret_..."}` and then nothing
until it is verified (Notion's Verify button; here `verify`, or `verified=True` when
subscribing). Events of changes made while it was unverified are never sent to it.
A subscription may name any event type Notion documents (`EVENT_TYPES`, the list of the
official JS SDK's webhook payload types); the sandbox itself emits `page.created`,
`page.properties_updated`, `page.deleted`, `page.undeleted`, `page.moved` and
`data_source.schema_updated`.

When each event goes out is decided by `webhook_timing` (at once, or when a window of
`window_ms` ends; Notion's window is one minute). Events are sparse: a
`page.properties_updated` lists property ids, never values. Every body is signed
`X-Notion-Signature: sha256=<hex HMAC-SHA256(verification token, raw body)>`.

Delivery is at most once. A non-2xx answer or a connection error is retried with
`attempt_number` + 1, up to 8 attempts, on an exponential schedule whose last attempt
comes about 24 hours after the first, as Notion documents ("retry delivery up to 8 times
using an exponential backoff schedule. The final retry attempt occurs approximately 24
hours after the initial event trigger"): waits of 680 s doubling to 12 h 5 min, all
multiplied by `retry_scale` so tests can run the whole schedule in a second. Faults
(drop, duplicate, reorder, delay) apply to each batch of events sent together. Delivery
runs as tasks on the sandbox's own loop, so it never holds up an API request.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import random
import secrets
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from reelqueue.sandbox.faults import FaultSet
from reelqueue.sandbox.ids import new_id
from reelqueue.sandbox.stats import Stats
from reelqueue.sandbox.timestamps import format_precise
from reelqueue.sandbox.webhook_timing import Aggregator, Change, Event

API_VERSION = "2025-09-03"
EVENT_TYPES = (
    "page.content_updated",
    "page.created",
    "page.deleted",
    "page.locked",
    "page.moved",
    "page.properties_updated",
    "page.transcription_block.transcript_deleted",
    "page.undeleted",
    "page.unlocked",
    "database.content_updated",
    "database.created",
    "database.deleted",
    "database.moved",
    "database.schema_updated",
    "database.undeleted",
    "data_source.content_updated",
    "data_source.created",
    "data_source.deleted",
    "data_source.moved",
    "data_source.schema_updated",
    "data_source.undeleted",
    "comment.created",
    "comment.deleted",
    "comment.updated",
    "file_upload.completed",
    "file_upload.created",
    "file_upload.expired",
    "file_upload.upload_failed",
    "view.created",
    "view.deleted",
    "view.updated",
)
MAX_ATTEMPTS = 8
DAY_S = 86_400.0
FIRST_RETRY_S = DAY_S / (2 ** (MAX_ATTEMPTS - 1) - 1)
DELIVERY_TIMEOUT_S = 5.0
_SAME_BATCH_S = 0.01


def sign(verification_token: str, raw_body: bytes) -> str:
    """The X-Notion-Signature header value for a body."""
    digest = hmac.new(verification_token.encode(), raw_body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def retry_waits(scale: float = 1.0) -> list[float]:
    """Seconds to wait after each failed attempt but the last: doubling, summing to a day."""
    return [FIRST_RETRY_S * 2**n * scale for n in range(MAX_ATTEMPTS - 1)]


def valid_retry_scale(value: Any) -> bool:
    """Whether `value` can scale the retry schedule: a number of 0 or more."""
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def unknown_event_types(types: Any) -> list[str] | None:
    """The names in `types` Notion does not document, or None when it is not a list of names."""
    if not isinstance(types, list) or not types or not all(isinstance(t, str) for t in types):
        return None
    return [t for t in types if t not in EVENT_TYPES]


@dataclass
class Subscription:
    """Where events go, the token that signs them, which types it wants, and whether verified."""

    id: str
    url: str
    verification_token: str
    event_types: tuple[str, ...] | None = None
    verified: bool = False

    def wants(self, event_type: str) -> bool:
        """Whether this subscription, once verified, receives events of this type."""
        return self.event_types is None or event_type in self.event_types

    def to_json(self) -> dict[str, Any]:
        """The subscription as the admin API shows it."""
        types = list(self.event_types) if self.event_types is not None else list(EVENT_TYPES)
        return {
            "id": self.id,
            "url": self.url,
            "verification_token": self.verification_token,
            "event_types": types,
            "verified": self.verified,
        }


@dataclass(frozen=True)
class WebhookSource:
    """The workspace and integration named in every event."""

    workspace_id: str
    workspace_name: str
    integration_id: str


def event_body(
    event: Event, source: WebhookSource, sub: Subscription, event_id: str, attempt: int
) -> dict[str, Any]:
    """The body of one delivery attempt, with the fields of Notion's sample payloads."""
    data: dict[str, Any] = {"parent": dict(event.parent)}
    if event.type == "page.properties_updated":
        data["updated_properties"] = list(event.property_ids)
    elif event.type.endswith(".schema_updated"):
        data["updated_properties"] = [dict(c) for c in event.schema_changes]
    return {
        "id": event_id,
        "timestamp": format_precise(event.occurred),
        "workspace_id": source.workspace_id,
        "workspace_name": source.workspace_name,
        "subscription_id": sub.id,
        "integration_id": source.integration_id,
        "authors": [dict(a) for a in event.authors],
        "attempt_number": attempt,
        "api_version": API_VERSION,
        "type": event.type,
        "entity": {"id": event.entity_id, "type": event.entity_type},
        "data": data,
    }


class WebhookDispatcher:
    """Turns changes into events, times them as Notion does, and delivers them."""

    def __init__(
        self,
        source: WebhookSource,
        stats: Stats,
        rng: random.Random,
        faults: Callable[[], FaultSet],
        window_ms: int,
        retry_scale: float = 1.0,
    ) -> None:
        self.source = source
        self.retry_scale = retry_scale
        self.subscriptions: dict[str, Subscription] = {}
        self._aggregator = Aggregator(window_ms / 1000)
        self._stats = stats
        self._rng = rng
        self._faults = faults
        self._ready: list[Event] = []
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._client: httpx.AsyncClient | None = None

    @property
    def window_ms(self) -> int:
        """How long later changes of one entity are gathered into one event."""
        return round(self._aggregator.window_s * 1000)

    @window_ms.setter
    def window_ms(self, value: int) -> None:
        self._aggregator.window_s = value / 1000

    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_S, trust_env=False)
        return self._client

    async def subscribe(
        self, url: str, event_types: tuple[str, ...] | None, verified: bool = False
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
            status: int | None = answer.status_code
        except httpx.HTTPError:
            status = None
        subscription.verified = verified
        return subscription, status

    def verify(self, subscription_id: str, token: Any) -> Subscription | None:
        """Mark a subscription verified when `token` is its verification token.

        Returns None for an unknown subscription; raises ValueError (never naming the
        token) when the token does not match.
        """
        subscription = self.subscriptions.get(subscription_id)
        if subscription is None:
            return None
        if not isinstance(token, str) or not hmac.compare_digest(
            token.encode(), subscription.verification_token.encode()
        ):
            raise ValueError("verification_token does not match this subscription's token.")
        subscription.verified = True
        return subscription

    def record(
        self,
        page_id: str,
        event_type: str,
        parent: dict[str, Any],
        author: dict[str, Any],
        occurred: datetime,
        property_ids: list[str] | None = None,
        *,
        entity_type: str = "page",
        schema_changes: list[dict[str, Any]] | None = None,
        moved_from: dict[str, Any] | None = None,
    ) -> None:
        """Note a change of a page (or another entity); it is sent now or when its window ends."""
        wanted = frozenset(
            sub.id for sub in self.subscriptions.values() if sub.verified and sub.wants(event_type)
        )
        if not wanted:
            return
        change = Change(
            page_id,
            entity_type,
            event_type,
            parent,
            author,
            occurred,
            wanted,
            tuple(property_ids or ()),
            tuple(schema_changes or ()),
        )
        loop = asyncio.get_running_loop()
        ready = self._aggregator.add(change, loop.time(), moved_from)
        if ready:
            if not self._ready:
                loop.call_soon(self._send_ready)
            self._ready.extend(ready)
        self._schedule()

    def _schedule(self) -> None:
        """Keep one timer, set for the end of the earliest open window."""
        due = self._aggregator.next_due()
        if self._timer is not None:
            if due is not None and self._timer.when() == due:
                return
            self._timer.cancel()
            self._timer = None
        if due is not None:
            self._timer = asyncio.get_running_loop().call_at(due, self._flush_due)

    def _send_ready(self) -> None:
        batch, self._ready = self._ready, []
        self._send(batch)

    def _flush_due(self) -> None:
        self._timer = None
        self._send(self._aggregator.due(asyncio.get_running_loop().time() + _SAME_BATCH_S))
        self._schedule()

    def _send(self, batch: list[Event]) -> None:
        faults = self._faults()
        deliveries = [
            (self.subscriptions[sub_id], event)
            for event in batch
            for sub_id in sorted(event.subscription_ids)
            if sub_id in self.subscriptions
        ]
        if faults.webhook_reorder:
            self._rng.shuffle(deliveries)
        for sub, event in deliveries:
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
                self._spawn(self._deliver(sub, event, event_id, delay_s))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _deliver(
        self, sub: Subscription, event: Event, event_id: str, delay_s: float
    ) -> None:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        waits = retry_waits(self.retry_scale)
        for attempt in range(1, MAX_ATTEMPTS + 1):
            raw = json.dumps(event_body(event, self.source, sub, event_id, attempt)).encode()
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
            await asyncio.sleep(waits[attempt - 1])
            self._stats.webhooks["retried"] += 1

    def clear(self) -> None:
        """Forget subscriptions and events not yet sent; stop deliveries under way."""
        self.subscriptions.clear()
        self._aggregator.clear()
        self._ready.clear()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
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
