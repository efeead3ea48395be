"""The whole sandbox: workspace, databases, limits, faults, webhooks, and the edits to pages.

The seeded content calendar is `calendar`; `POST /v1/databases` adds databases (one data
source each) under the workspace's parent page, found again by database or data source id.

Everything here is touched from the server's event loop only. API writes are authored by
the integration's bot; admin edits by the person (or the bot, when asked). A write is
validated in full before anything changes, and a property counts as updated (and appears
in a webhook) only when its value actually changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from reelqueue.sandbox.config import STATUS_TYPES, SandboxConfig
from reelqueue.sandbox.database import description_text
from reelqueue.sandbox.datasource import build_schema, title_text
from reelqueue.sandbox.errors import NotionError, object_not_found, shape_error, validation_error
from reelqueue.sandbox.faults import FaultSet
from reelqueue.sandbox.icons import parse_icon
from reelqueue.sandbox.ids import new_id, normalize_id
from reelqueue.sandbox.moves import event_parent, refuse_writes_outside
from reelqueue.sandbox.properties import (
    PropertyWrite,
    commit_options,
    empty_value,
    parse_writes,
)
from reelqueue.sandbox.query import CursorBook, trash_flag
from reelqueue.sandbox.ratelimit import LIMIT_KEYS, RateLimiter, RequestLimits
from reelqueue.sandbox.schema import (
    DEFAULT_STATUS_OPTIONS,
    StatusOptions,
    build_calendar_schema,
    first_status,
    parse_status_options,
)
from reelqueue.sandbox.seed import draft_values
from reelqueue.sandbox.stats import Stats
from reelqueue.sandbox.store import Calendar, Page, User, Workspace
from reelqueue.sandbox.timestamps import utc_now
from reelqueue.sandbox.webhooks import WebhookDispatcher, WebhookSource, valid_retry_scale


@dataclass(frozen=True)
class ResetOptions:
    """What a reset builds; each field defaults to the sandbox's configuration."""

    videos: int
    channels: tuple[str, ...]
    status_type: str
    limits: RequestLimits
    webhook_window_ms: int
    age_s: int = 0
    queued: int = 0
    webhook_retry_scale: float = 1.0
    status_options: StatusOptions = DEFAULT_STATUS_OPTIONS

    @classmethod
    def from_json(cls, data: Any, config: SandboxConfig) -> ResetOptions:
        """Parse the body of POST /_sandbox/reset; raise ValueError naming the bad key."""
        if not isinstance(data, dict):
            raise ValueError("the body must be a JSON object")
        unknown = set(data) - (set(cls.__dataclass_fields__) - {"limits"}) - LIMIT_KEYS
        if unknown:
            raise ValueError(f"unknown reset keys: {sorted(unknown)}")
        channels = data.get("channels", list(config.channels))
        if (
            not isinstance(channels, list)
            or not channels
            or not all(isinstance(c, str) and c.strip() for c in channels)
        ):
            raise ValueError("channels must be a non-empty list of channel ids")
        options = cls(
            videos=data.get("videos", config.videos),
            channels=tuple(channels),
            status_type=data.get("status_type", config.status_type),
            limits=RequestLimits.from_json(data, config.limits),
            webhook_window_ms=data.get("webhook_window_ms", config.webhook_window_ms),
            age_s=data.get("age_s", 0),
            queued=data.get("queued", 0),
            webhook_retry_scale=data.get("webhook_retry_scale", config.webhook_retry_scale),
            status_options=(
                parse_status_options(data["status_options"])
                if "status_options" in data
                else config.status_options
            ),
        )
        if not isinstance(options.videos, int) or not 0 <= options.videos <= 100_000:
            raise ValueError("videos must be an integer from 0 to 100000")
        if options.status_type not in STATUS_TYPES:
            raise ValueError("status_type must be 'status' or 'select'")
        if not isinstance(options.webhook_window_ms, int) or options.webhook_window_ms < 0:
            raise ValueError("webhook_window_ms must be an integer of 0 or more")
        if not valid_retry_scale(options.webhook_retry_scale):
            raise ValueError("webhook_retry_scale must be a number of 0 or more")
        if not isinstance(options.age_s, int) or options.age_s < 0:
            raise ValueError("age_s must be an integer of 0 or more")
        if not isinstance(options.queued, int) or not 0 <= options.queued <= options.videos:
            raise ValueError("queued must be an integer from 0 to videos")
        if options.queued and not any(name == "Queued" for name, _ in options.status_options):
            raise ValueError("queued needs a status option named 'Queued' in status_options")
        return options


@dataclass
class SandboxState:
    """The state behind one sandbox app."""

    config: SandboxConfig
    base_url: str | None = None
    stats: Stats = field(default_factory=Stats)
    faults: FaultSet = field(default_factory=FaultSet)
    cursors: CursorBook = field(default_factory=CursorBook)

    def __post_init__(self) -> None:
        self.workspace = Workspace.create(random.Random(self.config.seed))
        self.fault_rng = random.Random(self.config.seed + 1)
        self.generation = 0
        self.limiter = RateLimiter(self.config.limits, self.config.token)
        self.webhooks = WebhookDispatcher(
            WebhookSource(
                self.workspace.workspace_id,
                self.workspace.workspace_name,
                self.workspace.integration_id,
            ),
            self.stats,
            random.Random(self.config.seed + 2),
            lambda: self.faults,
            self.config.webhook_window_ms,
            self.config.webhook_retry_scale,
        )
        self._hang_release = asyncio.Event()
        self.calendar = self._build_calendar(ResetOptions.from_json({}, self.config))
        self.calendars: dict[str, Calendar] = {self.calendar.data_source_id: self.calendar}

    def _build_calendar(self, options: ResetOptions) -> Calendar:
        rng = random.Random(f"{self.config.seed}:{self.generation}")
        now = utc_now() - timedelta(seconds=options.age_s)
        schema = build_calendar_schema(
            rng, options.status_type, options.channels, options.status_options
        )
        calendar = Calendar(
            "Content Calendar",
            options.status_type,
            now,
            schema,
            rng,
            database_id=self.workspace.database_id,
            data_source_id=self.workspace.data_source_id,
            parent_page_id=self.workspace.parent_page_id,
            created_by=self.workspace.person,
        )
        person = self.workspace.person
        queued = first_status(schema["Status"], "Queued")
        for n, values in enumerate(draft_values(schema, options.videos, rng)):
            if n < options.queued:
                values["Status"] = queued.value()
            calendar.add_page(values, person, now)
        return calendar

    def reset(self, options: ResetOptions) -> None:
        """A fresh calendar; faults, stats, cursors and subscriptions cleared; hangs released."""
        self.generation += 1
        self.calendar = self._build_calendar(options)
        self.calendars = {self.calendar.data_source_id: self.calendar}
        self.limiter = RateLimiter(options.limits, self.config.token)
        self.faults = FaultSet()
        self.stats.clear()
        self.cursors.clear()
        self.webhooks.clear()
        self.webhooks.window_ms = options.webhook_window_ms
        self.webhooks.retry_scale = options.webhook_retry_scale
        self.release_hung()

    def release_hung(self) -> None:
        """Let every hung request answer now (on reset and on shutdown)."""
        self._hang_release.set()
        self._hang_release = asyncio.Event()

    async def hang(self, max_s: float) -> None:
        """Hold a request until released or `max_s` has passed."""
        release = self._hang_release
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), timeout=max_s)

    def info(self, base_url: str) -> dict[str, Any]:
        """The body of GET /_sandbox/info."""
        return {
            "base_url": self.base_url or base_url,
            "token": self.config.token,
            "database_ids": [self.workspace.database_id],
            "data_source_ids": [self.workspace.data_source_id],
            "bot_user_id": self.workspace.bot.id,
            "person_user_id": self.workspace.person.id,
            "status_type": self.calendar.status_type,
            "parent_page_id": self.workspace.parent_page_id,
        }

    def page_or_404(self, raw_id: str, *, as_person: bool = False) -> Page:
        """A page the integration can see (the person sees unshared ones too), or a 404."""
        page_id = normalize_id(raw_id)
        page = None
        if page_id:
            page = next(
                (c.pages[page_id] for c in self.calendars.values() if page_id in c.pages), None
            )
        if page is None or not (page.shared or as_person):
            raise self.not_found("page", raw_id)
        return page

    def calendar_of(self, page: Page) -> Calendar:
        """The data source (with its database) a page is a row of."""
        return self.calendars[page.data_source_id]

    def data_source_or_404(self, raw_id: str) -> Calendar:
        """The data source with this id, or Notion's 404."""
        data_source_id = normalize_id(raw_id)
        calendar = self.calendars.get(data_source_id) if data_source_id else None
        if calendar is None:
            raise self.not_found("data source", raw_id)
        return calendar

    def database_or_404(self, raw_id: str) -> Calendar:
        """The database with this id (as the calendar of its one data source), or Notion's 404."""
        database_id = normalize_id(raw_id)
        found = [c for c in self.calendars.values() if database_id and c.database_id == database_id]
        if not found:
            raise self.not_found("database", raw_id)
        return found[0]

    def create_database(self, body: dict[str, Any], author: User) -> Calendar:
        """POST /v1/databases: a database and its one data source under a known page."""
        parent = body.get("parent")
        if not isinstance(parent, dict):
            raise shape_error("body.parent", "an object", parent)
        if parent.get("type", "page_id") != "page_id" or not isinstance(parent.get("page_id"), str):
            raise shape_error("body.parent", "an object with type page_id and a page_id", parent)
        if normalize_id(parent["page_id"]) != self.workspace.parent_page_id:
            raise self.not_found("page", parent["page_id"])
        title = title_text(body["title"]) if body.get("title") is not None else ""
        raw_description = body.get("description")
        description = description_text(raw_description) if raw_description is not None else []
        is_inline = body.get("is_inline", False)
        if not isinstance(is_inline, bool):
            raise shape_error("body.is_inline", "a boolean", is_inline)
        icon = parse_icon(body.get("icon"))
        if body.get("cover") is not None and not isinstance(body["cover"], dict):
            raise shape_error("body.cover", "an object or `null`", body["cover"])
        initial = body.get("initial_data_source")
        if initial is None:
            initial = {"properties": {"Name": {"title": {}}}}
        if not isinstance(initial, dict):
            raise shape_error("body.initial_data_source", "an object", initial)
        rng = random.Random(f"{self.config.seed}:{self.generation}:{len(self.calendars)}")
        raw_properties = initial.get("properties", {"Name": {"title": {}}})
        schema = build_schema(raw_properties, rng, "body.initial_data_source.properties")
        status = schema.get("Status")
        calendar = Calendar(
            title,
            status.type if status is not None else "select",
            utc_now(),
            schema,
            rng,
            database_id=new_id(rng),
            data_source_id=new_id(rng),
            parent_page_id=self.workspace.parent_page_id,
            created_by=author,
            is_inline=is_inline,
            icon=icon,
            cover=body.get("cover"),
            database_description=description,
        )
        self.calendars[calendar.data_source_id] = calendar
        return calendar

    def not_found(self, kind: str, raw_id: str) -> NotionError:
        """Notion's 404 for an object of this kind."""
        return object_not_found(
            kind, raw_id, self.workspace.integration_name, self.workspace.integration_id
        )

    def create_page(self, properties: Any, author: User, calendar: Calendar | None = None) -> Page:
        """Create a page in a data source (the calendar by default); emits page.created."""
        calendar = calendar or self.calendar
        writes = parse_writes(calendar, properties if properties is not None else {})
        commit_options(writes)
        values = {name: empty_value(p.type) for name, p in calendar.schema.items()}
        status = calendar.schema.get("Status")
        if status is not None and status.type == "status" and status.options:
            values["Status"] = status.options[0].value()
        for write in writes:
            values[write.prop.name] = write.value
        now = utc_now()
        page = calendar.add_page(values, author, now)
        self.webhooks.record(page.id, "page.created", calendar.event_parent(), author.author(), now)
        return page

    def update_pages(
        self, pages: list[Page], properties: Any, author: User, in_trash: bool | None = None
    ) -> None:
        """Apply one write to several pages of one data source (validated once, first)."""
        calendars = {page.data_source_id for page in pages}
        if len(calendars) > 1:
            raise validation_error("The pages of one edit must belong to one data source.")
        calendar = self.calendar_of(pages[0]) if pages else self.calendar
        writes = parse_writes(calendar, properties if properties is not None else {})
        refuse_writes_outside(pages, properties)
        for page in pages:
            if page.in_trash and in_trash is not False:
                raise validation_error(
                    "Can't edit block that is archived. You must unarchive the block before "
                    "editing."
                )
        commit_options(writes)
        for page in pages:
            self._apply(page, writes, author, in_trash)

    def _apply(
        self, page: Page, writes: list[PropertyWrite], author: User, in_trash: bool | None
    ) -> None:
        now = utc_now()
        changed = [w.prop.id for w in writes if page.values.get(w.prop.name) != w.value]
        for write in writes:
            page.values[write.prop.name] = write.value
        trash_changed = in_trash is not None and in_trash != page.in_trash
        if not changed and not trash_changed:
            return
        page.last_edited_time = now
        page.last_edited_by = author
        if trash_changed:
            assert in_trash is not None
            page.in_trash = in_trash
        if not page.shared:
            return
        parent = event_parent(page, self.calendar_of(page))
        if changed:
            self.webhooks.record(
                page.id, "page.properties_updated", parent, author.author(), now, changed
            )
        if trash_changed:
            kind = "page.deleted" if in_trash else "page.undeleted"
            self.webhooks.record(page.id, kind, parent, author.author(), now)

    def update_page_from_api(
        self, page: Page, body: dict[str, Any], *, archived_alias: bool = True
    ) -> None:
        """PATCH /v1/pages/{id}: properties, in_trash (archived before 2026-03-11), icon, cover."""
        in_trash = (
            trash_flag(body, archived_alias=archived_alias)
            if ("in_trash" in body or "archived" in body)
            else None
        )
        icon = parse_icon(body["icon"]) if "icon" in body else page.icon
        cover = body.get("cover", page.cover)
        if cover is not None and not isinstance(cover, dict):
            raise shape_error("body.cover", "an object or `null`", cover)
        self.update_pages([page], body.get("properties"), self.workspace.bot, in_trash)
        page.icon, page.cover = icon, cover
