"""Formal notifications through the pages (issue #5): a letter of concern or performance notice
issued without a level change where the framework allows it (framework B, 7.2: levels 1 and
2), by the framework's decider, re-authenticated, with a reason and the evidence; the letter is
on the case, the unit's contacts get the e-mail. Refused with a clear message, and nothing
changed, at a level where the framework allows none, for a wrong role, without a reason, and
with a wrong password."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORD, csrf_from, sign_in
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.cases import Decision, EscalationCase, LevelChange
from workflow_app.models.letters import Letter
from workflow_app.models.outbox import OutboxMessage

DG_TITLE = "NHS Wales Chief Executive / Director General (HSCEYG)"


@pytest.fixture
def wales(create_person, create_unit):
    people = {
        "dg": create_person("director_general", name="Dai General", email="dg@example.gov.wales"),
        "minister": create_person("minister", name="Min Ister", email="min@example.gov.wales"),
        "analyst": create_person(
            "performance_team", name="Pat Analyst", email="pat@example.gov.wales"
        ),
        "chief": create_person(
            "directorate_lead", name="Org Chief", email="chief@example.nhs.wales"
        ),
        "ceo": create_person("ceo", name="Carys Chief", email="ceo@example.nhs.uk"),
    }
    unit = create_unit(
        code="PTHB",
        name="Powys Health Board",
        framework="nhs_wales",
        kind="organisation",
        lead=people["chief"],
    )
    return people, unit


def case_of(unit, track: str = "quality") -> EscalationCase:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == track
        )
    )


def at_level(unit, level: str) -> EscalationCase:
    case = case_of(unit)
    case.level = level
    db.session.commit()
    return case


def counts() -> dict[str, int]:
    db.session.expire_all()
    return {
        model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
        for model in (Decision, Letter, LevelChange, OutboxMessage, AuditEvent)
    }


def client_for(app, person):
    client = app.test_client()
    assert sign_in(client, person.email).status_code == 302
    return client


def form_data(page_text: str, **values) -> dict:
    """The form's fields with their CSRF token (from any page of the session with a form)."""
    data = {
        "csrf_token": csrf_from(page_text),
        "kind": "letter_of_concern",
        "reason": "Quality concerns on mental health wards not yet addressed",
        "evidence_note": "HIW unannounced inspection, 8 October 2026: immediate assurance",
        "password": PASSWORD,
    }
    data.update(values)
    return {k: v for k, v in data.items() if v is not None}


@pytest.mark.parametrize("level", ["1", "2"])
def test_the_director_general_issues_a_letter_of_concern_without_a_level_change(app, wales, level):
    people, unit = wales
    case = at_level(unit, level)
    client = client_for(app, people["dg"])

    case_page = client.get(f"/cases/{case.id}")
    assert f'href="/decisions/notify/{case.id}"' in case_page.text
    page = client.get(f"/decisions/notify/{case.id}")
    assert page.status_code == 200
    assert "Issue a formal notification" in page.text
    assert "Letter of concern" in page.text and "Performance notice" in page.text
    assert f"You issue it as {DG_TITLE}" in page.text

    before = counts()
    response = client.post(f"/decisions/notify/{case.id}", data=form_data(page.text))
    assert response.status_code == 302, response.text
    assert response.headers["Location"] == f"/cases/{case.id}"

    case = case_of(unit)
    assert case.level == level
    notice = db.session.scalar(sa.select(Decision).where(Decision.case_id == case.id))
    assert (notice.kind, notice.status, notice.from_level, notice.to_level) == (
        "notice",
        "approved",
        level,
        level,
    )
    assert json.loads(notice.evidence) == {
        "note": "HIW unannounced inspection, 8 October 2026: immediate assurance"
    }
    assert [s.person_id for s in notice.signatures] == [people["dg"].id]
    letter = db.session.scalar(sa.select(Letter).where(Letter.case_id == case.id))
    assert letter.kind == "letter_of_concern" and letter.decision_id == notice.id
    assert counts()["LevelChange"] == before["LevelChange"]  # no level change
    (mail,) = db.session.scalars(sa.select(OutboxMessage)).all()
    assert mail.to_address == "chief@example.nhs.wales"
    assert mail.subject == "Powys Health Board: Letter of concern on Quality (level unchanged)"
    assert mail.status == "held"  # until the letter's PDF exists, then sent with it
    assert "Quality concerns on mental health wards" in mail.body_text

    shown = client.get(response.headers["Location"])
    assert "Letter of concern issued to Powys Health Board." in shown.text
    assert f"Letter of concern ({letter.reference})" in shown.text
    assert "Formal notification at" in shown.text and "level unchanged" in shown.text


def test_a_performance_notice_can_be_chosen(app, wales):
    people, unit = wales
    case = at_level(unit, "2")
    client = client_for(app, people["dg"])
    page = client.get(f"/decisions/notify/{case.id}")
    response = client.post(
        f"/decisions/notify/{case.id}", data=form_data(page.text, kind="performance_notice")
    )
    assert response.status_code == 302
    assert db.session.scalar(sa.select(Letter.kind)) == "performance_notice"


def test_at_a_level_where_the_framework_allows_none_nothing_is_offered_or_issued(app, wales):
    people, unit = wales
    case = at_level(unit, "3")
    client = client_for(app, people["dg"])
    assert "/decisions/notify/" not in client.get(f"/cases/{case.id}").text
    page = client.get(f"/decisions/notify/{case.id}")
    assert page.status_code == 200
    refusal = (
        "Formal notifications can be issued at Routine arrangements and Areas of concern, "
        "not at Enhanced monitoring"
    )
    assert refusal in page.text
    assert 'name="reason"' not in page.text  # no form
    settings = client.get("/auth/settings").text  # a page with a form: its CSRF token
    before = counts()
    response = client.post(f"/decisions/notify/{case.id}", data=form_data(settings))
    assert response.status_code == 400
    assert f"{refusal}, so nothing was issued." in response.text
    assert counts() == before
    assert case_of(unit).level == "3"


@pytest.mark.parametrize("who", ["minister", "analyst", "ceo", "chief"])
def test_a_wrong_role_is_refused_and_not_offered_the_link(app, wales, who):
    people, unit = wales
    case = at_level(unit, "1")
    client = client_for(app, people[who])
    case_page = client.get(f"/cases/{case.id}")
    assert "/decisions/notify/" not in case_page.text
    page = client.get(f"/decisions/notify/{case.id}")
    assert page.status_code == 403
    assert f"A formal notification is issued by {DG_TITLE}" in page.text
    settings = client.get("/auth/settings").text  # a page with a form: its CSRF token
    before = counts()
    response = client.post(f"/decisions/notify/{case.id}", data=form_data(settings))
    assert response.status_code == 403
    assert "nothing was issued" in response.text
    assert counts() == before


def test_a_delegate_of_the_director_general_may_issue_one(app, wales, create_person):
    from datetime import timedelta

    from workflow_app.clock import utcnow
    from workflow_app.services.decisions import create_delegation

    people, unit = wales
    deputy = create_person("executive_director", name="Dewi Deputy", email="dewi@example.gov.wales")
    create_delegation(
        people["dg"],
        delegator=people["dg"],
        delegate=deputy,
        role="director_general",
        starts_at=utcnow() - timedelta(hours=1),
        ends_at=utcnow() + timedelta(days=7),
        reason="Annual leave",
    )
    db.session.commit()
    case = at_level(unit, "2")
    client = client_for(app, deputy)
    assert f'href="/decisions/notify/{case.id}"' in client.get(f"/cases/{case.id}").text
    page = client.get(f"/decisions/notify/{case.id}")
    assert "as delegate of Dai General" in page.text
    response = client.post(f"/decisions/notify/{case.id}", data=form_data(page.text))
    assert response.status_code == 302
    (signature,) = db.session.scalar(sa.select(Decision)).signatures
    assert signature.person_id == deputy.id and signature.on_behalf_of_id == people["dg"].id


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("reason", "  ", "Give the reason for the notification"),
        ("evidence_note", "", "Describe the evidence"),
        ("kind", None, "Choose the notification to issue"),
        ("password", "not my password", "Your password was not correct, so nothing was signed"),
    ],
)
def test_a_missing_reason_evidence_kind_or_a_wrong_password_issues_nothing(
    app, wales, field, value, message
):
    people, unit = wales
    case = at_level(unit, "2")
    client = client_for(app, people["dg"])
    page = client.get(f"/decisions/notify/{case.id}")
    before = counts()
    response = client.post(
        f"/decisions/notify/{case.id}", data=form_data(page.text, **{field: value})
    )
    assert response.status_code == 400
    assert message in response.text
    assert "Quality concerns on mental health wards" in response.text or field == "reason"
    assert "not my password" not in response.text  # the password is never sent back
    after = counts()
    if field == "password":
        # Only the refusal is recorded (audited and counted towards the lock, decision 0030).
        assert after == {**before, "AuditEvent": before["AuditEvent"] + 1}
        refused = db.session.scalar(sa.select(AuditEvent).order_by(AuditEvent.id.desc()))
        assert refused.action == "signature.refused"
        assert db.session.get(type(people["dg"]), people["dg"].id).failed_logins == 1
    else:
        assert after == before
    assert case_of(unit).level == "2"


def test_a_kind_the_framework_does_not_have_is_refused(app, wales):
    people, unit = wales
    case = at_level(unit, "1")
    client = client_for(app, people["dg"])
    page = client.get(f"/decisions/notify/{case.id}")
    before = counts()
    response = client.post(
        f"/decisions/notify/{case.id}", data=form_data(page.text, kind="escalation_3")
    )
    assert response.status_code == 400
    assert "&#39;escalation_3&#39; is not a formal notification of this framework" in response.text
    assert counts() == before


def test_a_framework_without_formal_notifications_refuses_everyone(app, create_person, create_unit):
    ceo = create_person("ceo", email="ceo@example.nhs.uk")
    unit = create_unit(code="SURG", name="Surgery")
    case = case_of(unit, "finance")
    client = client_for(app, ceo)
    assert "/decisions/notify/" not in client.get(f"/cases/{case.id}").text
    page = client.get(f"/decisions/notify/{case.id}")
    assert page.status_code == 403
    assert "has no formal notifications, so nothing was issued" in page.text


def test_another_units_lead_gets_404(app, wales, create_person, create_unit):
    people, unit = wales
    other = create_person("directorate_lead", email="other@example.nhs.wales")
    create_unit(code="CVUHB", framework="nhs_wales", kind="organisation", lead=other)
    case = at_level(unit, "1")
    client = client_for(app, other)
    assert client.get(f"/decisions/notify/{case.id}").status_code == 404
