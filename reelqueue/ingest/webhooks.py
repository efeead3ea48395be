"""Notion webhook deliveries: verify, parse, dedupe into the inbox, and decide what to ring.

Webhooks are a doorbell, not the truth: an accepted event only asks for an
incremental query; the values always come from Notion itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.db.models import SERVICE_STATE, WEBHOOK_INBOX

__all__ = [
    "DOORBELL_CHANNEL",
    "HANDLED_EVENT_TYPES",
    "MAX_BODY_BYTES",
    "TOKEN_KEY",
    "Delivery",
    "Verdict",
    "load_webhook_token",
    "parse_delivery",
    "record_event",
    "signature_matches",
    "store_webhook_token",
]

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 1_000_000
TOKEN_KEY = "notion_webhook_verification_token"
DOORBELL_CHANNEL = "reelqueue_doorbell"
HANDLED_EVENT_TYPES = frozenset(
    {"page.created", "page.properties_updated", "page.deleted", "page.undeleted", "page.moved"}
)

_inbox = WEBHOOK_INBOX
_state = SERVICE_STATE


class Verdict(StrEnum):
    """What became of one delivery."""

    HANDSHAKE = "handshake"
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    OWN_WRITE = "own_write"
    IGNORED = "ignored"


@dataclass(frozen=True)
class Delivery:
    """A parsed event body: only the fields the doorbell needs."""

    event_id: str
    event_type: str
    entity_id: str | None
    author_ids: tuple[str, ...]
    author_types: tuple[str, ...]
    data_source_id: str | None
    body: dict[str, Any]


def signature_matches(token: str, raw_body: bytes, header: str | None) -> bool:
    """Whether `X-Notion-Signature` is the HMAC-SHA256 of the raw body under `token`."""
    if not header or not header.startswith("sha256="):
        return False
    expected = hmac.new(token.encode(), raw_body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, header.removeprefix("sha256=").strip())


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def parse_delivery(body: Any) -> Delivery | None:
    """The event in a JSON body, or None when it is not an event at all."""
    if not isinstance(body, dict):
        return None
    event_id, event_type = _str(body.get("id")), _str(body.get("type"))
    if event_id is None or event_type is None:
        return None
    entity = _dict(body.get("entity"))
    data = _dict(body.get("data"))
    parent = _dict(data.get("parent"))
    authors = [a for a in body.get("authors") or [] if isinstance(a, dict)]
    return Delivery(
        event_id=event_id,
        event_type=event_type,
        entity_id=_str(entity.get("id")),
        author_ids=tuple(str(a.get("id", "")) for a in authors),
        author_types=tuple(str(a.get("type", "")) for a in authors),
        data_source_id=_str(parent.get("data_source_id")) or _str(parent.get("id")),
        body=body,
    )


async def record_event(
    conn: AsyncConnection, delivery: Delivery, *, bot_user_id: str | None
) -> Verdict:
    """Put the event in the inbox once; say whether it should ring the doorbell.

    A first-seen event of a handled type, not authored only by our own bot, rings
    the doorbell for every process through NOTIFY (delivered at commit).
    """
    inserted = await conn.scalar(
        pg_insert(_inbox)
        .values(
            event_id=delivery.event_id,
            event_type=delivery.event_type,
            entity_id=delivery.entity_id,
            payload=delivery.body,
        )
        .on_conflict_do_nothing(index_elements=["event_id"])
        .returning(_inbox.c.id)
    )
    if inserted is None:
        return Verdict.DUPLICATE
    if delivery.event_type not in HANDLED_EVENT_TYPES:
        return Verdict.IGNORED
    if bot_user_id and delivery.author_ids and set(delivery.author_ids) == {bot_user_id}:
        return Verdict.OWN_WRITE
    payload = {"type": delivery.event_type, "page": delivery.entity_id}
    await conn.execute(
        text("SELECT pg_notify(:channel, :payload)"),
        {"channel": DOORBELL_CHANNEL, "payload": json.dumps(payload)},
    )
    return Verdict.ACCEPTED


async def store_webhook_token(conn: AsyncConnection, token: str) -> bool:
    """Keep the verification token from Notion's handshake; True when it is new."""
    current = await load_webhook_token(conn)
    if current == token:
        return False
    await conn.execute(
        pg_insert(_state)
        .values(key=TOKEN_KEY, value=token)
        .on_conflict_do_update(
            index_elements=["key"], set_={"value": token, "updated_at": text("now()")}
        )
    )
    return True


async def load_webhook_token(conn: AsyncConnection) -> str | None:
    """The stored verification token, if a handshake has happened."""
    value = await conn.scalar(select(_state.c.value).where(_state.c.key == TOKEN_KEY))
    return str(value) if value is not None else None
