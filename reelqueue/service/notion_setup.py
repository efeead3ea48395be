"""`reelqueue notion check`, `notion setup` and `notion create-calendar`: the calendar's schema."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from reelqueue.calendar import (
    PropertyNames,
    SchemaReport,
    calendar_properties,
    calendar_title,
    check_schema,
    setup_patch,
    status_instructions,
)
from reelqueue.config import Channels, Settings
from reelqueue.errors import UserError
from reelqueue.notion import (
    InvalidNotionId,
    NotionAPIError,
    NotionClient,
    NotionNotFound,
    explain,
    normalize_id,
    plain_text,
)
from reelqueue.service.runner import require_notion_settings
from reelqueue.statuses import StatusTable

__all__ = ["NotionReport", "check_notion", "create_calendar", "setup_notion"]


@dataclass
class NotionReport:
    """Lines to show the person, and whether every calendar has all reelqueue needs."""

    lines: list[str] = field(default_factory=list)
    complete: bool = True


def _client(settings: Settings, *, calendars: bool = True) -> NotionClient:
    """A client for the configured token; `calendars` also requires NOTION_DATABASE_IDS."""
    if calendars:
        token = require_notion_settings(settings)
    elif settings.notion_token is None or not settings.notion_token.get_secret_value():
        raise UserError(
            "NOTION_TOKEN is not set: create an integration at "
            "https://www.notion.so/profile/integrations and export its secret as NOTION_TOKEN"
        )
    else:
        token = settings.notion_token.get_secret_value()
    return NotionClient(
        token,
        base_url=settings.notion_api_url,
        rate_limit=settings.notion_rate_limit,
        burst=settings.notion_rate_burst,
        budget=settings.notion_rate_budget,
        window_s=settings.notion_rate_window_s,
    )


def _channel_ids(channels: Channels | None) -> list[str]:
    return [] if channels is None else [c.id for c in channels.channels]


async def _reports(
    notion: NotionClient, settings: Settings, table: StatusTable, channels: Channels | None
) -> list[tuple[SchemaReport, dict[str, Any]]]:
    found: list[tuple[SchemaReport, dict[str, Any]]] = []
    for ref in settings.notion_database_ids:
        database_id = normalize_id(ref)
        try:
            for source in await notion.resolve_data_sources(database_id):
                data_source = await notion.retrieve_data_source(source.data_source_id)
                report = check_schema(
                    data_source, PropertyNames(), table.labels, _channel_ids(channels)
                )
                found.append((report, data_source))
        except NotionAPIError as exc:
            raise UserError(explain(exc, database_id=database_id)) from None
    return found


def _fix_hint(report: SchemaReport) -> str:
    if not report.fixable:
        return "  fix: change those properties' types in Notion, then run `reelqueue notion setup`"
    return "  fix: run `reelqueue notion setup`"


async def check_notion(
    settings: Settings, channels: Channels | None, *, table: StatusTable | None = None
) -> NotionReport:
    """Who we are in Notion, and every property and option each data source lacks.

    Without a channels file the Channel options cannot be checked: that is reported as
    missing too, so the check passes only when the calendar is ready for `reelqueue run`.
    """
    table = table or StatusTable(settings.status_labels)
    result = NotionReport()
    async with _client(settings) as notion:
        try:
            me = await notion.me()
        except NotionAPIError as exc:
            raise UserError(explain(exc)) from None
        result.lines.append(f"token ok: integration bot {me.get('name') or me['id']}")
        for report, data_source in await _reports(notion, settings, table, channels):
            gaps = report.gaps
            title = plain_text(data_source.get("title")) or "untitled"
            state = "ready" if not gaps else "missing: " + "; ".join(gaps)
            result.lines.append(f"data source {report.data_source_id} ({title}): {state}")
            if gaps:
                result.complete = False
                result.lines.append(_fix_hint(report))
    if channels is None:
        result.complete = False
        result.lines.append(
            "channels file: not set, so the Channel options were not checked; point "
            "REELQUEUE_CHANNELS at the channels file (YAML, see README) and check again"
        )
    return result


async def setup_notion(
    settings: Settings,
    channels: Channels,
    confirm: Callable[[str], bool],
    *,
    table: StatusTable | None = None,
) -> NotionReport:
    """Add what the API can add (after `confirm`); say what a person must add by hand.

    Never drops an existing option and never changes a type. `complete` is False while
    anything is still missing, such as options of a `status`-type Status.
    """
    table = table or StatusTable(settings.status_labels)
    names = PropertyNames()
    result = NotionReport()
    async with _client(settings) as notion:
        for report, data_source in await _reports(notion, settings, table, channels):
            source = f"data source {report.data_source_id}"
            if not report.fixable:
                raise UserError(
                    f"{source}: " + "; ".join(report.wrong_type)
                    + "; change those properties' types in Notion (setup never changes a type)"
                )  # fmt: skip
            existing = data_source.get("properties")
            patch = setup_patch(
                report,
                names,
                table.labels,
                _channel_ids(channels),
                existing if isinstance(existing, dict) else {},
            )
            by_hand = status_instructions(report, names, table)
            if patch:
                what = ", ".join(sorted(patch))
                if confirm(f"Add or extend {what} in {source}?"):
                    try:
                        await notion.update_data_source(report.data_source_id, patch)
                    except NotionAPIError as exc:
                        raise UserError(f"{source}: {explain(exc)}") from None
                    result.lines.append(f"{source}: added or extended {what}")
                else:
                    result.lines.append(f"{source}: left unchanged")
                    result.complete = False
            if by_hand:
                result.lines += by_hand
                result.lines.append(
                    f"{source}: then run `reelqueue notion check` to confirm nothing is missing"
                )
                result.complete = False
            elif not patch:
                result.lines.append(f"{source}: nothing to add")
    return result


async def create_calendar(
    settings: Settings,
    channels: Channels,
    parent: str,
    title: str,
    *,
    table: StatusTable | None = None,
) -> NotionReport:
    """Create a content calendar under a page: every property, Status a select of every label."""
    table = table or StatusTable(settings.status_labels)
    try:
        parent_id = normalize_id(parent)
    except InvalidNotionId as exc:
        raise UserError(f"--parent: {exc}") from None
    rich_title = calendar_title(title)
    properties = calendar_properties(PropertyNames(), table, _channel_ids(channels))
    async with _client(settings, calendars=False) as notion:
        try:
            database = await notion.create_database(parent_id, rich_title, properties)
        except NotionNotFound:
            raise UserError(
                f"page {parent_id} was not found or is not shared with the integration: "
                "open it in Notion, ••• → Connections → add your integration"
            ) from None
        except NotionAPIError as exc:
            raise UserError(explain(exc)) from None
    database_id = normalize_id(database.get("id"))
    sources = database.get("data_sources")
    first = sources[0] if isinstance(sources, list) and sources else {}
    lines = [f"created content calendar {title.strip()!r}: database {database_id}"]
    if isinstance(first, dict) and first.get("id"):
        lines.append(f"data source {normalize_id(first['id'])}")
    if isinstance(database.get("url"), str):
        lines.append(f"open it at {database['url']}")
    lines.append("add this line to your environment (or append the id to the existing list):")
    lines.append(f"NOTION_DATABASE_IDS={database_id}")
    return NotionReport(lines=lines)
