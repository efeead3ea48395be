"""Time as Notion shows it: page timestamps floored to the minute, dates parsed leniently."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)


def floor_minute(moment: datetime) -> datetime:
    """`moment` with seconds and microseconds dropped, as Notion stores page timestamps."""
    return moment.replace(second=0, microsecond=0)


def format_page_time(moment: datetime) -> str:
    """A page timestamp as Notion renders it: `2026-06-27T17:01:00.000Z`."""
    return floor_minute(moment.astimezone(UTC)).strftime("%Y-%m-%dT%H:%M:00.000Z")


def format_precise(moment: datetime) -> str:
    """A millisecond timestamp, as in webhook events: `2026-06-27T17:01:23.456Z`."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_date_or_datetime(text: object) -> tuple[datetime, bool] | None:
    """Parse an ISO 8601 date or datetime into (UTC moment, is_date_only); None if invalid.

    A date alone stands for its midnight in UTC; a datetime without an offset is UTC.
    """
    if not isinstance(text, str) or not text:
        return None
    if len(text) == 10:
        try:
            day = date.fromisoformat(text)
        except ValueError:
            return None
        return datetime(day.year, day.month, day.day, tzinfo=UTC), True
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC), False


def normalize_date_text(text: object) -> str | None:
    """A date property's start/end as Notion echoes it back, or None if it is not ISO 8601.

    Dates stay `YYYY-MM-DD`; datetimes gain milliseconds and an explicit offset.
    """
    if not isinstance(text, str) or not text:
        return None
    if len(text) == 10:
        return text if parse_date_or_datetime(text) else None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat(timespec="milliseconds")


ONE_DAY = timedelta(days=1)
