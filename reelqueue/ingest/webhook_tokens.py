"""Webhook verification tokens: which keys may sign deliveries, and which wait for a person.

Notion POSTs a subscription's verification token once, unsigned; every later delivery is
signed with it. Anyone can POST an unsigned handshake, so a handshake never displaces a
token that is established (it verified a delivery, a person accepted it, or it is
NOTION_WEBHOOK_TOKEN): a new one is kept aside as a candidate until
`reelqueue webhook token --accept ID`. Until something is established, handshakes are
accepted as they come (a fresh setup, or a subscription recreated before its first event).
Several tokens may be accepted at once (one per subscription or workspace); each records
the subscriptions whose deliveries it verified. The whole book is one JSON row of
`service_state`, changed under that row's lock.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, TypeVar

from sqlalchemy import select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from reelqueue.db.models import SERVICE_STATE

__all__ = [
    "LEGACY_TOKEN_KEY",
    "MAX_CANDIDATES",
    "MAX_UNESTABLISHED",
    "TOKENS_KEY",
    "HandshakeOutcome",
    "StoredToken",
    "SubscriptionSeen",
    "TokenBook",
    "TokenNotFound",
    "accept_token",
    "forget_token",
    "load_tokens",
    "receive_handshake",
    "record_verification",
    "token_id",
]

TOKENS_KEY = "notion_webhook_tokens"
LEGACY_TOKEN_KEY = "notion_webhook_verification_token"
MAX_CANDIDATES = 20
MAX_UNESTABLISHED = 10
MAX_SUBSCRIPTIONS_PER_TOKEN = 50
_FIELD_LIMIT = 200
_HEX_ID = re.compile(r"[0-9a-f]{6,64}")

T = TypeVar("T")


class TokenNotFound(LookupError):
    """No stored token (or more than one) answers to the id given; the message says which."""


class HandshakeOutcome(StrEnum):
    """What a handshake did to the token book."""

    ACCEPTED = "accepted"
    CANDIDATE = "candidate"
    ALREADY_ACCEPTED = "already_accepted"
    ALREADY_CANDIDATE = "already_candidate"
    CONFIGURED = "configured"


def token_id(token: str) -> str:
    """A short public name for a token (a hash prefix): safe to log, useless to sign with."""
    return hashlib.sha256(b"reelqueue-webhook-token:" + token.encode()).hexdigest()[:12]


def _now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).isoformat().replace("+00:00", "Z")


def _clip(value: Any) -> str | None:
    return value[:_FIELD_LIMIT] if isinstance(value, str) and value else None


@dataclass
class SubscriptionSeen:
    """A subscription whose signed deliveries a token verified."""

    subscription_id: str
    workspace_id: str | None
    workspace_name: str | None
    first_at: str
    last_at: str

    def to_json(self) -> dict[str, Any]:
        """The record as stored."""
        return {
            "subscription_id": self.subscription_id,
            "workspace_id": self.workspace_id,
            "workspace_name": self.workspace_name,
            "first_at": self.first_at,
            "last_at": self.last_at,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SubscriptionSeen:
        """Read a stored record."""
        return cls(
            subscription_id=str(data["subscription_id"]),
            workspace_id=_clip(data.get("workspace_id")),
            workspace_name=_clip(data.get("workspace_name")),
            first_at=str(data.get("first_at", "")),
            last_at=str(data.get("last_at", "")),
        )


@dataclass
class StoredToken:
    """One verification token and what is known of it.

    `trusted`: a person accepted it (or it predates the token book), so it counts as
    established even before it verified a delivery.
    """

    token: str
    accepted: bool
    received_at: str
    accepted_at: str | None = None
    trusted: bool = False
    handshakes: int = 1
    subscriptions: dict[str, SubscriptionSeen] = field(default_factory=dict)

    @property
    def id(self) -> str:
        """The token's public name."""
        return token_id(self.token)

    @property
    def verified(self) -> bool:
        """Whether a signed delivery ever matched it."""
        return bool(self.subscriptions)

    @property
    def established(self) -> bool:
        """Whether a handshake must leave it in place."""
        return self.accepted and (self.verified or self.trusted)

    def describe(self) -> dict[str, Any]:
        """For people: the value only while someone may still need to paste it into Notion."""
        return {
            "id": self.id,
            "state": "accepted" if self.accepted else "candidate",
            "received_at": self.received_at,
            "accepted_at": self.accepted_at,
            "token": None if self.verified else self.token,
            "subscriptions": [s.to_json() for s in self.subscriptions.values()],
        }

    def to_json(self) -> dict[str, Any]:
        """The token as stored."""
        return {
            "token": self.token,
            "accepted": self.accepted,
            "received_at": self.received_at,
            "accepted_at": self.accepted_at,
            "trusted": self.trusted,
            "handshakes": self.handshakes,
            "subscriptions": [s.to_json() for s in self.subscriptions.values()],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> StoredToken:
        """Read a stored token."""
        seen = [SubscriptionSeen.from_json(s) for s in data.get("subscriptions", [])]
        return cls(
            token=str(data["token"]),
            accepted=bool(data.get("accepted")),
            received_at=str(data.get("received_at", "")),
            accepted_at=data.get("accepted_at"),
            trusted=bool(data.get("trusted")),
            handshakes=int(data.get("handshakes", 1)),
            subscriptions={s.subscription_id: s for s in seen},
        )


@dataclass
class TokenBook:
    """Every stored token, accepted ones and candidates, oldest first."""

    tokens: list[StoredToken] = field(default_factory=list)

    @property
    def accepted(self) -> list[StoredToken]:
        """Tokens whose signatures are taken."""
        return [t for t in self.tokens if t.accepted]

    @property
    def candidates(self) -> list[StoredToken]:
        """Tokens kept aside, waiting for `--accept`."""
        return [t for t in self.tokens if not t.accepted]

    def find(self, ref: str) -> StoredToken:
        """The token named by its id, a unique id prefix (6+ characters), or the token itself."""
        exact = [t for t in self.tokens if hmac.compare_digest(t.token, ref)]
        if exact:
            return exact[0]
        ref = ref.strip().lower()
        if not _HEX_ID.fullmatch(ref):
            raise TokenNotFound(f"no stored webhook token is named {ref[:12]!r}")
        matches = [t for t in self.tokens if t.id.startswith(ref)]
        if not matches:
            raise TokenNotFound(f"no stored webhook token has the id {ref}")
        if len(matches) > 1:
            raise TokenNotFound(f"several stored webhook tokens start with {ref}: give more of it")
        return matches[0]

    def receive(
        self, token: str, *, configured: str | None, now: datetime | None = None
    ) -> HandshakeOutcome:
        """Take a handshake's token: accepted while nothing is established, else a candidate."""
        if configured is not None and hmac.compare_digest(token, configured):
            return HandshakeOutcome.CONFIGURED
        for known in self.tokens:
            if hmac.compare_digest(known.token, token):
                known.handshakes += 1
                if known.accepted:
                    return HandshakeOutcome.ALREADY_ACCEPTED
                return HandshakeOutcome.ALREADY_CANDIDATE
        at = _now_iso(now)
        established = configured is not None or any(t.established for t in self.tokens)
        waiting = [t for t in self.accepted if not t.established]
        if not established and len(waiting) < MAX_UNESTABLISHED:
            self.tokens.append(StoredToken(token, accepted=True, received_at=at, accepted_at=at))
            return HandshakeOutcome.ACCEPTED
        self.tokens.append(StoredToken(token, accepted=False, received_at=at))
        candidates = self.candidates
        for old in candidates[: max(0, len(candidates) - MAX_CANDIDATES)]:
            self.tokens.remove(old)
        return HandshakeOutcome.CANDIDATE

    def accept(self, ref: str, now: datetime | None = None) -> StoredToken:
        """Let a person take a token: its signatures count from now on."""
        chosen = self.find(ref)
        if not chosen.accepted:
            chosen.accepted = True
            chosen.accepted_at = _now_iso(now)
        chosen.trusted = True
        return chosen

    def forget(self, ref: str) -> StoredToken:
        """Drop a token (a stale subscription's, or one nobody recognises)."""
        chosen = self.find(ref)
        self.tokens.remove(chosen)
        return chosen

    def record(
        self,
        id_: str,
        subscription_id: str,
        *,
        workspace_id: str | None,
        workspace_name: str | None,
        now: datetime | None = None,
    ) -> bool:
        """Note that a delivery of `subscription_id` verified with token `id_`; False if unknown."""
        chosen = next((t for t in self.accepted if t.id == id_), None)
        if chosen is None:
            return False
        at = _now_iso(now)
        seen = chosen.subscriptions.get(subscription_id)
        if seen is None:
            seen = SubscriptionSeen(
                subscription_id, _clip(workspace_id), _clip(workspace_name), at, at
            )
            chosen.subscriptions[subscription_id] = seen
        seen.last_at = at
        seen.workspace_id = _clip(workspace_id) or seen.workspace_id
        seen.workspace_name = _clip(workspace_name) or seen.workspace_name
        if len(chosen.subscriptions) > MAX_SUBSCRIPTIONS_PER_TOKEN:
            stalest = min(chosen.subscriptions.values(), key=lambda s: s.last_at)
            del chosen.subscriptions[stalest.subscription_id]
        return True

    def to_json(self) -> str:
        """The book as stored in `service_state`."""
        return json.dumps({"version": 1, "tokens": [t.to_json() for t in self.tokens]})

    @classmethod
    def from_json(cls, value: str) -> TokenBook:
        """Read the stored book."""
        data = json.loads(value)
        return cls([StoredToken.from_json(t) for t in data.get("tokens", [])])


async def _read(conn: AsyncConnection, *, lock: bool) -> TokenBook:
    query = select(SERVICE_STATE.c.key, SERVICE_STATE.c.value).where(
        SERVICE_STATE.c.key.in_([TOKENS_KEY, LEGACY_TOKEN_KEY])
    )
    if lock:
        query = query.with_for_update()
    rows = {str(k): str(v) for k, v in (await conn.execute(query)).all()}
    if rows.get(TOKENS_KEY):
        return TokenBook.from_json(rows[TOKENS_KEY])
    legacy = rows.get(LEGACY_TOKEN_KEY)
    if legacy:
        at = _now_iso()
        old = StoredToken(legacy, accepted=True, received_at=at, accepted_at=at, trusted=True)
        return TokenBook([old])
    return TokenBook()


async def load_tokens(conn: AsyncConnection) -> TokenBook:
    """The stored tokens (a token kept before the book existed counts as accepted and trusted)."""
    return await _read(conn, lock=False)


async def _change(conn: AsyncConnection, change: Callable[[TokenBook], T]) -> T:
    """Apply `change` to the book under the row's lock and store the result (in `conn`'s txn)."""
    await conn.execute(
        pg_insert(SERVICE_STATE).values(key=TOKENS_KEY, value="").on_conflict_do_nothing()
    )
    book = await _read(conn, lock=True)
    result = change(book)
    await conn.execute(
        SERVICE_STATE.update()
        .where(SERVICE_STATE.c.key == TOKENS_KEY)
        .values(value=book.to_json(), updated_at=text("now()"))
    )
    return result


async def receive_handshake(
    conn: AsyncConnection, token: str, *, configured: str | None = None
) -> HandshakeOutcome:
    """Keep a handshake's token: accepted, or kept aside when a token is established."""
    return await _change(conn, lambda book: book.receive(token, configured=configured))


async def accept_token(conn: AsyncConnection, ref: str) -> StoredToken:
    """Accept a stored token by id, id prefix or value; raise TokenNotFound if none matches."""
    return await _change(conn, lambda book: book.accept(ref))


async def forget_token(conn: AsyncConnection, ref: str) -> StoredToken:
    """Drop a stored token by id, id prefix or value; raise TokenNotFound if none matches."""
    return await _change(conn, lambda book: book.forget(ref))


async def record_verification(
    conn: AsyncConnection,
    id_: str,
    subscription_id: str,
    *,
    workspace_id: str | None,
    workspace_name: str | None,
) -> bool:
    """Store that token `id_` verified a delivery of `subscription_id`; False if it is gone."""
    return await _change(
        conn,
        lambda book: book.record(
            id_, subscription_id, workspace_id=workspace_id, workspace_name=workspace_name
        ),
    )
