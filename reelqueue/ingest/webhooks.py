"""Notion webhook deliveries: verify, parse, dedupe into the inbox, and decide what to ring.

Webhooks are a doorbell, not the truth: an accepted event only asks for an
incremental query; the values always come from Notion itself.

Whoever sends a body, signed or not, gets a 4xx for anything that is not an event
(`load_body`: invalid JSON, NaN or infinite numbers, more than `MAX_DEPTH` levels of
nesting), and what an event carries is made safe to store before it is kept: text is
cleaned as page text is (NUL dropped, lone surrogates replaced), ids are read as Notion
ids or left out, an event id over 200 characters is not an event.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy import text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.db.models import WEBHOOK_INBOX
from reelqueue.ingest.moves import SCHEMA_EVENTS, SINGLE_EVENTS
from reelqueue.notion import InvalidNotionId, normalize_id
from reelqueue.notion.properties import clean_text

__all__ = [
    "DOORBELL_CHANNEL",
    "HANDLED_EVENT_TYPES",
    "MAX_BODY_BYTES",
    "MAX_DEPTH",
    "BadBody",
    "Delivery",
    "Verdict",
    "classify",
    "load_body",
    "nesting_depth",
    "parse_delivery",
    "record_events",
    "signature_matches",
]

log = structlog.get_logger(__name__)

MAX_BODY_BYTES = 1_000_000
# Notion's events nest four or five levels; a body nested deeper is not one of them.
MAX_DEPTH = 64
MAX_EVENT_ID_LENGTH = 200
DOORBELL_CHANNEL = "reelqueue_doorbell"
HANDLED_EVENT_TYPES = (
    frozenset(
        {"page.created", "page.properties_updated", "page.deleted", "page.undeleted", "page.moved"}
    )
    | SCHEMA_EVENTS
)


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


class BadBody(ValueError):
    """A webhook body that is not JSON we take; the message says why, for the 400."""


_STRINGS = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def nesting_depth(raw: bytes, limit: int = MAX_DEPTH) -> int:
    """How deeply a JSON text nests arrays and objects (counting stops just past `limit`).

    Read from the bytes without parsing, so a body nested too deep for the parser (or
    for a log line quoting it) is turned away before anything reads it.
    """
    brackets = _STRINGS.sub(b"", raw).translate(None, _NOT_BRACKETS)
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in b"[{" else -1
        if depth > deepest:
            deepest = depth
            if deepest > limit:
                break
    return deepest


def _finite(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadBody(f"body holds a number out of range: {text[:20]}")
    return value


def _constant(name: str) -> Any:
    raise BadBody(f"body holds {name}, which is not JSON")


def load_body(raw: bytes) -> Any:
    """The JSON value of a body; BadBody (a 400) for anything else, whatever it holds."""
    if nesting_depth(raw) > MAX_DEPTH:
        raise BadBody(f"body nests deeper than {MAX_DEPTH} levels")
    try:
        return json.loads(raw, parse_float=_finite, parse_constant=_constant)
    except BadBody:
        raise
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise BadBody("body is not valid JSON") from exc


def _cleaned(value: Any) -> Any:
    """A JSON value with every text storable (see `clean_text`); depth is bounded by the caller."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _cleaned(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_cleaned(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _shallow(value: Any, room: int) -> bool:
    """Whether a parsed JSON value nests no deeper than `room` levels."""
    if isinstance(value, dict | list):
        if room <= 0:
            return False
        items = value.values() if isinstance(value, dict) else value
        return all(_shallow(item, room - 1) for item in items)
    return True


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _id(value: Any) -> str | None:
    try:
        return normalize_id(value)
    except InvalidNotionId:
        return None


def _timestamp(value: Any) -> str | None:
    """An ISO timestamp with its zone as sent, or None for anything else."""
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if moment.tzinfo is not None else None


def parse_delivery(body: Any) -> Delivery | None:
    """The event in a JSON body, or None when it is not an event at all."""
    if not isinstance(body, dict) or not _shallow(body, MAX_DEPTH):
        return None
    body = _cleaned(body)
    event_id, event_type = _str(body.get("id")), _str(body.get("type"))
    if event_id is None or event_type is None or len(event_id) > MAX_EVENT_ID_LENGTH:
        return None
    entity = _dict(body.get("entity"))
    data = _dict(body.get("data"))
    parent = _dict(data.get("parent"))
    listed = body.get("authors")
    authors = [a for a in listed if isinstance(a, dict)] if isinstance(listed, list) else []
    return Delivery(
        event_id=event_id,
        event_type=event_type[:100],
        entity_id=_id(entity.get("id")),
        author_ids=tuple(str(a.get("id", ""))[:100] for a in authors),
        author_types=tuple(str(a.get("type", ""))[:100] for a in authors),
        data_source_id=_id(parent.get("data_source_id")) or _id(parent.get("id")),
        timestamp=_timestamp(body.get("timestamp")),
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
                pg_insert(WEBHOOK_INBOX)
                .values(rows)
                .on_conflict_do_nothing(index_elements=["event_id"])
                .returning(WEBHOOK_INBOX.c.event_id)
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
