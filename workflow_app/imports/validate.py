"""Checking parsed rows against the database: units, measures, months and units of measure.

Every problem names the row and column and says what to do. Validation only reads.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import sqlalchemy as sa

from workflow_app.clock import today_london
from workflow_app.extensions import db
from workflow_app.imports.parse import FINANCE, Number, ParsedFile, ParsedRow
from workflow_app.models.measures import MONEY, UNITS_OF_MEASURE, VALUE, Measure
from workflow_app.models.org import Unit

# The largest magnitudes the columns hold (Numeric(14, 4) and Numeric(14, 2)).
VALUE_PLACES = Decimal(1).scaleb(-VALUE.scale)
MONEY_PLACES = Decimal(1).scaleb(-MONEY.scale)
VALUE_LIMIT = Decimal(10) ** (VALUE.precision - VALUE.scale)
MONEY_LIMIT = Decimal(10) ** (MONEY.precision - MONEY.scale)
NOT_NEGATIVE = {"count", "days", "weeks", "minutes"}


# What validation reads of a unit and of a measure (plain rows, not ORM objects).
_UnitRow = Any
_MeasureRow = Any


@dataclass
class Resolved:
    """A valid row with its unit and measure found."""

    row: ParsedRow
    unit_id: int
    measure_id: int | None
    period: date


def first_open_month(today: date | None = None) -> date:
    """The first month that has not ended yet (data for it is "in the future")."""
    today = today or today_london()
    return date(today.year, today.month, 1)


def _month_after(period: date) -> date:
    return date(period.year + period.month // 12, period.month % 12 + 1, 1)


def validate(
    parsed: ParsedFile,
    *,
    today: date | None = None,
    progress: Callable[[int], None] | None = None,
) -> list[Resolved]:
    """Check every row of ``parsed`` against the database; return the valid rows resolved.

    Problems are added to each row's ``problems`` (so ``parsed.all_problems`` lists them
    all). Nothing is written. Calling it again first clears the database problems found
    before, so a file can be re-checked at load time.

    The result depends only on the rows, the first open month and the units and measures
    the rows name. A second call on the same ``parsed`` that finds all of those unchanged
    (e.g. ``load_rows`` right after the preview's check) reuses the first result instead of
    checking every row again.
    """
    open_month = first_open_month(today)
    codes = {r.unit_code.upper() for r in parsed.rows if r.unit_code}
    units = {
        u.code.upper(): u
        for u in db.session.execute(
            sa.select(Unit.id, Unit.code).where(sa.func.upper(Unit.code).in_(codes))
        )
    }
    unit_ids = [u.id for u in units.values()]
    measures: dict[tuple[int, str], _MeasureRow] = {
        (m.unit_id, m.code.upper()): m
        for m in db.session.execute(
            sa.select(Measure.id, Measure.unit_id, Measure.code, Measure.unit_of_measure).where(
                Measure.unit_id.in_(unit_ids)
            )
        )
    }
    key = (
        id(parsed.rows),
        len(parsed.rows),
        len(parsed.problems),
        open_month,
        tuple(sorted(units.items())),
        tuple(sorted((k, tuple(m)) for k, m in measures.items())),
    )
    if parsed.checked is not None and parsed.checked[0] == key:
        if progress is not None:
            progress(len(parsed.rows))
        return list(parsed.checked[1])
    parsed.checked = None
    seen: dict[tuple, int] = {}
    resolved: list[Resolved] = []
    for count, row in enumerate(parsed.rows, start=1):
        if row.problems:
            row.problems = [p for p in row.problems if not p.from_database]
        found = _check_row(row, units, measures, open_month)
        key_row = _duplicate_key(row)
        if key_row is not None:
            if key_row in seen:
                _db_problem(
                    row,
                    "unit_code",
                    f"This row repeats row {seen[key_row]} (same "
                    + ("unit and month" if row.kind == FINANCE else "unit, measure and month")
                    + "). Keep one of the two rows and delete the other.",
                    row.unit_code,
                )
            else:
                seen[key_row] = row.row_number
        if found is not None and not row.problems:
            resolved.append(found)
        if progress is not None and count % 500 == 0:
            progress(500)
    if progress is not None:
        progress(len(parsed.rows) % 500)
    if parsed.problems:
        return []
    parsed.checked = (key, tuple(resolved))
    return resolved


def _duplicate_key(row: ParsedRow) -> tuple | None:
    if not row.unit_code or row.month is None:
        return None
    return (row.kind, row.unit_code.upper(), row.measure_code.upper(), row.month, row.wide_kind)


def _db_problem(row: ParsedRow, field_name: str | None, message: str, value: str = "") -> None:
    problem = row.problem(field_name, message, value)
    problem.from_database = True


def _check_row(
    row: ParsedRow,
    units: dict[str, _UnitRow],
    measures: dict[tuple[int, str], _MeasureRow],
    open_month: date,
) -> Resolved | None:
    unit = units.get(row.unit_code.upper()) if row.unit_code else None
    measure = None
    if row.unit_code and unit is None:
        _db_problem(
            row,
            "unit_code",
            f"There is no unit with the code '{row.unit_code}'. Check the code on the Units "
            "page, or ask the performance team to add the unit first.",
            row.unit_code,
        )
    if unit is not None and row.kind != FINANCE and row.measure_code:
        measure = measures.get((unit.id, row.measure_code.upper()))
        if measure is None:
            _db_problem(
                row,
                "measure_code",
                f"{unit.code} has no measure with the code '{row.measure_code}'. Check the "
                f"code on {unit.code}'s page, or add the measure first.",
                row.measure_code,
            )
    # Trajectories are plans, so only actuals and finance positions cannot be in the future.
    is_plan = row.kind != FINANCE and row.actual is None and row.trajectory is not None
    if row.month is not None and row.month >= open_month and not is_plan:
        _db_problem(
            row,
            "month",
            f"{row.month:%Y-%m} is in the future: the month has not ended yet. Check the "
            f"month; data for {row.month:%B %Y} can be loaded from "
            f"{_month_after(row.month):1 %B %Y}.",
            row.month_text,
        )
    if row.kind == FINANCE:
        for name in ("ytd_variance", "forecast_variance", "budget"):
            number = getattr(row, name)
            if number is not None:
                _check_money(row, name, number)
    elif measure is not None:
        # The same fields, in the same order, as ParsedRow.numbers() gives for such a row.
        for name in ("actual", "trajectory"):
            number = getattr(row, name)
            if number is not None:
                _check_value(row, name, number, measure)
    if unit is None or row.month is None or (row.kind != FINANCE and measure is None):
        return None
    return Resolved(row, unit.id, measure.id if measure is not None else None, row.month)


def _check_money(row: ParsedRow, name: str, number: Number) -> None:
    if number.percent:
        _db_problem(
            row,
            name,
            f"'{number.text}' is a percentage, but this column is an amount in pounds. "
            "Enter pounds, e.g. 250000",
            number.text,
        )
    elif abs(number.value) >= MONEY_LIMIT:
        _db_problem(row, name, f"'{number.text}' is too large. Check the amount.", number.text)
    elif number.value != number.value.quantize(MONEY_PLACES):
        _db_problem(
            row,
            name,
            f"'{number.text}' has more than 2 decimal places. Enter pounds and pence, e.g. 1234.56",
            number.text,
        )


def _what(measure: _MeasureRow) -> str:
    uom = measure.unit_of_measure
    label = UNITS_OF_MEASURE.get(uom, uom)
    return (
        f"{measure.code} is measured in {label}" if uom != "count" else f"{measure.code} is a count"
    )


def _check_value(row: ParsedRow, name: str, number: Number, measure: _MeasureRow) -> None:
    uom = measure.unit_of_measure
    value = number.value
    if number.percent and uom != "percent":
        message = (
            f"'{number.text}' is a percentage, but {_what(measure)}. Enter the value without %"
        )
    elif number.pounds and uom != "gbp":
        message = (
            f"'{number.text}' is an amount in pounds, but {_what(measure)}. "
            "Enter the value without £"
        )
    elif abs(value) >= VALUE_LIMIT:
        message = f"'{number.text}' is too large for {measure.code}. Check the value"
    elif uom == "percent" and not 0 <= value <= 100:
        message = (
            f"'{number.text}' is outside 0-100, but {measure.code} is a percentage. "
            "Enter a percentage between 0 and 100, e.g. 81.5"
        )
    elif uom in NOT_NEGATIVE and value < 0:
        message = f"'{number.text}' is negative, but {_what(measure)}. Enter 0 or more"
    elif uom == "count" and value != value.to_integral_value():
        message = (
            f"'{number.text}' is not a whole number, but {_what(measure)}. Enter a whole number"
        )
    elif value != value.quantize(VALUE_PLACES):
        message = f"'{number.text}' has more than 4 decimal places. Round it to 4 places"
    else:
        return
    _db_problem(row, name, message, number.text)
