"""Notion as this process's own requests found it, for /healthz: failing since when, or held back.

`HealthTransport` sits under the Notion client's limiter and retries, so it sees every
attempt: a 5xx, a 401, a timeout or a refused connection starts a run of failures (dated
from the moment that attempt was sent), the next answered request ends it, and a request
that has had no answer for `stall_after_s` counts as failing from when it was sent, so a
hung Notion shows before any timeout fires. A 429 is Notion answering: it neither starts
nor ends a run; the limiter's own status says how long it holds requests back.

`role_report` says how each of the process's roles is doing (the leader lock, ingest,
push-back, the listener, the reaper, the workers): ok, failing since when and why, how
many failures so far, or idle (not run here, e.g. ingest on a standby).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx

from reelqueue.queue.supervise import LoopHealth

__all__ = [
    "DEFAULT_STALL_AFTER_S",
    "HealthTransport",
    "NotionHealth",
    "NotionView",
    "RateLimitView",
    "failing_roles",
    "iso",
    "role_report",
]

DEFAULT_STALL_AFTER_S = 15.0


def iso(moment: datetime | None) -> str | None:
    """A UTC time as ISO 8601 with a Z, or None."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class RateLimitView(Protocol):
    """The part of the Notion limiter's status that health reports."""

    @property
    def limited_until(self) -> datetime | None:
        """When the current hold after a 429 ends (None when not held)."""

    @property
    def limit(self) -> str | None:
        """Which limit set the hold ("connection" or "workspace")."""


@dataclass(frozen=True)
class NotionView:
    """What /healthz says about Notion at one moment."""

    state: str
    failing_since: datetime | None
    error: str | None
    rate_limited_until: datetime | None
    rate_limit: str | None
    last_success_at: datetime | None

    @property
    def detail(self) -> str:
        """One line for people: "failing since ...", "rate-limited until ...", or the state."""
        if self.state == "failing":
            return f"failing since {iso(self.failing_since)}: {self.error}"
        if self.state == "rate-limited":
            which = f" ({self.rate_limit} limit)" if self.rate_limit else ""
            return f"rate-limited until {iso(self.rate_limited_until)}{which}"
        if self.state == "unknown":
            return "no request sent to Notion yet"
        return f"ok (last answer {iso(self.last_success_at)})"

    def as_dict(self) -> dict[str, Any]:
        """The fields /healthz adds, JSON-ready."""
        return {
            "notion": self.state,
            "notion_detail": self.detail,
            "notion_failing_since": iso(self.failing_since),
            "notion_error": self.error,
            "notion_rate_limited_until": iso(self.rate_limited_until),
            "notion_last_success_at": iso(self.last_success_at),
        }


def _failure(status: int) -> str | None:
    """Why an answer means Notion is failing us, or None when it answered properly."""
    if status >= 500:
        return f"HTTP {status}"
    if status == 401:
        return "HTTP 401: NOTION_TOKEN was refused"
    return None


class NotionHealth:
    """Runs of failed Notion requests and the requests still waiting for an answer."""

    def __init__(
        self,
        *,
        stall_after_s: float = DEFAULT_STALL_AFTER_S,
        rate_limit_status: Callable[[], RateLimitView] | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.stall_after_s = stall_after_s
        self.rate_limit_status = rate_limit_status
        self._clock = clock
        self._ids = itertools.count()
        self._in_flight: dict[int, datetime] = {}
        self._failing_since: datetime | None = None
        self._error: str | None = None
        self._last_success: datetime | None = None

    def sent(self) -> tuple[int, datetime]:
        """Note an attempt going out; hand the result to `answered`, `failed` or `dropped`."""
        ticket = next(self._ids), self._clock()
        self._in_flight[ticket[0]] = ticket[1]
        return ticket

    def answered(self, ticket: tuple[int, datetime], status: int) -> None:
        """Note Notion's answer to an attempt."""
        self._in_flight.pop(ticket[0], None)
        failure = _failure(status)
        if failure is not None:
            self.failed(ticket, failure)
        elif status != 429:
            self._failing_since, self._error = None, None
            self._last_success = self._clock()

    def failed(self, ticket: tuple[int, datetime], error: str) -> None:
        """Note an attempt that failed (an error answer, a timeout, no connection)."""
        self._in_flight.pop(ticket[0], None)
        if self._failing_since is None:
            self._failing_since = ticket[1]
        self._error = error

    def dropped(self, ticket: tuple[int, datetime]) -> None:
        """Forget an attempt we gave up on ourselves (cancelled): it says nothing of Notion."""
        self._in_flight.pop(ticket[0], None)

    def view(self) -> NotionView:
        """Notion right now: failing, rate-limited, ok, or unknown before any request."""
        now = self._clock()
        since, error = self._failing_since, self._error
        stalled = [
            t for t in self._in_flight.values() if (now - t).total_seconds() >= self.stall_after_s
        ]
        if stalled:
            oldest = min(stalled)
            if since is None or oldest < since:
                since = oldest
            waited = (now - oldest).total_seconds()
            error = error or f"no answer for {waited:.0f} s"
        limited_until: datetime | None = None
        limit: str | None = None
        if self.rate_limit_status is not None:
            status = self.rate_limit_status()
            if status.limited_until is not None and status.limited_until > now:
                limited_until, limit = status.limited_until, status.limit
        if since is not None:
            state = "failing"
        elif limited_until is not None:
            state = "rate-limited"
        elif self._last_success is None:
            state = "unknown"
        else:
            state = "ok"
        return NotionView(state, since, error, limited_until, limit, self._last_success)


class HealthTransport(httpx.AsyncBaseTransport):
    """An httpx transport that tells `NotionHealth` how each attempt to Notion went."""

    def __init__(self, health: NotionHealth, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.health = health
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        """Send the attempt on, noting how it ended."""
        ticket = self.health.sent()
        try:
            response = await self._inner.handle_async_request(request)
        except httpx.TransportError as error:
            self.health.failed(ticket, type(error).__name__)
            raise
        except BaseException:
            self.health.dropped(ticket)
            raise
        self.health.answered(ticket, response.status_code)
        return response

    async def aclose(self) -> None:
        """Close the inner transport."""
        await self._inner.aclose()


def role_report(
    *,
    leader: LoopHealth,
    holding: bool,
    verified_at: datetime | None,
    loops: Mapping[str, LoopHealth | None],
) -> dict[str, dict[str, object]]:
    """Each role's state for /healthz; the leader's also says whether it holds the lock now
    (checked in pg_locks) and when that was last verified. A role not run here is left out."""
    roles: dict[str, dict[str, object]] = {
        "leader": {**leader.as_dict(), "holding": holding, "verified_at": iso(verified_at)}
    }
    for name, loop in loops.items():
        if loop is not None:
            roles[name] = loop.as_dict()
    return roles


def failing_roles(roles: Mapping[str, Mapping[str, object]]) -> list[str]:
    """The roles failing now: any of them makes the service degraded."""
    return sorted(name for name, role in roles.items() if role.get("state") == "failing")
