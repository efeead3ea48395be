"""Talking to Notion: the rate-limited, retrying client, typed errors, ids and property values.

`NotionClient` wraps the official SDK (API 2025-09-03) over a transport that passes the
process-wide limiter of its integration token (bucket, window budget, holds after 429s,
shared per workspace) before every attempt and retries the transient failures; permanent
failures raise one `NotionAPIError` leaf at once, and `explain()` words the common mistakes
for the person running reelqueue. `NotionClient.rate_limit_status()` tells what the
limiter knows (a `RateLimitStatus`).
"""

from __future__ import annotations

from reelqueue.notion.client import DataSourceRef, NotionClient, QueryPage
from reelqueue.notion.errors import (
    InvalidNotionId,
    NotionAPIError,
    NotionError,
    NotionNotFound,
    NotionRateLimited,
    NotionRestricted,
    NotionSendExpired,
    NotionUnauthorized,
    NotionUnavailable,
    NotionValidationError,
    explain,
)
from reelqueue.notion.ids import normalize_id
from reelqueue.notion.limiter import (
    NotionLimiter,
    Priority,
    RateLimitStatus,
    TokenBucket,
    forget_limiters,
    limiter_for,
)
from reelqueue.notion.page_writes import PageWrites
from reelqueue.notion.properties import (
    DateValue,
    build_checkbox,
    build_date,
    build_number,
    build_rich_text,
    build_select,
    build_status,
    build_title,
    build_url,
    page_properties,
    parse_property,
    plain_text,
)
from reelqueue.notion.transport import RequestStats

__all__ = [
    "DataSourceRef",
    "DateValue",
    "InvalidNotionId",
    "NotionAPIError",
    "NotionClient",
    "NotionError",
    "NotionLimiter",
    "NotionNotFound",
    "NotionRateLimited",
    "NotionRestricted",
    "NotionSendExpired",
    "NotionUnauthorized",
    "NotionUnavailable",
    "NotionValidationError",
    "PageWrites",
    "Priority",
    "QueryPage",
    "RateLimitStatus",
    "RequestStats",
    "TokenBucket",
    "build_checkbox",
    "build_date",
    "build_number",
    "build_rich_text",
    "build_select",
    "build_status",
    "build_title",
    "build_url",
    "explain",
    "forget_limiters",
    "limiter_for",
    "normalize_id",
    "page_properties",
    "parse_property",
    "plain_text",
]
