"""The one place the application asks what time it is.

Everything is stored in UTC and shown in Europe/London. Tests move time with
``time-machine``, which patches :func:`datetime.datetime.now` underneath this module.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

LONDON = ZoneInfo("Europe/London")


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


def today_london() -> date:
    """Return today's date in Europe/London."""
    return utcnow().astimezone(LONDON).date()


def as_utc(value: datetime) -> datetime:
    """Return ``value`` as aware UTC; naive values (SQLite returns them) are taken as UTC."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def to_london(value: datetime | None) -> datetime | None:
    """Convert a stored UTC datetime to Europe/London for display."""
    if value is None:
        return None
    return as_utc(value).astimezone(LONDON)
