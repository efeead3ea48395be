"""The calendars' schemas while the service runs: read again after a change, problems kept.

A `data_source.schema_updated` event marks its data source stale, and every full
reconcile reads each schema again. Renamed properties are followed by their ids, so
reads and writes keep working under the new names. A required property that was
removed or changed type is a schema problem: /healthz shows it with the fix, the
reads that need it and the push-back of that field wait, and nothing is marked
invalid for lack of it.
"""

from __future__ import annotations

from collections.abc import MutableMapping, Sequence

import structlog

from reelqueue.calendar import CalendarSchema, refresh_schema
from reelqueue.ingest.snapshot import PageSnapshot
from reelqueue.notion import InvalidNotionId, NotionClient, Priority, normalize_id
from reelqueue.statuses import StatusTable

__all__ = ["SchemaWatch", "admissible"]

log = structlog.get_logger(__name__)

# Fields a Queued entry is validated on: without them it would be marked invalid.
_VALIDATED = ("channel", "topic")


def admissible(
    snapshots: Sequence[PageSnapshot], schema: CalendarSchema, table: StatusTable
) -> list[PageSnapshot]:
    """The page reads ingest may act on while the schema lacks something.

    Without a usable Status nothing can be read right; without Channel or Topic a
    Queued entry waits (the next full reconcile after the fix takes it in) instead of
    being marked invalid.
    """
    if not schema.unusable:
        return list(snapshots)
    if schema.lacks(("status",)):
        return []
    if schema.lacks(_VALIDATED):
        return [s for s in snapshots if table.status_for_label(s.status_label) != "queued"]
    return list(snapshots)


class SchemaWatch:
    """Holds each calendar's current schema (shared with push-back) and reads it again."""

    def __init__(
        self,
        notion: NotionClient,
        schemas: MutableMapping[str, CalendarSchema],
        table: StatusTable,
        channel_ids: list[str],
    ) -> None:
        self._notion = notion
        self.schemas = schemas
        self._labels = table.labels
        self._channel_ids = channel_ids
        self._stale: set[str] = set()

    def current(self, data_source_id: str) -> CalendarSchema:
        """The schema of a data source as last read."""
        return self.schemas[data_source_id]

    def mark_stale(self, entity_id: str | None) -> None:
        """Ask for a data source's schema to be read again (all of them for an unknown id)."""
        try:
            source = normalize_id(entity_id)
        except InvalidNotionId:
            source = ""
        if source in self.schemas:
            self._stale.add(source)
        else:
            self._stale.update(self.schemas)

    def is_stale(self, data_source_id: str) -> bool:
        """Whether a schema change was announced since the schema was last read."""
        return data_source_id in self._stale

    def schema_problems(self) -> list[str]:
        """Every problem of every calendar's schema, each with its fix."""
        return [problem for schema in self.schemas.values() for problem in schema.problems]

    async def refresh(self, data_source_id: str) -> CalendarSchema:
        """Read a data source's schema again; log renames, new problems and fixed ones."""
        self._stale.discard(data_source_id)
        before = self.schemas[data_source_id]
        data_source = await self._notion.retrieve_data_source(
            data_source_id, priority=Priority.INGEST
        )
        after = refresh_schema(before, data_source, self._labels, self._channel_ids)
        for field, old in vars(before.names).items():
            new = getattr(after.names, field)
            if new != old and field not in after.unusable:
                log.info(
                    "property renamed in Notion; reelqueue follows it",
                    data_source_id=data_source_id,
                    old_name=old,
                    new_name=new,
                )
        for problem in after.problems:
            if problem not in before.problems:
                log.error("calendar schema problem", data_source_id=data_source_id, fix=problem)
        for problem in before.problems:
            if problem not in after.problems:
                log.info(
                    "calendar schema problem solved", data_source_id=data_source_id, was=problem
                )
        self.schemas[data_source_id] = after
        return after
