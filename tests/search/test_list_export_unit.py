"""The exporter on its own: typed cells, London time, RFC 4180 quoting, formula neutralising
(also behind characters a spreadsheet cannot hold), file names and formats."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import openpyxl
import pytest

from workflow_app.services.list_export import (
    Column,
    UnknownFormat,
    filename_for,
    requested_format,
    to_csv,
    to_xlsx,
)

COLUMNS = [Column("Name", lambda r: r[0]), Column("Value", lambda r: r[1])]
ROWS = [
    ("\x00=2+2", Decimal("92.0000")),
    ('Says "hi",\r\nthen leaves', -1),
    ("-1", datetime(2026, 7, 1, 12, 0, tzinfo=UTC)),  # 13:00 in London (BST)
    ("Café £", date(2026, 4, 1)),
    (None, True),
]


def test_csv_cells_are_typed_quoted_and_neutralised():
    body = to_csv(COLUMNS, ROWS)
    assert body.startswith(b"\xef\xbb\xbf")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"), newline="")))
    assert rows == [
        ["Name", "Value"],
        ["'=2+2", "92"],  # NUL removed, then neutralised; 92.0000 reads as 92
        # A number stays a number; a line break inside a cell comes out as LF in CSV and XLSX.
        ['Says "hi",\nthen leaves', "-1"],
        ["'-1", "2026-07-01 13:00"],  # text "-1" is neutralised
        ["Café £", "2026-04-01"],
        ["", "Yes"],
    ]


def test_xlsx_cells_are_typed_and_neutralised():
    book = openpyxl.load_workbook(io.BytesIO(to_xlsx(COLUMNS, ROWS, "Units")))
    sheet = book.active
    assert sheet.title == "Units" and sheet.freeze_panes == "A2"
    values = [[cell.value for cell in row] for row in sheet.iter_rows()]
    assert values[1] == ["'=2+2", 92]
    assert values[2][1] == -1
    assert values[3] == ["'-1", datetime(2026, 7, 1, 13, 0)]
    assert values[4] == ["Café £", datetime(2026, 4, 1, 0, 0)]
    assert values[5] == [None, "Yes"]
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)


def test_formats_and_file_names():
    assert requested_format(None) is None and requested_format("") is None
    assert requested_format("CSV") == "csv" and requested_format("xlsx") == "xlsx"
    with pytest.raises(UnknownFormat, match="format=csv or format=xlsx"):
        requested_format("pdf")
    assert filename_for("Search units", "csv", date(2026, 11, 23)) == (
        "escalate-search-units-2026-11-23.csv"
    )
    assert filename_for('../"x"', "xlsx", date(2026, 1, 2)) == "escalate-x-2026-01-02.xlsx"
