"""The parser: layouts, CSV and XLSX, number formats, unrecognised files and headers."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest

from tests.imports.conftest import csv_bytes, xlsx_bytes
from workflow_app.imports.parse import Number, UnreadableFile, parse_file, parse_number

# These tests need no database, but the autouse fixtures give them one; that is harmless.


def test_performance_long_csv():
    parsed = parse_file(
        csv_bytes(
            """
Unit_Code , measure_code,MONTH,actual,trajectory
SURG,RTT18,2026-09,81.5%,85
SURG,BEDS,2026-09,120,
SURG,WAIT,2026-09,,
"""
        ),
        "pack.csv",
    )
    assert (parsed.kind, parsed.layout, parsed.problems) == ("performance", "performance long", [])
    assert len(parsed.rows) == 2  # the row with no values is left out
    first = parsed.rows[0]
    assert (first.row_number, first.unit_code, first.measure_code) == (2, "SURG", "RTT18")
    assert first.month == date(2026, 9, 1)
    assert first.actual.value == Decimal("81.5") and first.actual.percent
    assert first.trajectory.value == Decimal("85")
    assert parsed.rows[1].trajectory is None


def test_performance_wide_csv_gives_one_row_per_month_cell():
    parsed = parse_file(
        csv_bytes(
            """
unit_code,measure_code,kind,2026-08,2026-09
SURG,RTT18,actual,80,81
SURG,RTT18,trajectory,,84
"""
        ),
        "wide.csv",
    )
    assert parsed.layout == "performance wide"
    got = [(r.row_number, r.wide_kind, r.month, r.actual or r.trajectory) for r in parsed.rows]
    assert [(n, k, m) for n, k, m, _ in got] == [
        (2, "actual", date(2026, 8, 1)),
        (2, "actual", date(2026, 9, 1)),
        (3, "trajectory", date(2026, 9, 1)),
    ]


def test_finance_long_csv_with_money_formats():
    parsed = parse_file(
        csv_bytes(
            """
unit_code,month,ytd_variance,forecast_variance,budget
SURG,2026-09,"£1,234","(1,234.50)",£2000000
"""
        ),
        "finance.csv",
    )
    assert parsed.kind == "finance"
    row = parsed.rows[0]
    assert row.ytd_variance.value == Decimal("1234")
    assert row.forecast_variance.value == Decimal("-1234.50")
    assert row.budget.value == Decimal("2000000")


def test_xlsx_long_with_percent_cells_and_date_months():
    content = xlsx_bytes(
        [
            ["unit_code", "measure_code", "month", "actual"],
            ["SURG", "RTT18", date(2026, 9, 1), 0.815],
            ["SURG", "BEDS", "2026-09", 120],
        ],
        formats={(2, 4): "0.0%"},
    )
    parsed = parse_file(content, "pack.xlsx")
    assert parsed.problems == []
    assert parsed.rows[0].month == date(2026, 9, 1)
    assert parsed.rows[0].actual.value == Decimal("81.5") and parsed.rows[0].actual.percent
    assert parsed.rows[1].actual.value == Decimal("120")


def test_xlsx_reads_every_sheet_named_like_a_kind():
    content = xlsx_bytes(
        [["unit_code", "measure_code", "kind", "2026-09"], ["SURG", "RTT18", "actual", 81]],
        title="Performance",
        extra_sheets=[
            ("Finance", [["unit_code", "month", "ytd_variance", "forecast_variance"]]),
            ("Notes", [["anything"]]),
        ],
    )
    parsed = parse_file(content, "both.xlsx")
    assert parsed.problems == []
    assert parsed.kind == "performance+finance"
    assert parsed.rows[0].sheet == "Performance"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("81.5", Decimal("81.5")),
        ("81.5%", Decimal("81.5")),
        ("£1,234", Decimal("1234")),
        ("1,234.56", Decimal("1234.56")),
        ("(1,234)", Decimal("-1234")),
        ("-12", Decimal("-12")),
        ("  7 ", Decimal("7")),
    ],
)
def test_number_formats(text, expected):
    assert parse_number(text).value == expected


@pytest.mark.parametrize("text", ["eighty", "1,23", "12..5", "£5%", "1e", "NaN"])
def test_not_numbers(text):
    with pytest.raises(ValueError, match="."):
        parse_number(text)


def test_blank_is_no_value():
    assert parse_number("") is None
    assert parse_number(None) is None


def test_non_numeric_value_is_a_problem_naming_row_and_column():
    parsed = parse_file(
        csv_bytes("unit_code,measure_code,month,actual\nSURG,RTT18,2026-09,eighty"), "p.csv"
    )
    assert [str(p) for p in parsed.all_problems] == [
        "Row 2, column 'actual': 'eighty' is not a number. Enter digits, e.g. 81.5"
    ]


def test_unknown_header_names_the_expected_headers():
    parsed = parse_file(csv_bytes("unit,value\nSURG,1"), "p.csv")
    assert len(parsed.problems) == 1
    message = str(parsed.problems[0])
    assert "header row was not recognised" in message
    assert "unit_code, measure_code, month, actual" in message
    assert "ytd_variance" in message


@pytest.mark.parametrize(
    ("name", "content", "words"),
    [
        ("pack.pdf", b"%PDF-1.4", "not a CSV or Excel"),
        ("pack.xls", b"\xd0\xcf\x11\xe0", "Save it as an Excel workbook (.xlsx)"),
        ("pack.xlsx", b"not a zip at all", "not an Excel workbook"),
        ("pack.xlsx", b"PK\x03\x04broken", "could not be read"),
        ("pack.csv", b"", "is empty"),
        ("pack.csv", b"a\x00b", "binary"),
    ],
)
def test_unreadable_files_are_refused_clearly(name, content, words):
    with pytest.raises(UnreadableFile, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_file(content, name)


@pytest.mark.parametrize(
    "text", ["0", "-0", "-0.00", "12.", "-12.50", "007", "81.5", "1" * 40, "-" + "9" * 30 + ".5"]
)
def test_plain_numbers_read_as_the_general_path_reads_them(text):
    """The fast path for plain digits gives exactly what the general path gives ("- 1" and
    "+1" take the general path to the same number)."""
    fast = parse_number(text)
    general = parse_number("- " + text[1:] if text.startswith("-") else "+" + text)
    assert fast == Number(general.value, text)
    assert str(fast.value) == str(general.value)
