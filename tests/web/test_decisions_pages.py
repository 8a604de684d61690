"""Decision pages: what awaits my signature, the decision page, signing, the letter preview,
and raising an escalation by hand."""

from __future__ import annotations

import json
from datetime import date

import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORD, csrf_from
from workflow_app.extensions import db
from workflow_app.models.cases import Decision, DecisionSignature, EscalationCase
from workflow_app.models.deadlines import Deadline
from workflow_app.models.letters import Letter
from workflow_app.models.measures import FinancePosition
from workflow_app.services.review import run_review

OCT = date(2026, 10, 1)


@pytest.fixture(autouse=True)
def _decisions_blueprint(app):
    """Register the blueprint until the lead adds it to ``register_web``."""
    from workflow_app.web.decisions import bp

    if "decisions" not in app.blueprints:
        app.register_blueprint(bp)


@pytest.fixture
def board(create_person, create_unit):
    people = {
        "ceo": create_person("ceo", name="Carys Chief", email="ceo@example.nhs.uk"),
        "exec": create_person("executive_director", name="Eve Exec", email="exec@example.nhs.uk"),
        "lead": create_person("directorate_lead", name="Lee Lead", email="lead@example.nhs.uk"),
        "other_lead": create_person(
            "directorate_lead", name="Olu Other", email="olu@example.nhs.uk"
        ),
    }
    surgery = create_unit(
        code="SURG",
        name="Surgery",
        lead=people["lead"],
        accountable_executive_id=people["exec"].id,
        budget_holder_id=people["lead"].id,
    )
    medicine = create_unit(code="MED", name="Medicine", lead=people["other_lead"])
    return people, surgery, medicine


def overspend_proposal(unit) -> Decision:
    db.session.add(
        FinancePosition(
            unit_id=unit.id, period=OCT, ytd_variance=742_310, forecast_variance=968_400
        )
    )
    db.session.commit()
    (proposal,) = run_review(OCT).created
    db.session.commit()
    return proposal


def case_of(unit, track) -> EscalationCase:
    db.session.expire_all()
    return db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == track
        )
    )


def sign_data(page_text: str, **values) -> dict:
    data = {
        "csrf_token": csrf_from(page_text),
        "outcome": "approve",
        "reason": "Overspend confirmed at the finance review",
        "password": PASSWORD,
    }
    data.update(values)
    return data


def counts():
    db.session.expire_all()
    return (
        db.session.scalar(sa.select(sa.func.count()).select_from(Letter)),
        db.session.scalar(sa.select(sa.func.count()).select_from(Deadline)),
        db.session.scalar(sa.select(sa.func.count()).select_from(DecisionSignature)),
    )


# --- the awaiting list -----------------------------------------------------------------------


def test_the_ceo_sees_the_2b_proposal_awaiting_their_signature(client, login, board):
    people, surgery, _ = board
    proposal = overspend_proposal(surgery)
    login(people["ceo"])
    page = client.get("/decisions/")
    assert page.status_code == 200
    mine, others = page.text.split("Awaiting others")
    assert f"/decisions/{proposal.id}" in mine
    assert "Surgery" in mine and "Finance" in mine
    assert "Level 2b (Financial)" in mine and "Oct 2026" in mine
    assert "as Chief Executive" in mine
    assert f"/decisions/{proposal.id}" not in others


def test_an_executive_director_sees_a_ceo_decision_under_awaiting_others(client, login, board):
    people, surgery, _ = board
    proposal = overspend_proposal(surgery)
    login(people["exec"])
    page = client.get("/decisions/")
    mine, others = page.text.split("Awaiting others")
    assert "Nothing is waiting for your signature." in mine
    assert f"/decisions/{proposal.id}" in others
    assert "Chief Executive" in others


def test_a_lead_signs_nothing_and_sees_only_their_units(client, login, board):
    people, surgery, medicine = board
    mine_proposal = overspend_proposal(surgery)
    theirs = overspend_proposal(medicine)
    login(people["lead"])
    page = client.get("/decisions/")
    mine, others = page.text.split("Awaiting others")
    assert "Nothing is waiting for your signature." in mine
    assert f"/decisions/{mine_proposal.id}" in others
    assert f"/decisions/{theirs.id}" not in page.text
    assert client.get(f"/decisions/{theirs.id}").status_code == 404
    assert client.get(f"/decisions/{theirs.id}/letter-preview").status_code == 404
    token = csrf_from(page.text)  # the sign-out form's
    refused = client.post(f"/decisions/{theirs.id}/sign", data=sign_data(page.text))
    assert refused.status_code == 404, token
    own = client.post(f"/decisions/{mine_proposal.id}/sign", data=sign_data(page.text))
    assert own.status_code == 403
    assert case_of(surgery, "finance").level == "1"


def test_multi_signature_rules_show_which_signature_is_awaited(
    client, login, create_person, create_unit
):
    # A framework-specific role grants no visibility by itself: the DG also sees every unit.
    dg = create_person(
        "director_general", "committee_member", name="Dai General", email="dg@example.gov.wales"
    )
    unit = create_unit(framework="nhs_wales", kind="organisation", name="Health Board")
    case = case_of(unit, "quality")
    case.level = "3"
    db.session.commit()
    proposal = Decision(
        case_id=case.id,
        kind="escalate",
        from_level="3",
        to_level="4",
        signature_rule="ministerial_decision",
        reason="Serious concerns",
    )
    db.session.add(proposal)
    db.session.commit()
    login(dg)
    page = client.get("/decisions/")
    mine, _ = page.text.split("Awaiting others")
    assert f"/decisions/{proposal.id}" in mine
    assert "awaiting signature 1 of 2" in mine


# --- the decision page -----------------------------------------------------------------------


def test_the_decision_page_shows_evidence_history_diagram_and_the_sign_form(client, login, board):
    people, surgery, _ = board
    proposal = overspend_proposal(surgery)
    login(people["ceo"])
    page = client.get(f"/decisions/{proposal.id}")
    assert page.status_code == 200
    text = page.text
    assert "Evidence" in text and "The full evidence record" in text
    assert "742" in text  # the overspend in the evidence record and the reason
    assert "Lifecycle" in text and "escalate-diagram" in text
    assert "Level changes" in text and "Past decisions" in text and "Letters issued" in text
    assert f'action="/decisions/{proposal.id}/sign"' in text
    assert 'name="outcome"' in text and 'value="reject"' in text
    assert 'name="reason"' in text and 'name="password"' in text
    assert 'autocomplete="current-password"' in text
    assert "What your signature means" in text
    assert f"/decisions/{proposal.id}/letter-preview" in text
    # 1 -> 2b is the only move on the finance track: no "different level" choice.
    assert "approve_other" not in text


def test_the_executive_team_rule_asks_for_the_meeting_and_offers_other_levels(client, login, board):
    people, surgery, _ = board
    case = case_of(surgery, "performance")
    login(people["exec"])
    form = client.get(f"/decisions/raise/{case.id}")
    client.post(
        f"/decisions/raise/{case.id}",
        data={
            "csrf_token": csrf_from(form.text),
            "to_level": "2a",
            "reason": "Two deliverables failing",
            "evidence_note": "RTT and cancer targets missed for three months",
        },
    )
    proposal = db.session.scalar(sa.select(Decision).where(Decision.case_id == case.id))
    page = client.get(f"/decisions/{proposal.id}")
    assert "approve_other" in page.text and '<option value="3">Level 3</option>' in page.text
    assert "Meeting where this was agreed" in page.text and "Required" in page.text
    refused = client.post(
        f"/decisions/{proposal.id}/sign", data=sign_data(page.text, meeting_reference="")
    )
    assert refused.status_code == 400
    assert "Name the meeting where this was agreed" in refused.text
    assert case_of(surgery, "performance").level == "1"
    done = client.post(
        f"/decisions/{proposal.id}/sign",
        data=sign_data(page.text, meeting_reference="Executive Team, 4 November 2026"),
        follow_redirects=True,
    )
    assert done.status_code == 200
    assert (
        "Approved: Surgery&#39;s Performance track is now at Level 2a. "
        "The letter and deadlines have been created." in done.text
    )
    assert case_of(surgery, "performance").level == "2a"


# --- signing ---------------------------------------------------------------------------------


def test_approving_with_the_right_password_moves_the_case_and_creates_the_consequences(
    client, login, board
):
    people, surgery, _ = board
    proposal = overspend_proposal(surgery)
    login(people["ceo"])
    page = client.get(f"/decisions/{proposal.id}")
    response = client.post(f"/decisions/{proposal.id}/sign", data=sign_data(page.text))
    assert response.status_code == 302
    assert response.headers["Location"].endswith(f"/decisions/{proposal.id}")
    assert case_of(surgery, "finance").level == "2b"
    (letter,) = db.session.scalars(sa.select(Letter)).all()
    assert letter.kind == "escalation_2b"
    assert db.session.scalars(sa.select(Deadline).where(Deadline.unit_id == surgery.id)).all()
    shown = client.get(response.headers["Location"])
    assert (
        "Approved: Surgery&#39;s Finance track is now at Level 2b (Financial). "
        "The letter and deadlines have been created." in shown.text
    )
    assert "Signed by Carys Chief as Chief Executive" in shown.text
    assert 'name="password"' not in shown.text  # decided: no sign form any more
    assert letter.reference in shown.text


def test_a_wrong_password_changes_nothing_and_keeps_the_reason(client, login, board):
    people, surgery, _ = board
    proposal = overspend_proposal(surgery)
    login(people["ceo"])
    page = client.get(f"/decisions/{proposal.id}")
    before = counts()
    response = client.post(
        f"/decisions/{proposal.id}/sign",
        data=sign_data(page.text, reason="My carefully typed reason", password="not it at all"),
    )
    assert response.status_code in (200, 400)
    assert "Your password was not correct, so nothing was signed" in response.text
    assert "My carefully typed reason" in response.text
    assert "not it at all" not in response.text
    assert counts() == before
    assert case_of(surgery, "finance").level == "1"
    assert db.session.get(Decision, proposal.id).status == "pending"


def test_a_missing_reason_gives_its_message(client, login, board):
    people, surgery, _ = board
    proposal = overspend_proposal(surgery)
    login(people["ceo"])
    page = client.get(f"/decisions/{proposal.id}")
    response = client.post(f"/decisions/{proposal.id}/sign", data=sign_data(page.text, reason=""))
    assert response.status_code == 400
    assert "Give the reason for your decision" in response.text
    assert case_of(surgery, "finance").level == "1"
    assert counts()[2] == 0


def test_an_executive_director_cannot_sign_a_ceo_decision(client, login, board):
    people, surgery, _ = board
    proposal = overspend_proposal(surgery)
    login(people["exec"])
    page = client.get(f"/decisions/{proposal.id}")
    assert page.status_code == 200
    assert 'name="password"' not in page.text
    assert "needs Chief Executive" in page.text
    response = client.post(
        f"/decisions/{proposal.id}/sign",
        data={
            # No sign form for them: take a token from a form they do get (raising by hand).
            "csrf_token": csrf_from(client.get(f"/decisions/raise/{proposal.case_id}").text),
            "outcome": "approve",
            "reason": "I would like to",
            "password": PASSWORD,
        },
    )
    assert response.status_code == 403
    assert "This decision needs Chief Executive to sign it" in response.text
    assert case_of(surgery, "finance").level == "1"
    assert counts() == (0, 0, 0)


def test_approving_twice_says_it_was_already_decided(client, login, board):
    people, surgery, _ = board
    proposal = overspend_proposal(surgery)
    login(people["ceo"])
    page = client.get(f"/decisions/{proposal.id}")
    first = client.post(f"/decisions/{proposal.id}/sign", data=sign_data(page.text))
    assert first.status_code == 302
    second = client.post(f"/decisions/{proposal.id}/sign", data=sign_data(page.text))
    assert second.status_code == 409
    assert "already approved by Carys Chief" in second.text
    assert len(db.session.scalars(sa.select(Letter)).all()) == 1


def test_rejecting_keeps_the_level(client, login, board):
    people, surgery, _ = board
    proposal = overspend_proposal(surgery)
    login(people["ceo"])
    page = client.get(f"/decisions/{proposal.id}")
    done = client.post(
        f"/decisions/{proposal.id}/sign",
        data=sign_data(page.text, outcome="reject", reason="A one-off accrual"),
        follow_redirects=True,
    )
    assert "Rejected: Surgery&#39;s Finance track stays at Level 1" in done.text
    assert case_of(surgery, "finance").level == "1"
    assert db.session.get(Decision, proposal.id).status == "rejected"
    assert counts()[0] == 0


def test_the_ceo_chooses_level_3_support_options(client, login, board):
    people, surgery, _ = board
    case = case_of(surgery, "performance")
    case.level = "2a"
    db.session.commit()
    login(people["ceo"])
    form = client.get(f"/decisions/raise/{case.id}")
    client.post(
        f"/decisions/raise/{case.id}",
        data={
            "csrf_token": csrf_from(form.text),
            "to_level": "3",
            "reason": "Recovery failing",
            "evidence_note": "Plan trajectory missed three months running",
        },
    )
    proposal = db.session.scalar(sa.select(Decision).where(Decision.case_id == case.id))
    page = client.get(f"/decisions/{proposal.id}")
    assert 'value="independent_review"' in page.text and 'value="1 week"' in page.text
    data = sign_data(
        page.text,
        reason="Serious concerns",
        meeting_reference="Executive Team 20 November 2026",
        support_options=["independent_review", "ceo_progress_meetings"],
        progress_every="1 week",
    )
    done = client.post(f"/decisions/{proposal.id}/sign", data=data)
    assert done.status_code == 302, done.text
    decided = db.session.get(Decision, proposal.id)
    db.session.refresh(decided)
    assert json.loads(decided.support_options) == {
        "independent_review": {},
        "ceo_progress_meetings": {"every": "1 week"},
    }
    assert case_of(surgery, "performance").level == "3"


def test_an_executive_director_sees_no_support_options(client, login, board):
    people, surgery, _ = board
    case = case_of(surgery, "performance")
    case.level = "2a"
    db.session.commit()
    login(people["exec"])
    form = client.get(f"/decisions/raise/{case.id}")
    client.post(
        f"/decisions/raise/{case.id}",
        data={
            "csrf_token": csrf_from(form.text),
            "to_level": "3",
            "reason": "Recovery failing",
            "evidence_note": "Plan trajectory missed",
        },
    )
    proposal = db.session.scalar(sa.select(Decision).where(Decision.case_id == case.id))
    page = client.get(f"/decisions/{proposal.id}")
    assert 'name="password"' in page.text  # executive team: an executive may sign
    assert "independent_review" not in page.text.split("The full evidence record")[-1]


# --- the letter preview ----------------------------------------------------------------------


def test_the_letter_preview_is_its_own_document_with_a_relaxed_csp(client, login, board):
    people, surgery, _ = board
    proposal = overspend_proposal(surgery)
    login(people["ceo"])
    response = client.get(f"/decisions/{proposal.id}/letter-preview")
    assert response.status_code == 200
    assert response.mimetype == "text/html"
    assert response.headers["Content-Security-Policy"] == (
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
    )
    assert "<style" in response.text and "Surgery" in response.text
    assert "742,310" in response.text
    assert counts() == (0, 0, 0)  # a preview stores nothing
    page = client.get(f"/decisions/{proposal.id}")
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "<style" not in page.text


# --- raising by hand -------------------------------------------------------------------------


def test_raising_by_hand_creates_a_pending_manual_proposal(client, login, board):
    people, surgery, _ = board
    case = case_of(surgery, "performance")
    login(people["exec"])
    form = client.get(f"/decisions/raise/{case.id}")
    assert form.status_code == 200
    assert '<option value="2a">' in form.text and '<option value="3">' in form.text
    response = client.post(
        f"/decisions/raise/{case.id}",
        data={
            "csrf_token": csrf_from(form.text),
            "to_level": "2a",
            "reason": "Two key deliverables failing",
            "evidence_note": "RTT18 and cancer 62-day missed since July",
        },
    )
    assert response.status_code == 302
    (proposal,) = db.session.scalars(sa.select(Decision).where(Decision.case_id == case.id)).all()
    assert (proposal.status, proposal.origin, proposal.to_level) == ("pending", "manual", "2a")
    assert proposal.proposed_by_id == people["exec"].id
    assert json.loads(proposal.evidence) == {"note": "RTT18 and cancer 62-day missed since July"}
    assert case_of(surgery, "performance").level == "1"
    shown = client.get(response.headers["Location"])
    assert "RTT18 and cancer 62-day missed since July" in shown.text


def test_raising_without_an_evidence_note_is_refused(client, login, board):
    people, surgery, _ = board
    case = case_of(surgery, "performance")
    login(people["exec"])
    form = client.get(f"/decisions/raise/{case.id}")
    response = client.post(
        f"/decisions/raise/{case.id}",
        data={
            "csrf_token": csrf_from(form.text),
            "to_level": "2a",
            "reason": "Two key deliverables failing",
            "evidence_note": "   ",
        },
    )
    assert response.status_code == 400
    assert "Describe the evidence" in response.text
    assert "Two key deliverables failing" in response.text
    assert db.session.scalars(sa.select(Decision)).all() == []


def test_a_lead_may_not_raise_by_hand(client, login, board):
    people, surgery, medicine = board
    login(people["lead"])
    response = client.get(f"/decisions/raise/{case_of(surgery, 'performance').id}")
    assert response.status_code == 403
    assert "raise an escalation by hand" in response.text
    assert client.get(f"/decisions/raise/{case_of(medicine, 'performance').id}").status_code == 404
