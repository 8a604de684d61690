"""Fixtures for the search and list-export tests: the security world (two units, one
person per role, unit B escalated with a plan, a meeting, deadlines and a letter)."""

from __future__ import annotations

import csv
import io

import openpyxl

from tests.security.conftest import clients, world  # noqa: F401 - fixtures used by the tests


def csv_rows(response) -> list[list[str]]:
    """A CSV download parsed back with the csv module (after checking the BOM)."""
    assert response.status_code == 200, response.text[:500]
    assert response.mimetype == "text/csv"
    assert response.data.startswith(b"\xef\xbb\xbf"), "UTF-8 byte order mark for Excel"
    return list(csv.reader(io.StringIO(response.data.decode("utf-8-sig"), newline="")))


def xlsx_rows(response) -> list[list[object]]:
    """An XLSX download read back with openpyxl: every row's values."""
    assert response.status_code == 200, response.text[:500]
    assert response.mimetype.endswith("spreadsheetml.sheet")
    book = openpyxl.load_workbook(io.BytesIO(response.data))
    return [list(row) for row in book.active.iter_rows(values_only=True)]
