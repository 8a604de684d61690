"""Issuing a monthly report: frozen as hashed JSON with its PDF and XLSX, audited, reopened
exactly as issued; a second click changes nothing; new data makes the next version; the
database refuses changes to an issued report; who may read and issue."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
from datetime import date
from decimal import Decimal

import openpyxl
import pytest
import sqlalchemy as sa

from tests.conftest import csrf_from
from workflow_app.canonical import sha256_hex
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.cases import Concern
from workflow_app.models.measures import FinancePosition
from workflow_app.models.org import Domain, Unit
from workflow_app.models.outbox import OutboxMessage
from workflow_app.models.reports import IssuedReport
from workflow_app.services.reports import issue_report, versions_of

AUG = date(2026, 8, 1)
JUNE = date(2026, 6, 1)
PREVIEW = "/reports/executive_overview/2026-08"


def issue(client, path: str = PREVIEW):
    token = csrf_from(client.get("/auth/settings").text)  # any form's token; cheaper than a build
    return client.post(f"{path}/issue", data={"csrf_token": token})


def pdf_text(data: bytes) -> str:
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    result = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    )
    return result.stdout.decode("utf-8")


def test_issue_reopen_download_and_reissue(demo, client_as):
    client = client_as("performance_team")
    preview = client.get(PREVIEW)
    assert preview.status_code == 200
    assert "Not issued" in preview.text and "Issue this report" in preview.text

    first = issue(client)
    assert first.status_code == 302
    (report,) = versions_of("executive_overview", AUG)
    assert first.headers["Location"] == f"/reports/issued/{report.id}"
    page = client.get(first.headers["Location"])
    assert "Issued as version 1." in page.text
    assert report.content_sha256 in page.text and "Not issued" not in page.text
    assert sha256_hex(report.content) == report.content_sha256
    content = json.loads(report.content)
    assert content["month_title"] == "August 2026"
    assert content["as_at_text"] == "the end of 30 September 2026"

    # A second click (or a second person) with nothing changed: no new version, and it says so.
    again = issue(client)
    assert again.headers["Location"] == f"/reports/issued/{report.id}"
    assert "Nothing has changed since version 1" in client.get(again.headers["Location"]).text
    assert len(versions_of("executive_overview", AUG)) == 1
    events = db.session.scalars(
        sa.select(AuditEvent).where(AuditEvent.action == "report.issued")
    ).all()
    assert [json.loads(e.details)["version"] for e in events if e.object_id == str(report.id)] == [
        1
    ]

    # The files are the ones made at issue, from the frozen content.
    pdf = client.get(f"/reports/issued/{report.id}.pdf")
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert pdf.data == db.session.get(IssuedReport, report.id).pdf
    assert "executive-overview-2026-08-v1.pdf" in pdf.headers["Content-Disposition"]
    text = pdf_text(pdf.data)
    for words in ("Monthly escalation overview", "August 2026", "version 1", report.content_sha256,
                  "Surgery", "Changes decided, with reasons", "Finance position"):  # fmt: skip
        assert words in text, words
    xlsx = client.get(f"/reports/issued/{report.id}.xlsx")
    book = openpyxl.load_workbook(io.BytesIO(xlsx.data))
    assert book.sheetnames == ["Summary", "Levels", "Changes", "Proposals", "Plans", "Actions",
                               "Exceptions", "Finance", "Concerns"]  # fmt: skip
    summary = {row[0]: row[1] for row in book["Summary"].iter_rows(values_only=True)}
    assert summary["Content SHA-256"] == report.content_sha256 and summary["Version"] == 1
    finance = list(book["Finance"].iter_rows(min_row=2, values_only=True))
    assert len(finance) == 13 and finance[-1][0] == "Total"
    changes = list(book["Changes"].iter_rows(min_row=2, values_only=True))
    assert ("SURG", "Approved") in {(row[0], row[8]) for row in changes}

    # Revised data: the next issue is version 2; version 1 still shows what it said.
    surgery = db.session.scalar(sa.select(Unit).where(Unit.code == "SURG"))
    db.session.add(
        FinancePosition(
            unit_id=surgery.id,
            period=AUG,
            ytd_variance=Decimal("612345"),
            forecast_variance=Decimal("700000"),
            revision=2,
        )
    )
    db.session.commit()
    second = issue(client)
    v2, v1 = versions_of("executive_overview", AUG)
    assert (v2.version, v1.id) == (2, report.id)
    assert second.headers["Location"] == f"/reports/issued/{v2.id}"
    assert "£612,345" in client.get(f"/reports/issued/{v2.id}").text
    old = client.get(f"/reports/issued/{v1.id}").text
    assert "£612,345" not in old and "a later version exists" in old
    assert db.session.get(IssuedReport, v1.id).content == report.content


def test_issued_reports_cannot_be_changed_and_workbooks_neutralise_formulas(demo, person_with_role):
    unit = db.session.scalar(sa.select(Unit).where(Unit.code == "EST"))
    domain = db.session.scalar(sa.select(Domain).where(Domain.code == "leadership"))
    db.session.add(
        Concern(
            unit_id=unit.id,
            domain_id=domain.id,
            kind="external_review",
            severity="low",
            summary='=HYPERLINK("http://evil.test","click")',
            occurred_on=date(2026, 6, 9),
        )
    )
    db.session.commit()
    outcome = issue_report(person_with_role("ceo"), "committee", JUNE)
    db.session.commit()
    report = outcome.report
    assert outcome.created and report.version == 1 and report.issued_by.name == "Carys Llewellyn"
    book = openpyxl.load_workbook(io.BytesIO(report.xlsx))
    summaries = [row[6] for row in book["Concerns"].iter_rows(min_row=2, values_only=True)]
    assert '\'=HYPERLINK("http://evil.test","click")' in summaries
    assert "Proposals" not in book.sheetnames  # the committees see decided matters only

    table = IssuedReport.__table__
    attempts = [
        sa.update(table).where(table.c.id == report.id).values(content="{}"),
        sa.update(table).where(table.c.id == report.id).values(content_sha256="0" * 64),
        sa.update(table).where(table.c.id == report.id).values(pdf=b"%PDF-forged"),
        sa.update(table).where(table.c.id == report.id).values(version=7),
        sa.delete(table).where(table.c.id == report.id),
    ]
    for statement in attempts:
        with pytest.raises(sa.exc.DatabaseError, match="immutable"):
            db.session.execute(statement)
        db.session.rollback()
    stored = db.session.get(IssuedReport, report.id)
    assert sha256_hex(stored.content) == stored.content_sha256
    assert stored.pdf == report.pdf


def test_who_may_read_and_issue(demo, client_as):
    lead = client_as("directorate_lead")
    for path in ("/reports", PREVIEW):
        refused = lead.get(path)
        assert refused.status_code == 403
        assert "Monthly reports cover every unit" in refused.text

    committee = client_as("committee_member")
    index = committee.get("/reports")
    assert index.status_code == 200 and "October 2026" in index.text
    preview = committee.get("/reports/committee/2026-10")
    assert preview.status_code == 200
    assert "Not issued" in preview.text and "Issue this report" not in preview.text
    assert "For the Quality and Safety Committee" in preview.text
    assert "<svg" in preview.text and 'role="img"' in preview.text
    before = db.session.scalar(sa.select(sa.func.count()).select_from(IssuedReport))
    token = csrf_from(preview.text)
    refused = committee.post("/reports/committee/2026-10/issue", data={"csrf_token": token})
    assert refused.status_code == 403
    assert db.session.scalar(sa.select(sa.func.count()).select_from(IssuedReport)) == before

    executive = client_as("executive_director").get("/reports/executive_overview/2026-10")
    assert executive.status_code == 200
    assert "Proposals awaiting the Executive Team" in executive.text
    assert "Issue this report" not in executive.text


def test_the_monthly_review_tells_the_performance_team_the_reports_are_ready(demo):
    messages = db.session.scalars(
        sa.select(OutboxMessage).where(
            OutboxMessage.kind == "monthly_review", OutboxMessage.subject.contains("October 2026")
        )
    ).all()
    # Everyone in the performance team has it, the demo's Head of Performance among them.
    assert "performance.team@demo.escalate.test" in {m.to_address for m in messages}
    for message in messages:
        assert "/reports/executive_overview/2026-10" in message.body_text
        assert "/reports/committee/2026-10" in message.body_html
    assert (
        db.session.scalar(
            sa.select(sa.func.count())
            .select_from(IssuedReport)
            .where(IssuedReport.month == date(2026, 10, 1))
        )
        == 0
    )  # ready to check: nothing is issued by itself


@pytest.mark.parametrize(
    ("path", "message"),
    [
        ("/reports/executive_overview/2026-13", "is not a month"),
        ("/reports/executive_overview/26-10", "is not a month"),
        ("/reports/executive_overview/2026-+1", "is not a month"),
        ("/reports/executive_overview/2026-11", "has not ended yet"),
        ("/reports/board_pack/2026-10", "There is no such report"),
        ("/reports/issued/999999", "There is no issued report"),
    ],
)
def test_bad_addresses_say_what_is_wrong(demo, client_as, path, message):
    response = client_as("performance_team").get(path)
    assert response.status_code == 404
    assert message in response.text


def test_two_clicks_at_the_same_moment_issue_one_version(demo, client_as):
    """A double-click (or two people at once): exactly one version, and both requests end on
    it with a message, never an error."""
    import threading

    clients = [client_as("performance_team"), client_as("ceo")]
    tokens = [csrf_from(c.get("/auth/settings").text) for c in clients]
    barrier = threading.Barrier(2)
    responses = [None, None]

    def click(index: int) -> None:
        barrier.wait()
        responses[index] = clients[index].post(
            "/reports/committee/2026-07/issue", data={"csrf_token": tokens[index]}
        )

    threads = [threading.Thread(target=click, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    (report,) = versions_of("committee", date(2026, 7, 1))
    assert [r.status_code for r in responses] == [302, 302]
    assert {r.headers["Location"] for r in responses} == {f"/reports/issued/{report.id}"}
