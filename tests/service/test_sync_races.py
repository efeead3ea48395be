"""Ingest and push-back side by side, at Notion's latency: nobody waits, nobody is overwritten.

Every request the service sends is timed by a recorder under the limiter (the real
HTTP transport inside it), so the tests can tell when each read and write went out.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg
import httpx
import pytest
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.config import DEFAULT_CHANNELS
from reelqueue.db import create_engine
from reelqueue.ingest import DOORBELL_CHANNEL, parse_priority
from reelqueue.pushback import INGEST_RESERVE
from reelqueue.queue import TaskChange, apply_changes, load_tasks_by_page
from reelqueue.sandbox import SandboxAdmin
from reelqueue.service import Service, ServiceOptions
from reelqueue.statuses import StatusTable
from tests.fixtures.sandbox import status_of
from tests.fixtures.service import fetchval, ready, service_settings, until

QUEUED = {"Status": {"status": {"name": "Queued"}}}
QUERY = "/query"
PIPELINE = [
    "claimed",
    "generating_assets",
    "generating_composites",
    "generating_video",
    "generating_audio",
    "generating_sfx",
    "assembling",
    "uploading",
    "published",
]
LATENCY_MS = 300
# Notion's latency, 3 requests a second, and page edits combined for a minute after the first.
NOTION_LIKE: dict[str, Any] = {
    "rate_model": "bucket",
    "rps": 3.0,
    "burst": 6,
    "latency_ms": LATENCY_MS,
    "webhook_window_ms": 60_000,
}


@dataclass(frozen=True)
class Sent:
    """One attempt as it left for the sandbox and when its answer came back."""

    method: str
    path: str
    body: bytes
    sent: float
    answered: float

    @property
    def is_page_write(self) -> bool:
        return self.method == "PATCH" and self.path.startswith("/v1/pages/")


@dataclass
class Recorder(httpx.AsyncBaseTransport):
    """Times every attempt the limiter lets through, then sends it over real HTTP."""

    inner: httpx.AsyncBaseTransport = field(default_factory=httpx.AsyncHTTPTransport)
    log: list[Sent] = field(default_factory=list)

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        sent = time.monotonic()
        body = request.content
        response = await self.inner.handle_async_request(request)
        await response.aread()
        self.log.append(Sent(request.method, request.url.path, body, sent, time.monotonic()))
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()

    def since(self, moment: float) -> list[Sent]:
        return [s for s in self.log if s.sent >= moment]


Start = Callable[..., Awaitable[Service]]


@pytest.fixture
async def recorded(
    sandbox: SandboxAdmin, database_url: str
) -> AsyncIterator[tuple[Start, Recorder]]:
    """Start one service whose Notion traffic the recorder times."""
    recorder = Recorder()
    started: list[Service] = []

    async def start(subscribed: bool = True, **overrides: Any) -> Service:
        service = Service(
            service_settings(sandbox, **overrides),
            DEFAULT_CHANNELS,
            database_url=database_url,
            options=ServiceOptions(port=0, leader_retry_s=0.2, deployment_settle_s=0.0),
            transport=recorder,
        )
        started.append(service)
        await service.start()
        await ready(service)
        if subscribed:
            await sandbox.subscribe(f"{service.base_url}/webhooks/notion", verified=True)
        return service

    yield start, recorder
    for service in started:
        await service.stop()


async def page_ids(sandbox: SandboxAdmin) -> list[str]:
    return [p["id"] for p in await sandbox.pages()]


async def task_count(database_url: str, pages: list[str]) -> int:
    return int(
        await fetchval(
            database_url, "SELECT count(*) FROM tasks WHERE notion_page_id = ANY($1::text[])", pages
        )
    )


async def outbox_pending(database_url: str) -> int:
    return int(await fetchval(database_url, "SELECT count(*) FROM outbox WHERE sent_at IS NULL"))


async def move(
    engine: AsyncEngine,
    pages: list[str],
    to: str,
    *,
    only_from: str | None = None,
    values: dict[str, Any] | None = None,
) -> list[str]:
    """Change tasks as workers would (row, history, outbox); the pages actually moved.

    With `only_from`, a task is moved only from that status, as a worker holding its
    lease would: one the creator cancelled or pulled back meanwhile stays put.
    """
    async with engine.begin() as conn:
        tasks = await load_tasks_by_page(conn, pages, lock=True)
        changes = [
            TaskChange(t.id, p, t.status, to, actor="worker:test", values=values or {})
            for p, t in tasks.items()
            if only_from is None or t.status == only_from
        ]
        await apply_changes(conn, changes, StatusTable())
    return [c.notion_page_id for c in changes]


def priority_of(page: dict[str, Any]) -> str | None:
    chosen = page["properties"]["Priority"].get("select") or {}
    name = chosen.get("name")
    return str(name) if name is not None else None


def error_log_of(page: dict[str, Any]) -> str:
    return "".join(t["plain_text"] for t in page["properties"]["Error Log"]["rich_text"])


def read_to_write(recorder: Recorder) -> list[float]:
    """Per PATCH: seconds since the send of the newest query answered before it went out."""
    reads = sorted((s for s in recorder.log if s.path.endswith(QUERY)), key=lambda s: s.answered)
    windows: list[float] = []
    for write in (s for s in recorder.log if s.is_page_write):
        before = [r.sent for r in reads if r.answered <= write.sent]
        windows.append(write.sent - max(before) if before else float("inf"))
    return windows


# A small window budget (Notion's plans give 180 and up), so push-back spends its share fast.
BUDGET = 60


@pytest.mark.parametrize("rate_model", ["bucket", "window"])
async def test_a_new_batch_is_queued_at_once_while_push_back_works_through_a_backlog(
    sandbox: SandboxAdmin, recorded: tuple[Start, Recorder], database_url: str, rate_model: str
) -> None:
    limits: dict[str, Any] = dict(NOTION_LIKE)
    overrides: dict[str, Any] = {}
    if rate_model == "window":
        del limits["rps"], limits["burst"]
        limits.update(rate_model="window", budget=BUDGET, window_s=60.0)
        overrides.update(notion_rate_budget=BUDGET, notion_rate_window_s=60.0)
    await sandbox.reset(videos=320, queued=300, age_s=600, **limits)
    if rate_model == "window":
        # A token of its own: this process's limiter for it starts with the whole budget.
        overrides["notion_token"] = SecretStr(await sandbox.issue_token())
    pages = await page_ids(sandbox)
    backlog, batch = pages[:300], pages[300:]
    start, recorder = recorded
    service = await start(**overrides)
    assert service.notion is not None
    notion = service.notion
    await _all_claimed(database_url, backlog)

    async def pushing() -> bool:
        if rate_model == "window":
            # Push-back has spent its share of the window: only ingest's reserve is left.
            spent = notion.rate_limit_status().requests_this_window
            return spent >= BUDGET * (1 - INGEST_RESERVE) - 2
        return sum(1 for s in recorder.log if s.is_page_write) >= 6

    await until(pushing, within_s=30)
    edited = time.monotonic()
    await sandbox.edit(batch, QUEUED)
    await until(lambda: _all_tasks(database_url, batch), within_s=10)

    # How fast the batch lands is bench/push_backlog.py's measure; here, that it did not
    # wait its turn behind the backlog's writes.
    written_meanwhile = sum(1 for s in recorder.since(edited) if s.is_page_write)
    assert await outbox_pending(database_url) > 100, "push-back was still working through it"
    assert written_meanwhile <= 8, "ingest went ahead of the waiting writes"
    assert notion.stats["rate_limited"] == 0


async def test_with_a_window_budget_push_back_sends_many_writes_per_read(
    sandbox: SandboxAdmin, recorded: tuple[Start, Recorder], database_url: str
) -> None:
    """A budget spendable at any pace goes out in bursts: each read covers many writes.

    Under a 3/s bucket at most five writes fit in the 1.7 s after a read; here every
    write still leaves within that window, but the reads are few.
    """
    await sandbox.reset(
        videos=40,
        queued=40,
        age_s=600,
        rate_model="window",
        budget=BUDGET,
        window_s=60.0,
        latency_ms=100,
    )
    token = SecretStr(await sandbox.issue_token())
    pages = await page_ids(sandbox)
    start, recorder = recorded
    service = await start(notion_token=token, notion_rate_budget=BUDGET, notion_rate_window_s=60.0)
    assert service.notion is not None
    await _all_claimed(database_url, pages)

    async def written() -> bool:
        return sum(1 for s in recorder.log if s.is_page_write) >= len(pages)

    await until(written, within_s=30)
    patches = [s for s in recorder.log if s.is_page_write]
    first, last = patches[0].sent, patches[-1].sent
    reads = [s for s in recorder.log if s.path.endswith(QUERY) and first - 2.0 <= s.sent <= last]
    assert len(patches) == len(pages), "each page written once"
    assert len(patches) / max(1, len(reads)) >= 8, f"{len(patches)} writes on {len(reads)} reads"
    assert max(read_to_write(recorder)) <= 1.75
    assert service.notion.stats["rate_limited"] == 0


async def _all_claimed(database_url: str, pages: list[str]) -> None:
    """Wait until every page has its task, then claim them all (their pages fall behind)."""
    await until(lambda: _all_tasks(database_url, pages), within_s=20)
    engine = create_engine(database_url)
    try:
        await move(engine, pages, "claimed")
    finally:
        await engine.dispose()


async def _all_tasks(database_url: str, pages: list[str]) -> bool:
    return await task_count(database_url, pages) == len(pages)


@dataclass
class Intent:
    """What the creator last asked of one page, and when the edit was made."""

    status: str | None = None
    priority: str | None = None
    made_from: float = 0.0
    made_by: float = 0.0


async def test_creators_edits_are_never_overwritten_while_videos_move(
    sandbox: SandboxAdmin, recorded: tuple[Start, Recorder], database_url: str
) -> None:
    await sandbox.reset(videos=20, **NOTION_LIKE)
    pages = await page_ids(sandbox)
    await sandbox.edit(pages, QUEUED)
    start, recorder = recorded
    await start(poll_interval_s=5.0)
    await until(lambda: _all_tasks(database_url, pages), within_s=15)
    rng = random.Random(2026)
    intents = {page: Intent() for page in pages}
    engine = create_engine(database_url)

    async def pipeline(page: str) -> None:
        for before, after in zip(["queued", *PIPELINE], PIPELINE, strict=False):
            await asyncio.sleep(rng.uniform(0.2, 1.2))
            values = {"youtube_url": f"https://youtu.be/{page[:8]}"} if after == "published" else {}
            if not await move(engine, [page], after, only_from=before, values=values):
                return

    async def creator(page: str) -> None:
        await asyncio.sleep(rng.uniform(0.5, 9.0))
        intent = intents[page]
        choice = rng.choice(["Cancelled", "Draft", "High", "Low"])
        intent.made_from = time.monotonic()
        if choice in ("High", "Low"):
            await sandbox.edit([page], {"Priority": {"select": {"name": choice}}})
            intent.priority = choice
        else:
            await sandbox.edit([page], {"Status": {"status": {"name": choice}}})
            intent.status = choice
        intent.made_by = time.monotonic()

    try:
        edited = rng.sample(pages, 14)
        await asyncio.gather(*(pipeline(p) for p in pages), *(creator(p) for p in edited))

        async def settled() -> bool:
            return await outbox_pending(database_url) == 0 and not await _mismatches(
                sandbox, database_url, intents
            )

        try:
            await until(settled, within_s=40, every_s=0.25)
        except AssertionError:
            wrong = await _mismatches(sandbox, database_url, intents)
            in_window = _written_within(recorder, intents, 2.0)
            overwritten = {p: why for p, why in wrong.items() if p not in in_window}
            assert not overwritten, f"creator's edits lost: {overwritten}"
    finally:
        await engine.dispose()
    windows = read_to_write(recorder)
    assert windows, "push-back wrote pages"
    assert max(windows) <= 2.0, f"longest read-to-write {max(windows):.2f} s"


def _written_within(recorder: Recorder, intents: dict[str, Intent], seconds: float) -> set[str]:
    """Pages with a write of ours on the wire within `seconds` of the creator's edit.

    Such a write may land after the edit (a race Notion allows: it has no conditional write).
    """
    close: set[str] = set()
    for write in (s for s in recorder.log if s.is_page_write):
        page = write.path.rsplit("/", 1)[-1]
        for page_id, intent in intents.items():
            bare = page_id.replace("-", "")
            close_in_time = (
                write.answered >= intent.made_from and write.sent <= intent.made_by + seconds
            )
            if page.replace("-", "") == bare and intent.made_from and close_in_time:
                close.add(page_id)
    return close


async def _mismatches(
    sandbox: SandboxAdmin, database_url: str, intents: dict[str, Intent]
) -> dict[str, str]:
    """Pages whose final state differs from the creator's intent, and how."""
    shown = {p["id"]: p for p in await sandbox.pages()}
    wrong: dict[str, str] = {}
    for page_id, intent in intents.items():
        page = shown[page_id]
        status = await fetchval(
            database_url, "SELECT status FROM tasks WHERE notion_page_id=$1", page_id
        )
        priority = await fetchval(
            database_url, "SELECT priority FROM tasks WHERE notion_page_id=$1", page_id
        )
        label = status_of(page)
        if intent.status is not None:
            late = (
                status == "published"
                and label == "Published"
                and f"{intent.status} was set after the video was published" in error_log_of(page)
            )
            if not late and (label != intent.status or status != intent.status.lower()):
                wrong[page_id] = f"wanted {intent.status}, page {label}, task {status}"
        elif label != "Published" or status != "published":
            wrong[page_id] = f"wanted Published, page {label}, task {status}"
        if intent.priority is not None:
            if priority_of(page) != intent.priority:
                wrong[page_id] = f"priority {priority_of(page)} on the page"
            elif status != "published" and priority != parse_priority(intent.priority):
                wrong[page_id] = f"task priority {priority}, wanted {intent.priority}"
    return wrong


async def test_follow_up_approvals_are_seen_fast_despite_webhook_aggregation(
    sandbox: SandboxAdmin, recorded: tuple[Start, Recorder], database_url: str
) -> None:
    await sandbox.reset(videos=10, **NOTION_LIKE)
    pages = await page_ids(sandbox)
    await sandbox.edit(pages, QUEUED)
    start, recorder = recorded
    await start()
    await until(lambda: _all_tasks(database_url, pages), within_s=15)
    engine = create_engine(database_url)
    try:
        await move(engine, pages, "assets_ready")
    finally:
        await engine.dispose()

    async def all_shown() -> bool:
        return all(status_of(p) == "Assets Ready" for p in await sandbox.pages())

    await until(all_shown, within_s=20)
    await until(lambda: _pushed(database_url), within_s=10)

    async def approve(page: str, after_s: float) -> None:
        await asyncio.sleep(after_s)
        await sandbox.edit([page], {"Status": {"status": {"name": "Assets Approved"}}})

        async def approved() -> bool:
            found = await fetchval(
                database_url, "SELECT status FROM tasks WHERE notion_page_id=$1", page
            )
            return bool(found == "assets_approved")

        # Its webhook waits out Notion's minute: seen well before, it was read (how soon is
        # bench/follow_up.py's measure).
        await until(approved, within_s=15)

    approvals_from = time.monotonic()
    await asyncio.gather(*(approve(p, 0.7 * n) for n, p in enumerate(pages)))
    active_s = time.monotonic() - approvals_from
    spent = [s for s in recorder.since(approvals_from) if s.sent <= approvals_from + active_s]

    reads = [s for s in spent if s.path.endswith(QUERY)]
    budget = 3.0 * active_s
    assert len(reads) <= 0.15 * budget + 1, f"{len(reads)} queries in {active_s:.1f} s"


async def _pushed(database_url: str) -> bool:
    return await outbox_pending(database_url) == 0


async def test_a_quiet_calendar_costs_one_query_per_poll(
    sandbox: SandboxAdmin, recorded: tuple[Start, Recorder]
) -> None:
    await sandbox.reset(videos=20, age_s=600, **NOTION_LIKE)
    start, recorder = recorded
    service = await start(subscribed=False, poll_interval_s=1.0)
    assert service.coordinator is not None
    assert not service.coordinator.hot
    quiet_from = time.monotonic()
    polls_before = service.coordinator.last_poll_ok_at

    async def polled_three_times() -> bool:
        return sum(1 for s in recorder.since(quiet_from) if s.path.endswith(QUERY)) >= 3

    await until(polled_three_times, within_s=10)
    spent = recorder.since(quiet_from)
    elapsed = max(s.sent for s in spent) - quiet_from
    bodies = [json.loads(s.body) for s in spent if s.path.endswith(QUERY)]
    assert all("and" not in b.get("filter", {}) for b in bodies), "no recent reads when quiet"
    assert len(spent) <= elapsed / 1.0 + 1
    assert service.coordinator.last_poll_ok_at is not None
    assert polls_before is None or service.coordinator.last_poll_ok_at > polls_before


async def test_a_page_with_an_event_not_yet_read_is_not_written_until_a_read_covers_it(
    sandbox: SandboxAdmin, recorded: tuple[Start, Recorder], database_url: str
) -> None:
    await sandbox.reset(videos=2, **NOTION_LIKE)
    page, other = await page_ids(sandbox)
    await sandbox.edit([page, other], QUEUED)
    start, recorder = recorded
    service = await start(subscribed=False, poll_interval_s=60.0)
    coordinator = service.coordinator
    assert coordinator is not None
    await until(lambda: _all_tasks(database_url, [page, other]), within_s=10)
    conn = await asyncpg.connect(database_url)
    try:
        # A creator's edit of the page whose event has arrived but has not been read yet.
        event = {
            "id": "evt-1",
            "type": "page.properties_updated",
            "authors": [{"id": sandbox.person_user_id, "type": "person"}],
            "entity": {"id": page, "type": "page"},
        }
        await conn.execute(
            "INSERT INTO webhook_inbox (event_id, event_type, entity_id, payload)"
            " VALUES ($1, $2, $3, $4::jsonb)",
            event["id"],
            event["type"],
            page,
            json.dumps(event),
        )
        coordinator.pushed.clear()
        engine = create_engine(database_url)
        try:
            await move(engine, [page, other], "claimed")
        finally:
            await engine.dispose()

        async def other_written() -> bool:
            return status_of(await _page(sandbox, other)) == "Processing"

        await until(other_written, within_s=10)
        await asyncio.wait_for(coordinator.pushed.wait(), 10)
        assert coordinator.last_push is not None
        assert coordinator.last_push.pages_held >= 1
        assert status_of(await _page(sandbox, page)) == "Queued", "held while unread"
        assert not [s for s in recorder.log if s.is_page_write and page in s.path]

        # The inbox writer's ring for it (as `record_events` sends at commit).
        ring = {"type": event["type"], "page": page, "at": datetime.now(UTC).isoformat()}
        await conn.execute("SELECT pg_notify($1, $2)", DOORBELL_CHANNEL, json.dumps(ring))

        async def written() -> bool:
            return status_of(await _page(sandbox, page)) == "Processing"

        await until(written, within_s=10)
        assert await conn.fetchval(
            "SELECT processed_at IS NOT NULL FROM webhook_inbox WHERE event_id = 'evt-1'"
        )
    finally:
        await conn.close()


async def _page(sandbox: SandboxAdmin, page_id: str) -> dict[str, Any]:
    return next(p for p in await sandbox.pages() if p["id"] == page_id)


async def test_a_cancel_after_publishing_shows_published_and_where_the_video_is(
    sandbox: SandboxAdmin, recorded: tuple[Start, Recorder], database_url: str
) -> None:
    await sandbox.reset(videos=1, **NOTION_LIKE)
    (page,) = await page_ids(sandbox)
    await sandbox.edit([page], QUEUED)
    start, _ = recorded
    await start()
    await until(lambda: _all_tasks(database_url, [page]), within_s=10)
    url = "https://youtu.be/late-cancel"
    engine = create_engine(database_url)
    try:
        await move(engine, [page], "published", values={"youtube_url": url})
    finally:
        await engine.dispose()

    async def shows(label: str) -> bool:
        return status_of(await _page(sandbox, page)) == label

    await until(lambda: shows("Published"), within_s=10)
    await sandbox.edit([page], {"Status": {"status": {"name": "Cancelled"}}})

    async def explained() -> bool:
        shown = await _page(sandbox, page)
        return status_of(shown) == "Published" and url in error_log_of(shown)

    await until(explained, within_s=10)
    log_line = error_log_of(await _page(sandbox, page))
    assert "Cancelled was set after the video was published" in log_line
    status = await fetchval(database_url, "SELECT status FROM tasks WHERE notion_page_id=$1", page)
    assert status == "published"
