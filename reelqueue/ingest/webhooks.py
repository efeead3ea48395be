"""Notion webhook deliveries: verify, parse, dedupe into the inbox, and decide what to ring.

Webhooks are a doorbell, not the truth: an accepted event only asks for an
incremental query; the values always come from Notion itself.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.db.models import WEBHOOK_INBOX
from reelqueue.ingest.moves import SCHEMA_EVENTS, SINGLE_EVENTS

__all__ = [
    "DOORBELL_CHANNEL",
    "HANDLED_EVENT_TYPES",
    "MAX_BODY_BYTES",
    "Delivery",
    "Verdict",
    "classify",
    "parse_delivery",
    "record_events",
    "signature_matches",
]

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 1_000_000
DOORBELL_CHANNEL = "reelqueue_doorbell"
HANDLED_EVENT_TYPES = (
    frozenset(
        {"page.created", "page.properties_updated", "page.deleted", "page.undeleted", "page.moved"}
    )
    | SCHEMA_EVENTS
)

_inbox = WEBHOOK_INBOX


class Verdict(StrEnum):
    """What became of one delivery."""

    HANDSHAKE = "handshake"
    ACCEPTED = "accepted"
    QUEUED = "queued"
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
    timestamp: str | None
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


def _has_nul(value: Any) -> bool:
    """Whether a NUL character hides anywhere in a JSON value (PostgreSQL cannot store it)."""
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_has_nul(k) or _has_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_nul(v) for v in value)
    return False


def parse_delivery(body: Any) -> Delivery | None:
    """The event in a JSON body, or None when it is not an event at all."""
    if not isinstance(body, dict) or _has_nul(body):
        return None
    event_id, event_type = _str(body.get("id")), _str(body.get("type"))
    if event_id is None or event_type is None:
        return None
    entity = _dict(body.get("entity"))
    data = _dict(body.get("data"))
    parent = _dict(data.get("parent"))
    listed = body.get("authors")
    authors = [a for a in listed if isinstance(a, dict)] if isinstance(listed, list) else []
    return Delivery(
        event_id=event_id,
        event_type=event_type,
        entity_id=_str(entity.get("id")),
        author_ids=tuple(str(a.get("id", "")) for a in authors),
        author_types=tuple(str(a.get("type", "")) for a in authors),
        data_source_id=_str(parent.get("data_source_id")) or _str(parent.get("id")),
        timestamp=_str(body.get("timestamp")),
        body=body,
    )


def classify(delivery: Delivery, *, bot_user_id: str | None) -> Verdict:
    """What an event asks of us, before knowing whether it was seen already."""
    if delivery.event_type not in HANDLED_EVENT_TYPES:
        return Verdict.IGNORED
    ours = bool(bot_user_id and delivery.author_ids and set(delivery.author_ids) == {bot_user_id})
    # A schema change by our bot (`reelqueue notion setup`) still asks for the schema anew.
    if ours and delivery.event_type not in SCHEMA_EVENTS:
        return Verdict.OWN_WRITE
    return Verdict.ACCEPTED


def _doorbell_payload(delivery: Delivery) -> str:
    return json.dumps(
        {"type": delivery.event_type, "page": delivery.entity_id, "at": delivery.timestamp}
    )


async def record_events(
    conn: AsyncConnection, deliveries: Sequence[Delivery], *, bot_user_id: str | None
) -> list[Verdict]:
    """Put events in the inbox in one statement, once each; ring the doorbell for the new ones.

    A first-seen event of a handled type, not authored only by our own bot, rings the
    doorbell of every process through NOTIFY (delivered at commit): page deletions, moves,
    restores and schema changes one by one, since they name what to read, and all other
    events as one ring that carries the newest edit time.
    """
    unique = list({d.event_id: d for d in deliveries}.values())
    if not unique:
        return []
    rows = [
        {
            "event_id": d.event_id,
            "event_type": d.event_type,
            "entity_id": d.entity_id,
            "payload": d.body,
        }
        for d in unique
    ]
    inserted = set(
        (
            await conn.scalars(
                pg_insert(_inbox)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["event_id"])
                .returning(_inbox.c.event_id)
            )
        ).all()
    )
    verdicts: list[Verdict] = []
    rings: list[Delivery] = []
    for delivery in deliveries:
        if delivery.event_id not in inserted:
            verdicts.append(Verdict.DUPLICATE)
            continue
        inserted.discard(delivery.event_id)
        verdict = classify(delivery, bot_user_id=bot_user_id)
        verdicts.append(verdict)
        if verdict is Verdict.ACCEPTED:
            rings.append(delivery)
    deletions = [d for d in rings if d.event_type in SINGLE_EVENTS]
    others = [d for d in rings if d.event_type not in SINGLE_EVENTS]
    if others:
        newest = max(others, key=lambda d: d.timestamp or "")
        deletions.append(newest)
    for delivery in deletions:
        await conn.execute(
            text("SELECT pg_notify(:channel, :payload)"),
            {"channel": DOORBELL_CHANNEL, "payload": _doorbell_payload(delivery)},
        )
    return verdicts
