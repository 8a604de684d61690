"""Working days, bank holidays and deadline times (pure Python: no Flask, no SQLAlchemy).

The rules (DOMAIN.md, decision 8)
=================================

    "Working-day deadlines fall due at 17:00 Europe/London on the Nth working day after the
    day of the decision (that day not counted); England and Wales bank holidays; reminders
    go out at 08:00 on working days. Framework files may change these."

As implemented here:

* A **working day** is Monday to Friday and not a bank holiday in *any* of the calendar's
  regions (default England and Wales). Bank holidays come from the ``holidays`` library
  (``holidays.country_holidays("GB", subdiv="ENG" | "WLS" | "SCT" | "NIR")``), which already
  includes the "substitute day" (observed) holidays such as Monday 28 December 2026 for Boxing
  Day falling on a Saturday.
* The **day of the decision** is the *local* date (``Europe/London`` by default) of the
  decision's moment; 23:30 UTC on a summer evening is already the next day in London.
* A deadline of **N working days** falls due at ``due_time`` (17:00) local on the Nth working
  day after that day, the day itself not counted: a decision on Thursday 17 December 2026 with
  10 working days falls due at 17:00 on Tuesday 5 January 2027. A decision taken on a
  weekend or a bank holiday counts from that day just the same (its next working day is day 1).
* A deadline in **calendar days, weeks, months or years** (e.g. the "2 months" review period,
  DOMAIN.md decision 9) falls on the same local date plus the period (a month added to
  31 January is 28/29 February), moved forward to the next working day, at ``due_time``.
* **Reminders** go out at ``reminder_time`` (08:00) local on working days.
* Local times are converted with :mod:`zoneinfo`, so 17:00 is 16:00 UTC while British Summer
  Time is in force and 17:00 UTC in winter (GMT).

Framework files may change the regions, time zone and times in their ``calendar:`` mapping
(``{holidays: [england, wales], timezone: Europe/London, due_time: "17:00",
reminder_time: "08:00"}``); :meth:`WorkingCalendar.from_framework` reads it.

Every datetime this module returns is timezone-aware UTC; naive datetimes passed in are
refused with :class:`ValueError` (a naive moment has no defined local date).
"""

from __future__ import annotations

import calendar as _calendar
import functools
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import holidays as _holidays

from state_machines import Duration, parse_duration

__all__ = ["HOLIDAY_REGIONS", "WorkingCalendar"]

#: Region names used in framework files -> ``holidays`` subdivision codes for "GB".
HOLIDAY_REGIONS: Mapping[str, str] = MappingProxyType(
    {
        "england": "ENG",
        "wales": "WLS",
        "scotland": "SCT",
        "northern_ireland": "NIR",
    }
)

_CALENDAR_KEYS = ("holidays", "timezone", "due_time", "reminder_time")
_TIME_RE = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$")


@functools.lru_cache(maxsize=256)
def _region_holidays(code: str, year: int) -> Mapping[date, str]:
    """Bank holidays of one GB subdivision in one year (cached)."""
    found = _holidays.country_holidays("GB", subdiv=code, years=year)
    return MappingProxyType({day: str(name) for day, name in found.items() if day.year == year})


@functools.lru_cache(maxsize=256)
def _merged_holidays(regions: tuple[str, ...], year: int) -> Mapping[date, str]:
    """Bank holidays in any of ``regions`` in ``year``; the first region's name wins."""
    merged: dict[date, str] = {}
    for region in regions:
        for day, name in _region_holidays(HOLIDAY_REGIONS[region], year).items():
            merged.setdefault(day, name)
    return MappingProxyType(merged)


def _plain_date(value: Any, what: str = "day") -> date:
    # ``datetime`` is a subclass of ``date``; a datetime here is almost always a bug
    # (its local date depends on the time zone), so it is refused.
    if isinstance(value, datetime) or not isinstance(value, date):
        raise TypeError(f"{what} must be a date, not {type(value).__name__}")
    return value


def _aware(moment: Any, what: str = "moment") -> datetime:
    if not isinstance(moment, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(moment).__name__}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (got naive {moment.isoformat()})")
    return moment


def _region_name(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"bank-holiday region must be text, not {value!r}")
    name = value.strip().lower().replace(" ", "_").replace("-", "_")
    if name not in HOLIDAY_REGIONS:
        raise ValueError(
            f"unknown bank-holiday region {value!r} (known: {', '.join(HOLIDAY_REGIONS)})"
        )
    return name


def _parse_time(value: Any, key: str) -> time:
    if isinstance(value, time):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        # Unquoted 17:00 is read by YAML 1.1 as the base-60 number 1020.
        raise ValueError(f'calendar {key}: write the time in quotes, e.g. "17:00" (24-hour)')
    match = _TIME_RE.match(value.strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f'calendar {key}: must be a time like "17:00" (24-hour), not {value!r}')
    return time(int(match.group(1)), int(match.group(2)))


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + (day.month - 1) + months
    year, month = divmod(index, 12)
    month += 1
    last = _calendar.monthrange(year, month)[1]
    return date(year, month, min(day.day, last))


@dataclass(frozen=True)
class WorkingCalendar:
    """Working days and deadline times for one framework (DOMAIN.md, decision 8).

    :param holiday_regions: bank-holiday regions, any of ``england``, ``wales``, ``scotland``,
        ``northern_ireland``; a day that is a bank holiday in any of them is not a working day.
    :param timezone: IANA time zone of the local dates and times.
    :param due_time: local time of day at which deadlines fall due.
    :param reminder_time: local time of day at which reminders go out.
    """

    holiday_regions: tuple[str, ...] = ("england", "wales")
    timezone: str = "Europe/London"
    due_time: time = time(17, 0)
    reminder_time: time = time(8, 0)

    def __post_init__(self) -> None:
        regions = self.holiday_regions
        if isinstance(regions, str):
            regions = (regions,)
        if not isinstance(regions, list | tuple) or not regions:
            raise ValueError(
                "calendar holidays: list at least one bank-holiday region "
                f"(known: {', '.join(HOLIDAY_REGIONS)})"
            )
        names = tuple(dict.fromkeys(_region_name(r) for r in regions))
        object.__setattr__(self, "holiday_regions", names)

        if not isinstance(self.timezone, str) or not self.timezone.strip():
            raise ValueError(f"calendar timezone: must be a time-zone name, not {self.timezone!r}")
        try:
            ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(
                f"calendar timezone: unknown time zone {self.timezone!r} "
                '(use an IANA name such as "Europe/London")'
            ) from exc

        for key in ("due_time", "reminder_time"):
            value = _parse_time(getattr(self, key), key)
            if value.tzinfo is not None:
                raise ValueError(f"calendar {key}: give a local wall-clock time without a zone")
            object.__setattr__(self, key, value)

    # -- construction -------------------------------------------------------------------

    @classmethod
    def from_framework(cls, calendar: Mapping[str, Any] | None) -> WorkingCalendar:
        """Build from a framework's ``calendar`` mapping; missing keys take the defaults.

        :raises ValueError: on an unknown key, region or time zone, or a badly written time.
        """
        if calendar is None:
            return cls()
        if not isinstance(calendar, Mapping):
            raise ValueError(f"calendar must be a mapping, not {type(calendar).__name__}")
        unknown = sorted(str(k) for k in calendar if k not in _CALENDAR_KEYS)
        if unknown:
            known = ", ".join(_CALENDAR_KEYS)
            raise ValueError(f"calendar: unknown key(s) {', '.join(unknown)} (known: {known})")
        kwargs: dict[str, Any] = {}
        if "holidays" in calendar:
            kwargs["holiday_regions"] = calendar["holidays"]
        if "timezone" in calendar:
            kwargs["timezone"] = calendar["timezone"]
        for key in ("due_time", "reminder_time"):
            if key in calendar:
                kwargs[key] = _parse_time(calendar[key], key)
        return cls(**kwargs)

    @property
    def zone(self) -> ZoneInfo:
        """The :class:`zoneinfo.ZoneInfo` of :attr:`timezone`."""
        return ZoneInfo(self.timezone)

    # -- days ---------------------------------------------------------------------------

    def _holidays(self, year: int) -> Mapping[date, str]:
        return _merged_holidays(self.holiday_regions, year)

    def holiday_name(self, day: date) -> str | None:
        """The bank holiday's name on ``day`` in any region, or ``None``.

        The name is the library's, e.g. "Christmas Day", "Boxing Day (observed)", "May Day".
        """
        day = _plain_date(day)
        return self._holidays(day.year).get(day)

    def is_working_day(self, day: date) -> bool:
        """Monday to Friday and not a bank holiday in any of the regions."""
        day = _plain_date(day)
        return day.weekday() < 5 and day not in self._holidays(day.year)

    def next_working_day(self, day: date, include_today: bool = False) -> date:
        """The first working day after ``day`` (or ``day`` itself if ``include_today`` and it
        is a working day)."""
        day = _plain_date(day)
        if include_today and self.is_working_day(day):
            return day
        day += timedelta(days=1)
        while not self.is_working_day(day):
            day += timedelta(days=1)
        return day

    def previous_working_day(self, day: date) -> date:
        """The last working day before ``day``."""
        day = _plain_date(day) - timedelta(days=1)
        while not self.is_working_day(day):
            day -= timedelta(days=1)
        return day

    def add_working_days(self, start: date, n: int) -> date:
        """The Nth working day after ``start`` (``start`` not counted).

        ``n == 0`` gives ``start`` if it is a working day, else the next working day;
        a negative ``n`` gives the Nth working day *before* ``start``.
        """
        start = _plain_date(start, "start")
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(f"n must be a whole number, not {n!r}")
        if n == 0:
            return self.next_working_day(start, include_today=True)
        day = start
        if n > 0:
            for _ in range(n):
                day = self.next_working_day(day)
        else:
            for _ in range(-n):
                day = self.previous_working_day(day)
        return day

    def working_days_between(self, start: date, end: date) -> int:
        """The number of working days in ``(start, end]``; 0 if ``end <= start``."""
        start = _plain_date(start, "start")
        end = _plain_date(end, "end")
        if end <= start:
            return 0
        span = (end - start).days
        weeks, rest = divmod(span, 7)
        weekdays = weeks * 5
        for offset in range(1, rest + 1):
            if (start + timedelta(days=offset)).weekday() < 5:
                weekdays += 1
        closed = 0
        for year in range(start.year, end.year + 1):
            closed += sum(
                1 for day in self._holidays(year) if start < day <= end and day.weekday() < 5
            )
        return weekdays - closed

    def month_end_plus_working_days(self, year: int, month: int, n: int) -> date:
        """The Nth working day after the last day of ``month`` (e.g. the 10th working day
        after month end, when the monthly data returns are due)."""
        if not 1 <= month <= 12:
            raise ValueError(f"month must be 1-12, not {month!r}")
        last = date(year, month, _calendar.monthrange(year, month)[1])
        return self.add_working_days(last, n)

    # -- moments ------------------------------------------------------------------------

    def local_date(self, moment: datetime) -> date:
        """The local date (in :attr:`timezone`) of an aware datetime."""
        return _aware(moment).astimezone(self.zone).date()

    def at_local_time(self, day: date, at: time) -> datetime:
        """``at`` o'clock local time on ``day``, as an aware UTC datetime.

        Handles BST/GMT: 17:00 on a summer day is 16:00 UTC. A wall time that does not exist
        (01:30 on the spring-forward Sunday) or occurs twice (01:30 on the autumn Sunday) is
        resolved as :mod:`zoneinfo` does with ``fold=0`` (the offset in force before the change).
        """
        day = _plain_date(day)
        if not isinstance(at, time):
            raise TypeError(f"at must be a time, not {type(at).__name__}")
        if at.tzinfo is not None:
            raise ValueError("at must be a local wall-clock time without a zone")
        return datetime.combine(day, at, tzinfo=self.zone).astimezone(UTC)

    def due_at(self, decided_at: datetime, working_days: int) -> datetime:
        """DOMAIN.md decision 8: :attr:`due_time` local on the Nth working day after the local
        date of ``decided_at`` (that day not counted), as aware UTC."""
        if isinstance(working_days, bool) or not isinstance(working_days, int):
            raise TypeError(f"working_days must be a whole number, not {working_days!r}")
        if working_days < 0:
            raise ValueError(f"working_days must not be negative, not {working_days}")
        decided = self.local_date(_aware(decided_at, "decided_at"))
        return self.at_local_time(self.add_working_days(decided, working_days), self.due_time)

    def due_after(self, decided_at: datetime, duration: Duration | str) -> datetime:
        """When a span such as ``"10 working days"`` or ``"1 month"`` from ``decided_at`` ends.

        Working days: :meth:`due_at`. Calendar days, weeks, months and years: the local date of
        ``decided_at`` plus the period (month ends clamped: 31 January + 1 month is 28/29
        February), moved forward to the next working day if needed, at :attr:`due_time`.

        :param duration: a :class:`state_machines.Duration` or text that
            :func:`state_machines.parse_duration` reads.
        """
        if isinstance(duration, str):
            duration = parse_duration(duration)
        elif not isinstance(duration, Duration):
            raise TypeError(f"duration must be a Duration or text, not {duration!r}")
        amount, unit = duration.amount, duration.unit
        if amount < 0:
            raise ValueError(f"duration must not be negative, not {duration}")
        if unit == "working_days":
            return self.due_at(decided_at, amount)
        decided = self.local_date(_aware(decided_at, "decided_at"))
        if unit == "days":
            day = decided + timedelta(days=amount)
        elif unit == "weeks":
            day = decided + timedelta(weeks=amount)
        elif unit == "months":
            day = _add_months(decided, amount)
        elif unit == "years":
            day = _add_months(decided, 12 * amount)
        else:
            raise ValueError(f"unknown duration unit {unit!r}")
        return self.at_local_time(self.next_working_day(day, include_today=True), self.due_time)

    def reminder_at(self, day: date) -> datetime:
        """:attr:`reminder_time` local on ``day`` as aware UTC (on the next working day if
        ``day`` is not one)."""
        return self.at_local_time(
            self.next_working_day(day, include_today=True), self.reminder_time
        )
