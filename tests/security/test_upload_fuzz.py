"""Fuzzing the upload parser (issue 9): whatever the bytes, :func:`parse_file` either
returns its rows and problems or raises :class:`UnreadableFile` with a message; no other
exception. Bounded by ``HYPOTHESIS_PROFILE=ci`` (100 examples a property), 2000 with
``HYPOTHESIS_PROFILE=full``.
"""

from __future__ import annotations

import io
import os
from datetime import date, datetime

import openpyxl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from openpyxl.utils.exceptions import IllegalCharacterError

from workflow_app.imports.parse import UnreadableFile, parse_file

EXAMPLES = 2000 if os.environ.get("HYPOTHESIS_PROFILE") == "full" else 100
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])

HEADERS = [
    "unit_code", "measure_code", "month", "actual", "trajectory", "kind", "ytd_variance",
    "forecast_variance", "budget", "2026-04", "2026-05", "Apr 2026", " Unit Code ",
    "\ufeffunit_code",
]  # fmt: skip
CELL_TEXT = st.one_of(
    st.sampled_from(
        ["", "SURG", "RTT18", "2026-10", "81.5%", "£1,234", "(1,234)", "-0", "1e308", "1e-400",
         "NaN", "inf", "=HYPERLINK(\"http://evil.test\")", "@SUM(A1)", "+1", "12,34", "٣", "½",
         "9434765919", "actual", "trajectory", "2026-13", "0000-01", "\x00", '"', "\r\n"]
    ),
    st.text(max_size=20),
)  # fmt: skip
CELL_VALUE = st.one_of(
    CELL_TEXT,
    st.integers(min_value=-(10**30), max_value=10**30),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.none(),
    st.dates(min_value=date(1900, 1, 1), max_value=date(9999, 12, 31)),
    st.datetimes(min_value=datetime(1900, 1, 1)),
)


def _parse(content: bytes, name: str) -> None:
    try:
        parsed = parse_file(content, name)
    except UnreadableFile as refused:
        message = str(refused)
    else:
        message = None
    if message is not None:
        assert message.strip(), "a refusal must say why"
        return
    for problem in parsed.all_problems:  # every problem can be shown and stored
        assert str(problem)
        problem.as_dict()
    for row in parsed.rows:
        row.numbers()


@FUZZ
@given(content=st.binary(max_size=2000), suffix=st.sampled_from([".csv", ".xlsx", ".xls", ""]))
def test_any_bytes(content, suffix):
    _parse(content, f"upload{suffix}")


@FUZZ
@given(
    header=st.lists(st.sampled_from(HEADERS), min_size=1, max_size=8),
    rows=st.lists(st.lists(CELL_TEXT, max_size=9), max_size=12),
    delimiter=st.sampled_from([",", ";", "\t"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "cp1252"]),
)
def test_csv_shaped_text(header, rows, delimiter, encoding):
    lines = [delimiter.join(header)] + [delimiter.join(row) for row in rows]
    text = "\n".join(lines)
    try:
        content = text.encode(encoding)
    except UnicodeEncodeError:
        content = text.encode("utf-8")
    _parse(content, "return.csv")


@settings(
    max_examples=max(EXAMPLES // 4, 25),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    header=st.lists(st.sampled_from(HEADERS), min_size=1, max_size=6),
    rows=st.lists(st.lists(CELL_VALUE, max_size=7), max_size=8),
    title=st.sampled_from(["Sheet", "performance", "Finance return", "x"]),
    percent=st.booleans(),
)
def test_xlsx_workbooks(header, rows, title, percent):
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = title
    sheet.append(header)
    for row in rows:
        cleaned = [
            v.replace("\x00", "") if isinstance(v, str) else v for v in row
        ]  # openpyxl itself refuses control characters
        try:
            sheet.append(cleaned)
        except (ValueError, TypeError, IllegalCharacterError):
            continue  # a value openpyxl will not put in a sheet cannot reach us either
    if percent:
        for cells in sheet.iter_rows(min_row=2):
            for cell in cells:
                cell.number_format = "0.0%"
    buffer = io.BytesIO()
    try:
        book.save(buffer)
    except (ValueError, TypeError, OverflowError):
        return  # a value openpyxl cannot write is not a file anyone can upload
    _parse(buffer.getvalue(), "return.xlsx")
