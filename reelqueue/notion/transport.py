"""The httpx transport under the SDK: rate limit every attempt, retry the transient failures.

Each attempt first passes the token's process-wide limiter (priority from the
`request_priority` context variable), then goes to the inner transport. A 429 (or a 529
with Retry-After) holds every request of the token, or of its whole workspace when the
429's `rate_limit_reason` names the workspace limit, until Retry-After has passed; the
refused request then waits at the head of its lane like the rest. 409, 5xx and 529
answers, timeouts and connection errors are retried with capped exponential backoff and
full jitter. When attempts run out the last answer is returned (or the last transport
error raised) for the SDK to turn into its error. Every attempt is counted per endpoint
template and status. The token's workspace is learned from any GET /v1/users/me answer.
A caller that sets `send_deadline` (a `time.monotonic()` moment) gets `SendDeadlinePassed`
instead of an attempt that would leave later than that, however long it waited or retried;
one that sets `on_leaving` is told when the first attempt leaves.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
import structlog

from reelqueue.notion.limiter import NotionLimiter, Priority, Sleep

log = structlog.get_logger(__name__)

RETRYABLE_STATUSES = frozenset({409, 429, 500, 502, 503, 504, 529})
BASE_DELAY_S = 0.5
MAX_DELAY_S = 20.0
DEFAULT_MAX_ATTEMPTS = 8
RETRY_AFTER_FLOOR_S = 0.1
RETRY_AFTER_CAP_S = 300.0

request_priority: ContextVar[Priority] = ContextVar("notion_request_priority")
send_deadline: ContextVar[float | None] = ContextVar("notion_send_deadline", default=None)
# Called once, as the request's first attempt leaves (the limiter has let it through).
on_leaving: ContextVar[Callable[[], None] | None] = ContextVar("notion_on_leaving", default=None)


class SendDeadlinePassed(httpx.TransportError):
    """The request was not sent: `send_deadline` passed before an attempt could leave."""


def _check_deadline(request: httpx.Request) -> None:
    deadline = send_deadline.get()
    if deadline is not None and time.monotonic() > deadline:
        raise SendDeadlinePassed("not sent: its send-by time has passed", request=request)


_ID_SEGMENT = re.compile(
    r"[0-9a-f]{32}|[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.I
)
_NOT_RETRIED_ERRORS = (httpx.UnsupportedProtocol, httpx.LocalProtocolError)
_USERS_ME = "GET /v1/users/me"


def endpoint_template(method: str, path: str) -> str:
    """ "POST /v1/data_sources/{id}/query" for a request to a concrete data source."""
    segments = ["{id}" if _ID_SEGMENT.fullmatch(s) else s for s in path.split("/")]
    return f"{method.upper()} {'/'.join(segments)}"


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP date); None if unusable."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
        return max(0.0, seconds)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def backoff_delay(
    attempt: int,
    *,
    base: float = BASE_DELAY_S,
    cap: float = MAX_DELAY_S,
    rand: Callable[[], float] = random.random,
) -> float:
    """Full-jitter backoff after failed attempt `attempt` (1-based): U(0, min(cap, base·2ⁿ⁻¹))."""
    return rand() * min(cap, base * 2.0 ** (attempt - 1))


def retry_delay(
    attempt: int,
    retry_after: float | None,
    *,
    base: float = BASE_DELAY_S,
    cap: float = MAX_DELAY_S,
    rand: Callable[[], float] = random.random,
) -> float:
    """How long to wait before the next attempt: Retry-After when given, else backoff."""
    if retry_after is not None:
        return min(max(retry_after, RETRY_AFTER_FLOOR_S), RETRY_AFTER_CAP_S)
    return backoff_delay(attempt, base=base, cap=cap, rand=rand)


class RequestStats(Mapping[str, Any]):
    """What one client sent: attempts per endpoint template and status, 429s, retries.

    Reads like `{"requests": {"GET /v1/pages/{id}": {"200": 3}}, "rate_limited": 0,
    "retries": 0, "retry_wait_s": 0.0, "gave_up": 0}`; transport failures count under the
    statuses "timeout" and "connection_error".
    """

    def __init__(self) -> None:
        self.requests: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.rate_limited = 0
        self.retries = 0
        self.retry_wait_s = 0.0
        self.gave_up = 0

    def record(self, endpoint: str, status: int | str) -> None:
        """Count one attempt and how it ended."""
        self.requests[endpoint][str(status)] += 1
        if status == 429:
            self.rate_limited += 1

    @property
    def total(self) -> int:
        """Attempts sent, all endpoints and outcomes."""
        return sum(sum(c.values()) for c in self.requests.values())

    def as_dict(self) -> dict[str, Any]:
        """A plain, JSON-ready copy."""
        return {
            "requests": {e: dict(c) for e, c in sorted(self.requests.items())},
            "rate_limited": self.rate_limited,
            "retries": self.retries,
            "retry_wait_s": round(self.retry_wait_s, 3),
            "gave_up": self.gave_up,
        }

    def __getitem__(self, key: str) -> Any:
        return self.as_dict()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.as_dict())

    def __len__(self) -> int:
        return len(self.as_dict())


def _json_body(response: httpx.Response) -> dict[str, Any]:
    try:
        body = json.loads(response.content)
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def error_fields(response: httpx.Response) -> dict[str, Any]:
    """Notion's code, request id and `rate_limit_reason` from an error body, when present."""
    body = _json_body(response)
    fields = {k: body[k] for k in ("code", "request_id") if isinstance(body.get(k), str)}
    extra = body.get("additional_data")
    if isinstance(extra, dict) and isinstance(extra.get("rate_limit_reason"), str):
        fields["rate_limit_reason"] = extra["rate_limit_reason"]
    return fields


def bot_workspace_id(response: httpx.Response) -> str | None:
    """The workspace id in a GET /v1/users/me answer (`bot.workspace_id`), if it has one."""
    bot = _json_body(response).get("bot")
    workspace = bot.get("workspace_id") if isinstance(bot, dict) else None
    return workspace if isinstance(workspace, str) and workspace else None


class RetryingTransport(httpx.AsyncBaseTransport):
    """Rate-limits and retries every request it is given; see the module docstring."""

    def __init__(
        self,
        limiter: NotionLimiter,
        *,
        inner: httpx.AsyncBaseTransport | None = None,
        max_attempts: int = DEFAULT_MAX_ATTEMPTS,
        base_delay_s: float = BASE_DELAY_S,
        max_delay_s: float = MAX_DELAY_S,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
    ) -> None:
        if max_attempts < 1:
            raise ValueError(f"max_attempts must be at least 1 (got {max_attempts})")
        self.limiter = limiter
        self.stats = RequestStats()
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport()
        self._max_attempts = max_attempts
        self._base = base_delay_s
        self._cap = max_delay_s
        self._sleep = sleep
        self._rand = rand

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send `request`, retrying transient failures; the last answer when all fail."""
        endpoint = endpoint_template(request.method, request.url.path)
        priority = request_priority.get(Priority.INGEST)
        attempt = 0
        retrying = False
        while True:
            attempt += 1
            _check_deadline(request)
            sent_at = await self.limiter.acquire(priority, first=retrying)
            retrying = True
            try:
                _check_deadline(request)
            except SendDeadlinePassed:
                self.limiter.answered(sent_at, None)
                raise
            if attempt == 1 and (leaving := on_leaving.get()) is not None:
                leaving()
            try:
                response = await self._inner.handle_async_request(request)
            except _NOT_RETRIED_ERRORS:
                self.limiter.answered(sent_at, None)
                self.stats.record(endpoint, "connection_error")
                raise
            except httpx.TransportError as error:
                self.limiter.answered(sent_at, None)
                timed_out = isinstance(error, httpx.TimeoutException)
                kind = "timeout" if timed_out else "connection_error"
                self.stats.record(endpoint, kind)
                if attempt >= self._max_attempts:
                    self._give_up(endpoint, attempt, kind)
                    raise
                fields: dict[str, Any] = {"error": type(error).__name__}
                await self._wait(endpoint, attempt, kind, None, fields)
                continue
            status = response.status_code
            self.stats.record(endpoint, status)
            self.limiter.answered(sent_at, status)
            if status == 200 and endpoint == _USERS_ME:
                await response.aread()
                workspace_id = bot_workspace_id(response)
                if workspace_id is not None:
                    self.limiter.join_workspace(workspace_id)
            if status not in RETRYABLE_STATUSES:
                return response
            await response.aread()
            retry_after = parse_retry_after(response.headers.get("retry-after"))
            fields = error_fields(response)
            held = status == 429 or (status == 529 and retry_after is not None)
            hold_s = 0.0
            if held:
                hold_s = self._hold(endpoint, attempt, status, retry_after, fields, sent_at)
            if attempt >= self._max_attempts:
                self._give_up(endpoint, attempt, status)
                return response
            await response.aclose()
            if held:
                self.stats.retries += 1
                self.stats.retry_wait_s += hold_s
            else:
                await self._wait(endpoint, attempt, status, retry_after, fields)

    def _hold(
        self,
        endpoint: str,
        attempt: int,
        status: int,
        retry_after: float | None,
        fields: dict[str, Any],
        sent_at: float,
    ) -> float:
        """Hold every request of the token (or workspace) until Retry-After has passed."""
        delay = retry_delay(attempt, retry_after, base=self._base, cap=self._cap, rand=self._rand)
        reason = fields.get("rate_limit_reason")
        if status == 429:
            scope = self.limiter.rate_limited(delay, reason=reason, sent_at=sent_at)
        else:
            scope = "connection"
            self.limiter.hold(delay, reason=fields.get("code"))
        log.info(
            "notion asked to wait; holding requests",
            endpoint=endpoint,
            outcome=status,
            attempt=attempt,
            scope=scope,
            hold_s=round(delay, 3),
            retry_after_s=retry_after,
            **fields,
        )
        return delay

    async def _wait(
        self,
        endpoint: str,
        attempt: int,
        outcome: int | str,
        retry_after: float | None,
        fields: dict[str, Any],
    ) -> None:
        delay = retry_delay(attempt, retry_after, base=self._base, cap=self._cap, rand=self._rand)
        self.stats.retries += 1
        self.stats.retry_wait_s += delay
        log.info(
            "notion request retried",
            endpoint=endpoint,
            outcome=outcome,
            attempt=attempt,
            delay_s=round(delay, 3),
            retry_after_s=retry_after,
            **fields,
        )
        await self._sleep(delay)

    def _give_up(self, endpoint: str, attempts: int, outcome: int | str) -> None:
        self.stats.gave_up += 1
        log.warning(
            "notion request failed after retries",
            endpoint=endpoint,
            outcome=outcome,
            attempts=attempts,
        )

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self._inner.aclose()
