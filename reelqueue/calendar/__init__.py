"""The content calendar's shape in Notion: property names, the schema check, and setup."""

from reelqueue.calendar.schema import (
    CalendarSchema,
    PropertyNames,
    SchemaProblem,
    SchemaReport,
    check_schema,
    setup_patch,
)

__all__ = [
    "CalendarSchema",
    "PropertyNames",
    "SchemaProblem",
    "SchemaReport",
    "check_schema",
    "setup_patch",
]
