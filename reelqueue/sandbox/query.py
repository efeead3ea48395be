"""Run a data source query: filter, sort, paginate with opaque cursors, stop at 10,000 rows.

A cursor remembers where the next page starts by the sort key of its first row, not by an
offset, so rows edited between two pages are neither repeated nor skipped unless the edit
moves them across the boundary, as with any keyset pagination. Once a query (a filter and
sort) would yield more than 10,000 rows, every page of it carries `request_status`
incomplete, and the page that reaches row 10,000 says `has_more: false`, as Notion does.
Trashed pages are left out unless the body says `in_trash: true` (or, before API version
2026-03-11, its alias `archived: true`); then only trashed pages are returned.
"""

from __future__ import annotations

import bisect
import json
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from reelqueue.sandbox.errors import shape_error, validation_error
from reelqueue.sandbox.filters import compile_filter, compile_sorts
from reelqueue.sandbox.store import Calendar, Page

QUERY_RESULT_LIMIT = 10_000
MAX_PAGE_SIZE = 100
_CURSORS_KEPT = 10_000


@dataclass(frozen=True)
class CursorState:
    """Where the next page of one query starts, and how many rows it has given so far."""

    fingerprint: str
    boundary: tuple[Any, ...]
    delivered: int


@dataclass(frozen=True)
class QueryPage:
    """One page of a query's results."""

    pages: list[Page]
    next_cursor: str | None
    has_more: bool
    incomplete: bool


class CursorBook:
    """The cursors handed out, looked up by their opaque id (the most recent ones are kept)."""

    def __init__(self) -> None:
        self._cursors: OrderedDict[str, CursorState] = OrderedDict()

    def issue(self, state: CursorState) -> str:
        """Remember `state` and return the opaque cursor that names it."""
        cursor = str(uuid.uuid4())
        self._cursors[cursor] = state
        while len(self._cursors) > _CURSORS_KEPT:
            self._cursors.popitem(last=False)
        return cursor

    def find(self, cursor: str) -> CursorState | None:
        """The state behind a cursor, if it is one of ours."""
        return self._cursors.get(cursor)

    def clear(self) -> None:
        """Forget every cursor."""
        self._cursors.clear()


def run_query(
    calendar: Calendar,
    data_source_id: str,
    body: dict[str, Any],
    cursors: CursorBook,
    now: datetime,
    *,
    archived_alias: bool = True,
) -> QueryPage:
    """One page of results for a query body; raise a 400 NotionError for a bad one.

    `archived_alias` accepts `archived` for `in_trash` (API versions before 2026-03-11).
    """
    page_size = body.get("page_size", MAX_PAGE_SIZE)
    if isinstance(page_size, bool) or not isinstance(page_size, int):
        raise shape_error("body.page_size", "a number", page_size)
    if not 1 <= page_size <= MAX_PAGE_SIZE:
        bound = f"≤ `{MAX_PAGE_SIZE}`" if page_size > MAX_PAGE_SIZE else "≥ `1`"
        raise validation_error(
            f"body failed validation: body.page_size should be {bound}, instead was `{page_size}`."
        )
    raw_filter, raw_sorts = body.get("filter"), body.get("sorts")
    predicate = None if raw_filter is None else compile_filter(raw_filter, calendar, now)
    sort_key = compile_sorts(raw_sorts, calendar)
    trashed = trash_flag(body, archived_alias=archived_alias)
    result_type = body.get("result_type")
    if result_type is not None and result_type not in ("page", "data_source"):
        raise shape_error("body.result_type", '"page" or "data_source"', result_type)
    fingerprint = json.dumps(
        [data_source_id, raw_filter, raw_sorts, trashed, result_type], sort_keys=True
    )
    state = _start_state(body.get("start_cursor"), cursors, fingerprint)

    rows = sorted(
        (
            p
            for p in calendar.pages.values()
            if p.shared
            and p.moved_to is None
            and p.in_trash == trashed
            and result_type != "data_source"
            and (predicate is None or predicate(p))
        ),
        key=sort_key,
    )
    start = 0 if state is None else bisect.bisect_left(rows, state.boundary, key=sort_key)
    delivered = 0 if state is None else state.delivered
    count = min(page_size, QUERY_RESULT_LIMIT - delivered)
    chunk = rows[start : start + count]
    has_more = start + count < len(rows) and delivered + count < QUERY_RESULT_LIMIT
    incomplete = delivered + len(rows) - start > QUERY_RESULT_LIMIT
    next_cursor = None
    if has_more:
        boundary = sort_key(rows[start + count])
        next_cursor = cursors.issue(CursorState(fingerprint, boundary, delivered + count))
    return QueryPage(chunk, next_cursor, has_more, incomplete)


def trash_flag(body: dict[str, Any], *, archived_alias: bool) -> bool:
    """The body's `in_trash` (or its alias `archived` where the version allows it), else false."""
    flag = False
    for key in ("archived", "in_trash"):
        if key not in body:
            continue
        if key == "archived" and not archived_alias:
            raise validation_error(
                "body failed validation: body.archived should be not present, instead was "
                f"`{json.dumps(body[key])}`. Use in_trash (archived was removed in 2026-03-11)."
            )
        if not isinstance(body[key], bool):
            raise shape_error(f"body.{key}", "a boolean", body[key])
        flag = body[key]
    return flag


def _start_state(raw: Any, cursors: CursorBook, fingerprint: str) -> CursorState | None:
    if raw is None:
        return None
    if not isinstance(raw, str):
        raise shape_error("body.start_cursor", "a string", raw)
    state = cursors.find(raw)
    if state is None or state.fingerprint != fingerprint:
        raise validation_error(
            f"The start_cursor provided is invalid: {raw}. Pass the next_cursor of the same "
            "query (same filter and sorts)."
        )
    return state
