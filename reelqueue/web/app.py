"""The web app: Notion's webhook receiver, health, metrics."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, generate_latest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.ingest import MAX_BODY_BYTES, InboxWriter, Verdict, classify, parse_delivery
from reelqueue.logs import correlation
from reelqueue.web.health import NotionHealth, iso
from reelqueue.web.webhook_keys import WebhookKeys

__all__ = ["WebState", "create_app", "health_report"]

log = structlog.get_logger(__name__)


@dataclass
class WebState:
    """What the web app needs from the running service.

    `notion` is the Notion health tracker of the service's client (None: "unknown");
    `last_poll_ok` says when this process last read Notion successfully (as leader);
    `schema_problems` lists what the calendars' schemas lack now, each with its fix.
    """

    engine: AsyncEngine
    inbox: InboxWriter
    bot_user_id: str | None = None
    configured_webhook_token: str | None = None
    is_leader: Callable[[], bool] = field(default=lambda: False)
    notion: NotionHealth | None = None
    last_poll_ok: Callable[[], datetime | None] = field(default=lambda: None)
    schema_problems: Callable[[], list[str]] = field(default=lambda: [])
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    last_webhook_at: datetime | None = None
    keys: WebhookKeys = field(init=False)

    def __post_init__(self) -> None:
        self.keys = WebhookKeys(self.engine, self.configured_webhook_token)


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


_LAST_SEEN = text(
    "SELECT (SELECT max(updated_at) FROM sync_state) AS polled, "
    "(SELECT received_at FROM webhook_inbox ORDER BY id DESC LIMIT 1) AS webhook"
)


def _age(moment: datetime | None, now: datetime) -> float | None:
    return None if moment is None else round(max(0.0, (now - moment).total_seconds()), 1)


async def health_report(state: WebState) -> dict[str, Any]:
    """The /healthz body: database, Notion, role, and how long since a poll and a webhook.

    "status" is "degraded" when the database is unreachable, or when this process leads
    and Notion is failing (ingest and push-back are stalled), or when a calendar's schema
    lacks a property reelqueue needs (`schema_problems` says how to fix it). A standby
    does not talk to Notion after start-up, so its Notion fields describe its start-up
    requests.
    """
    database = "ok"
    polled: datetime | None = None
    webhook = state.last_webhook_at
    try:
        async with state.engine.connect() as conn:
            row = (await conn.execute(_LAST_SEEN)).one()
        polled = row.polled
        if row.webhook is not None and (webhook is None or row.webhook > webhook):
            webhook = row.webhook
    except Exception as exc:  # any failure here is what the health check reports
        database = f"error: {type(exc).__name__}"
    mine = state.last_poll_ok()
    if mine is not None and (polled is None or mine > polled):
        polled = mine
    leader = state.is_leader()
    view = state.notion.view() if state.notion is not None else None
    notion = view.as_dict() if view is not None else {"notion": "unknown"}
    schema = state.schema_problems()
    degraded = database != "ok" or (leader and notion["notion"] == "failing") or bool(schema)
    now = datetime.now(UTC)
    return {
        "status": "degraded" if degraded else "ok",
        "database": database,
        **notion,
        "leader": leader,
        "role": "leader" if leader else "standby",
        "last_poll_at": iso(polled),
        "last_poll_age_s": _age(polled, now),
        "last_webhook_at": iso(webhook),
        "last_webhook_age_s": _age(webhook, now),
        "schema_problems": schema,
    }


def create_app(state: WebState) -> FastAPI:
    """Build the ASGI app around the service's state."""
    app = FastAPI(title="reelqueue", docs_url=None, redoc_url=None, openapi_url=None)
    verdicts = Counter(
        "reelqueue_webhook_deliveries",
        "Webhook deliveries by outcome",
        ["outcome"],
        registry=state.registry,
    )
    refusals = Counter(
        "reelqueue_webhook_refusals",
        "Signed webhook deliveries refused, by likely cause",
        ["cause"],
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
                await state.keys.keep_handshake(token)
                verdicts.labels(Verdict.HANDSHAKE.value).inc()
                return JSONResponse({"status": Verdict.HANDSHAKE.value})
            key = await state.keys.match(raw, signature)
            if key is None:
                refusals.labels((await state.keys.refuse(raw, signature)).value).inc()
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
            state.last_webhook_at = datetime.now(UTC)
            await state.keys.note_verified(key, delivery.body)
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
    async def healthz(strict: bool = False) -> Response:
        report = await health_report(state)
        healthy = report["database"] == "ok" and not (strict and report["status"] != "ok")
        return JSONResponse(report, status_code=200 if healthy else 503)

    @app.get("/metrics")
    async def metrics() -> Response:
        return PlainTextResponse(generate_latest(state.registry), media_type=CONTENT_TYPE_LATEST)

    return app
