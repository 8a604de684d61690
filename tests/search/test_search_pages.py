"""The search page: a GET form, results in pages, clear errors for bad filters, and CSV/XLSX
downloads of every matching row, neutralised against formula injection."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime
from html import unescape
from urllib.parse import parse_qs, urlsplit

import openpyxl
import pytest

from tests.search.conftest import csv_rows, xlsx_rows
from tests.search.test_search_service import add_plan
from workflow_app.services.search import PAGE_SIZE

HOSTILE = [
    '=HYPERLINK("http://evil.test","Click")',
    "+1",
    "-1",
    "@SUM(1)",
    "\t=1+1",
    "\r=1+1",
]


def hrefs(html: str, text: str) -> list[str]:
    """The href of every link whose visible text starts with ``text``."""
    return [
        unescape(m.group(1))
        for m in re.finditer(r'<a href="([^"]+)"[^>]*>\s*' + re.escape(text), html)
    ]


@pytest.fixture
def ceo_client(create_person, login):
    return login(create_person("ceo", name="Chief Executive"))


def test_search_finds_links_and_counts_every_kind(ceo_client, create_unit, create_domain):
    unit = create_unit(code="SURG", name="Surgery")
    create_unit(code="MED", name="Medicine")
    add_plan(unit, "Surgery recovery plan")

    page = ceo_client.get("/search/?q=surgery")
    assert page.status_code == 200
    assert 'name="q"' in page.text and 'value="surgery"' in page.text
    assert f'href="/units/{unit.id}"' in page.text and "Medicine" not in page.text
    # The other kinds say how many match the same words.
    assert "Cases (2)" in page.text and "Plans (1)" in page.text and "Measures (0)" in page.text
    plans = ceo_client.get("/search/?q=surgery&type=plans")
    assert "Surgery recovery plan" in plans.text

    nothing = ceo_client.get("/search/?q=cardiology")
    assert nothing.status_code == 200 and "No units match" in nothing.text


BAD_FILTERS = [
    ("type=measures&rag=purple", "Choose a RAG status from the list"),
    ("type=cases&date_from=2026-02-30", "Enter a real date for &#39;Reached its level on or after"),
    ("type=plans&date_from=2026-10-01&date_to=2026-09-01", "The &#39;to&#39; date must be"),
    ("q=" + "x" * 201, "Search for at most 200 characters"),
    ("level=9z", "Choose a level from the list"),
]


def test_bad_input_is_explained_and_nothing_is_searched(ceo_client, create_unit):
    create_unit(code="SURG", name="Surgery")
    for query, message in BAD_FILTERS:
        page = ceo_client.get(f"/search/?{query}")
        assert page.status_code == 400, query
        assert "There is a problem" in page.text and message in page.text, query
        assert "Surgery" not in page.text, query
        assert ceo_client.get(f"/search/?{query}&format=csv").status_code == 400, query

    # UK day-first dates are understood as well as ISO ones.
    assert ceo_client.get("/search/?type=cases&date_from=1/4/2026").status_code == 200

    # A filter left in the URL from another kind is ignored, not reported.
    page = ceo_client.get("/search/?type=units&rag=purple&date_from=nonsense")
    assert page.status_code == 200 and "Surgery" in page.text

    response = ceo_client.get("/search/?format=pdf")
    assert response.status_code == 400
    assert "format=csv or format=xlsx" in response.text


def test_downloads_hold_every_page_with_the_filters_kept(clock, create_person, login, create_unit):
    clock.move_to(datetime(2026, 11, 23, 23, 30, tzinfo=UTC))  # 23:30 GMT: still the 23rd
    ceo_client = login(create_person("ceo"))
    for n in range(PAGE_SIZE + 5):
        create_unit(code=f"W{n:02}", name=f"Ward {n:02}")
    create_unit(code="OTHER", name="Theatres")

    page = ceo_client.get("/search/?q=ward&type=units&page=2")
    assert "Showing 26 to 30 of 30" in page.text
    (csv_href,) = hrefs(page.text, "CSV")
    (xlsx_href,) = hrefs(page.text, "XLSX")
    csv_query = parse_qs(urlsplit(csv_href).query)
    assert csv_query == {"q": ["ward"], "type": ["units"], "format": ["csv"]}  # no page
    assert parse_qs(urlsplit(xlsx_href).query)["format"] == ["xlsx"]

    response = ceo_client.get(csv_href)
    assert response.headers["Content-Disposition"] == (
        'attachment; filename="escalate-search-units-2026-11-23.csv"'
    )
    rows = csv_rows(response)
    assert rows[0] == ["Code", "Name", "Kind", "Framework", "Levels", "Lead", "Active"]
    assert [row[0] for row in rows[1:]] == [f"W{n:02}" for n in range(30)]
    assert response.data.count(b"\r\n") == 31  # RFC 4180 line ends
    sheet = xlsx_rows(ceo_client.get(xlsx_href))
    assert sheet[0][0] == "Code" and [row[0] for row in sheet[1:]] == [
        f"W{n:02}" for n in range(30)
    ]


def test_formula_injection_is_neutralised_in_both_formats(ceo_client, create_unit):
    for n, name in enumerate(HOSTILE):
        unit = create_unit(code=f"H{n}", name=name)
        add_plan(unit, name)

    for kind, column in (("units", 1), ("plans", 2)):
        rows = csv_rows(ceo_client.get(f"/search/?type={kind}&format=csv"))[1:]
        names = sorted(row[column] for row in rows)
        # A cell's line breaks come out as LF in both formats (a CR-led cell still neutralised).
        assert names == sorted("'" + name.replace("\r", "\n") for name in HOSTILE), (
            "every hostile cell starts with an apostrophe"
        )
        sheet = xlsx_rows(ceo_client.get(f"/search/?type={kind}&format=xlsx"))[1:]
        cells = sorted(row[column] for row in sheet)
        assert cells == names
    book = openpyxl.load_workbook(
        io.BytesIO(ceo_client.get("/search/?type=units&format=xlsx").data)
    )
    assert {cell.data_type for row in book.active.iter_rows(min_row=2) for cell in row[:2]} == {
        "s"
    }, "no cell is stored as a formula"
