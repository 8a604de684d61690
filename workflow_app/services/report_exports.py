"""A monthly report's content as a chart, a PDF and a workbook.

Everything here reads only the report's content (the JSON-able data from
:func:`workflow_app.services.reports.build_report`), never the database, so an issued report's
files and page come from what was frozen. PDFs are rendered by WeasyPrint through the letters'
fetcher (``workflow_app.letters.pdf.html_to_pdf``: nothing is loaded from outside the
document); every text cell of the workbook goes through
``workflow_app.services.plan_exports.text_cell`` (formula injection neutralised by
``workflow_app.imports.export.safe_cell``).
"""

from __future__ import annotations

import io
from datetime import date
from typing import Any

from flask import render_template
from markupsafe import Markup
from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from workflow_app.charts import ChartBands, SeriesPoint, description_of, measure_chart
from workflow_app.services.plan_exports import XLSX_MIME, text_cell

__all__ = [
    "XLSX_MIME",
    "chart_description",
    "download_name",
    "report_chart",
    "report_pdf",
    "report_xlsx",
]


def _chart_arguments(chart: dict[str, Any]) -> dict[str, Any]:
    bands = chart.get("bands")
    return {
        "title": chart["title"],
        "unit_label": chart["unit_label"],
        "points": [
            SeriesPoint(date.fromisoformat(period), actual, trajectory)
            for period, actual, trajectory in chart["points"]
        ],
        "target": chart["target"],
        "direction": chart["direction"],
        "bands": ChartBands(*bands) if bands else None,
        "special_cause": {date.fromisoformat(k): v for k, v in chart.get("special", {}).items()},
    }


def chart_description(chart: dict[str, Any]) -> str:
    """The chart's text alternative, from the same data as the chart."""
    return description_of(**_chart_arguments(chart))


def report_chart(chart: dict[str, Any] | None, *, width: int = 640, height: int = 240) -> Markup:
    """The inline SVG chart of an exception measure, drawn from the report's chart data."""
    if not chart:
        return Markup("")
    svg = measure_chart(
        **_chart_arguments(chart),
        rag={date.fromisoformat(k): v for k, v in chart.get("rag", {}).items()},
        width=width,
        height=height,
    )
    return Markup(svg)  # noqa: S704 - built by ElementTree, every data text escaped


def report_pdf(content: dict[str, Any], meta: dict[str, Any] | None = None) -> bytes:
    """The report as PDF (A4): the same sections as the page, with the version and hash."""
    from workflow_app.letters.pdf import html_to_pdf

    html = render_template(
        "reports/document.html", report=content, meta=meta or {}, chart=report_chart
    )
    return html_to_pdf(html)


# --------------------------------------------------------------------------------------------
# XLSX
# --------------------------------------------------------------------------------------------


def _sheet(book: Workbook, title: str, headers: list[str], rows: list[list[Any]]) -> None:
    sheet = book.create_sheet(title)
    sheet.append(headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
    for row in rows:
        sheet.append([text_cell(value) for value in row])
    sheet.freeze_panes = "A2"
    for index, header in enumerate(headers, start=1):
        longest = max([len(header)] + [len(str(r[index - 1] or "")) for r in rows])
        sheet.column_dimensions[get_column_letter(index)].width = max(10, min(longest + 2, 60))
    for row in sheet.iter_rows(min_row=2):
        for cell in row:
            if isinstance(cell.value, str) and len(cell.value) > 60:
                cell.alignment = Alignment(wrap_text=True, vertical="top")


def _money_format(book: Workbook, title: str, columns: tuple[int, ...]) -> None:
    sheet = book[title]
    for column in columns:
        for (cell,) in sheet.iter_rows(min_row=2, min_col=column, max_col=column):
            cell.number_format = '"£"#,##0;-"£"#,##0'


def _decision_cells(row: dict[str, Any]) -> list[Any]:
    return [
        row["unit_code"],
        row["unit_name"],
        row["track_title"],
        row["kind_title"],
        row["from_title"],
        row["to_title"],
        row["period_text"],
        row["reason"],
    ]


DECISION_HEADERS = ["Unit code", "Unit", "Track", "Kind", "From", "To", "Month reviewed", "Reason"]


def report_xlsx(content: dict[str, Any], meta: dict[str, Any] | None = None) -> bytes:
    """The report as a workbook: Summary, Levels, Changes, (Proposals), Plans, Actions,
    Exceptions, Finance and Concerns sheets."""
    meta = meta or {}
    book = Workbook()
    book.remove(book.active)
    summary = [
        ["Report", content["title"]],
        ["Organisation", content.get("organisation", "")],
        ["Month", content["month_title"]],
        ["Decisions taken", content["window_text"]],
        ["Position as at", content["as_at_text"]],
    ]
    if meta:
        summary += [
            ["Version", meta.get("version")],
            ["Issued", meta.get("issued_at_text", "")],
            ["Issued by", meta.get("issued_by", "")],
            ["Content SHA-256", meta.get("sha256", "")],
        ]
    else:
        summary.append(["Status", "Not issued: a preview of the current data"])
    summary += [
        [f"Units at {s['track_title']} {s['level_title']}", s["count"]]
        for s in content["levels"]["summary"]
    ]
    _sheet(book, "Summary", ["Item", "Value"], summary)
    _sheet(
        book,
        "Levels",
        ["Unit code", "Unit", "Kind", "Track", "Level", "Since"],
        [
            [
                unit["code"],
                unit["name"],
                unit["kind"],
                t["track_title"],
                t["level_title"],
                t["since_text"],
            ]
            for unit in content["levels"]["units"]
            for t in unit["tracks"]
        ],
    )
    _sheet(
        book,
        "Changes",
        [*DECISION_HEADERS, "Outcome", "Note", "Decided", "Signed by", "Meeting"],
        [
            [
                *_decision_cells(row),
                row["outcome_title"],
                row["note"],
                row["decided_text"],
                "; ".join(row["signed_by"]),
                row["meeting"],
            ]
            for row in content["changes"]
        ],
    )
    if "proposals" in content:
        _sheet(
            book,
            "Proposals",
            [*DECISION_HEADERS, "Proposed"],
            [[*_decision_cells(row), row["proposed_text"]] for row in content["proposals"]],
        )
    _sheet(
        book,
        "Plans",
        [
            "Unit code",
            "Unit",
            "Plan",
            "Kind",
            "Track",
            "Status",
            "Since",
            "Approved",
            "Risk",
            "Trajectory",
            "On track",
            "At risk",
            "Off track",
            "No update",
        ],  # fmt: skip
        [
            [
                p["unit_code"],
                p["unit_name"],
                p["title"],
                p["kind_title"],
                p["track_title"],
                p["status_title"],
                p["status_since_text"],
                p["approved_text"],
                p["risk_level"],
                p["trajectory"],
                p["action_counts"]["on_track"],
                p["action_counts"]["at_risk"],
                p["action_counts"]["off_track"],
                p["action_counts"]["none"],
            ]
            for p in content["plans"]
        ],
    )
    _sheet(
        book,
        "Actions",
        [
            "Unit code",
            "Plan",
            "Number",
            "Action",
            "Measure",
            "Owner",
            "Due",
            "Delivered",
            "Latest status",
            "Month",
            "Narrative",
        ],  # fmt: skip
        [
            [
                p["unit_code"],
                p["title"],
                a["number"],
                a["description"],
                a["measure"],
                a["owner"],
                a["due_text"],
                a["delivered_text"],
                a["status_title"] or "No update",
                a["update_month"],
                a["narrative"],
            ]
            for p in content["plans"]
            for a in p["actions"]
        ],
    )
    _sheet(
        book,
        "Exceptions",
        [
            "Unit code",
            "Unit",
            "Measure code",
            "Measure",
            "Domain",
            "Committee",
            "RAG",
            "Actual",
            "Target",
            "Trajectory",
            "Months under target",
            "Position",
            "Description",
        ],  # fmt: skip
        [
            [
                e["unit_code"],
                e["unit_name"],
                e["measure_code"],
                e["measure_name"],
                e["domain_name"],
                e["committee"],
                e["rag"].capitalize(),
                e["actual"],
                e["target_text"],
                e["trajectory_text"],
                e["months_under"],
                e["month_count_status"],
                e["description"],
            ]
            for e in [*content["exceptions"], *content["watch"]]
        ],
    )
    finance = content["finance"]
    _sheet(
        book,
        "Finance",
        [
            "Unit code",
            "Unit",
            "Budget",
            "Year-to-date variance",
            "Forecast outturn variance",
            "Over the year-to-date threshold",
            "Over the forecast threshold",
            "Revision",
        ],  # fmt: skip
        [
            [
                f["unit_code"],
                f["unit_name"],
                f["budget"],
                f["ytd_variance"],
                f["forecast_variance"],
                f["ytd_breach"],
                f["forecast_breach"],
                f["revision"],
            ]
            for f in finance["rows"]
        ]
        + [
            [
                "Total",
                "",
                finance["totals"]["budget"],
                finance["totals"]["ytd_variance"],
                finance["totals"]["forecast_variance"],
                "",
                "",
                "",
            ]
        ],
    )
    _money_format(book, "Finance", (3, 4, 5))
    _sheet(
        book,
        "Concerns",
        ["Unit code", "Unit", "Domain", "Kind", "Severity", "Occurred", "Summary"],
        [
            [
                c["unit_code"],
                c["unit_name"],
                c["domain_name"],
                c["kind_title"],
                c["severity"],
                c["occurred_text"],
                c["summary"],
            ]
            for c in content["concerns"]
        ],
    )
    book.properties.title = f"{content['title']}, {content['month_title']}"[:200]
    book.properties.creator = "Escalate"
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def download_name(content: dict[str, Any], version: int, extension: str) -> str:
    """``executive-overview-2026-10-v2.pdf``: kind, month and version only."""
    kind = content["kind"].replace("_", "-")
    return f"{kind}-{content['month']}-v{version}.{extension}"
