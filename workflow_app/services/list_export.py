"""One exporter for every list: column specs and rows in, a CSV or XLSX download out.

CSV is RFC 4180 (comma, double quotes doubled, CRLF line ends) in UTF-8 with a byte order
mark, so Excel shows £ and accents. XLSX is written by openpyxl. In both, every text cell
goes through :func:`workflow_app.imports.export.safe_cell`: a cell a spreadsheet would run
as a formula (= + - @, tab, carriage return) gets a leading apostrophe and stays text.
Characters no spreadsheet can hold (NUL and other control characters) are removed first,
so ``"\\x00=1"`` cannot slip past the check. Numbers stay numbers; dates stay dates; times
are shown in Europe/London.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from itertools import chain
from typing import Any

from flask import Response, abort, request
from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import ILLEGAL_CHARACTERS_RE
from openpyxl.styles import Font

from workflow_app.clock import to_london, today_london

FORMATS = {
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
}
SAFE_NAME = re.compile(r"[^a-z0-9]+")
SHEET_FORBIDDEN = re.compile(r"[\[\]:*?/\\']+")  # characters Excel refuses in a sheet name


class UnknownFormat(ValueError):
    """Asked for a download format other than CSV or XLSX."""


@dataclass(frozen=True)
class Column:
    """One column of a list: its heading and how to read its value from a row."""

    title: str
    value: Callable[[Any], Any]
    #: How a page shows the value, when not the default (e.g. a month as "Oct 2026").
    display: Callable[[Any], str] | None = None

    def shown(self, row: Any) -> str:
        """The value as text for a web page (London time, Yes/No, blank for nothing)."""
        value = self.value(row)
        if self.display is not None and value is not None:
            return self.display(value)
        if value is None:
            return ""
        if isinstance(value, bool):
            return "Yes" if value else "No"
        if isinstance(value, datetime):
            return f"{to_london(value):%d %b %Y %H:%M}"
        if isinstance(value, date):
            return f"{value:%d %b %Y}"
        if isinstance(value, Decimal):
            return _plain_decimal(value)
        return str(value)


@dataclass(frozen=True)
class ExportFile:
    """A finished download: its bytes, content type and file name."""

    body: bytes
    mimetype: str
    filename: str

    def as_response(self) -> Response:
        """The file as a download response (never cached: it holds what this person sees)."""
        return Response(
            self.body,
            mimetype=self.mimetype,
            headers={
                "Content-Disposition": f'attachment; filename="{self.filename}"',
                "Cache-Control": "no-store",
            },
        )


def requested_format(value: str | None) -> str | None:
    """``csv`` or ``xlsx`` from a ``?format=`` value; None when no download was asked for.

    :raises UnknownFormat: for any other value, with a message for people.
    """
    if value is None or value == "":
        return None
    fmt = value.strip().lower()
    if fmt not in FORMATS:
        raise UnknownFormat(
            f"Downloads come as CSV or XLSX: use format=csv or format=xlsx, not {value[:20]!r}."
        )
    return fmt


def format_from_request() -> str | None:
    """The ``?format=`` of the current request (csv, xlsx or None); 400 with the reason
    for anything else."""
    try:
        return requested_format(request.args.get("format"))
    except UnknownFormat as problem:
        abort(400, str(problem))


def filename_for(name: str, fmt: str, day: date | None = None) -> str:
    """``escalate-<name>-<YYYY-MM-DD>.<fmt>``, with the name reduced to safe characters."""
    slug = SAFE_NAME.sub("-", name.lower()).strip("-") or "list"
    return f"escalate-{slug}-{(day or today_london()):%Y-%m-%d}.{fmt}"


FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\0")  # ASVS 5 1.2.10


def safe_cell(value: Any) -> Any:
    """Neutralise a text cell that a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def _text(value: Any) -> str:
    # Neutralised first (a leading CR is a formula start), then one kind of line break: an
    # XLSX keeps a bare CR only when openpyxl writes through lxml, so CSV and XLSX agree.
    neutral = safe_cell(ILLEGAL_CHARACTERS_RE.sub("", str(value)))
    return neutral.replace("\r\n", "\n").replace("\r", "\n")


def csv_cell(value: Any) -> str:
    """A value as CSV text: London time for timestamps, ISO dates, neutralised text."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, datetime):
        return f"{to_london(value):%Y-%m-%d %H:%M}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return _plain_decimal(value)
    if isinstance(value, int | float):
        return str(value)
    return _text(value)


def _plain_decimal(value: Decimal) -> str:
    # 92.0000 (a Numeric column) reads as 92; never an exponent such as 1E+2.
    text = f"{value:f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


def xlsx_cell(value: Any) -> Any:
    """A value as a workbook cell: numbers and dates typed, text neutralised."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "Yes" if value else "No"
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, datetime):
        return to_london(value).replace(tzinfo=None)
    if isinstance(value, int | float | date):
        return value
    return _text(value)


def rows_to_csv(rows: Iterable[Iterable[Any]]) -> bytes:
    """Rows of cells as RFC 4180 CSV, each cell as :func:`csv_cell` writes it; UTF-8 with a
    byte order mark, so Excel shows £ correctly."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    for row in rows:
        writer.writerow([csv_cell(value) for value in row])
    return buffer.getvalue().encode("utf-8-sig")


def to_csv(columns: Sequence[Column], rows: Iterable[Any]) -> bytes:
    """The list as CSV: a header row of the columns' titles, then one row per item."""
    header = [column.title for column in columns]
    return rows_to_csv(chain([header], ([column.value(row) for column in columns] for row in rows)))


def to_xlsx(columns: Sequence[Column], rows: Iterable[Any], sheet_title: str = "List") -> bytes:
    """The list as one worksheet: a bold, frozen header row, then one row per item."""
    book = Workbook(write_only=True)
    sheet = book.create_sheet(SHEET_FORBIDDEN.sub(" ", sheet_title).strip()[:31] or "List")
    sheet.freeze_panes = "A2"
    bold = Font(bold=True)
    header = []
    for column in columns:
        cell = WriteOnlyCell(sheet, value=_text(column.title))
        cell.font = bold
        header.append(cell)
    sheet.append(header)
    for row in rows:
        cells = []
        for column in columns:
            value = xlsx_cell(column.value(row))
            if isinstance(value, datetime):
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = "dd mmm yyyy hh:mm"
                value = cell
            elif isinstance(value, date):
                cell = WriteOnlyCell(sheet, value=value)
                cell.number_format = "dd mmm yyyy"
                value = cell
            cells.append(value)
        sheet.append(cells)
    buffer = io.BytesIO()
    book.save(buffer)
    return buffer.getvalue()


def export_list(name: str, columns: Sequence[Column], rows: Iterable[Any], fmt: str) -> ExportFile:
    """The list ``name`` as a CSV or XLSX file named with today's date (Europe/London)."""
    if fmt not in FORMATS:
        raise UnknownFormat(f"Downloads come as CSV or XLSX, not {fmt!r}.")
    title = name.replace("-", " ").capitalize()
    body = to_csv(columns, rows) if fmt == "csv" else to_xlsx(columns, rows, title)
    return ExportFile(body=body, mimetype=FORMATS[fmt], filename=filename_for(name, fmt))
