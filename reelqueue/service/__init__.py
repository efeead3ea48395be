"""The running service: one process's web app, leader election, ingest and push-back."""

from reelqueue.service.coordinator import CLOCK_SKEW, Coordinator
from reelqueue.service.notion_setup import (
    NotionReport,
    check_notion,
    create_calendar,
    setup_notion,
)
from reelqueue.service.runner import (
    Service,
    ServiceOptions,
    load_calendars,
    require_notion_settings,
)

__all__ = [
    "CLOCK_SKEW",
    "Coordinator",
    "NotionReport",
    "Service",
    "ServiceOptions",
    "check_notion",
    "create_calendar",
    "load_calendars",
    "require_notion_settings",
    "setup_notion",
]
