"""One deployment per calendar: a marker in each Notion database's description, kept alive.

A deployment (one PostgreSQL database, any number of `reelqueue run` processes on it) writes
a line `[reelqueue deployment ID on HOST, channels a,b, alive TIME]` into the description of
every Notion database it drives (read by GET, written by PATCH /v1/databases/{id}: a data
source's description is read-only through the API), and its leader rewrites it every
`HEARTBEAT_S`. At start-up a deployment that finds another's line, alive within
`STALE_AFTER_S`, refuses to start: always when their channels overlap (both would take the
same pages and run the same video twice), and otherwise unless
REELQUEUE_ALLOW_OTHER_DEPLOYMENTS is set. Notion has no conditional write, so after writing
its line a starting deployment waits `settle_s` and reads the description again: of two
deployments starting at once, the one whose line was overwritten sees the other's and
refuses. The person's own description text is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import socket
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote, unquote

import structlog
from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncEngine

from reelqueue.config import Channels
from reelqueue.db.models import SERVICE_STATE
from reelqueue.errors import UserError
from reelqueue.notion import NotionAPIError, NotionClient, explain, normalize_id

__all__ = [
    "DEPLOYMENT_KEY",
    "HEARTBEAT_S",
    "STALE_AFTER_S",
    "DeploymentClaim",
    "DeploymentConflict",
    "DeploymentMarker",
    "claim_deployment",
    "deployment_id",
]

log = structlog.get_logger(__name__)

DEPLOYMENT_KEY = "deployment_id"
HEARTBEAT_S = 120.0
STALE_AFTER_S = 420.0
# A stop never waits longer than this for Notion to take the line away (it expires anyway).
RELEASE_WITHIN_S = 3.0
_MARKER = re.compile(
    r"\[reelqueue deployment (?P<id>[0-9a-f]{12}) on (?P<host>[A-Za-z0-9.-]{1,64}), "
    r"channels (?P<channels>[^\s,\]]*(?:,[^\s,\]]+)*), "
    r"alive (?P<at>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)\]"
)


class DeploymentConflict(UserError):
    """Another live deployment drives the same calendar."""


@dataclass(frozen=True)
class DeploymentMarker:
    """One deployment's line in a Notion database's description."""

    deployment_id: str
    host: str
    channels: frozenset[str]
    alive_at: datetime

    def text(self) -> str:
        """The line as written into the description."""
        at = self.alive_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        channels = ",".join(quote(c, safe="") for c in sorted(self.channels))
        return (
            f"[reelqueue deployment {self.deployment_id} on {self.host}, "
            f"channels {channels}, alive {at}]"
        )

    def is_alive(self, now: datetime) -> bool:
        """Whether its heartbeat is recent enough to count (a clock ahead of ours counts)."""
        return now - self.alive_at < timedelta(seconds=STALE_AFTER_S)

    def describe(self, now: datetime) -> str:
        """How the refusal names it."""
        ago = max(0, int((now - self.alive_at).total_seconds()))
        return (
            f"deployment {self.deployment_id} on {self.host} (channels "
            f"{', '.join(sorted(self.channels)) or 'none'}, alive {ago} s ago)"
        )


def parse_markers(text: str) -> list[DeploymentMarker]:
    """Every deployment line in a description's text; anything else is left alone."""
    found = []
    for match in _MARKER.finditer(text):
        at = datetime.strptime(match["at"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        channels = frozenset(unquote(c) for c in match["channels"].split(",") if c)
        found.append(DeploymentMarker(match["id"], match["host"], channels, at))
    return found


def _host() -> str:
    """This machine's name as a marker can carry it."""
    name = re.sub(r"[^A-Za-z0-9.-]", "-", socket.gethostname())[:64]
    return name or "unknown-host"


async def deployment_id(engine: AsyncEngine) -> str:
    """This deployment's id: made once and kept in its database, shared by its processes."""
    proposed = uuid.uuid4().hex[:12]
    async with engine.begin() as conn:
        await conn.execute(
            pg_insert(SERVICE_STATE)
            .values(key=DEPLOYMENT_KEY, value=proposed)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        kept = await conn.scalar(
            select(SERVICE_STATE.c.value).where(SERVICE_STATE.c.key == DEPLOYMENT_KEY)
        )
    return str(kept)


def _plain(element: dict[str, Any]) -> str:
    text = element.get("text")
    if isinstance(text, dict) and isinstance(text.get("content"), str):
        return str(text["content"])
    return str(element.get("plain_text", ""))


def _request_element(element: dict[str, Any]) -> dict[str, Any]:
    """A rich-text element of a response as a request may send it back."""
    kind = element.get("type", "text")
    kept: dict[str, Any] = {"type": kind, kind: element.get(kind)}
    if isinstance(element.get("annotations"), dict):
        kept["annotations"] = element["annotations"]
    return kept


def _text_element(content: str) -> dict[str, Any]:
    return {"type": "text", "text": {"content": content}}


class DeploymentClaim:
    """Our lines in the Notion databases: checked at start, kept alive, removed at a clean stop."""

    def __init__(
        self,
        notion: NotionClient,
        database_ids: Iterable[str],
        marker: DeploymentMarker,
        *,
        allow_others: bool,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._notion = notion
        self.database_ids = [normalize_id(d) for d in database_ids]
        self.marker = marker
        self._allow_others = allow_others
        self._clock = clock
        self.foreign_channels: frozenset[str] = frozenset()
        """Channels of the other live deployments last seen (allowed, so none of ours)."""
        self._seen: set[str] = set()
        self._beat_at: float | None = None
        self.heartbeat_s = HEARTBEAT_S

    @property
    def deployment_id(self) -> str:
        """The id this deployment's lines carry."""
        return self.marker.deployment_id

    async def _read(self, database_id: str) -> list[dict[str, Any]]:
        try:
            found = await self._notion.retrieve_database(database_id)
        except NotionAPIError as exc:
            raise UserError(f"database {database_id}: {explain(exc)}") from None
        description = found.get("description")
        return (
            [e for e in description if isinstance(e, dict)] if isinstance(description, list) else []
        )

    async def _write(self, database_id: str, elements: list[dict[str, Any]]) -> None:
        try:
            await self._notion.update_database_description(database_id, elements)
        except NotionAPIError as exc:
            raise UserError(
                f"database {database_id}: cannot write this deployment's line into its "
                f"description (the integration needs the update content capability): "
                f"{explain(exc)}"
            ) from None

    def _others(self, elements: list[dict[str, Any]], now: datetime) -> list[DeploymentMarker]:
        text = "".join(_plain(e) for e in elements)
        others = [
            m
            for m in parse_markers(text)
            if m.deployment_id != self.deployment_id and m.is_alive(now)
        ]
        self._seen |= {c for m in others for c in m.channels}
        return others

    def _refusal(self, database_id: str, others: list[DeploymentMarker]) -> str | None:
        """Why this deployment must not drive the database beside `others`, if it must not."""
        now = self._clock()
        ours = self.marker.channels
        for other in others:
            shared = ours & other.channels
            if shared:
                return (
                    f"database {database_id} is driven by another reelqueue "
                    f"{other.describe(now)}, and both would take channel "
                    f"{', '.join(sorted(shared))}, running the same videos twice: stop it, or "
                    "give each deployment channels of its own; if it is gone for good, delete "
                    "its line from the database's description in Notion (or wait "
                    f"{int(STALE_AFTER_S // 60)} minutes after its last heartbeat)"
                )
        if others and not self._allow_others:
            return (
                f"database {database_id} is driven by another reelqueue "
                f"{others[0].describe(now)}: stop it, or, since your channels do not overlap, "
                "set REELQUEUE_ALLOW_OTHER_DEPLOYMENTS=true to run both; if it is gone for "
                "good, delete its line from the database's description in Notion"
            )
        return None

    def _merged(self, elements: list[dict[str, Any]], now: datetime) -> list[dict[str, Any]]:
        """The description with our line fresh, others' live lines kept, stale ones dropped."""
        kept: list[dict[str, Any]] = []
        lines: list[str] = []
        for element in elements:
            content = _plain(element)
            markers = parse_markers(content)
            if not markers:
                kept.append(_request_element(element))
                continue
            rest = _MARKER.sub("", content).strip("\n")
            if rest:
                kept.append(_text_element(rest))
            lines += [
                m.text()
                for m in markers
                if m.deployment_id != self.deployment_id and m.is_alive(now)
            ]
        fresh = DeploymentMarker(
            self.marker.deployment_id, self.marker.host, self.marker.channels, now
        )
        lines.append(fresh.text())
        separator = "\n" if kept else ""
        return [*kept, _text_element(separator + "\n".join(lines))]

    async def _refuse_others(self, *, mark: bool) -> None:
        """Read every database's lines; refuse on another live deployment, else `mark` ours."""
        self._seen = set()
        for database_id in self.database_ids:
            elements = await self._read(database_id)
            refusal = self._refusal(database_id, self._others(elements, self._clock()))
            if refusal is not None:
                raise DeploymentConflict(refusal)
            if mark:
                await self._write(database_id, self._merged(elements, self._clock()))

    async def check(self, *, settle_s: float) -> None:
        """Refuse to start beside an overlapping (or, unless allowed, any) live deployment."""
        await self._refuse_others(mark=True)
        if settle_s > 0:
            await asyncio.sleep(settle_s)
        await self._refuse_others(mark=False)
        self.foreign_channels = frozenset(self._seen)
        self._beat_at = asyncio.get_running_loop().time()
        log.info(
            "deployment marked in its Notion databases",
            deployment_id=self.deployment_id,
            databases=len(self.database_ids),
        )

    async def heartbeat(self) -> None:
        """Rewrite this deployment's line as alive now; log loudly if a conflict appeared."""
        self._seen = set()
        for database_id in self.database_ids:
            elements = await self._read(database_id)
            refusal = self._refusal(database_id, self._others(elements, self._clock()))
            if refusal is not None:
                log.error("another deployment drives this calendar: " + refusal)
            await self._write(database_id, self._merged(elements, self._clock()))
        self.foreign_channels = frozenset(self._seen)

    async def release(self) -> None:
        """Remove this deployment's line (a clean stop frees the calendar at once)."""
        for database_id in self.database_ids:
            elements = await self._read(database_id)
            merged = self._merged(elements, self._clock())
            last = merged[-1]["text"]["content"]
            lines = [
                line
                for line in last.split("\n")
                if line and not line.startswith(f"[reelqueue deployment {self.deployment_id} ")
            ]
            rest = merged[:-1] + ([_text_element("\n" + "\n".join(lines))] if lines else [])
            await self._write(database_id, rest)

    async def run(self, stop: asyncio.Event, is_leader: Callable[[], bool]) -> None:
        """While not stopped, the leader keeps the line alive; at stop the leader removes it."""
        last_beat = self._beat_at  # the start-up check wrote the line just now
        loop = asyncio.get_running_loop()
        leading = False
        while not stop.is_set():
            leading = is_leader()
            if leading and (last_beat is None or loop.time() - last_beat >= self.heartbeat_s):
                try:
                    await self.heartbeat()
                    last_beat = loop.time()
                except Exception as exc:  # a heartbeat must never stop the service
                    log.warning("deployment heartbeat failed; trying again", error=repr(exc))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=min(1.0, self.heartbeat_s))
        if leading or is_leader():
            try:
                await asyncio.wait_for(self.release(), timeout=RELEASE_WITHIN_S)
            except Exception as exc:  # its line then expires by itself
                log.warning("could not remove this deployment's line", error=repr(exc))


async def claim_deployment(
    notion: NotionClient,
    engine: AsyncEngine,
    database_ids: Iterable[str],
    channels: Channels,
    *,
    allow_others: bool,
    settle_s: float = 1.0,
) -> DeploymentClaim:
    """Check that no other live deployment drives these Notion databases, and mark them ours.

    Raises `DeploymentConflict` (one line naming the other deployment and the fix) when one
    with overlapping channels does, or any does and `allow_others` is not set.
    """
    marker = DeploymentMarker(
        await deployment_id(engine),
        _host(),
        frozenset(c.id for c in channels.channels),
        datetime.now(UTC),
    )
    claim = DeploymentClaim(notion, database_ids, marker, allow_others=allow_others)
    await claim.check(settle_s=settle_s)
    return claim
