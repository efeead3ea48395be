"""The web app: Notion's webhook receiver, health, metrics.

No body makes the webhook receiver fail: whatever a sender puts in it, signed or not,
gets a 4xx (400 not an event, 401 unsigned or badly signed, 408 a body still arriving
after `BODY_TIMEOUT_S`, 413 too large), and a failure of our own (the database gone)
a 503 Notion retries. A sender hanging up before its body arrived is one log line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    generate_latest,
)
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from starlette.requests import ClientDisconnect

from reelqueue.ingest import MAX_BODY_BYTES, InboxWriter, Verdict, classify, parse_delivery
from reelqueue.ingest.webhooks import MAX_DEPTH, BadBody, load_body, nesting_depth
from reelqueue.logs import correlation
from reelqueue.web.health import NotionHealth, failing_roles, iso
from reelqueue.web.webhook_keys import WebhookKeys

__all__ = ["BODY_TIMEOUT_S", "WebState", "create_app", "health_report"]

log = structlog.get_logger(__name__)

# Notion sends a whole event at once; a body still arriving after this is cut off.
BODY_TIMEOUT_S = 5.0


@dataclass
class WebState:
    """What the web app needs from the running service.

    `notion` is the Notion health tracker of the service's client (None: "unknown");
    `last_poll_ok` says when this process last read Notion successfully (as leader);
    `schema_problems` lists what the calendars' schemas lack now, each with its fix;
    `roles` says how each of the process's roles is doing (any failing: degraded).
    """

    engine: AsyncEngine
    inbox: InboxWriter
    bot_user_id: str | None = None
    configured_webhook_token: str | None = None
    is_leader: Callable[[], bool] = field(default=lambda: False)
    notion: NotionHealth | None = None
    last_poll_ok: Callable[[], datetime | None] = field(default=lambda: None)
    schema_problems: Callable[[], list[str]] = field(default=lambda: [])
    roles: Callable[[], dict[str, dict[str, object]]] = field(default=lambda: {})
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    last_webhook_at: datetime | None = None
    keys: WebhookKeys = field(init=False)

    def __post_init__(self) -> None:
        self.keys = WebhookKeys(self.engine, self.configured_webhook_token)


def _error(status: int, reason: str, *, close: bool = False) -> JSONResponse:
    """An error answer; `close` ends the connection (a body left unread cannot be skipped)."""
    headers = {"connection": "close"} if close else None
    return JSONResponse({"error": reason}, status_code=status, headers=headers)


async def _read_body(request: Request) -> bytes | None:
    """The raw body, or None when it is over the size limit (read no further than that).

    TimeoutError when it is not all there within BODY_TIMEOUT_S.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        return None
    body = bytearray()
    async with asyncio.timeout(BODY_TIMEOUT_S):
        async for chunk in request.stream():
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                return None
    return bytes(body)


def _handshake_token(raw: bytes) -> str | None:
    try:
        body = load_body(raw)
    except BadBody:
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
    lacks a property reelqueue needs (`schema_problems` says how to fix it), or when one
    of the process's roles is failing (`roles`: the leader lock, ingest, push-back, the
    listener, the reaper, the workers; `failing_roles` names them). A standby
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
    roles = state.roles()
    failing = failing_roles(roles)
    degraded = (
        database != "ok"
        or (leader and notion["notion"] == "failing")
        or bool(schema)
        or bool(failing)
    )
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
        "roles": roles,
        "failing_roles": failing,
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

    in_progress = Gauge(
        "reelqueue_webhook_deliveries_in_progress",
        "Webhook deliveries being received or recorded right now",
        registry=state.registry,
    )

    @app.post("/webhooks/notion")
    async def notion_webhook(request: Request) -> Response:
        with correlation(source="webhook"), in_progress.track_inprogress():
            try:
                return await receive(request)
            except ClientDisconnect:
                verdicts.labels("hung_up").inc()
                log.info("webhook sender hung up before its body arrived")
                return _error(400, "the sender hung up")
            except Exception as exc:  # ours, not the sender's: Notion delivers it again later
                verdicts.labels("failed").inc()
                log.warning("webhook delivery not taken", error=type(exc).__name__)
                return _error(503, "try again later")

    async def receive(request: Request) -> Response:
        try:
            raw = await _read_body(request)
        except TimeoutError:
            verdicts.labels("too_slow").inc()
            log.info("webhook body cut off: still arriving after the time limit", s=BODY_TIMEOUT_S)
            return _error(408, f"body not received within {BODY_TIMEOUT_S:g} s", close=True)
        if raw is None:
            verdicts.labels("too_large").inc()
            return _error(413, f"body over {MAX_BODY_BYTES} bytes")
        if nesting_depth(raw) > MAX_DEPTH:
            verdicts.labels("bad_json").inc()
            return _error(400, f"body nests deeper than {MAX_DEPTH} levels")
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
            body = load_body(raw)
        except BadBody as bad:
            verdicts.labels("bad_json").inc()
            return _error(400, str(bad))
        delivery = parse_delivery(body)
        if delivery is None:
            verdicts.labels("not_an_event").inc()
            return _error(
                400,
                "body is not a Notion event: it needs string 'id' (at most 200 characters) "
                "and 'type'",
            )
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
