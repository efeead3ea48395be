"""The demo: the whole service against a local Notion sandbox, with the creator's batch edit.

It starts (or joins) the database, gives the demo a fresh database of its own,
serves a sandbox seeded with a calendar of Draft videos (its Status options are the
labels of the status vocabulary, as `notion setup` makes them), runs the service pointed at
it (subscribed to its webhooks, with workers on the demo steps and every review gate
auto-approved), then acts as the creator: one edit sets every Draft to Queued. A live
bar counts tasks in the queue, a live table follows them to Published on their Notion
pages, and the summary says how fast and at what cost in Notion requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import SecretStr
from rich.console import Console
from rich.live import Live
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from reelqueue.config import DEFAULT_CHANNELS, Settings
from reelqueue.db import ensure_database, libpq_url, start_embedded_server, with_database
from reelqueue.db.engine import describe_database
from reelqueue.demo.summary import DemoSummary, render_summary
from reelqueue.errors import UserError
from reelqueue.sandbox import SandboxAdmin, SandboxConfig, SandboxServer, status_options
from reelqueue.service import Service, ServiceOptions
from reelqueue.statuses import StatusTable

__all__ = ["DemoOptions", "run_demo"]

DEMO_DATABASE = "reelqueue_demo"
PUSH_ENDPOINT = "PATCH /v1/pages/{id}"


@dataclass(frozen=True)
class DemoOptions:
    """What the demo does: how many videos, with webhooks or not, with faults or not."""

    videos: int = 20
    webhooks: bool = True
    faults: bool = False
    workers: int = 8
    timeout_s: float = 300.0
    show_progress: bool = True


async def _fresh_database(settings: Settings) -> str:
    """A new, empty demo database on the configured (or embedded) server."""
    server = (
        libpq_url(settings.database_url)
        if settings.database_url
        else start_embedded_server(settings.data_dir)
    )
    admin_url = await ensure_database(server, "postgres")
    conn = await asyncpg.connect(admin_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{DEMO_DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DEMO_DATABASE}"')
    finally:
        await conn.close()
    return with_database(admin_url, DEMO_DATABASE)


async def _count(url: str, sql: str, *args: Any) -> int:
    conn = await asyncpg.connect(url)
    try:
        return int(await conn.fetchval(sql, *args) or 0)
    finally:
        await conn.close()


def _status_name(page: Mapping[str, Any]) -> str | None:
    value = page["properties"]["Status"]
    chosen = value.get(value.get("type", "status")) or {}
    name = chosen.get("name")
    return str(name) if name is not None else None


def _requests(stats: Mapping[str, Any]) -> dict[str, int]:
    return {endpoint: sum(c.values()) for endpoint, c in stats["requests"].items()}


def _difference(after: dict[str, int], before: dict[str, int]) -> dict[str, int]:
    spent = {k: v - before.get(k, 0) for k, v in after.items()}
    return {k: v for k, v in spent.items() if v}


async def _wait_for_queue(
    url: str, page_ids: list[str], options: DemoOptions, console: Console, started: float
) -> tuple[int, float | None]:
    """Count tasks for the edited pages until all are in, showing a live bar.

    Returns the count and the seconds from `started` (the edit) to all in, or None.
    """
    deadline = started + options.timeout_s
    count = 0
    conn = await asyncpg.connect(url)
    query = "SELECT count(*) FROM tasks WHERE notion_page_id = ANY($1::text[])"
    progress = Progress(
        TextColumn("tasks in the queue"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
        disable=not options.show_progress,
    )
    try:
        with progress:
            bar = progress.add_task("queue", total=len(page_ids))
            while time.monotonic() < deadline:
                count = int(await conn.fetchval(query, page_ids) or 0)
                progress.update(bar, completed=count)
                if count >= len(page_ids):
                    return count, time.monotonic() - started
                await asyncio.sleep(0.05)
    finally:
        await conn.close()
    return count, None


async def _wait_for_published(
    admin: SandboxAdmin,
    url: str,
    page_ids: list[str],
    options: DemoOptions,
    console: Console,
    started: float,
    published_label: str,
) -> tuple[int, float | None]:
    """Follow the videos to Published on their Notion pages, with a live count per status."""
    wanted = set(page_ids)
    deadline = started + options.timeout_s
    published = 0
    live = Live(console=console, refresh_per_second=4, transient=False)
    conn = await asyncpg.connect(url)
    try:
        with live if options.show_progress else contextlib.nullcontext():
            while time.monotonic() < deadline:
                shown = Counter(
                    _status_name(p) or "?" for p in await admin.pages() if p["id"] in wanted
                )
                published = shown.get(published_label, 0)
                if options.show_progress:
                    rows = await conn.fetch(
                        "SELECT status, count(*) AS n FROM tasks"
                        " WHERE notion_page_id = ANY($1::text[]) GROUP BY status",
                        page_ids,
                    )
                    live.update(_status_table(rows, shown, time.monotonic() - started))
                if published >= len(wanted):
                    return published, time.monotonic() - started
                await asyncio.sleep(0.5)
    finally:
        await conn.close()
        console.print()
    return published, None


def _status_table(rows: list[Any], shown: Counter[str], elapsed: float) -> Table:
    table = Table(title=f"videos by status ({elapsed:.0f} s)", title_justify="left")
    table.add_column("in the queue")
    table.add_column("tasks", justify="right")
    table.add_column("on the Notion pages")
    table.add_column("pages", justify="right")
    queue = sorted((r["status"], r["n"]) for r in rows)
    pages = sorted(shown.items())
    for index in range(max(len(queue), len(pages))):
        left = queue[index] if index < len(queue) else ("", "")
        right = pages[index] if index < len(pages) else ("", "")
        table.add_row(str(left[0]), str(left[1]), str(right[0]), str(right[1]))
    return table


async def run_demo(settings: Settings, options: DemoOptions, console: Console) -> DemoSummary:
    """Run the demo end to end and return its summary (also printed)."""
    if options.videos < 1:
        raise UserError("--videos must be at least 1")
    database_url = await _fresh_database(settings)
    console.print(f"[dim]using {describe_database(database_url)}, made fresh for the demo[/dim]")
    channels = DEFAULT_CHANNELS
    table = StatusTable(settings.status_labels)
    draft, queued = table.label("draft"), table.label("queued")
    sandbox_config = SandboxConfig(
        videos=options.videos,
        channels=tuple(c.id for c in channels.channels),
        status_options=status_options(table.groups()),
        rate_model="bucket",
        rps=settings.notion_rate_limit,
        burst=settings.notion_rate_burst * 2,
    )
    summary = DemoSummary(videos=options.videos, webhooks_enabled=options.webhooks)
    with SandboxServer(sandbox_config) as sandbox:
        admin = SandboxAdmin(sandbox.base_url)
        info = await admin.info()
        service_settings = settings.model_copy(
            update={
                "notion_token": SecretStr(sandbox.token),
                "notion_api_url": sandbox.base_url,
                "notion_database_ids": list(info["database_ids"]),
                "notion_webhook_token": None,
            }
        )
        service = Service(
            service_settings,
            channels,
            database_url=database_url,
            options=ServiceOptions(port=0, workers=options.workers),
        )
        try:
            await service.start()
            console.print(
                f"sandbox at {sandbox.base_url} with {options.videos} {draft} videos; "
                f"reelqueue at {service.base_url}"
            )
            await asyncio.wait_for(service.leading.wait(), 30)
            assert service.coordinator is not None
            assert service.notion is not None
            await asyncio.wait_for(service.coordinator.ready.wait(), 60)
            if options.webhooks:
                await admin.subscribe(f"{service.base_url}/webhooks/notion", verified=True)
            if options.faults:
                await admin.set_faults(
                    error_rate=0.2,
                    status_codes=[500, 502, 503, 504, 529],
                    webhook_duplicate_rate=0.5,
                    webhook_reorder=True,
                    webhook_delay_ms=[0, 3000],
                )
                summary.faults = True
            drafts = [p["id"] for p in await admin.pages() if _status_name(p) == draft]
            before = _requests(service.notion.stats)
            rate_limited_before = service.notion.stats["rate_limited"]
            status_value = {sandbox_config.status_type: {"name": queued}}
            console.print(f"the creator sets {len(drafts)} {draft} entries to {queued} in one edit")
            edit_started = time.monotonic()
            await admin.edit(drafts, {"Status": status_value})
            count, seconds = await _wait_for_queue(
                database_url, drafts, options, console, edit_started
            )
            summary.queued = count
            summary.invalid = await _count(
                database_url, "SELECT count(*) FROM tasks WHERE status = 'invalid'"
            )
            summary.duplicates = await _count(
                database_url,
                "SELECT count(*) - count(DISTINCT task_id) FROM task_events"
                " WHERE from_status IS NULL",
            )
            summary.seconds_to_all_queued = round(seconds, 3) if seconds is not None else None
            if options.workers > 0:
                published, seconds = await _wait_for_published(
                    admin,
                    database_url,
                    drafts,
                    options,
                    console,
                    edit_started,
                    table.label("published"),
                )
                summary.published = published
                summary.seconds_to_all_published = (
                    round(seconds, 3) if seconds is not None else None
                )
            spent = _difference(_requests(service.notion.stats), before)
            summary.notion_requests = spent
            summary.push_requests = spent.get(PUSH_ENDPOINT, 0)
            summary.ingest_requests = sum(spent.values()) - summary.push_requests
            summary.rate_limited = service.notion.stats["rate_limited"] - rate_limited_before
            summary.webhooks = dict((await admin.stats()).get("webhooks", {}))
        finally:
            await service.stop()
            await admin.aclose()
    render_summary(summary, console)
    if options.workers > 0 and summary.seconds_to_all_published is None:
        raise UserError(
            f"only {summary.published} of {summary.videos} videos reached Published in Notion "
            f"within {options.timeout_s:.0f} s; see the log above"
        )
    if summary.seconds_to_all_queued is None:
        raise UserError(
            f"only {count} of {len(drafts)} videos reached the queue within "
            f"{options.timeout_s:.0f} s; see the log above"
        )
    return summary
