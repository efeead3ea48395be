"""The content calendar's shape in Notion: property names, the schema check, setup and creation."""

from reelqueue.calendar.create import MAX_TITLE_LENGTH, calendar_properties, calendar_title
from reelqueue.calendar.schema import (
    CalendarSchema,
    PropertyNames,
    SchemaProblem,
    SchemaReport,
    check_schema,
    refresh_schema,
    setup_patch,
    status_instructions,
)

__all__ = [
    "MAX_TITLE_LENGTH",
    "CalendarSchema",
    "PropertyNames",
    "SchemaProblem",
    "SchemaReport",
    "calendar_properties",
    "calendar_title",
    "check_schema",
    "refresh_schema",
    "setup_patch",
    "status_instructions",
]
