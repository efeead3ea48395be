"""Reading changes from a Notion data source: incremental polls and full reconciles.

Notion floors `last_edited_time` to the minute, so an edit late in a minute carries
a time earlier than our last poll. Each incremental query therefore asks for pages
edited `on_or_after` the minute floor of the previous poll's start minus an overlap,
and the reactions skip what they have already seen (by page and values).

A recent read (`recent`) is the cheap check run every few seconds while pages are hot
and just before each push-back batch: only pages edited since a minute floor whose
Status is one a creator sets (Queued, Cancelled, Draft, an approval, an error label),
so the rows we wrote ourselves stay out of it and it is usually one request.

A page whose edit rang the doorbell but that no read met since (deleted or unshared
right after the edit, so queries leave it out) is read by id after the next incremental
poll; a page found gone with no task is logged, so a Queued entry never vanishes
without a word.

A page one of our writes reached after a read began is left out of that read's
reactions (it may show the page from before the write) and read by id after the next
incremental poll unless a read meets it sooner.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from reelqueue.calendar import CalendarSchema
from reelqueue.db.models import SYNC_STATE, WEBHOOK_INBOX
from reelqueue.db.retry import run_in_transaction
from reelqueue.ingest.moves import moved_to, pages_to_look_for
from reelqueue.ingest.reactions import ReactionSummary, Reactor
from reelqueue.ingest.schema_watch import SchemaWatch, admissible
from reelqueue.ingest.snapshot import PageSnapshot
from reelqueue.notion import (
    InvalidNotionId,
    NotionClient,
    NotionNotFound,
    Priority,
    normalize_id,
)
from reelqueue.queue import hold_moved, load_tasks_by_page, mark_missing, release_found
from reelqueue.statuses import Kind, StatusTable

__all__ = ["PassResult", "Poller", "creator_statuses", "floor_minute"]

log = structlog.get_logger(__name__)


# Events of an edit: a page they name that no read met is read by id.
EDIT_EVENTS = ("page.created", "page.properties_updated")
# At most this many such pages are read by id after one poll (the rest after the next).
MAX_UNSEEN_READS = 20
# How long a page read is remembered as met, for the events of the polls after it.
SEEN_FOR = timedelta(minutes=10)

_GONE_WORDS = {
    "deleted": "it was moved to the trash",
    "unshared": "it is no longer shared with the integration (Notion answers 404)",
}


def _id(value: Any) -> str | None:
    try:
        return normalize_id(value)
    except InvalidNotionId:
        return None


def floor_minute(moment: datetime) -> datetime:
    """The start of the minute holding `moment`, as Notion stores edit times."""
    return moment.replace(second=0, microsecond=0)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def creator_statuses(table: StatusTable) -> list[str]:
    """The statuses a creator sets by hand: what a recent read must not miss."""
    statuses = ["queued", "cancelled", "draft"]
    statuses += [row.approval for row in table if row.approval]
    statuses += table.statuses_of(Kind.ERROR)
    return list(dict.fromkeys(statuses))


@dataclass
class PassResult:
    """What one pass over a data source read and did."""

    kind: str
    pages: int = 0
    queries: int = 0
    summary: ReactionSummary = field(default_factory=ReactionSummary)
    seen: set[str] = field(default_factory=set)


class Poller:
    """Incremental polls, full reconciles and page fetches for one data source."""

    def __init__(
        self,
        engine: AsyncEngine,
        notion: NotionClient,
        schema: CalendarSchema,
        reactor: Reactor,
        table: StatusTable,
        *,
        overlap: timedelta = timedelta(seconds=60),
        database_id: str = "",
        watch: SchemaWatch | None = None,
        calendars: Collection[str] = (),
    ) -> None:
        self._engine = engine
        self._notion = notion
        self._schema = schema
        self._reactor = reactor
        self._table = table
        self._overlap = overlap
        self._database_id = database_id
        self._watch = watch
        self._reconcile_due = False
        self._calendars = frozenset(calendars) | {schema.data_source_id}
        self._seen_at: dict[str, datetime] = {}
        self._gone: set[str] = set()
        # Pages a read met while one of our writes to them was in flight, not met since.
        self._reread: set[str] = set()

    @property
    def data_source_id(self) -> str:
        """The data source this poller reads."""
        return self._schema.data_source_id

    def _filter_properties(self) -> list[str]:
        return [pid for pid in self._schema.property_ids.values() if pid]

    async def _react(
        self, pages: Sequence[dict[str, Any]], result: PassResult, read_at: float
    ) -> list[PageSnapshot]:
        schema = self._schema
        snapshots: list[PageSnapshot] = []
        for page in pages:
            try:
                snapshots.append(PageSnapshot.from_page(schema.keyed(page), schema.names))
            except (InvalidNotionId, AttributeError) as exc:
                log.warning(
                    "page skipped: Notion returned it without a usable id",
                    data_source_id=self.data_source_id,
                    error=str(exc)[:200],
                )
        result.pages += len(snapshots)
        result.seen.update(s.page_id for s in snapshots)
        now = datetime.now(UTC)
        for snapshot in snapshots:
            self._seen_at[snapshot.page_id] = now
            self._gone.discard(snapshot.page_id)
        usable = admissible(snapshots, schema, self._table)
        if usable:

            async def react(conn: AsyncConnection) -> ReactionSummary:
                await release_found(conn, [s.page_id for s in usable], self._table)
                return await self._reactor.react(conn, usable, read_at=read_at)

            summary = await run_in_transaction(self._engine, react, what="reactions")
            result.summary.add(summary)
            self._reread -= {s.page_id for s in usable} - summary.stale
            self._reread |= summary.stale
            for page_id in summary.stale:
                self._seen_at.pop(page_id, None)
        return snapshots

    async def _schema_now(self, *, reread: bool = False) -> None:
        """Read the schema again when a change was announced (or `reread`: a full reconcile).

        A schema that lacked a property and no longer does asks for a full reconcile, so
        the Queued entries that waited for the fix are taken in at once.
        """
        source = self.data_source_id
        if self._watch is not None and (reread or self._watch.is_stale(source)):
            lacked = self._schema.unusable
            self._schema = await self._watch.refresh(source)
            self._reconcile_due |= bool(lacked - self._schema.unusable) and not reread

    async def _query(self, result: PassResult, query_filter: dict[str, Any]) -> datetime | None:
        """Run one filtered query to its end; returns where to resume if the row cap hit."""
        cursor: str | None = None
        newest: datetime | None = None
        if self._schema.lacks(("status",)):
            return None
        while True:
            read_at = time.monotonic()
            page = await self._notion.query_data_source(
                self.data_source_id,
                filter=query_filter,
                sorts=[{"timestamp": "last_edited_time", "direction": "ascending"}],
                start_cursor=cursor,
                filter_properties=self._filter_properties(),
                priority=Priority.INGEST,
            )
            result.queries += 1
            for snapshot in await self._react(page.results, result, read_at):
                edited = snapshot.last_edited_time
                if edited is not None and (newest is None or edited > newest):
                    newest = edited
            if page.incomplete:
                return newest
            if not page.has_more or not page.next_cursor:
                return None
            cursor = page.next_cursor

    async def incremental(self, *, others_only: bool = False) -> PassResult:
        """Read what changed since the last poll (a full reconcile the first time).

        `others_only` leaves out the pages whose Status a creator sets, for just after a
        recent read took those in; it does not move the watermark, the full poll does.
        """
        started = datetime.now(UTC)
        await self._schema_now()
        watermark = await self._watermark()
        if watermark is None or self._reconcile_due:
            return await self.reconcile()
        result = PassResult("follow-up" if others_only else "incremental")
        since = floor_minute(watermark - self._overlap)
        while True:
            time_filter: dict[str, Any] = {
                "timestamp": "last_edited_time",
                "last_edited_time": {"on_or_after": _iso(since)},
            }
            if others_only:
                time_filter = {"and": [time_filter, *self._not_creator_statuses()]}
            resume = await self._query(result, time_filter)
            if resume is None:
                break
            narrower = floor_minute(resume)
            if narrower <= since:
                log.warning(
                    "more than 10,000 pages edited within one minute; the rest waits for the "
                    "next full reconcile",
                    data_source_id=self.data_source_id,
                )
                break
            since = narrower
        await self._read_unmet(result, since)
        if not others_only:
            await self._save(watermark=started)
        return result

    def _names_us(self, parent: Any) -> bool:
        """Whether an event's `data.parent` is this data source (or its database)."""
        if not isinstance(parent, dict):
            return False
        source = _id(parent.get("data_source_id"))
        if source is not None:
            return source == self.data_source_id
        return bool(self._database_id) and _id(parent.get("id")) == _id(self._database_id)

    async def _read_unmet(self, result: PassResult, since: datetime) -> None:
        """Read by id the pages whose edits rang since `since` and that no read met after."""
        horizon = datetime.now(UTC) - SEEN_FOR
        self._seen_at = {page: at for page, at in self._seen_at.items() if at >= horizon}
        async with self._engine.connect() as conn:
            rows = (
                await conn.execute(
                    select(
                        WEBHOOK_INBOX.c.entity_id,
                        WEBHOOK_INBOX.c.received_at,
                        WEBHOOK_INBOX.c.payload["data"]["parent"],
                    ).where(
                        WEBHOOK_INBOX.c.received_at >= since,
                        WEBHOOK_INBOX.c.event_type.in_(EDIT_EVENTS),
                        WEBHOOK_INBOX.c.entity_id.is_not(None),
                    )
                )
            ).all()
        unmet: list[str] = []
        for entity, received, parent in rows:
            page = _id(entity)
            if (
                page is None
                or page in unmet
                or page in result.seen
                or page in self._gone
                or self._seen_at.get(page, horizon) >= received
                or not self._names_us(parent)
            ):
                continue
            unmet.append(page)
        unmet += [
            page
            for page in self._reread
            if page not in unmet and page not in result.seen and page not in self._gone
        ]
        if unmet:
            fetched = await self.fetch_pages(unmet[:MAX_UNSEEN_READS])
            result.queries += fetched.queries
            result.summary.add(fetched.summary)

    def _creator_labels(self) -> list[str]:
        return list(dict.fromkeys(self._table.label(s) for s in creator_statuses(self._table)))

    def _not_creator_statuses(self) -> list[dict[str, Any]]:
        kind, status = self._schema.status_type, self._schema.key(self._schema.names.status)
        return [
            {"property": status, kind: {"does_not_equal": label}}
            for label in self._creator_labels()
        ]

    async def recent(self, since: datetime) -> PassResult:
        """Read the pages set to a creator's status since the minute floor of `since`."""
        result = PassResult("recent")
        await self._schema_now()
        kind, status = self._schema.status_type, self._schema.key(self._schema.names.status)
        labels = self._creator_labels()
        query_filter = {
            "and": [
                {
                    "timestamp": "last_edited_time",
                    "last_edited_time": {"on_or_after": _iso(floor_minute(since))},
                },
                {"or": [{"property": status, kind: {"equals": label}} for label in labels]},
            ]
        }
        await self._query(result, query_filter)
        return result

    def _actionable_labels(self) -> list[str]:
        statuses = ["queued", "cancelled"]
        statuses += [row.approval for row in self._table if row.approval]
        statuses += self._table.statuses_of(Kind.ERROR)
        return [self._table.label(s) for s in statuses]

    async def reconcile(self) -> PassResult:
        """Read every page whose Status asks something of us, whatever its edit time.

        The first reconcile of a data source also starts its watermark: there are no
        tasks yet whose other edits could have been missed.
        """
        started = datetime.now(UTC)
        await self._schema_now(reread=True)
        self._reconcile_due = False
        first = await self._watermark() is None
        result = PassResult("reconcile")
        kind, status = self._schema.status_type, self._schema.key(self._schema.names.status)
        status_filter = {
            "or": [
                {"property": status, kind: {"equals": label}} for label in self._actionable_labels()
            ]
        }
        await self._query(result, status_filter)
        await self._look_for_missing(result)
        await self._save(watermark=started if first else None, reconciled=True)
        return result

    async def _look_for_missing(self, result: PassResult) -> None:
        """Find the task pages the reconcile did not meet: by their last Status, then by id."""
        if self._schema.lacks(("status",)):
            return
        async with self._engine.connect() as conn:
            wanted = await pages_to_look_for(conn, self.data_source_id, result.seen, self._table)
        labels = sorted({label for label in wanted.values() if label})
        if labels:
            key, kind = self._schema.key(self._schema.names.status), self._schema.status_type
            await self._query(
                result, {"or": [{"property": key, kind: {"equals": label}} for label in labels]}
            )
        unseen = [page for page in wanted if page not in result.seen]
        if unseen:
            fetched = await self.fetch_pages(unseen)
            result.queries += fetched.queries
            result.summary.add(fetched.summary)

    async def fetch_pages(self, page_ids: Sequence[str]) -> PassResult:
        """Read single pages (say, after a page.deleted event); gone ones are marked."""
        result = PassResult("fetch")
        found: list[dict[str, Any]] = []
        gone: dict[str, str] = {}
        trashed: dict[str, str | None] = {}
        moved: dict[str, str] = {}
        read_at = time.monotonic()
        for page_id in dict.fromkeys(p for p in map(_id, page_ids) if p is not None):
            try:
                page = await self._notion.retrieve_page(page_id, priority=Priority.INGEST)
            except NotionNotFound:
                gone[page_id] = "unshared"
                continue
            finally:
                result.queries += 1
            if page.get("in_trash") or page.get("archived"):
                gone[page_id] = "deleted"
                trashed[page_id] = self._status_label(page)
            elif (where := moved_to(page, self._calendars)) is not None:
                moved[page_id] = where
                self._seen_at[page_id] = datetime.now(UTC)
            else:
                found.append(page)
        await self._react(found, result, read_at)
        if gone or moved:
            async with self._engine.begin() as conn:
                tasks = await load_tasks_by_page(conn, gone)
                result.summary.outcomes["missing"] += await mark_missing(conn, gone, self._table)
                result.summary.outcomes["held"] += await hold_moved(conn, moved, self._table)
            for page_id, how in gone.items():
                if page_id in tasks or page_id in self._gone:
                    continue
                status = trashed.get(page_id)
                # A Draft deleted is no news; a Queued one (or one we cannot read) is.
                asked = status is None or self._table.status_for_label(status) == "queued"
                (log.warning if asked else log.debug)(
                    "page gone before reelqueue took it in: no task was made",
                    notion_page_id=page_id,
                    why=_GONE_WORDS[how],
                    status=status,
                )
            self._gone.update(gone)
        return result

    def _status_label(self, page: dict[str, Any]) -> str | None:
        """The Status a page read by id shows (None when it cannot be read)."""
        try:
            return PageSnapshot.from_page(self._schema.keyed(page), self._schema.names).status_label
        except (InvalidNotionId, AttributeError):
            return None

    async def _watermark(self) -> datetime | None:
        async with self._engine.connect() as conn:
            value = await conn.scalar(
                select(SYNC_STATE.c.watermark).where(
                    SYNC_STATE.c.data_source_id == self.data_source_id
                )
            )
        return value

    async def _save(self, *, watermark: datetime | None = None, reconciled: bool = False) -> None:
        now = datetime.now(UTC)
        values: dict[str, Any] = {"updated_at": now}
        if watermark is not None:
            values["watermark"] = watermark
        if reconciled:
            values["last_full_reconcile_at"] = now
        statement = pg_insert(SYNC_STATE).values(
            data_source_id=self.data_source_id, database_id=self._database_id, **values
        )
        statement = statement.on_conflict_do_update(index_elements=["data_source_id"], set_=values)
        async with self._engine.begin() as conn:
            await conn.execute(statement)
