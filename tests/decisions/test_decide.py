"""Deciding proposals end to end: signature rules, the state machine, consequences, races."""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORD
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.cases import Decision, Delegation, EscalationCase, LevelChange
from workflow_app.models.deadlines import Deadline
from workflow_app.models.letters import Letter
from workflow_app.models.measures import FinancePosition
from workflow_app.models.outbox import OutboxMessage
from workflow_app.services.audit import verify_chain
from workflow_app.services.decisions import decide_proposal, raise_escalation
from workflow_app.services.errors import Conflict, PermissionDenied, ServiceError
from workflow_app.services.review import run_review

OCT = date(2026, 10, 1)


@pytest.fixture
def board(create_person, create_unit):
    people = {
        "ceo": create_person("ceo", name="Carys Chief", email="ceo@example.nhs.uk"),
        "exec": create_person("executive_director", name="Eve Exec", email="exec@example.nhs.uk"),
        "exec2": create_person("executive_director", name="Ed Other", email="ed@example.nhs.uk"),
        "lead": create_person("directorate_lead", name="Lee Lead", email="lead@example.nhs.uk"),
    }
    unit = create_unit(
        code="UNSCH",
        name="Unscheduled Care",
        lead=people["lead"],
        accountable_executive_id=people["exec"].id,
        budget_holder_id=people["lead"].id,
    )
    return people, unit


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
    return db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == track
        )
    )


def test_approval_moves_the_case_and_creates_letter_deadlines_and_notifications(board):
    people, unit = board
    proposal = overspend_proposal(unit)
    decide_proposal(
        people["ceo"], proposal, outcome="approve", reason="Overspend confirmed", password=PASSWORD
    )
    db.session.commit()
    case = case_of(unit, "finance")
    assert case.level == "2b"
    assert proposal.status == "approved"
    (signature,) = proposal.signatures
    assert (signature.person_id, signature.role) == (people["ceo"].id, "ceo")
    assert db.session.scalar(sa.select(LevelChange).where(LevelChange.decision_id == proposal.id))
    (letter,) = db.session.scalars(sa.select(Letter)).all()
    assert letter.kind == "escalation_2b" and "742,310" in letter.html
    assert "Carys Chief" in letter.html
    kinds = {d.kind for d in db.session.scalars(sa.select(Deadline))}
    assert "action_plan_due" in kinds
    assert "cadence:financial_reporting" in kinds
    mails = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "decision")
    ).all()
    assert {m.to_address for m in mails} == {"lead@example.nhs.uk", "exec@example.nhs.uk"}
    assert {m.status for m in mails} == {"held"}  # waiting for the letter's PDF
    assert verify_chain().ok
    assert "decision.approved" in db.session.scalars(sa.select(AuditEvent.action)).all()


def test_the_pdf_job_releases_the_notification_with_the_letter_attached(board):
    from workflow_app.scheduling.jobs import sweep

    people, unit = board
    proposal = overspend_proposal(unit)
    decide_proposal(people["ceo"], proposal, outcome="approve", reason="Agreed", password=PASSWORD)
    db.session.commit()
    report = sweep()
    assert report.letter_pdfs == 1 and report.emails_released == 2
    mail = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.kind == "decision"))
    assert mail.status == "pending"
    (attachment,) = mail.attachments
    assert attachment.content.startswith(b"%PDF")


def test_the_wrong_role_is_refused_and_nothing_changes(board):
    people, unit = board
    proposal = overspend_proposal(unit)  # 1 -> 2b is the CEO's decision in iqpf
    with pytest.raises(PermissionDenied, match="Chief Executive"):
        decide_proposal(
            people["exec"], proposal, outcome="approve", reason="Yes", password=PASSWORD
        )
    db.session.rollback()
    assert case_of(unit, "finance").level == "1"
    assert db.session.get(Decision, proposal.id).status == "pending"


def test_a_wrong_password_signs_nothing(board):
    people, unit = board
    proposal = overspend_proposal(unit)
    with pytest.raises(ServiceError, match="password was not correct"):
        decide_proposal(
            people["ceo"], proposal, outcome="approve", reason="Yes", password="not my password"
        )
    db.session.rollback()
    assert db.session.get(Decision, proposal.id).signatures == []


def test_rejection_keeps_the_level_and_records_why(board):
    people, unit = board
    proposal = overspend_proposal(unit)
    decide_proposal(
        people["ceo"],
        proposal,
        outcome="reject",
        reason="One-off pay award; recovery agreed",
        password=PASSWORD,
    )
    db.session.commit()
    assert proposal.status == "rejected"
    assert "One-off pay award" in proposal.decision_note
    assert case_of(unit, "finance").level == "1"
    assert db.session.scalar(sa.select(sa.func.count(Letter.id))) == 0


def test_an_illegal_amendment_is_refused(board):
    people, unit = board
    proposal = overspend_proposal(unit)
    with pytest.raises(ServiceError, match="does not allow"):
        decide_proposal(
            people["ceo"],
            proposal,
            outcome="approve",
            reason="Straight to 3",
            password=PASSWORD,
            to_level="2a",
        )
    db.session.rollback()
    assert case_of(unit, "finance").level == "1"


def test_the_executive_team_rule_needs_the_meeting_named(board):
    people, unit = board
    case = case_of(unit, "performance")
    manual = raise_escalation(
        people["exec"],
        case,
        to_level="2a",
        reason="Two key deliverables",
        evidence_note="RTT and cancer red since July",
    )
    db.session.commit()
    with pytest.raises(ServiceError, match="Name the meeting"):
        decide_proposal(
            people["exec2"], manual, outcome="approve", reason="Agreed", password=PASSWORD
        )
    db.session.rollback()
    decide_proposal(
        people["exec2"],
        manual,
        outcome="approve",
        reason="Agreed",
        password=PASSWORD,
        meeting_reference="Executive Team 20 November 2026",
    )
    db.session.commit()
    assert case_of(unit, "performance").level == "2a"
    (signature,) = manual.signatures
    assert signature.meaning == (
        "Approved on behalf of the Executive Team at Executive Team 20 November 2026"
    )


def test_de_escalation_goes_one_level_at_a_time(board):
    people, unit = board
    case = case_of(unit, "performance")
    case.level = "3"
    db.session.commit()
    with pytest.raises(ServiceError, match="does not allow"):
        raise_escalation(
            people["exec"],
            case,
            to_level="1",
            reason="Recovered",
            evidence_note="Six months on target",
        )
    down = raise_escalation(
        people["exec"],
        case,
        to_level="2a",
        reason="Recovered",
        evidence_note="Six months on trajectory",
    )
    db.session.commit()
    decide_proposal(
        people["exec2"],
        down,
        outcome="approve",
        reason="Sustained improvement",
        password=PASSWORD,
        meeting_reference="Executive Team 20 November 2026",
    )
    db.session.commit()
    assert case_of(unit, "performance").level == "2a"
    assert db.session.scalar(sa.select(Letter.kind)) == "de_escalation"


def test_a_delegate_signs_as_delegate_of_the_ceo(board, create_person):
    people, unit = board
    deputy = create_person("executive_director", name="Dee Deputy", email="dee@example.nhs.uk")
    now = datetime.now(UTC)
    db.session.add(
        Delegation(
            delegator_id=people["ceo"].id,
            delegate_id=deputy.id,
            role="ceo",
            starts_at=now - timedelta(days=1),
            ends_at=now + timedelta(days=7),
            reason="Annual leave",
        )
    )
    db.session.commit()
    proposal = overspend_proposal(unit)
    decide_proposal(
        deputy, proposal, outcome="approve", reason="Agreed in the CEO's absence", password=PASSWORD
    )
    db.session.commit()
    (signature,) = proposal.signatures
    assert signature.person_id == deputy.id and signature.on_behalf_of_id == people["ceo"].id
    letter = db.session.scalar(sa.select(Letter))
    assert "Dee Deputy" in letter.html and "Carys Chief" in letter.html


def test_an_expired_delegation_gives_no_authority(board, create_person):
    people, unit = board
    deputy = create_person("executive_director", email="late@example.nhs.uk")
    now = datetime.now(UTC)
    db.session.add(
        Delegation(
            delegator_id=people["ceo"].id,
            delegate_id=deputy.id,
            role="ceo",
            starts_at=now - timedelta(days=9),
            ends_at=now - timedelta(days=2),
        )
    )
    db.session.commit()
    proposal = overspend_proposal(unit)
    with pytest.raises(PermissionDenied):
        decide_proposal(deputy, proposal, outcome="approve", reason="x", password=PASSWORD)


def test_level_3_support_options_create_their_consequences(board):
    people, unit = board
    case = case_of(unit, "performance")
    case.level = "2a"
    db.session.commit()
    up = raise_escalation(
        people["exec"],
        case,
        to_level="3",
        reason="Recovery failing",
        evidence_note="Plan trajectory missed 3 months",
    )
    db.session.commit()
    decide_proposal(
        people["ceo"],
        up,
        outcome="approve",
        reason="Serious concerns",
        password=PASSWORD,
        meeting_reference="Executive Team 20 November 2026",
        support_options={"independent_review": {}, "ceo_progress_meetings": {"every": "1 week"}},
    )
    db.session.commit()
    titles = {d.title for d in db.session.scalars(sa.select(Deadline))}
    assert "Independent review commissioned and reported" in titles
    assert "Progress meeting with the CEO" in titles
    assert json.loads(up.support_options)["ceo_progress_meetings"] == {"every": "1 week"}


def test_nhs_wales_levels_4_and_5_need_two_signatures_in_sequence(create_person, create_unit):
    dg = create_person("director_general", name="Dai General", email="dg@example.gov.wales")
    minister = create_person("minister", name="Min Ister", email="min@example.gov.wales")
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
    with pytest.raises(PermissionDenied):
        decide_proposal(minister, proposal, outcome="approve", reason="x", password=PASSWORD)
    db.session.rollback()
    decide_proposal(dg, proposal, outcome="approve", reason="Recommend", password=PASSWORD)
    db.session.commit()
    assert proposal.status == "pending" and case_of(unit, "quality").level == "3"
    decide_proposal(minister, proposal, outcome="approve", reason="Decided", password=PASSWORD)
    db.session.commit()
    assert case_of(unit, "quality").level == "4"
    assert [s.role for s in proposal.signatures] == ["director_general", "minister"]


def test_deciding_twice_says_who_decided_first(board):
    people, unit = board
    proposal = overspend_proposal(unit)
    decide_proposal(people["ceo"], proposal, outcome="approve", reason="Yes", password=PASSWORD)
    db.session.commit()
    with pytest.raises(Conflict, match="already approved by Carys Chief"):
        decide_proposal(
            people["ceo"], proposal, outcome="approve", reason="Again", password=PASSWORD
        )


def test_two_approvals_at_once_give_exactly_one_transition(app, board, create_person):
    """Real concurrent sessions (one per thread) race to complete the same decision."""
    people, unit = board
    deputy = create_person("ceo", name="Second Chief", email="ceo2@example.nhs.uk")
    proposal = overspend_proposal(unit)
    outcomes, barrier = [], threading.Barrier(2)

    def approve(person_id: int) -> None:
        with app.app_context():
            from workflow_app.models.org import Person

            actor = db.session.get(Person, person_id)
            decision = db.session.get(Decision, proposal.id)
            barrier.wait()
            try:
                decide_proposal(
                    actor, decision, outcome="approve", reason="Race", password=PASSWORD
                )
                db.session.commit()
                outcomes.append("won")
            except (Conflict, sa.exc.OperationalError, sa.exc.IntegrityError) as lost:
                db.session.rollback()
                outcomes.append(f"lost: {lost}")
            except sa.orm.exc.StaleDataError:
                db.session.rollback()
                outcomes.append("lost: stale")
            db.session.remove()

    threads = [threading.Thread(target=approve, args=(p.id,)) for p in (people["ceo"], deputy)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.session.expire_all()
    assert outcomes.count("won") == 1, outcomes
    assert (
        db.session.scalar(
            sa.select(sa.func.count(LevelChange.id)).where(LevelChange.decision_id == proposal.id)
        )
        == 1
    )
    assert db.session.scalar(sa.select(sa.func.count(Letter.id))) == 1
    assert case_of(unit, "finance").level == "2b"


def test_nhs_wales_formal_notification_without_a_level_change(create_person, create_unit):
    from workflow_app.services.decisions import issue_formal_notification

    dg = create_person("director_general", name="Dai General", email="dg@example.gov.wales")
    unit = create_unit(framework="nhs_wales", kind="organisation", name="Health Board")
    case = case_of(unit, "finance")
    notice = issue_formal_notification(
        dg, case, kind="letter_of_concern", reason="Deficit widening", password=PASSWORD
    )
    db.session.commit()
    assert notice.kind == "notice" and notice.status == "approved"
    assert case_of(unit, "finance").level == "1"
    assert db.session.scalar(sa.select(Letter.kind)) == "letter_of_concern"
    case.level = "3"
    db.session.commit()
    with pytest.raises(ServiceError, match="can be issued at 1, 2"):
        issue_formal_notification(dg, case, kind="letter_of_concern", reason="x", password=PASSWORD)


def test_delegation_rules(board, create_person):
    from workflow_app.services.decisions import create_delegation

    people, unit = board
    deputy = create_person("executive_director", email="dep@example.nhs.uk")
    now = datetime.now(UTC)
    with pytest.raises(ServiceError, match="does not hold the role"):
        create_delegation(
            people["exec"],
            delegator=people["exec"],
            delegate=deputy,
            role="ceo",
            starts_at=now,
            ends_at=now + timedelta(days=1),
        )
    with pytest.raises(PermissionDenied):
        create_delegation(
            people["exec"],
            delegator=people["ceo"],
            delegate=deputy,
            role="ceo",
            starts_at=now,
            ends_at=now + timedelta(days=1),
        )
    with pytest.raises(ServiceError, match="end after it starts"):
        create_delegation(
            people["ceo"],
            delegator=people["ceo"],
            delegate=deputy,
            role="ceo",
            starts_at=now,
            ends_at=now,
        )
    delegation = create_delegation(
        people["ceo"],
        delegator=people["ceo"],
        delegate=deputy,
        role="ceo",
        starts_at=now,
        ends_at=now + timedelta(days=7),
        reason="Leave",
    )
    db.session.commit()
    assert delegation.id is not None


def test_stepping_down_cancels_the_plan_due_left_over_from_the_escalation(board):
    people, unit = board
    case = case_of(unit, "performance")

    def decide(to_level: str, signer: str, second: str) -> Decision:
        proposal = raise_escalation(
            people[signer], case, to_level=to_level, reason="Judgement", evidence_note="Pack"
        )
        db.session.commit()
        decide_proposal(
            people[second],
            proposal,
            outcome="approve",
            reason="Agreed",
            password=PASSWORD,
            meeting_reference="Executive Team 20 November 2026",
        )
        db.session.commit()
        return proposal

    up = decide("2a", "exec", "exec2")
    plan_due = db.session.scalar(
        sa.select(Deadline).where(Deadline.dedupe_key == f"decision:{up.id}:recovery_plan_due")
    )
    assert plan_due.status == "open"
    decide("1", "exec", "exec2")
    db.session.refresh(plan_due)
    assert plan_due.status == "cancelled"
    assert plan_due.cancelled_reason.startswith("level stepped down to")
    open_left = db.session.scalars(
        sa.select(Deadline.title).where(
            Deadline.case_id == case.id, Deadline.status.in_(("open", "paused"))
        )
    ).all()
    assert not [t for t in open_left if "plan" in t.lower()]
