"""`NotionClient`: the official SDK on our transport, with typed errors and the calls we use.

The SDK (`notion_client.AsyncClient`, API 2025-09-03) builds requests and reads answers;
its own retries are off, because `RetryingTransport` underneath rate-limits and retries
every attempt. Every failure leaves as one `NotionAPIError` leaf with status, code,
message and request id. Close the client with `aclose()` or use `async with`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any
from urllib.parse import unquote

import httpx
import structlog
from notion_client import AsyncClient
from notion_client.errors import HTTPResponseError, NotionClientErrorBase, RequestTimeoutError

from reelqueue.notion.errors import InvalidNotionId, NotionError, NotionSendExpired, api_error
from reelqueue.notion.ids import normalize_id
from reelqueue.notion.limiter import (
    DEFAULT_WINDOW_S,
    NotionLimiter,
    Priority,
    RateLimitStatus,
    limiter_for,
)
from reelqueue.notion.transport import (
    BASE_DELAY_S,
    DEFAULT_MAX_ATTEMPTS,
    RequestStats,
    RetryingTransport,
    SendDeadlinePassed,
    on_leaving,
    request_priority,
    send_deadline,
)

log = structlog.get_logger(__name__)

NOTION_VERSION = "2025-09-03"
DEFAULT_BASE_URL = "https://api.notion.com"
MAX_PAGE_SIZE = 100
_SDK_LOGGER = "reelqueue.notion.sdk"


@dataclass(frozen=True)
class DataSourceRef:
    """One data source of a database, as the database lists it."""

    database_id: str
    data_source_id: str
    name: str


@dataclass(frozen=True)
class QueryPage:
    """One page of a data source query.

    `incomplete` is True when Notion stopped the query at its 10,000-row limit: narrow the
    filter and query again for the rest.
    """

    results: list[dict[str, Any]]
    next_cursor: str | None
    has_more: bool
    incomplete: bool = False
    request_id: str | None = None


class NotionClient:
    """Calls to the Notion API, paced by the process-wide limiter of this token and retried.

    `rate_limit`/`burst` shape the bucket that paces requests until Notion's window budget
    is known; `budget` requests per `window_s` seconds, when given, is that budget (the
    limiter also learns it from 429s). `transport` replaces the network under the limiter
    and retries (an ASGI app in tests); `retry_base_s` is the first backoff step, doubling
    per attempt up to 20 s.
    """

    def __init__(
        self,
        token: str,
        *,
        base_url: str = DEFAULT_BASE_URL,
        rate_limit: float = 3.0,
        burst: int = 3,
        budget: int | None = None,
        window_s: float = DEFAULT_WINDOW_S,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        timeout_s: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
        retry_base_s: float = BASE_DELAY_S,
    ) -> None:
        if not token:
            raise ValueError("a Notion token is required")
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._timeout_s = timeout_s
        self._transport = RetryingTransport(
            limiter_for(token, rate_limit, burst, budget=budget, window_s=window_s),
            inner=transport,
            max_attempts=max_attempts,
            base_delay_s=retry_base_s,
        )
        self._http = httpx.AsyncClient(transport=self._transport, trust_env=False)
        self._sdk = AsyncClient(
            client=self._http,
            auth=token,
            base_url=self.base_url,
            notion_version=NOTION_VERSION,
            timeout_ms=round(timeout_s * 1000),
            retry=False,
            logger=logging.getLogger(_SDK_LOGGER),
            log_level=logging.ERROR,
        )

    def __repr__(self) -> str:
        return f"NotionClient(base_url={self.base_url!r})"

    @property
    def stats(self) -> RequestStats:
        """Attempts this client sent, per endpoint template and status; 429s; retries."""
        return self._transport.stats

    @property
    def limiter(self) -> NotionLimiter:
        """The limiter this client shares with every client of the same token."""
        return self._transport.limiter

    def rate_limit_status(self) -> RateLimitStatus:
        """Whether Notion is holding this token back, until when and why; the window budget."""
        return self._transport.limiter.status()

    async def aclose(self) -> None:
        """Close the connections (closing twice is fine)."""
        await self._http.aclose()

    async def __aenter__(self) -> NotionClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def _request(
        self,
        method: str,
        path: str,
        priority: Priority,
        *,
        query: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
        send_by: float | None = None,
        leaving: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        reset = request_priority.set(priority)
        reset_deadline = send_deadline.set(send_by)
        reset_leaving = on_leaving.set(leaving)
        try:
            answer = await self._sdk.request(path=path, method=method, query=query, body=body)
        except SendDeadlinePassed as error:
            raise NotionSendExpired(f"{method} /v1/{path} was not sent: {error}") from error
        except (NotionClientErrorBase, httpx.TransportError) as error:
            raise self._translate(error) from error
        finally:
            on_leaving.reset(reset_leaving)
            send_deadline.reset(reset_deadline)
            request_priority.reset(reset)
        if not isinstance(answer, dict):
            raise NotionError(f"Notion answered {method} /v1/{path} with a non-object")
        return answer

    def _scrub(self, text: str) -> str:
        return text.replace(self._token, "***") if self._token in text else text

    def _translate(self, error: Exception) -> NotionError:
        """Our typed error for an SDK or httpx failure."""
        if isinstance(error, HTTPResponseError):
            code = error.code.value if isinstance(error.code, Enum) else str(error.code)
            message, request_id = str(error), error.request_id
            body = _json_object(error.body)
            if isinstance(body.get("code"), str):
                code = body["code"]
            if isinstance(body.get("message"), str):
                message = body["message"]
            if request_id is None and isinstance(body.get("request_id"), str):
                request_id = body["request_id"]
            if code == "notionhq_client_response_error":
                code = f"http_{error.status}"
            return api_error(error.status, code, self._scrub(message), request_id)
        if isinstance(error, RequestTimeoutError):
            message = f"no answer within {self._timeout_s:g} s"
            return api_error(0, "timeout", message, api_url=self.base_url)
        if isinstance(error, httpx.TransportError):
            message = self._scrub(f"{type(error).__name__}: {error}")
            return api_error(0, "connection_error", message, api_url=self.base_url)
        return NotionError(self._scrub(str(error)))

    async def me(self, *, priority: Priority = Priority.INGEST) -> dict[str, Any]:
        """The integration's bot user (GET /v1/users/me)."""
        return await self._request("GET", "users/me", priority)

    async def retrieve_database(
        self, database_id: str, *, priority: Priority = Priority.INGEST
    ) -> dict[str, Any]:
        """A database and the data sources it holds (id or URL accepted)."""
        return await self._request("GET", f"databases/{normalize_id(database_id)}", priority)

    async def resolve_data_sources(
        self, database_ref: str, *, priority: Priority = Priority.INGEST
    ) -> list[DataSourceRef]:
        """The data sources of a database given by id or URL."""
        database_id = normalize_id(database_ref)
        database = await self.retrieve_database(database_id, priority=priority)
        sources = database.get("data_sources")
        refs: list[DataSourceRef] = []
        for source in sources if isinstance(sources, list) else []:
            raw_id = source.get("id") if isinstance(source, dict) else None
            try:
                data_source_id = normalize_id(raw_id)
            except InvalidNotionId:
                log.warning("notion listed a data source without a valid id", source=source)
                continue
            name = source.get("name")
            refs.append(
                DataSourceRef(database_id, data_source_id, name if isinstance(name, str) else "")
            )
        return refs

    async def retrieve_data_source(
        self, data_source_id: str, *, priority: Priority = Priority.INGEST
    ) -> dict[str, Any]:
        """A data source and its schema (`properties`)."""
        return await self._request("GET", f"data_sources/{normalize_id(data_source_id)}", priority)

    async def update_data_source(
        self,
        data_source_id: str,
        properties: dict[str, Any],
        *,
        priority: Priority = Priority.PUSH,
    ) -> dict[str, Any]:
        """Add or change schema properties and options; the data source after."""
        path = f"data_sources/{normalize_id(data_source_id)}"
        return await self._request("PATCH", path, priority, body={"properties": properties})

    async def update_database_description(
        self,
        database_id: str,
        description: list[dict[str, Any]],
        *,
        priority: Priority = Priority.PUSH,
    ) -> dict[str, Any]:
        """Replace a database's description (rich text); the database after.

        A data source's description cannot be written through the API; its database's can.
        """
        path = f"databases/{normalize_id(database_id)}"
        return await self._request("PATCH", path, priority, body={"description": description})

    async def query_data_source(
        self,
        data_source_id: str,
        *,
        filter: dict[str, Any] | None = None,
        sorts: Sequence[dict[str, Any]] | None = None,
        page_size: int = MAX_PAGE_SIZE,
        start_cursor: str | None = None,
        filter_properties: Sequence[str] | None = None,
        priority: Priority = Priority.INGEST,
    ) -> QueryPage:
        """One page of rows; pass its `next_cursor` as `start_cursor` for the next."""
        body: dict[str, Any] = {"page_size": page_size}
        if filter is not None:
            body["filter"] = filter
        if sorts is not None:
            body["sorts"] = list(sorts)
        if start_cursor is not None:
            body["start_cursor"] = start_cursor
        path = f"data_sources/{normalize_id(data_source_id)}/query"
        answer = await self._request(
            "POST", path, priority, query=_filter_properties(filter_properties), body=body
        )
        return _query_page(answer)

    async def retrieve_page(
        self,
        page_id: str,
        *,
        filter_properties: Sequence[str] | None = None,
        priority: Priority = Priority.INGEST,
    ) -> dict[str, Any]:
        """A page with its properties."""
        path = f"pages/{normalize_id(page_id)}"
        return await self._request(
            "GET", path, priority, query=_filter_properties(filter_properties)
        )

    async def update_page(
        self,
        page_id: str,
        properties: dict[str, Any],
        *,
        priority: Priority = Priority.PUSH,
        send_by: float | None = None,
        leaving: Callable[[], None] | None = None,
    ) -> dict[str, Any]:
        """Change the named properties only; the whole page after.

        With `send_by` (a `time.monotonic()` moment) no attempt leaves after it: the call
        raises `NotionSendExpired` instead, so a write never outlives the read it relies on.
        `leaving` is called as the first attempt leaves (the limiter let it through).
        """
        path = f"pages/{normalize_id(page_id)}"
        body = {"properties": properties}
        return await self._request(
            "PATCH", path, priority, body=body, send_by=send_by, leaving=leaving
        )

    async def create_page(
        self,
        data_source_id: str,
        properties: dict[str, Any],
        *,
        priority: Priority = Priority.PUSH,
    ) -> dict[str, Any]:
        """A new page (row) in a data source."""
        parent = {"type": "data_source_id", "data_source_id": normalize_id(data_source_id)}
        body = {"parent": parent, "properties": properties}
        return await self._request("POST", "pages", priority, body=body)

    async def create_database(
        self,
        parent_page_id: str,
        title: list[dict[str, Any]],
        properties: dict[str, Any],
        *,
        priority: Priority = Priority.PUSH,
    ) -> dict[str, Any]:
        """A new database under a page (id or URL), its first data source holding `properties`."""
        parent = {"type": "page_id", "page_id": normalize_id(parent_page_id)}
        body = {"parent": parent, "title": title, "initial_data_source": {"properties": properties}}
        return await self._request("POST", "databases", priority, body=body)


def _filter_properties(ids: Sequence[str] | None) -> dict[str, Any] | None:
    """`filter_properties` as repeated query parameters, each id encoded exactly once.

    Schemas show property ids URL-encoded ("%3FB%3AW"); httpx encodes query values itself,
    so the ids are decoded first, as Notion's JS SDK does, or the server would see "%253F".
    """
    if not ids:
        return None
    return {"filter_properties": [unquote(i) for i in ids]}


def _json_object(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def _query_page(answer: dict[str, Any]) -> QueryPage:
    results = answer.get("results")
    cursor = answer.get("next_cursor")
    status = answer.get("request_status")
    request_id = answer.get("request_id")
    return QueryPage(
        results=[r for r in results if isinstance(r, dict)] if isinstance(results, list) else [],
        next_cursor=cursor if isinstance(cursor, str) else None,
        has_more=answer.get("has_more") is True,
        incomplete=isinstance(status, dict) and status.get("type") == "incomplete",
        request_id=request_id if isinstance(request_id, str) else None,
    )
