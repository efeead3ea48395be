"""The web app: Notion's webhook receiver, health, metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.ingest import (
    MAX_BODY_BYTES,
    InboxWriter,
    Verdict,
    classify,
    load_webhook_token,
    parse_delivery,
    signature_matches,
    store_webhook_token,
)
from reelqueue.logs import correlation

__all__ = ["WebState", "create_app"]

log = structlog.get_logger(__name__)


@dataclass
class WebState:
    """What the web app needs from the running service."""

    engine: AsyncEngine
    inbox: InboxWriter
    bot_user_id: str | None = None
    configured_webhook_token: str | None = None
    is_leader: Callable[[], bool] = field(default=lambda: False)
    notion_health: Callable[[], str] = field(default=lambda: "unknown")
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    _cached_token: str | None = None

    async def keep_webhook_token(self, token: str) -> bool:
        """Store the token from Notion's handshake (True when it is new) and use it."""
        async with self.engine.begin() as conn:
            changed = await store_webhook_token(conn, token)
        self._cached_token = token
        return changed

    async def webhook_token(self, *, refresh: bool = False) -> str | None:
        """NOTION_WEBHOOK_TOKEN, or the one stored from the handshake (cached)."""
        if self.configured_webhook_token:
            return self.configured_webhook_token
        if self._cached_token is None or refresh:
            async with self.engine.connect() as conn:
                self._cached_token = await load_webhook_token(conn)
        return self._cached_token


def _error(status: int, reason: str) -> JSONResponse:
    return JSONResponse({"error": reason}, status_code=status)


async def _read_body(request: Request) -> bytes | None:
    """The raw body, or None when it is over the size limit (read no further than that)."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_BODY_BYTES:
            return None
    return bytes(body)


def _handshake_token(raw: bytes) -> str | None:
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(body, dict) and set(body) == {"verification_token"}:
        token = body["verification_token"]
        if isinstance(token, str) and 0 < len(token) <= 512 and token.isprintable():
            return token
    return None


def create_app(state: WebState) -> FastAPI:
    """Build the ASGI app around the service's state."""
    app = FastAPI(title="reelqueue", docs_url=None, redoc_url=None, openapi_url=None)
    verdicts = Counter(
        "reelqueue_webhook_deliveries",
        "Webhook deliveries by outcome",
        ["outcome"],
        registry=state.registry,
    )

    @app.post("/webhooks/notion")
    async def notion_webhook(request: Request) -> Response:
        with correlation(source="webhook"):
            raw = await _read_body(request)
            if raw is None:
                verdicts.labels("too_large").inc()
                return _error(413, f"body over {MAX_BODY_BYTES} bytes")
            signature = request.headers.get("x-notion-signature")
            if signature is None:
                token = _handshake_token(raw)
                if token is None:
                    verdicts.labels("unsigned").inc()
                    return _error(401, "missing X-Notion-Signature")
                changed = await state.keep_webhook_token(token)
                verdicts.labels(Verdict.HANDSHAKE.value).inc()
                log.info(
                    "webhook verification token received: print it with "
                    "`reelqueue webhook token` and paste it into Notion's Verify form",
                    new=changed,
                )
                return JSONResponse({"status": Verdict.HANDSHAKE.value})
            token = await state.webhook_token()
            if token is None or not signature_matches(token, raw, signature):
                fresh = await state.webhook_token(refresh=True)
                if fresh is None or not signature_matches(fresh, raw, signature):
                    verdicts.labels("bad_signature").inc()
                    return _error(401, "X-Notion-Signature does not match the body")
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                verdicts.labels("bad_json").inc()
                return _error(400, "body is not valid JSON")
            delivery = parse_delivery(body)
            if delivery is None:
                verdicts.labels("not_an_event").inc()
                return _error(400, "body is not a Notion event: it needs string 'id' and 'type'")
            verdict = classify(delivery, bot_user_id=state.bot_user_id)
            state.inbox.put(delivery)
            if verdict is Verdict.ACCEPTED:
                verdict = Verdict.QUEUED
            verdicts.labels(verdict.value).inc()
            log.debug(
                "webhook event",
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                notion_page_id=delivery.entity_id,
                verdict=verdict.value,
            )
            return JSONResponse({"status": verdict.value})

    @app.get("/healthz")
    async def healthz() -> Response:
        database = "ok"
        try:
            async with state.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
        except Exception as exc:  # any failure here is what the health check reports
            database = f"error: {type(exc).__name__}"
        notion = state.notion_health()
        leader = state.is_leader()
        healthy = database == "ok"
        return JSONResponse(
            {"status": "ok" if healthy else "degraded", "database": database,
             "notion": notion, "leader": leader},
            status_code=200 if healthy else 503,
        )  # fmt: skip

    @app.get("/metrics")
    async def metrics() -> Response:
        return PlainTextResponse(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)

    return app
