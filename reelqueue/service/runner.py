"""One `reelqueue run` process: web app, leader election, and (as leader) ingest and push-back.

It heals itself: a database restart or failover, a lost leader lock, or a failure in
any background loop is logged, counted, and retried with backoff, so every role (the
leader lock, LISTEN, ingest, push-back, the reaper, the workers) comes back on its own
once the database does. `roles()` says how each is doing, for /healthz.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
import structlog
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.calendar import CalendarSchema, PropertyNames, check_schema
from reelqueue.config import Channels, Settings
from reelqueue.db import create_engine, upgrade
from reelqueue.errors import UserError
from reelqueue.ingest import DOORBELL_CHANNEL, Doorbell, InboxWriter, Poller, Reactor
from reelqueue.ingest.moves import PAGE_EVENTS, SCHEMA_EVENTS
from reelqueue.ingest.schema_watch import SchemaWatch
from reelqueue.notion import NotionAPIError, NotionClient, PageWrites, explain, normalize_id
from reelqueue.pipeline import Worker, load_step_sets
from reelqueue.pipeline.reaper import Reaper
from reelqueue.pushback import Pusher
from reelqueue.queue import OUTBOX_CHANNEL, LeaderElection, Listener
from reelqueue.queue.lifecycle import (
    CANCEL_GRACE_S,
    BackgroundService,
    Lifecycle,
    stop_all,
    until_stopped,
)
from reelqueue.queue.supervise import LoopHealth, combined
from reelqueue.service.coordinator import Coordinator
from reelqueue.service.deployment import DeploymentClaim, claim_deployment
from reelqueue.statuses import StatusTable
from reelqueue.web import WebServer, WebState, create_app
from reelqueue.web.health import (
    DEFAULT_STALL_AFTER_S,
    HealthTransport,
    NotionHealth,
    role_report,
)

__all__ = ["Service", "ServiceOptions", "load_calendars", "require_notion_settings"]

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ServiceOptions:
    """How this process serves: where the web app listens, and how fast it answers events."""

    host: str = "127.0.0.1"
    port: int = 8000
    doorbell_window_s: float = 0.3
    leader_retry_s: float = 1.0
    workers: int = 0
    notion_stall_s: float = DEFAULT_STALL_AFTER_S
    reap_interval_s: float = 2.0
    deployment_settle_s: float = 1.0


def require_notion_settings(settings: Settings) -> str:
    """The Notion token; a missing token or database list is one clear line."""
    if settings.notion_token is None or not settings.notion_token.get_secret_value():
        raise UserError(
            "NOTION_TOKEN is not set: create an integration at "
            "https://www.notion.so/profile/integrations and export its secret as NOTION_TOKEN"
        )
    if not settings.notion_database_ids:
        raise UserError(
            "NOTION_DATABASE_IDS is not set: export the content calendar's database id or URL "
            "(comma-separated for several)"
        )
    return settings.notion_token.get_secret_value()


async def load_calendars(
    notion: NotionClient, settings: Settings, table: StatusTable, channels: Channels
) -> list[tuple[str, CalendarSchema]]:
    """Resolve every configured database to its data sources and check each one's schema."""
    calendars: list[tuple[str, CalendarSchema]] = []
    for ref in settings.notion_database_ids:
        database_id = normalize_id(ref)
        try:
            sources = await notion.resolve_data_sources(database_id)
            for source in sources:
                data_source = await notion.retrieve_data_source(source.data_source_id)
                report = check_schema(
                    data_source, PropertyNames(), table.labels, [c.id for c in channels.channels]
                )
                calendars.append((database_id, report.schema(PropertyNames())))
        except NotionAPIError as exc:
            raise UserError(explain(exc, database_id=database_id)) from None
    return calendars


def _report(task: asyncio.Task[None]) -> None:
    """Log the error an ended background task ended on, if any."""
    if task.done() and not task.cancelled() and (error := task.exception()) is not None:
        log.error("a background task ended on an error", task=task.get_name(), exc_info=error)


async def _hurry(services: list[Lifecycle], tasks: list[asyncio.Task[None]]) -> None:
    """Stop them all at once in a hurry (each stop cancelled once begun), bounded."""
    stops = [asyncio.ensure_future(service.stop()) for service in services]
    await asyncio.sleep(0)  # let each stop begin (ask its service) before hurrying it
    for running in (*stops, *tasks):
        running.cancel()
    await asyncio.wait([*stops, *tasks], timeout=CANCEL_GRACE_S)


class Service(BackgroundService):
    """Everything `reelqueue run` runs in one process, under the one lifecycle.

    A start that fails (or is stopped) half-way winds down what it began, so nothing
    is left running and a later start begins afresh. `table` is the status vocabulary
    (by default statuses.py's, with the configured labels): the database's queue SQL,
    the step sets and every reader and writer of statuses follow it.
    """

    name = "service"
    up_at_once = False

    def __init__(
        self,
        settings: Settings,
        channels: Channels,
        *,
        database_url: str,
        options: ServiceOptions | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        table: StatusTable | None = None,
    ) -> None:
        super().__init__()
        self._settings = settings
        self._channels = channels
        self._url = database_url
        self._options = options or ServiceOptions()
        self._transport = transport
        self._table = table or StatusTable(settings.status_labels)
        self._leader_task: asyncio.Task[None] | None = None
        self._deployment_task: asyncio.Task[None] | None = None
        self._deployment: DeploymentClaim | None = None
        self._election = LeaderElection(database_url, retry_s=self._options.leader_retry_s)
        self._ingest = LoopHealth("ingest")
        self._push = LoopHealth("push-back")
        self._listening = LoopHealth("listener")
        self._reaping = LoopHealth("reaper")
        self._engine: AsyncEngine | None = None
        self._web: WebServer | None = None
        self._inbox: InboxWriter | None = None
        self.worker: Worker | None = None
        self.notion: NotionClient | None = None
        self.coordinator: Coordinator | None = None
        self.leading = asyncio.Event()
        self.bot_user_id: str | None = None
        self.notion_health = NotionHealth(stall_after_s=self._options.notion_stall_s)
        self.schemas: SchemaWatch | None = None

    @property
    def base_url(self) -> str:
        """Where the web app listens."""
        assert self._web is not None, "the service has not started"
        return self._web.base_url

    @property
    def inbox_verdicts(self) -> Counter[str]:
        """How the webhook events taken so far were recorded (accepted, duplicate, ...)."""
        return self._inbox.verdicts if self._inbox is not None else Counter()

    @property
    def is_leader(self) -> bool:
        """Whether this process currently runs ingest and push-back."""
        return self._election.is_leader.is_set()

    def roles(self) -> dict[str, dict[str, object]]:
        """Each role's state right now (ok, failing, starting, idle), failures and last error."""
        workers = combined("workers", self.worker.health) if self.worker is not None else None
        return role_report(
            leader=self._election.health,
            holding=self.is_leader,
            verified_at=self._election.verified_at,
            loops={
                "ingest": self._ingest,
                "push_back": self._push,
                "listener": self._listening,
                "reaper": self._reaping,
                "workers": workers,
            },
        )

    async def _serve(self, stopping: asyncio.Event) -> None:
        """Start up (unless stopped meanwhile), serve until stopped, then wind down."""
        self._leader_task = self._deployment_task = None
        self._engine = self._web = self._inbox = None
        self.worker = self.coordinator = self.notion = self.schemas = None
        self._deployment = None
        try:
            await until_stopped(stopping, self._start_up(stopping))
            if not stopping.is_set():
                self._up()
                await stopping.wait()
        finally:
            stopping.set()  # a failed start-up too: the leader and deployment tasks end
            await self._wind_down()

    async def _start_up(self, stopping: asyncio.Event) -> None:
        """Check settings and Notion, migrate, serve the web app, and stand for leader."""
        token = require_notion_settings(self._settings)
        await upgrade(self._url, table=self._table)
        self._engine = create_engine(self._url)
        self.notion = NotionClient(
            token,
            base_url=self._settings.notion_api_url,
            rate_limit=self._settings.notion_rate_limit,
            burst=self._settings.notion_rate_burst,
            budget=self._settings.notion_rate_budget,
            window_s=self._settings.notion_rate_window_s,
            transport=HealthTransport(self.notion_health, self._transport),
        )
        self.notion_health.rate_limit_status = self.notion.rate_limit_status
        try:
            me = await self.notion.me()
        except NotionAPIError as exc:
            raise UserError(explain(exc)) from None
        self.bot_user_id = normalize_id(str(me["id"]))
        calendars = await load_calendars(self.notion, self._settings, self._table, self._channels)
        self._deployment = await claim_deployment(
            self.notion,
            self._engine,
            list(dict.fromkeys(database_id for database_id, _ in calendars)),
            self._channels,
            allow_others=self._settings.allow_other_deployments,
            settle_s=self._options.deployment_settle_s,
        )
        self._deployment_task = asyncio.create_task(
            self._deployment.run(stopping, lambda: self.is_leader), name="deployment"
        )
        self.schemas = SchemaWatch(
            self.notion,
            {schema.data_source_id: schema for _, schema in calendars},
            self._table,
            [c.id for c in self._channels.channels],
        )
        webhook_token = self._settings.notion_webhook_token
        self._inbox = InboxWriter(self._engine, bot_user_id=self.bot_user_id)
        await self._inbox.start()
        state = WebState(
            engine=self._engine,
            inbox=self._inbox,
            bot_user_id=self.bot_user_id,
            configured_webhook_token=webhook_token.get_secret_value() if webhook_token else None,
            is_leader=lambda: self.is_leader,
            notion=self.notion_health,
            last_poll_ok=lambda: self.coordinator.last_poll_ok_at if self.coordinator else None,
            schema_problems=self.schemas.schema_problems,
            roles=self.roles,
        )
        self._web = WebServer(create_app(state), host=self._options.host, port=self._options.port)
        await self._web.start()
        log.info("serving", url=self._web.base_url, data_sources=len(calendars))
        self._leader_task = asyncio.create_task(self._lead(calendars, stopping), name="leader")
        if self._options.workers > 0:
            self.worker = Worker(
                self._url,
                self._settings,
                self._channels,
                load_step_sets(self._settings.step_sets, self._table.steps),
                concurrency=self._options.workers,
                table=self._table,
            )
            await self.worker.start()

    async def _wind_down(self) -> None:
        """Stop serving, record the webhooks taken, stop leading, and close connections.

        All of it begins at once: the worker takes no new step while the web server
        finishes its requests in flight, and the leader lets go meanwhile. Hurried (a
        cancelled stop), every step still runs, each cut short: nothing is left behind.
        """
        current = asyncio.current_task()
        hurried = current is not None and current.cancelling() > 0
        front: list[Lifecycle] = [service for service in (self._web, self._inbox) if service]
        worker: list[Lifecycle] = [self.worker] if self.worker else []
        tasks = [task for task in (self._leader_task, self._deployment_task) if task]
        if not hurried:
            try:
                await asyncio.gather(stop_all(front), stop_all(worker))
                for task in tasks:
                    await asyncio.wait({task})
            except asyncio.CancelledError:
                hurried = True
        if hurried:
            # Stops are idempotent: whatever was under way, stop everything again, fast.
            await _hurry(front + worker, tasks)
        for task in tasks:
            _report(task)
        self._leader_task = self._deployment_task = None
        closing = [self.notion.aclose()] if self.notion is not None else []
        if self._engine is not None:
            closing.append(self._engine.dispose())
        if closing:
            await asyncio.wait([asyncio.ensure_future(c) for c in closing], timeout=CANCEL_GRACE_S)
        self._web = None
        self._engine = None
        if hurried:
            raise asyncio.CancelledError

    def _on_notify(self, doorbell: Doorbell) -> Callable[[str, str], None]:
        def deliver(channel: str, payload: str) -> None:
            if channel == OUTBOX_CHANNEL:
                doorbell.ring(ingest=False, push=True)
                return
            page: str | None = None
            edited_at: datetime | None = None
            with contextlib.suppress(ValueError, TypeError, AttributeError, KeyError):
                body = json.loads(payload)
                if body.get("type") in PAGE_EVENTS and isinstance(body.get("page"), str):
                    page = body["page"]
                if body.get("type") in SCHEMA_EVENTS and self.schemas is not None:
                    self.schemas.mark_stale(body.get("page"))
                edited_at = datetime.fromisoformat(str(body["at"]).replace("Z", "+00:00"))
            doorbell.ring(ingest=True, fetch=page, edited_at=edited_at)

        return deliver

    def _build(
        self, calendars: list[tuple[str, CalendarSchema]], doorbell: Doorbell
    ) -> Coordinator:
        assert self._engine is not None
        assert self.notion is not None
        assert self.schemas is not None
        deployment = self._deployment
        page_writes = PageWrites()
        reactor = Reactor(
            self._table,
            self._channels,
            foreign_channels=lambda: deployment.foreign_channels if deployment else frozenset(),
            page_writes=page_writes,
        )
        schemas = self.schemas.schemas
        pollers = [
            Poller(
                self._engine,
                self.notion,
                schemas[schema.data_source_id],
                reactor,
                self._table,
                database_id=database,
                watch=self.schemas,
                calendars=schemas.keys(),
            )
            for database, schema in calendars
        ]
        pusher = Pusher(
            self._engine,
            self.notion,
            schemas,
            self._table,
            bot_user_id=self.bot_user_id,
            page_writes=page_writes,
        )
        return Coordinator(
            pollers,
            pusher,
            doorbell,
            poll_interval_s=self._settings.poll_interval_s,
            reconcile_interval_s=self._settings.reconcile_interval_s,
            engine=self._engine,
            ingest_health=self._ingest,
            push_health=self._push,
        )

    async def _lead(
        self, calendars: list[tuple[str, CalendarSchema]], stopping: asyncio.Event
    ) -> None:
        """Stand for leader, lead, and stand again, whatever fails, until stopped."""
        health = self._election.health
        try:
            while not stopping.is_set():
                try:
                    if not await self._election.acquire(stopping):
                        break
                    await self._lead_term(calendars, stopping)
                except Exception as exc:
                    health.failed(exc)
                    log.exception("leading failed; standing for leader again")
                await self._election.release()
                # A lock lost while the database answers most likely went to a standby:
                # let it take over rather than race it for the lock.
                pause = health.backoff_s()
                if self._election.lost.is_set():
                    pause = max(pause, 3 * self._options.leader_retry_s)
                if not stopping.is_set() and pause:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(stopping.wait(), pause)
        finally:
            await self._election.release()

    async def _lead_term(
        self, calendars: list[tuple[str, CalendarSchema]], stopping: asyncio.Event
    ) -> None:
        """Lead until stopped or until the lock is lost; then stop ingest and push-back at once.

        The leader also reaps expired leases, so a dead worker's tasks come back even
        when no worker process is alive.
        """
        doorbell = Doorbell(self._options.doorbell_window_s)
        listener = Listener(
            self._url,
            [DOORBELL_CHANNEL, OUTBOX_CHANNEL],
            self._on_notify(doorbell),
            # Notifications sent while disconnected are gone: read and push at once.
            on_reconnect=lambda: doorbell.ring(ingest=True, push=True),
            health=self._listening,
        )
        assert self._engine is not None
        reaper = Reaper(
            self._engine,
            self._settings,
            interval_s=self._options.reap_interval_s,
            health=self._reaping,
        )
        coordinator = self.coordinator = self._build(calendars, doorbell)
        for service in (listener, reaper, coordinator):
            service.start()
        self.leading.set()
        watching = asyncio.create_task(self._election.watch(), name="leader-watch")
        waits = [
            watching,
            asyncio.create_task(stopping.wait(), name="stop"),
            asyncio.create_task(coordinator.wait_ended(), name="coordinator"),
            asyncio.create_task(reaper.wait_ended(), name="reaper"),
        ]
        try:
            done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiting in waits:
                waiting.cancel()
            # The coordinator first: a leader that lost its lock stops writing now.
            await stop_all([coordinator, reaper, listener])
            await asyncio.gather(*waits, return_exceptions=True)
            self.leading.clear()
        if watching in done and not watching.cancelled() and watching.exception() is not None:
            raise RuntimeError("leader-watch ended") from watching.exception()
        for name, service in (("coordinator", coordinator), ("reaper", reaper)):
            if service.failure is not None:
                raise RuntimeError(f"{name} ended") from service.failure
