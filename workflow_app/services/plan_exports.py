"""A plan for people and board papers: the plan on a page, and PDF and XLSX exports.

The *plan on a page* (seed 002, "Performance Improvement"; DOMAIN.md framework C) shows one
financial year, April to March, for each measure the plan targets: the plan against the
actual, month by month, with the national target and the local target, a chart, the plan's
headlines, narrative and queries / escalations, and its actions with their latest monthly
status. The same content makes the page, its PDF and its XLSX; the whole plan (summary, risk
assessment, support, every SMART action, the trajectory over the plan's span and every update)
makes the other pair.

PDFs are rendered by WeasyPrint from ``templates/plans/export.html`` with the letters' fetcher
(``workflow_app.letters.pdf``: nothing is loaded from outside the document). Every text cell of
a workbook goes through ``workflow_app.imports.export.safe_cell``: a cell a spreadsheet would
run as a formula (= + - @, tab, carriage return) gets a leading apostrophe and stays text.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from flask import render_template
from openpyxl import Workbook
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from state_machines import get_framework
from state_machines.plan_review import STATUS_TITLES
from workflow_app.charts import SeriesPoint, format_value, measure_chart
from workflow_app.clock import to_london, today_london, utcnow
from workflow_app.evaluation.rules import add_months, month_start
from workflow_app.models.measures import DIRECTIONS, Measure
from workflow_app.models.plans import PLAN_KINDS, UPDATE_STATUSES, PlanAction, RecoveryPlan
from workflow_app.services.list_export import safe_cell
from workflow_app.services.plan_delivery import (
    MeasureTrajectory,
    PlanTrajectory,
    approval_month,
    financial_year_months,
    financial_year_start,
    latest_update,
    plan_trajectory,
)

UNIT_LABELS = {"percent": "%", "gbp": "£"}
XLSX_MIME = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def unit_label(measure: Measure) -> str:
    return UNIT_LABELS.get(measure.unit_of_measure, measure.unit_of_measure)


def fmt(value: float | Decimal | None, measure: Measure) -> str:
    """A measure's value for people: ``92%``, ``£1,234``, ``14 days``; blank for None."""
    if value is None:
        return ""
    label = unit_label(measure)
    return format_value(float(value), "" if label == "count" else label)


def fy_label(start: date) -> str:
    """``2026/27`` for the year starting 1 April 2026."""
    return f"{start.year}/{(start.year + 1) % 100:02d}"


def last_month() -> date:
    return add_months(month_start(today_london()), -1)


@dataclass(frozen=True)
class ActionRow:
    """An action with its latest monthly update."""

    action: PlanAction
    number: int
    latest_status: str | None
    latest_title: str
    latest_period: date | None
    latest_narrative: str


@dataclass(frozen=True)
class MeasureView:
    """One targeted measure on the page: its months, a chart and what the chart shows."""

    trajectory: MeasureTrajectory
    chart: str
    unit_label: str
    direction_title: str
    local_targets: bool

    @property
    def years(self) -> list[tuple[str, list]]:
        """The months shown, by financial year: [("2026/27", [TrajectoryMonth, ...]), ...]."""
        groups: dict[date, list] = {}
        for month in self.trajectory.months:
            groups.setdefault(financial_year_start(month.period), []).append(month)
        return [(fy_label(start), months) for start, months in groups.items()]


@dataclass(frozen=True)
class PlanPage:
    """Everything the plan-on-a-page page, PDF and workbook show."""

    plan: RecoveryPlan
    level_title: str
    status_title: str
    kind_title: str
    year_start: date | None
    years: list[date]
    months: list[date]
    # The months shown, and the plan's status judged over every month since its approval.
    trajectory: PlanTrajectory
    measures: list[MeasureView]
    actions: list[ActionRow]
    generated_at: datetime

    @property
    def year_label(self) -> str:
        return fy_label(self.year_start) if self.year_start else ""

    @property
    def approved_on(self) -> date | None:
        approved = to_london(self.plan.approved_at)
        return approved.date() if approved else None


def action_rows(plan: RecoveryPlan) -> list[ActionRow]:
    rows = []
    for number, action in enumerate(plan.actions, start=1):
        update = latest_update(action)
        rows.append(
            ActionRow(
                action=action,
                number=number,
                latest_status=update.status if update else None,
                latest_title=UPDATE_STATUSES.get(update.status, "") if update else "",
                latest_period=update.period if update else None,
                latest_narrative=update.narrative if update else "",
            )
        )
    return rows


def _years(plan: RecoveryPlan, until: date) -> list[date]:
    """Financial years the plan spans: from its approval (or first planned month) to its last
    planned month or the latest month."""
    starts = [m for m in (approval_month(plan),) if m] + [p.period for p in plan.trajectory]
    first = min(starts) if starts else until
    last = max([until, *(p.period for p in plan.trajectory)])
    years, year = [], financial_year_start(first)
    while year <= financial_year_start(last):
        years.append(year)
        year = date(year.year + 1, 4, 1)
    return years


def default_year(plan: RecoveryPlan, until: date | None = None) -> date:
    """The financial year the page opens on: the one holding last month, unless the plan has
    no planned value in it (then the year of its first planned month)."""
    until = until or last_month()
    year = financial_year_start(until)
    months = set(financial_year_months(year))
    planned = sorted(p.period for p in plan.trajectory)
    if planned and not months.intersection(planned):
        return financial_year_start(planned[0])
    return year


def _chart(view: MeasureTrajectory) -> str:
    measure = view.measure
    return measure_chart(
        title=f"{measure.name}: plan against actual",
        unit_label=unit_label(measure),
        points=[
            SeriesPoint(m.period, m.actual, m.planned if m.planned is not None else m.local_target)
            for m in view.months
        ],
        target=float(measure.target),
        direction=measure.direction,
        rag={m.period: ("green" if m.met else "red") for m in view.months if m.met is not None},
        width=720,
        height=260,
    )


def plan_page(
    plan: RecoveryPlan, year_start: date | None = None, *, whole_plan: bool = False
) -> PlanPage:
    """The plan on a page for the financial year from ``year_start`` (default:
    :func:`default_year`), or with ``whole_plan`` the plan's whole span."""
    until = last_month()
    if whole_plan:
        year = None
        trajectory = plan_trajectory(plan, until=until)
    else:
        year = year_start or default_year(plan, until)
        trajectory = plan_trajectory(plan, months=financial_year_months(year), until=until)
    framework = get_framework(plan.case.framework)
    try:
        level_title = framework.level_title(plan.case.level)
    except KeyError:
        level_title = plan.case.level
    measures = [
        MeasureView(
            trajectory=view,
            chart=_chart(view),
            unit_label=unit_label(view.measure),
            direction_title=DIRECTIONS.get(view.measure.direction, view.measure.direction),
            local_targets=any(m.local_target is not None for m in view.months),
        )
        for view in trajectory.measures
    ]
    return PlanPage(
        plan=plan,
        level_title=level_title,
        status_title=STATUS_TITLES.get(plan.status, plan.status),
        kind_title=PLAN_KINDS.get(plan.kind, plan.kind),
        year_start=year,
        years=_years(plan, until),
        months=list(trajectory.months),
        trajectory=trajectory,
        measures=measures,
        actions=action_rows(plan),
        generated_at=utcnow(),
    )


# --------------------------------------------------------------------------------------------
# PDF
# --------------------------------------------------------------------------------------------


def plan_pdf(plan: RecoveryPlan, year_start: date | None = None, *, whole_plan: bool) -> bytes:
    """The plan (``whole_plan``) or its plan on a page as PDF."""
    from workflow_app.letters.pdf import html_to_pdf

    page = plan_page(plan, year_start, whole_plan=whole_plan)
    html = render_template(
        "plans/export.html", page=page, whole_plan=whole_plan, fmt=fmt, fy_label=fy_label
    )
    return html_to_pdf(html)


# --------------------------------------------------------------------------------------------
# XLSX
# --------------------------------------------------------------------------------------------


def text_cell(value: Any) -> Any:
    """A value as a workbook cell: text stripped of characters XML cannot hold and
    neutralised against formula injection; numbers as numbers; dates as dates."""
    if value is None:
        return None
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        local = to_london(value)
        return local.replace(tzinfo=None) if local is not None else None
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, int | float | date):
        return value
    return safe_cell(ILLEGAL_CHARACTERS_RE.sub("", str(value)))


def _sheet(book: Workbook, title: str, headers: list[str], rows: list[list[Any]], widths=None):
    sheet = book.create_sheet(title)
    sheet.append(headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([text_cell(v) for v in row])
    sheet.freeze_panes = "A2"
    for index, header in enumerate(headers, start=1):
        width = (widths or {}).get(header, max(12, min(len(header) + 4, 40)))
        sheet.column_dimensions[get_column_letter(index)].width = width
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, datetime):
                cell.number_format = "dd mmm yyyy hh:mm"
            elif isinstance(cell.value, date):
                cell.number_format = "dd mmm yyyy"
            elif isinstance(cell.value, str) and len(cell.value) > 40:
                cell.alignment = Alignment(wrap_text=True, vertical="top")
    return sheet


def _month_columns(sheet, column: int) -> None:
    for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
        cell.number_format = "mmm yyyy"


def _summary_rows(page: PlanPage, whole_plan: bool) -> list[list[Any]]:
    plan = page.plan
    rows: list[list[Any]] = [
        ["Plan", plan.title],
        ["Unit", plan.unit.name],
        ["Kind", page.kind_title],
        ["Case", f"{plan.case.track}: {page.level_title}"],
        ["Status", page.status_title],
        ["Approved", page.approved_on],
        ["Risk level", (plan.risk_level or "").capitalize()],
        ["Trajectory", page.trajectory.summary],
    ]
    if plan.review_period_ends_on:
        rows.append(["Review period ends", plan.review_period_ends_on])
    if not whole_plan:
        rows.append(["Financial year", page.year_label])
    else:
        rows += [
            ["Summary", plan.summary],
            ["Risk assessment", plan.risk_assessment],
            ["Support requested", plan.support_requested],
        ]
    rows += [
        ["Headlines", plan.headlines],
        ["Narrative", plan.narrative],
        ["Queries and escalations", plan.queries],
        ["Exported", page.generated_at],
    ]
    return rows


def plan_xlsx(plan: RecoveryPlan, year_start: date | None = None, *, whole_plan: bool) -> bytes:
    """The plan (``whole_plan``) or its plan on a page as a workbook: a summary sheet, then
    Actions, Trajectory (plan against actual) and Updates."""
    page = plan_page(plan, year_start, whole_plan=whole_plan)
    book = Workbook()
    book.remove(book.active)
    _sheet(
        book,
        "Plan" if whole_plan else "Plan on a page",
        ["Item", "Value"],
        _summary_rows(page, whole_plan),
        widths={"Item": 26, "Value": 100},
    )
    action_headers = [
        "Number",
        "Action",
        "Measure",
        "Expected effect",
        "Owner",
        "Resources",
        "Domain",
        "Deliverable",
        "Due",
        "Milestones",
        "Delivered",
        "Latest month",
        "Latest status",
        "Latest narrative",
    ]
    _sheet(
        book,
        "Actions",
        action_headers,
        [
            [
                row.number,
                row.action.description,
                row.action.measure.name if row.action.measure else "",
                row.action.expected_effect,
                row.action.owner.name if row.action.owner else "",
                row.action.resources,
                row.action.domain.name if row.action.domain else "",
                row.action.deliverable,
                row.action.due_on,
                row.action.milestones,
                row.action.delivered_on,
                row.latest_period,
                row.latest_title,
                row.latest_narrative,
            ]
            for row in page.actions
        ],
        widths={"Action": 50, "Expected effect": 30, "Milestones": 30, "Latest narrative": 50},
    )
    sheet = _sheet(
        book,
        "Trajectory",
        [
            "Measure code",
            "Measure",
            "Month",
            "Plan",
            "Actual",
            "Met",
            "Local target",
            "National target",
            "Judged against",
            "Direction",
            "Unit",
        ],
        [
            [
                view.measure.code,
                view.measure.name,
                month.period,
                month.planned,
                month.actual,
                "" if month.met is None else ("Yes" if month.met else "No"),
                month.local_target,
                month.national_target,
                {"plan": "Plan", "local": "Local target", "national": "National target"}[
                    month.bar_kind
                ],
                DIRECTIONS.get(view.measure.direction, view.measure.direction),
                view.measure.unit_of_measure,
            ]
            for view in page.trajectory.measures
            for month in view.months
        ],
        widths={"Measure": 36},
    )
    _month_columns(sheet, 3)
    months = set(page.months)
    updates = [
        [
            row.number,
            row.action.description,
            update.period,
            UPDATE_STATUSES.get(update.status, update.status),
            update.narrative,
            update.updated_by.name if update.updated_by else "",
            update.updated_at,
        ]
        for row in page.actions
        for update in row.action.updates
        if whole_plan or month_start(update.period) in months
    ]
    sheet = _sheet(
        book,
        "Updates",
        ["Action number", "Action", "Month", "Status", "Narrative", "Updated by", "Updated at"],
        updates,
        widths={"Action": 50, "Narrative": 60, "Updated at": 20},
    )
    _month_columns(sheet, 3)
    book.properties.title = plan.title[:200]
    book.properties.creator = "Escalate"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def download_name(plan: RecoveryPlan, what: str, extension: str) -> str:
    """``plan-12-on-a-page-2026-27.pdf``: ids and words only, nothing a header could break on."""
    slug = re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-")
    return f"plan-{plan.id}-{slug}.{extension}"
