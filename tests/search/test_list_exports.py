"""CSV/XLSX downloads of the existing lists (units, deadlines, proposals, decisions, meetings,
the audit trail) through the one exporter: a visible link that keeps the filters, the same
rows as the page, and nothing a person may not see."""

from __future__ import annotations

import re
from html import unescape

import pytest
import sqlalchemy as sa

from tests.search.conftest import csv_rows, xlsx_rows
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.cases import EscalationCase
from workflow_app.models.deadlines import Deadline


@pytest.fixture
def pending(world):
    """A pending proposal on unit B (an executive raises Level 3 on performance)."""
    from workflow_app.services.decisions import raise_escalation

    case = db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == world.unit_b.id, EscalationCase.track == "performance"
        )
    )
    decision = raise_escalation(
        world.people["executive_director"],
        case,
        to_level="3",
        reason='=HYPERLINK("http://evil.test") no improvement',
        evidence_note="RTT18 still falling",
    )
    db.session.commit()
    return decision


def download_links(html: str) -> dict[str, str]:
    links = re.findall(r'<a href="([^"]*format=(csv|xlsx)[^"]*)">', html)
    return {fmt: unescape(href) for href, fmt in links}


def both(client, url: str) -> tuple[list[list[str]], list[list[object]]]:
    """The page's CSV and XLSX downloads, read through its own links."""
    page = client.get(url)
    assert page.status_code == 200
    links = download_links(page.text)
    assert set(links) == {"csv", "xlsx"}, f"{url} shows both download links"
    return csv_rows(client.get(links["csv"])), xlsx_rows(client.get(links["xlsx"]))


def column(rows, title: str) -> list:
    index = rows[0].index(title)
    return [row[index] for row in rows[1:]]


def test_units_and_search_a_lead_gets_only_their_unit_and_bad_formats_fail(world, clients):
    rows, sheet = both(clients["ceo"], "/units/")
    assert column(rows, "Code") == ["UA", "UB"]
    assert column(rows, "Performance: level")[1] == "Level 2a"
    assert column(rows, "Finance: level")[1] == "Level 2b (Financial)"
    assert [row[0] for row in sheet[1:]] == ["UA", "UB"]
    lead_rows, lead_sheet = both(clients["directorate_lead"], "/units/")
    assert column(lead_rows, "Code") == ["UA"] and [r[0] for r in lead_sheet[1:]] == ["UA"]

    # Search, its page and its downloads: the lead of unit A never gets a row of unit B...
    lead = clients["directorate_lead"]
    for kind in ("units", "cases", "measures", "plans"):
        for query in (f"type={kind}", f"type={kind}&q=ub"):
            page = lead.get(f"/search/?{query}")
            assert page.status_code == 200
            assert "Unit B" not in page.text, query
            for fmt, read in (("csv", csv_rows), ("xlsx", xlsx_rows)):
                found = read(lead.get(f"/search/?{query}&format={fmt}"))
                flat = " ".join(str(cell) for row in found for cell in row)
                assert "Unit B" not in flat and "UB" not in flat, (query, fmt)
    # ...while the same searches find unit B's rows for the executive (the checks can fail).
    for kind in ("units", "cases", "measures", "plans"):
        assert "Unit B" in clients["ceo"].get(f"/search/?type={kind}&q=ub").text, kind

    for url in (
        "/units/",
        "/deadlines/",
        "/proposals/",
        "/decisions/",
        "/meetings/",
        "/admin/audit",
    ):
        response = clients["ceo"].get(f"{url}?format=docx")
        assert response.status_code == 400, url
        assert "format=csv or format=xlsx" in response.text, url


def test_proposals_decisions_and_deadlines_download_what_the_page_lists(pending, clients):
    proposals, sheet = both(clients["ceo"], "/proposals/")
    assert column(proposals, "Unit code") == ["UB"]
    assert column(proposals, "To level") == ["Level 3"]
    assert column(proposals, "Why")[0].startswith("'=HYPERLINK(")
    assert sheet[1][sheet[0].index("Why")].startswith("'=HYPERLINK(")

    decisions, _ = both(clients["ceo"], "/decisions/")
    assert column(decisions, "Unit") == ["Unit B"]
    assert column(decisions, "Awaiting")[0].startswith("your signature as")
    committee, _ = both(clients["committee_member"], "/decisions/")
    assert column(committee, "Awaiting")[0] != column(decisions, "Awaiting")[0]

    for url in ("/proposals/", "/decisions/"):
        lead_rows, _ = both(clients["directorate_lead"], url)
        assert lead_rows[1:] == [], url

    # Deadlines: the download keeps the page's scope.
    everyone, _ = both(clients["performance_team"], "/deadlines/?scope=all")
    mine, _ = both(clients["performance_team"], "/deadlines/")
    open_ones = db.session.scalars(
        sa.select(Deadline).where(Deadline.status.in_(("open", "paused"))).order_by(Deadline.due_at)
    ).all()
    assert len(open_ones) > 1
    assert sorted(column(everyone, "What")) == sorted(d.title for d in open_ones)
    assert set(column(everyone, "Unit code")) == {"UB"}
    recovery = column(everyone, "What").index("Recovery plan due")
    assert column(everyone, "Due")[recovery] == "2026-12-07 17:00"  # UK time
    assert mine[1:] == []  # the performance team owns none of them
    lead_b = clients["directorate_lead"]
    assert both(lead_b, "/deadlines/?scope=all")[0][1:] == []  # not unit B's lead


def test_meetings_follow_the_unit_filter_and_the_audit_trail_downloads_whole(world, clients):
    rows, sheet = both(clients["ceo"], f"/meetings/?unit={world.unit_b.id}")
    assert column(rows, "Meeting") == ["Budget Review Meeting: Unit B"]
    assert column(rows, "Status") == ["to be scheduled"]
    assert sheet[1][0] == "to be scheduled"
    other, _ = both(clients["ceo"], f"/meetings/?unit={world.unit_a.id}")
    assert other[1:] == []

    # The audit trail: every event (past the page of 50), for those who may read it.
    from workflow_app.services.audit import record_event

    for n in range(30):
        record_event("test.note", object_type="unit", object_id=n, summary=f"Note {n}")
    db.session.commit()
    rows, sheet = both(clients["committee_member"], "/admin/audit")
    events = db.session.scalar(sa.select(sa.func.count(AuditEvent.id)))
    assert len(rows) - 1 >= events > 50, "every event, not only the first page of 50"
    assert len(sheet) == len(rows)
    assert set(rows[0]) >= {"When", "Who", "What", "Action", "Hash"}
    assert clients["directorate_lead"].get("/admin/audit?format=csv").status_code == 403
