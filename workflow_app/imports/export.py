"""Files written back out: the rejects report and the downloadable templates.

Every text cell is neutralised against CSV/spreadsheet formula injection: a cell that
starts with = + - @ (or a tab or carriage return) gets a leading apostrophe.
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

import sqlalchemy as sa

from workflow_app.extensions import db
from workflow_app.imports.validate import first_open_month
from workflow_app.models.measures import UNITS_OF_MEASURE, Measure
from workflow_app.models.org import Unit
from workflow_app.services.list_export import rows_to_csv, safe_cell

TEMPLATES = {
    "performance": "Performance pack, one row per unit, measure and month",
    "performance-wide": "Performance pack, months as columns",
    "finance": "Finance return, one row per unit and month",
}
REJECT_COLUMNS = (
    "sheet",
    "row",
    "column",
    "value",
    "unit_code",
    "measure_code",
    "month",
    "problem",
)

COLUMN_NOTES = {
    "performance": [
        ("unit_code", "The unit's code, as on the Units page (e.g. SURG)."),
        ("measure_code", "The measure's code within that unit (e.g. RTT18)."),
        ("month", "The month, YYYY-MM (e.g. 2026-04). Months that have not ended are refused."),
        ("actual", "The month's actual value. 81.5 or 81.5% for percentages. Blank: none."),
        ("trajectory", "Optional: the planned value for the month. Blank: none."),
    ],
    "performance-wide": [
        ("unit_code", "The unit's code, as on the Units page (e.g. SURG)."),
        ("measure_code", "The measure's code within that unit (e.g. RTT18)."),
        ("kind", "actual or trajectory: what the month columns of this row hold."),
        ("2026-04, 2026-05, ...", "One column per month (YYYY-MM). Blank cells are left out."),
    ],
    "finance": [
        ("unit_code", "The unit's code, as on the Units page (e.g. SURG)."),
        ("month", "The month, YYYY-MM (e.g. 2026-04). Months that have not ended are refused."),
        ("ytd_variance", "Year-to-date variance in pounds; positive = overspend, e.g. 250000."),
        ("forecast_variance", "Forecast outturn variance in pounds; positive = overspend."),
        ("budget", "Optional: the budget in pounds. £1,234 and (1,234) are accepted."),
    ],
}


def rejects_csv(problems: list[dict[str, Any]]) -> bytes:
    """The rejects report: one line per problem, with the row's identifying cells."""
    lines = [REJECT_COLUMNS]
    for p in problems:
        lines.append(
            (
                p.get("sheet") or "",
                "" if p.get("row") is None else p["row"],
                p.get("column") or "",
                p.get("value") or "",
                p.get("unit_code") or "",
                p.get("measure_code") or "",
                p.get("month") or "",
                p.get("message") or "",
            )
        )
    return rows_to_csv(lines)


def _previous_month(period: date) -> date:
    return date(period.year - (period.month == 1), (period.month - 2) % 12 + 1, 1)


def financial_year_months(today: date | None = None) -> list[date]:
    """April to March of the financial year of the last complete month."""
    last = _previous_month(first_open_month(today))
    start_year = last.year if last.month >= 4 else last.year - 1
    return [date(start_year + (m < 4), m, 1) for m in (4, 5, 6, 7, 8, 9, 10, 11, 12, 1, 2, 3)]


def template_rows(name: str, today: date | None = None) -> list[list[Any]]:
    """Header and one row per active unit (finance) or measure (performance)."""
    month = f"{_previous_month(first_open_month(today)):%Y-%m}"
    units = db.session.scalars(
        sa.select(Unit).where(Unit.is_active.is_(True)).order_by(Unit.code)
    ).all()
    if name == "finance":
        rows = [["unit_code", "month", "ytd_variance", "forecast_variance", "budget"]]
        rows += [[u.code, month, "", "", ""] for u in units]
        return rows
    measures = db.session.execute(
        sa.select(Unit.code, Measure.code)
        .join(Measure, Measure.unit_id == Unit.id)
        .where(Unit.is_active.is_(True), Measure.is_active.is_(True))
        .order_by(Unit.code, Measure.code)
    ).all()
    if name == "performance":
        rows = [["unit_code", "measure_code", "month", "actual", "trajectory"]]
        rows += [[u, m, month, "", ""] for u, m in measures]
        return rows
    months = [f"{m:%Y-%m}" for m in financial_year_months(today)]
    rows = [["unit_code", "measure_code", "kind", *months]]
    for u, m in measures:
        rows.append([u, m, "actual", *[""] * len(months)])
        rows.append([u, m, "trajectory", *[""] * len(months)])
    return rows


def template_csv(name: str, today: date | None = None) -> bytes:
    return rows_to_csv(template_rows(name, today))


def template_xlsx(name: str, today: date | None = None) -> bytes:
    """The template as a workbook: the data sheet, then an "Instructions" sheet."""
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "finance" if name == "finance" else "performance"
    for row in template_rows(name, today):
        sheet.append([safe_cell(v) for v in row])
    for column in sheet.columns:
        column[0].font = openpyxl.styles.Font(bold=True)
    notes = book.create_sheet("Instructions")
    notes.append(["Column", "What to enter"])
    for column, text in COLUMN_NOTES[name]:
        notes.append([safe_cell(column), safe_cell(text)])
    notes.append([])
    notes.append(["Units of measure", ", ".join(f"{k} ({v})" for k, v in UNITS_OF_MEASURE.items())])
    notes.append(["Blank cells", "A blank value is no value: nothing is loaded for it."])
    notes.append(["Corrections", "A changed value is stored as a new revision; the old one stays."])
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()
