"""The demo's summary: what it measured, as a table and as one JSON line."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from rich.console import Console
from rich.table import Table

__all__ = ["DemoSummary", "render_summary"]


@dataclass
class DemoSummary:
    """Figures from one demo run."""

    videos: int
    queued: int = 0
    invalid: int = 0
    duplicates: int = 0
    rate_limited: int = 0
    seconds_to_all_queued: float | None = None
    published: int = 0
    seconds_to_all_published: float | None = None
    notion_requests: dict[str, int] = field(default_factory=dict)
    ingest_requests: int = 0
    push_requests: int = 0
    webhooks: dict[str, int] = field(default_factory=dict)
    webhooks_enabled: bool = True
    faults: bool = False

    def as_json(self) -> str:
        """One line of JSON with every figure."""
        return json.dumps(asdict(self), sort_keys=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.2f}"
    return "-" if value is None else str(value)


def render_summary(summary: DemoSummary, console: Console) -> None:
    """Print the summary as a readable table."""
    table = Table(title="reelqueue demo", show_header=False, title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_row("videos set to Queued in one edit", _fmt(summary.videos))
    table.add_row("tasks in the queue", _fmt(summary.queued))
    table.add_row("seconds from the edit to all in the queue", _fmt(summary.seconds_to_all_queued))
    table.add_row("published (shown on their Notion pages)", _fmt(summary.published))
    table.add_row("seconds from the edit to all published", _fmt(summary.seconds_to_all_published))
    table.add_row("duplicate tasks", _fmt(summary.duplicates))
    table.add_row("429s received by reelqueue", _fmt(summary.rate_limited))
    table.add_row("Notion requests for ingest", _fmt(summary.ingest_requests))
    table.add_row("Notion requests for push-back", _fmt(summary.push_requests))
    table.add_row("webhooks", "on" if summary.webhooks_enabled else "off")
    if summary.faults:
        table.add_row("faults injected", "yes")
    console.print(table)
    requests = Table(title="Notion requests by endpoint", title_justify="left")
    requests.add_column("endpoint")
    requests.add_column("requests", justify="right")
    for endpoint, count in sorted(summary.notion_requests.items()):
        requests.add_row(endpoint, str(count))
    console.print(requests)
