"""Notion ids in one form: the dashed lowercase UUID, from a UUID in any form or a Notion URL."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from reelqueue.notion.errors import InvalidNotionId

_DASHED = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I)
_COMPACT = re.compile(r"[0-9a-f]{32}", re.I)
_TRAILING_ID = re.compile(
    r"(?:^|[^0-9a-f])([0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$",
    re.I,
)
_NOTION_HOSTS = ("notion.so", "notion.site")
_QUERY_KEYS = ("p", "page_id", "database_id")
_TOKEN_PREFIXES = ("secret_", "ntn_")
_SHOWN_LENGTH = 60


def _dashed(hex32: str) -> str:
    h = hex32.lower()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def _as_uuid(text: str) -> str | None:
    if _DASHED.fullmatch(text):
        return text.lower()
    if _COMPACT.fullmatch(text):
        return _dashed(text)
    return None


def _is_notion_host(host: str) -> bool:
    host = host.lower()
    return any(host == h or host.endswith("." + h) for h in _NOTION_HOSTS)


def _from_url(text: str) -> str | None:
    try:
        url = urlsplit(text if "://" in text else "https://" + text)
    except ValueError:
        return None
    if url.scheme not in ("http", "https") or not _is_notion_host(url.hostname or ""):
        return None
    last = url.path.rstrip("/").rsplit("/", 1)[-1]
    found = _TRAILING_ID.search(last)
    if found:
        return _as_uuid(found.group(1))
    query = parse_qs(url.query)
    for key in _QUERY_KEYS:
        for value in query.get(key, []):
            uuid = _as_uuid(value)
            if uuid:
                return uuid
    return None


def _shown(value: Any) -> str:
    if isinstance(value, str) and value.strip().startswith(_TOKEN_PREFIXES):
        return "a value that looks like an integration token"
    shown = repr(value)
    return shown if len(shown) <= _SHOWN_LENGTH else shown[: _SHOWN_LENGTH - 4] + "...'"


def normalize_id(value: Any) -> str:
    """The dashed lowercase UUID in `value` (a UUID with or without dashes, or a Notion URL).

    Raises InvalidNotionId, naming the value and the expected form, for anything else.
    """
    if isinstance(value, str):
        text = value.strip()
        found = _as_uuid(text) or _from_url(text)
        if found:
            return found
    raise InvalidNotionId(
        f"{_shown(value)} is not a Notion id: expected 32 hexadecimal characters "
        "(with or without dashes) or a Notion URL such as "
        "https://www.notion.so/<workspace>/<title>-<32 hexadecimal characters>"
    )
