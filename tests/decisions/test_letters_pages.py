"""Issued letters on the case page: readable as issued, PDF once made, only by those entitled."""

from __future__ import annotations

import hashlib

from tests.conftest import PASSWORD
from tests.decisions.test_decide import board, case_of, overspend_proposal  # noqa: F401
from workflow_app.extensions import db
from workflow_app.services.decisions import decide_proposal


def test_letter_html_and_pdf_downloads(client, login, board, create_person, create_unit):  # noqa: F811
    from workflow_app.scheduling.jobs import sweep

    people, unit = board
    proposal = overspend_proposal(unit)
    decide_proposal(people["ceo"], proposal, outcome="approve", reason="Agreed", password=PASSWORD)
    db.session.commit()
    case = case_of(unit, "finance")
    login(people["lead"])
    page = client.get(f"/cases/{case.id}")
    assert "Escalation 2b" in page.text and "PDF being prepared" in page.text
    from workflow_app.models.letters import Letter

    letter = db.session.query(Letter).one()
    html = client.get(f"/letters/{letter.id}")
    assert html.status_code == 200
    assert hashlib.sha256(html.data).hexdigest() == letter.html_sha256
    assert "style-src 'unsafe-inline'" in html.headers["Content-Security-Policy"]
    assert client.get(f"/letters/{letter.id}.pdf").status_code == 404
    sweep()
    pdf = client.get(f"/letters/{letter.id}.pdf")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF")
    db.session.refresh(letter)
    assert hashlib.sha256(pdf.data).hexdigest() == letter.pdf_sha256


def test_someone_elses_letter_is_not_found(client, login, board, create_person, create_unit):  # noqa: F811
    people, unit = board
    proposal = overspend_proposal(unit)
    decide_proposal(people["ceo"], proposal, outcome="approve", reason="Agreed", password=PASSWORD)
    db.session.commit()
    from workflow_app.models.letters import Letter

    letter = db.session.query(Letter).one()
    outsider = create_person("directorate_lead", email="other@example.nhs.uk")
    create_unit(lead=outsider)
    login(outsider)
    assert client.get(f"/letters/{letter.id}").status_code == 404
    assert client.get(f"/letters/{letter.id}.pdf").status_code == 404
