"""Working days and deadline times (workflow_app.working_days; DOMAIN.md decision 8)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta, timezone

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from state_machines import Duration, get_framework
from workflow_app.working_days import WorkingCalendar

CAL = WorkingCalendar()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# -- bank holidays and working days -------------------------------------------------------


@pytest.mark.parametrize(
    "day",
    [
        date(2026, 12, 25),  # Christmas Day, Friday
        date(2026, 12, 28),  # Boxing Day (Saturday 26th) observed on Monday
        date(2027, 1, 1),  # New Year's Day, Friday
        date(2027, 3, 26),  # Good Friday
        date(2027, 3, 29),  # Easter Monday
        date(2026, 5, 4),  # early May bank holiday
        date(2026, 5, 25),  # spring bank holiday
        date(2027, 5, 3),  # early May bank holiday
        date(2027, 5, 31),  # spring bank holiday
        date(2026, 8, 31),  # summer bank holiday
    ],
)
def test_bank_holidays_are_not_working_days(day: date) -> None:
    assert day.weekday() < 5
    assert not CAL.is_working_day(day)
    assert CAL.holiday_name(day)


def test_weekends_and_ordinary_days() -> None:
    assert not CAL.is_working_day(date(2026, 11, 7))  # Saturday
    assert not CAL.is_working_day(date(2026, 11, 8))  # Sunday
    assert CAL.is_working_day(date(2026, 11, 9))  # Monday
    assert CAL.holiday_name(date(2026, 11, 9)) is None
    assert "Christmas" in CAL.holiday_name(date(2026, 12, 25))
    assert "observed" in CAL.holiday_name(date(2026, 12, 28)).lower()


def test_a_datetime_is_not_a_day() -> None:
    with pytest.raises(TypeError):
        CAL.is_working_day(utc(2026, 11, 9, 12))


def test_scotland_and_northern_ireland_differ_from_england_and_wales() -> None:
    scotland = WorkingCalendar(holiday_regions=("scotland",))
    assert scotland.is_working_day(date(2027, 3, 29))  # no Easter Monday in Scotland
    assert not scotland.is_working_day(date(2026, 11, 30))  # St Andrew's Day, Monday
    assert CAL.is_working_day(date(2026, 11, 30))
    ni = WorkingCalendar(holiday_regions=("northern_ireland",))
    assert not ni.is_working_day(date(2027, 3, 17))  # St Patrick's Day, Wednesday
    both = WorkingCalendar(holiday_regions=("england", "scotland"))
    assert not both.is_working_day(date(2027, 3, 29))  # a holiday in either region counts
    assert not both.is_working_day(date(2026, 11, 30))


def test_next_working_day() -> None:
    assert CAL.next_working_day(date(2026, 12, 24)) == date(2026, 12, 29)
    assert CAL.next_working_day(date(2026, 12, 24), include_today=True) == date(2026, 12, 24)
    assert CAL.next_working_day(date(2026, 12, 25), include_today=True) == date(2026, 12, 29)


# -- add_working_days / working_days_between ----------------------------------------------


def test_ten_working_days_across_christmas_and_new_year() -> None:
    # Decision Thursday 17 Dec 2026 (not counted): Fri 18 (1), Mon 21 (2), Tue 22 (3),
    # Wed 23 (4), Thu 24 (5); Fri 25 Christmas, Sat 26, Sun 27, Mon 28 Boxing Day observed;
    # Tue 29 (6), Wed 30 (7), Thu 31 (8); Fri 1 Jan New Year's Day, Sat 2, Sun 3;
    # Mon 4 Jan (9), Tue 5 Jan 2027 (10).
    assert CAL.add_working_days(date(2026, 12, 17), 10) == date(2027, 1, 5)
    assert CAL.working_days_between(date(2026, 12, 17), date(2027, 1, 5)) == 10
    # ... due at 17:00 GMT (= 17:00 UTC) that day.
    assert CAL.due_at(utc(2026, 12, 17, 11, 15), 10) == utc(2027, 1, 5, 17)


def test_easter_2027() -> None:
    # Thu 25 Mar; Good Friday 26 Mar and Easter Monday 29 Mar skipped -> Tue 30 Mar.
    assert CAL.add_working_days(date(2027, 3, 25), 1) == date(2027, 3, 30)
    assert CAL.add_working_days(date(2027, 3, 30), -1) == date(2027, 3, 25)
    assert CAL.working_days_between(date(2027, 3, 25), date(2027, 3, 30)) == 1


@pytest.mark.parametrize(
    ("decided", "expected"),
    [
        (date(2026, 5, 1), date(2026, 5, 5)),  # Fri; Mon 4 May early May bank holiday
        (date(2026, 5, 22), date(2026, 5, 26)),  # Fri; Mon 25 May spring bank holiday
        (date(2027, 4, 30), date(2027, 5, 4)),  # Fri; Mon 3 May early May bank holiday
        (date(2027, 5, 28), date(2027, 6, 1)),  # Fri; Mon 31 May spring bank holiday
    ],
)
def test_may_bank_holidays(decided: date, expected: date) -> None:
    assert CAL.add_working_days(decided, 1) == expected


def test_zero_working_days() -> None:
    assert CAL.add_working_days(date(2026, 11, 9), 0) == date(2026, 11, 9)  # Monday
    assert CAL.add_working_days(date(2026, 11, 7), 0) == date(2026, 11, 9)  # Saturday


def test_negative_working_days() -> None:
    # Back from Tue 5 Jan 2027: Mon 4 (1), Thu 31 (2), Wed 30 (3), Tue 29 (4), Thu 24 (5),
    # Wed 23 (6), Tue 22 (7), Mon 21 (8), Fri 18 (9), Thu 17 Dec 2026 (10).
    assert CAL.add_working_days(date(2027, 1, 5), -10) == date(2026, 12, 17)
    assert CAL.add_working_days(date(2026, 11, 9), -1) == date(2026, 11, 6)  # Mon -> Fri
    assert CAL.add_working_days(date(2026, 11, 7), -1) == date(2026, 11, 6)  # Sat -> Fri


def test_working_days_between() -> None:
    assert CAL.working_days_between(date(2026, 11, 6), date(2026, 11, 9)) == 1  # Fri -> Mon
    assert CAL.working_days_between(date(2026, 11, 7), date(2026, 11, 8)) == 0  # Sat -> Sun
    assert CAL.working_days_between(date(2026, 11, 9), date(2026, 11, 9)) == 0
    assert CAL.working_days_between(date(2026, 11, 9), date(2026, 11, 2)) == 0
    # 2027 has 261 weekdays less 8 weekday bank holidays (25 Dec 2027 and 26 Dec 2027 fall on
    # the weekend; their substitutes are Mon 27 and Tue 28 Dec).
    assert CAL.working_days_between(date(2026, 12, 31), date(2027, 12, 31)) == 261 - 8


def test_month_end_plus_working_days() -> None:
    # 31 Oct 2026 is a Saturday: Mon 2 Nov (1) ... Fri 6 (5), Mon 9 (6) ... Fri 13 Nov (10).
    assert CAL.month_end_plus_working_days(2026, 10, 10) == date(2026, 11, 13)
    # 31 Dec 2026 (Thu) not counted; Fri 1 Jan holiday; Mon 4 (1) ... Fri 8 (5),
    # Mon 11 (6) ... Fri 15 Jan 2027 (10).
    assert CAL.month_end_plus_working_days(2026, 12, 10) == date(2027, 1, 15)
    # 30 Nov 2026 (Mon) not counted: Tue 1 - Fri 4 Dec (1-4), Mon 7 - Fri 11 (5-9),
    # Mon 14 Dec (10).
    assert CAL.month_end_plus_working_days(2026, 11, 10) == date(2026, 12, 14)
    with pytest.raises(ValueError, match="month"):
        CAL.month_end_plus_working_days(2026, 13, 10)


# -- due_at -------------------------------------------------------------------------------


def test_decision_on_a_friday_saturday_and_bank_holiday() -> None:
    # Friday 6 Nov 2026 -> Mon 9 Nov; a decision at the weekend also has Monday as day 1.
    assert CAL.due_at(utc(2026, 11, 6, 15), 1) == utc(2026, 11, 9, 17)
    assert CAL.due_at(utc(2026, 11, 7, 10), 1) == utc(2026, 11, 9, 17)
    assert CAL.due_at(utc(2026, 11, 7, 10), 5) == utc(2026, 11, 13, 17)
    # Mon 28 Dec 2026 (Boxing Day observed) -> Tue 29 Dec.
    assert CAL.due_at(utc(2026, 12, 28, 10), 1) == utc(2026, 12, 29, 17)
    # Good Friday 26 Mar 2027 (GMT) -> Tue 30 Mar (BST): 17:00 BST = 16:00 UTC.
    assert CAL.due_at(utc(2027, 3, 26, 10), 1) == utc(2027, 3, 30, 16)


def test_the_day_of_the_decision_is_the_local_date() -> None:
    # 23:30 UTC on Tue 14 July 2026 is 00:30 BST on Wed 15 July: day 1 is Thu 16 July.
    assert CAL.local_date(utc(2026, 7, 14, 23, 30)) == date(2026, 7, 15)
    assert CAL.due_at(utc(2026, 7, 14, 23, 30), 1) == utc(2026, 7, 16, 16)
    # In winter 23:30 UTC is 23:30 GMT the same day.
    assert CAL.local_date(utc(2026, 12, 14, 23, 30)) == date(2026, 12, 14)
    assert CAL.due_at(utc(2026, 12, 14, 23, 30), 1) == utc(2026, 12, 15, 17)
    # Any aware zone is accepted.
    plus_two = timezone(timedelta(hours=2))
    assert CAL.local_date(datetime(2026, 7, 15, 0, 30, tzinfo=plus_two)) == date(2026, 7, 14)


def test_due_at_across_the_october_2026_clock_change() -> None:
    # BST ends Sun 25 Oct 2026. Decision Thu 22 Oct (BST).
    assert CAL.due_at(utc(2026, 10, 22, 9), 1) == utc(2026, 10, 23, 16)  # Fri, BST
    # Fri 23 (1), Mon 26 (2), Tue 27 (3), Wed 28 (4), Thu 29 Oct (5): GMT.
    assert CAL.due_at(utc(2026, 10, 22, 9), 5) == utc(2026, 10, 29, 17)
    assert CAL.reminder_at(date(2026, 10, 23)) == utc(2026, 10, 23, 7)
    assert CAL.reminder_at(date(2026, 10, 26)) == utc(2026, 10, 26, 8)


def test_due_at_across_the_march_2027_clock_change() -> None:
    # BST starts Sun 28 Mar 2027. Decision Wed 24 Mar (GMT): Thu 25 (1); Good Friday 26 and
    # Easter Monday 29 skipped; Tue 30 (2), Wed 31 Mar (3): BST.
    assert CAL.due_at(utc(2027, 3, 24, 12), 1) == utc(2027, 3, 25, 17)
    assert CAL.due_at(utc(2027, 3, 24, 12), 3) == utc(2027, 3, 31, 16)
    assert CAL.reminder_at(date(2027, 3, 25)) == utc(2027, 3, 25, 8)
    assert CAL.reminder_at(date(2027, 3, 30)) == utc(2027, 3, 30, 7)


def test_reminder_on_a_non_working_day_moves_to_the_next_working_day() -> None:
    assert CAL.reminder_at(date(2027, 3, 26)) == utc(2027, 3, 30, 7)  # Good Friday -> Tue
    assert CAL.reminder_at(date(2026, 11, 7)) == utc(2026, 11, 9, 8)  # Sat -> Mon


def test_at_local_time() -> None:
    assert CAL.at_local_time(date(2026, 7, 1), time(17)) == utc(2026, 7, 1, 16)
    assert CAL.at_local_time(date(2026, 12, 1), time(17)) == utc(2026, 12, 1, 17)
    assert CAL.at_local_time(date(2026, 7, 1), time(17)).tzinfo is UTC


def test_naive_datetimes_are_refused() -> None:
    naive = datetime(2026, 11, 6, 15)
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.due_at(naive, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.local_date(naive)
    with pytest.raises(ValueError, match="timezone-aware"):
        CAL.due_after(naive, "2 weeks")
    with pytest.raises(ValueError, match="negative"):
        CAL.due_at(utc(2026, 11, 6, 15), -1)


# -- due_after ----------------------------------------------------------------------------


def test_due_after_calendar_periods() -> None:
    # 31 Jan 2027 + 1 month -> 28 Feb 2027 (clamped), a Sunday -> Mon 1 Mar 2027, 17:00 GMT.
    assert CAL.due_after(utc(2027, 1, 31, 10), "1 month") == utc(2027, 3, 1, 17)
    # 31 Jan 2028 + 1 month -> 29 Feb 2028 (leap year), a Tuesday.
    assert CAL.due_after(utc(2028, 1, 31, 10), "1 month") == utc(2028, 2, 29, 17)
    # 31 Mar 2027 + 1 month -> Fri 30 Apr 2027, BST.
    assert CAL.due_after(utc(2027, 3, 31, 10), "1 month") == utc(2027, 4, 30, 16)
    # Wed 16 Dec 2026 + 2 weeks -> Wed 30 Dec.
    assert CAL.due_after(utc(2026, 12, 16, 10), "2 weeks") == utc(2026, 12, 30, 17)
    # Fri 11 Dec 2026 + 2 weeks -> Fri 25 Dec (Christmas) -> Tue 29 Dec.
    assert CAL.due_after(utc(2026, 12, 11, 10), "2 weeks") == utc(2026, 12, 29, 17)
    # Tue 22 Dec 2026 + 3 days -> Fri 25 Dec -> Tue 29 Dec.
    assert CAL.due_after(utc(2026, 12, 22, 10), "3 days") == utc(2026, 12, 29, 17)
    # 29 Feb 2028 + 1 year -> 28 Feb 2029 (Wednesday).
    assert CAL.due_after(utc(2028, 2, 29, 10), "1 year") == utc(2029, 2, 28, 17)
    assert CAL.due_after(utc(2027, 1, 31, 10), Duration(2, "months")) == utc(2027, 3, 31, 16)


def test_due_after_working_days_is_due_at() -> None:
    decided = utc(2026, 12, 17, 11, 15)
    assert CAL.due_after(decided, "10 working days") == utc(2027, 1, 5, 17)
    assert CAL.due_after(decided, Duration(10, "working_days")) == CAL.due_at(decided, 10)


def test_due_after_refuses_nonsense() -> None:
    with pytest.raises(ValueError, match="not a duration"):
        CAL.due_after(utc(2026, 12, 17), "a fortnight")
    with pytest.raises(TypeError):
        CAL.due_after(utc(2026, 12, 17), 10)


# -- from_framework -----------------------------------------------------------------------


def test_from_framework_iqpf_and_nhs_wales() -> None:
    iqpf = WorkingCalendar.from_framework(get_framework("iqpf").calendar)
    assert iqpf == WorkingCalendar()
    assert iqpf.holiday_regions == ("england", "wales")
    assert iqpf.due_time == time(17) and iqpf.reminder_time == time(8)
    wales = WorkingCalendar.from_framework(get_framework("nhs_wales").calendar)
    assert wales.holiday_regions == ("wales",)
    assert wales.timezone == "Europe/London"
    assert wales.due_at(utc(2026, 12, 17, 11), 10) == utc(2027, 1, 5, 17)


def test_from_framework_defaults_and_overrides() -> None:
    assert WorkingCalendar.from_framework({}) == WorkingCalendar()
    assert WorkingCalendar.from_framework(None) == WorkingCalendar()
    custom = WorkingCalendar.from_framework(
        {"holidays": ["scotland"], "due_time": "12:30", "reminder_time": "07:45"}
    )
    assert custom.holiday_regions == ("scotland",)
    assert custom.timezone == "Europe/London"
    assert custom.due_at(utc(2026, 11, 6, 9), 1) == utc(2026, 11, 9, 12, 30)
    assert custom.reminder_at(date(2026, 7, 1)) == utc(2026, 7, 1, 6, 45)


@pytest.mark.parametrize(
    ("calendar", "message"),
    [
        ({"holidays": ["england", "cornwall"]}, "unknown bank-holiday region 'cornwall'"),
        ({"holidays": []}, "at least one"),
        ({"due_time": "25:00"}, "due_time"),
        ({"reminder_time": "8am"}, "reminder_time"),
        ({"due_time": 1020}, "quotes"),  # unquoted 17:00 in YAML 1.1
        ({"timezone": "Mars/Olympus_Mons"}, "unknown time zone"),
        ({"timezone": ""}, "timezone"),
        ({"holiday": ["england"]}, "unknown key"),
        ("england", "mapping"),
    ],
)
def test_from_framework_bad_values(calendar: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        WorkingCalendar.from_framework(calendar)  # type: ignore[arg-type]


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ValueError, match="unknown bank-holiday region"):
        WorkingCalendar(holiday_regions=("atlantis",))
    assert WorkingCalendar(holiday_regions=["Northern Ireland"]).holiday_regions == (  # type: ignore[arg-type]
        "northern_ireland",
    )


# -- properties ---------------------------------------------------------------------------

days_2026_2028 = st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31))


@settings(max_examples=300, deadline=None)
@given(day=days_2026_2028, n=st.integers(min_value=0, max_value=60))
def test_add_working_days_round_trips(day: date, n: int) -> None:
    result = CAL.add_working_days(day, n)
    assert CAL.is_working_day(result)
    # n == 0 on a weekend or bank holiday gives the next working day, one working day on.
    expected = n if n > 0 or CAL.is_working_day(day) else 1
    assert CAL.working_days_between(day, result) == expected


@settings(max_examples=200, deadline=None)
@given(day=days_2026_2028, n=st.integers(min_value=1, max_value=60))
def test_negative_add_working_days_round_trips(day: date, n: int) -> None:
    start = CAL.next_working_day(day, include_today=True)
    back = CAL.add_working_days(start, -n)
    assert CAL.is_working_day(back)
    assert CAL.working_days_between(back, start) == n


@settings(max_examples=200, deadline=None)
@given(start=days_2026_2028, span=st.integers(min_value=-5, max_value=400))
def test_working_days_between_matches_counting_day_by_day(start: date, span: int) -> None:
    end = start + timedelta(days=span)
    counted = sum(CAL.is_working_day(start + timedelta(days=i)) for i in range(1, span + 1))
    assert CAL.working_days_between(start, end) == counted
