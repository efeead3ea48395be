"""`reelqueue notion check` and `notion setup`: the connection, and the calendar's schema."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from reelqueue.calendar import PropertyNames, SchemaReport, check_schema, setup_patch
from reelqueue.config import Channels, Settings
from reelqueue.errors import UserError
from reelqueue.notion import NotionAPIError, NotionClient, explain, normalize_id, plain_text
from reelqueue.service.runner import require_notion_settings
from reelqueue.statuses import StatusTable

__all__ = ["check_notion", "setup_notion"]


def _client(settings: Settings) -> NotionClient:
    return NotionClient(
        require_notion_settings(settings),
        base_url=settings.notion_api_url,
        rate_limit=settings.notion_rate_limit,
        burst=settings.notion_rate_burst,
    )


async def _reports(
    notion: NotionClient, settings: Settings, channels: Channels
) -> list[tuple[SchemaReport, dict[str, Any]]]:
    table = StatusTable(settings.status_labels)
    found: list[tuple[SchemaReport, dict[str, Any]]] = []
    for ref in settings.notion_database_ids:
        database_id = normalize_id(ref)
        try:
            for source in await notion.resolve_data_sources(database_id):
                data_source = await notion.retrieve_data_source(source.data_source_id)
                report = check_schema(
                    data_source, PropertyNames(), table.labels, [c.id for c in channels.channels]
                )
                found.append((report, data_source))
        except NotionAPIError as exc:
            raise UserError(explain(exc, database_id=database_id)) from None
    return found


async def check_notion(settings: Settings, channels: Channels) -> list[str]:
    """Lines describing who we are in Notion and whether each data source is usable."""
    async with _client(settings) as notion:
        try:
            me = await notion.me()
        except NotionAPIError as exc:
            raise UserError(explain(exc)) from None
        lines = [f"token ok: integration bot {me.get('name') or me['id']}"]
        for report, data_source in await _reports(notion, settings, channels):
            problems = report.problems
            title = plain_text(data_source.get("title"))
            state = "ready" if not problems else "; ".join(problems)
            lines.append(f"data source {report.data_source_id} ({title or 'untitled'}): {state}")
            if problems:
                lines.append("  fix: run `reelqueue notion setup`")
    return lines


async def setup_notion(
    settings: Settings, channels: Channels, confirm: Callable[[str], bool]
) -> list[str]:
    """Add the missing properties and options to every data source, after `confirm`."""
    table = StatusTable(settings.status_labels)
    names = PropertyNames()
    lines: list[str] = []
    async with _client(settings) as notion:
        for report, data_source in await _reports(notion, settings, channels):
            if not report.fixable:
                raise UserError(
                    f"data source {report.data_source_id}: " + "; ".join(report.wrong_type)
                    + "; change those properties' types in Notion (setup never changes a type)"
                )  # fmt: skip
            existing = data_source.get("properties")
            patch = setup_patch(
                report,
                names,
                table.labels,
                [c.id for c in channels.channels],
                existing if isinstance(existing, dict) else {},
            )
            if not patch:
                lines.append(f"data source {report.data_source_id}: nothing to add")
                continue
            what = ", ".join(sorted(patch))
            if not confirm(f"Add or extend {what} in data source {report.data_source_id}?"):
                lines.append(f"data source {report.data_source_id}: left unchanged")
                continue
            await notion.update_data_source(report.data_source_id, patch)
            lines.append(f"data source {report.data_source_id}: added or extended {what}")
    return lines
