"""Which keys sign Notion's deliveries to this service, and why a delivery matched none of them.

`WebhookKeys` caches the accepted tokens (NOTION_WEBHOOK_TOKEN and the stored ones), looks
again in the database before refusing a signature (another replica, or `reelqueue webhook
token --accept`, may have changed them), records which subscription verified with which
token, and logs every refusal's likely cause at most once a minute per cause. Logs name
tokens only by their id (a hash prefix), never by value.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import structlog
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.ingest.webhook_tokens import (
    HandshakeOutcome,
    TokenBook,
    load_tokens,
    receive_handshake,
    record_verification,
    token_id,
)
from reelqueue.logs import register_secret

__all__ = [
    "CAUSE_MESSAGES",
    "CONFIGURED_HINT",
    "KeyMatch",
    "LogLimiter",
    "MismatchCause",
    "WebhookKeys",
]

log = structlog.get_logger(__name__)

CONFIGURED_ID = "NOTION_WEBHOOK_TOKEN"
_SIGNATURE = re.compile(r"sha256=[0-9a-fA-F]{64}")
_RECORD_EVERY_S = 60.0


class MismatchCause(StrEnum):
    """Why a signed delivery matched no accepted token."""

    MALFORMED = "malformed_signature"
    CANDIDATE_WAITING = "candidate_waiting"
    NO_TOKEN = "no_token"
    CONFIGURED_MISMATCH = "configured_mismatch"
    UNKNOWN_KEY = "unknown_key"


CAUSE_MESSAGES = {
    MismatchCause.MALFORMED: "X-Notion-Signature is not 'sha256=<64 hex digits>': not Notion",
    MismatchCause.CANDIDATE_WAITING: (
        "a new subscription's handshake is waiting: if you created it, run "
        "`reelqueue webhook token --accept {token_id}`"
    ),
    MismatchCause.NO_TOKEN: (
        "no verification token is stored: Notion's handshake never reached this service; "
        "recreate the subscription while `reelqueue run` serves, or set NOTION_WEBHOOK_TOKEN"
    ),
    MismatchCause.CONFIGURED_MISMATCH: (
        "NOTION_WEBHOOK_TOKEN does not match what Notion signs with: set it to the "
        "subscription's verification token, or unset it to use the handshake's "
        "(`reelqueue webhook token`)"
    ),
    MismatchCause.UNKNOWN_KEY: (
        "signed with a key matching no stored token: a forged request, or a subscription "
        "whose handshake never reached this service (see `reelqueue webhook token`)"
    ),
}


CONFIGURED_HINT = (
    "; NOTION_WEBHOOK_TOKEN is set but did not sign it either: set it to the "
    "subscription's verification token, or unset it"
)


class LogLimiter:
    """Lets a line through at most once per `every_s` per cause; counts the ones held back."""

    def __init__(self, every_s: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.every_s = every_s
        self._clock = clock
        self._last: dict[str, float] = {}
        self._held: dict[str, int] = {}

    def allow(self, cause: str) -> int | None:
        """None to stay quiet; else how many lines of this cause were held back since the last."""
        now = self._clock()
        last = self._last.get(cause)
        if last is not None and now - last < self.every_s:
            self._held[cause] = self._held.get(cause, 0) + 1
            return None
        self._last[cause] = now
        return self._held.pop(cause, 0)


@dataclass(frozen=True)
class KeyMatch:
    """The accepted token a delivery's signature matched, by id."""

    token_id: str
    configured: bool


def _signature_of(token: str, raw: bytes) -> str:
    return hmac.new(token.encode(), raw, hashlib.sha256).hexdigest()


def _matches(token: str, raw: bytes, digest: str) -> bool:
    return hmac.compare_digest(_signature_of(token, raw), digest)


def _short(value: Any) -> str | None:
    return value[:64] if isinstance(value, str) and value else None


def _claims(raw: bytes) -> dict[str, Any]:
    """What an unverified body says of itself (for the log line only)."""
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


@dataclass
class WebhookKeys:
    """The keys deliveries may be signed with, cached from the database."""

    engine: AsyncEngine
    configured: str | None = None
    log_every_s: float = 60.0
    max_age_s: float = 2.0
    _book: TokenBook | None = None
    _read_at: float = 0.0
    _read_started: float = 0.0
    _reading: asyncio.Lock = field(default_factory=asyncio.Lock)
    _recorded: dict[tuple[str, str], float] = field(default_factory=dict)
    _limiter: LogLimiter = field(init=False)

    def __post_init__(self) -> None:
        self._limiter = LogLimiter(self.log_every_s)
        register_secret(self.configured)

    async def book(self, *, refresh: bool = False) -> TokenBook:
        """The stored tokens (cached for `max_age_s`, so a token forgotten elsewhere stops
        working soon; `refresh` reads them at once).

        Accepted tokens are registered as secrets for the log scrubber; candidates are not
        (anyone can POST one, and the scrubber's list must stay short), and are never
        logged by value anyway.
        """
        asked = time.monotonic()
        if self._book is not None and not refresh and asked - self._read_at <= self.max_age_s:
            return self._book
        async with self._reading:
            if self._book is not None and self._read_started >= asked:
                return self._book  # read by another request after this one asked: fresh enough
            self._read_started = time.monotonic()
            async with self.engine.connect() as conn:
                self._book = await load_tokens(conn)
            self._read_at = time.monotonic()
            for stored in self._book.accepted:
                register_secret(stored.token)
        return self._book

    async def match(self, raw: bytes, header: str | None) -> KeyMatch | None:
        """The accepted token that signed `raw`, reading the stored ones again before a no.

        Requests that find no match at the same moment share one read of the database.
        """
        if header is None or not _SIGNATURE.fullmatch(header.strip()):
            return None
        digest = header.strip().removeprefix("sha256=").lower()
        if self.configured and _matches(self.configured, raw, digest):
            return KeyMatch(CONFIGURED_ID, True)
        for refresh in (False, True):
            for stored in (await self.book(refresh=refresh)).accepted:
                if _matches(stored.token, raw, digest):
                    return KeyMatch(stored.id, False)
        return None

    async def refuse(self, raw: bytes, header: str | None) -> MismatchCause:
        """Work out why a delivery matched no accepted token and log it (rate-limited)."""
        cause, waiting = MismatchCause.UNKNOWN_KEY, None
        book = await self.book()
        if header is None or not _SIGNATURE.fullmatch(header.strip()):
            cause = MismatchCause.MALFORMED
        else:
            digest = header.strip().removeprefix("sha256=").lower()
            waiting = next((c.id for c in book.candidates if _matches(c.token, raw, digest)), None)
            if waiting is not None:
                cause = MismatchCause.CANDIDATE_WAITING
            elif not book.accepted and not self.configured:
                cause = MismatchCause.NO_TOKEN
            elif self.configured and not book.accepted:
                cause = MismatchCause.CONFIGURED_MISMATCH
        held = self._limiter.allow(cause.value if waiting is None else f"{cause}:{waiting}")
        if held is not None:
            claimed = _claims(raw)
            message = CAUSE_MESSAGES[cause].format(token_id=waiting)
            if self.configured and cause in {
                MismatchCause.CANDIDATE_WAITING,
                MismatchCause.UNKNOWN_KEY,
            }:
                message += CONFIGURED_HINT
            log.warning(
                "webhook refused: " + message,
                cause=cause.value,
                token_id=waiting,
                claimed_subscription_id=_short(claimed.get("subscription_id")),
                claimed_workspace_id=_short(claimed.get("workspace_id")),
                refused_since_last_line=held,
            )
        return cause

    async def keep_handshake(self, token: str) -> HandshakeOutcome:
        """Store a handshake's token (accepted, or kept aside) and say so in the log."""
        async with self.engine.begin() as conn:
            outcome = await receive_handshake(conn, token, configured=self.configured)
        await self.book(refresh=True)
        id_ = token_id(token)
        if outcome is HandshakeOutcome.CANDIDATE:
            held = self._limiter.allow("handshake_kept_aside")
            if held is not None:
                log.warning(
                    "webhook handshake kept aside: an established verification token already "
                    "signs deliveries, so a handshake cannot replace it. If you just created "
                    "a subscription, see its token with `reelqueue webhook token` and accept "
                    f"it with `reelqueue webhook token --accept {id_}`",
                    token_id=id_,
                    kept_aside_since_last_line=held,
                )
        elif outcome is HandshakeOutcome.ACCEPTED:
            log.info(
                "webhook verification token received: print it with `reelqueue webhook "
                "token` and paste it into Notion's Verify form",
                token_id=id_,
            )
        else:
            log.info("webhook handshake repeated a known token", token_id=id_, outcome=outcome)
        return outcome

    async def note_verified(self, key: KeyMatch, body: dict[str, Any]) -> None:
        """Record that `key` verified a delivery of the body's subscription (once a minute)."""
        subscription = _short(body.get("subscription_id"))
        if key.configured or subscription is None:
            return
        now = time.monotonic()
        last = self._recorded.get((key.token_id, subscription))
        if last is not None and now - last < _RECORD_EVERY_S:
            return
        self._recorded[(key.token_id, subscription)] = now
        try:
            async with self.engine.begin() as conn:
                await record_verification(
                    conn,
                    key.token_id,
                    subscription,
                    workspace_id=_short(body.get("workspace_id")),
                    workspace_name=_short(body.get("workspace_name")),
                )
        except SQLAlchemyError as exc:  # the delivery itself is taken; try again next time
            del self._recorded[(key.token_id, subscription)]
            log.warning("could not record a verified subscription", error=type(exc).__name__)
            return
        if last is None:
            log.info(
                "webhook subscription verified a delivery",
                token_id=key.token_id,
                subscription_id=subscription,
                workspace_id=_short(body.get("workspace_id")),
            )
        await self.book(refresh=True)
