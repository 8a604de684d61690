"""Earned autonomy (issue #7; framework A 7.8, framework B 7.1): a unit at the lowest level on
every track that met all its targets for 6 consecutive months is proposed for lighter
monitoring by the monthly review; approving it (signed, re-authenticated) lightens its
meeting cadence without changing its level; any escalation restores the base cadence."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORD, csrf_from
from tests.meetings.cadence_fixtures import (
    MEETING_REFERENCE,
    NOW,
    add_measures,
    case_of,
    make_board,
    meetings_of,
    month,
    move,
    record_months,
    summary,
)
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.cases import Decision, LevelChange
from workflow_app.models.deadlines import Deadline
from workflow_app.models.measures import MonthlyActual
from workflow_app.models.outbox import OutboxMessage
from workflow_app.services.autonomy import (
    EARNED_AUTONOMY,
    EARNED_AUTONOMY_MONTHS,
    assess_earned_autonomy,
)
from workflow_app.services.cadence import top_up_all_cadences
from workflow_app.services.decisions import decide_proposal
from workflow_app.services.errors import Conflict, ServiceError
from workflow_app.services.meeting_cadence import plan_all_cadence_meetings
from workflow_app.services.review import run_review

SEP = month(2026, 9)
GREEN_MONTHS = [month(2026, m) for m in range(4, 10)]  # April to September 2026
Q3 = date(2026, 12, 31)
Q4 = date(2027, 3, 31)
Q2_NEXT = date(2027, 9, 30)


@pytest.fixture
def autonomy_board(create_person, create_unit, clock):
    clock.move_to(NOW)
    board = make_board(create_person, create_unit)
    board.measures = add_measures(board.unit)
    return board


def proposals(unit=None, status="pending") -> list[Decision]:
    query = sa.select(Decision).where(Decision.kind == EARNED_AUTONOMY)
    if status:
        query = query.where(Decision.status == status)
    found = list(db.session.scalars(query.order_by(Decision.id)))
    return [d for d in found if unit is None or d.case.unit_id == unit.id]


def approve(board, decision, signer=None, now=NOW):
    decide_proposal(
        signer or board.execs[0],
        decision,
        outcome="approve",
        reason="Consistent delivery over six months",
        password=PASSWORD,
        meeting_reference=MEETING_REFERENCE,
        now=now,
    )
    db.session.commit()


def test_the_rule_uses_six_months(autonomy_board):
    assert EARNED_AUTONOMY_MONTHS == 6


def test_six_green_months_propose_earned_autonomy(autonomy_board):
    board = autonomy_board
    record_months(board.unit, board.measures, GREEN_MONTHS)
    outcome = run_review(SEP, now=NOW)
    db.session.commit()
    assert outcome.created == []  # no escalation for a green unit
    (proposal,) = proposals(board.unit)
    assert proposal.case == case_of(board.unit, "performance")
    assert (proposal.from_level, proposal.to_level) == ("1", "1")  # no level change
    assert proposal.signature_rule == "executive_team"  # the rule of 2a -> 1
    assert (proposal.origin, proposal.rule_id, proposal.period) == ("engine", EARNED_AUTONOMY, SEP)
    assert proposal.reason.startswith(
        "Surgery met all 2 of its targets in each of the 6 months from April to September "
        "2026, its finance returns stayed within the framework's thresholds, no concern was "
        "recorded"
    )
    assert "quarterly directorate reviews stop" in proposal.reason
    # Re-running the review creates nothing twice and does not supersede it.
    run_review(SEP, now=NOW)
    db.session.commit()
    assert proposals(board.unit) == [proposal]
    assert proposals(status="superseded") == []
    # The NHS Wales organisation has no measures: nothing proposed.
    assert proposals(board.wales) == []


def test_five_green_months_are_not_enough(autonomy_board):
    board = autonomy_board
    record_months(board.unit, board.measures, GREEN_MONTHS[1:])  # May to September
    run_review(SEP, now=NOW)
    assert proposals() == []
    assert "Measure 1 has no figure for Apr 2026" in assess_earned_autonomy(board.unit, SEP).reasons


def test_a_unit_with_a_red_month_is_not_proposed(autonomy_board):
    board = autonomy_board
    record_months(board.unit, board.measures, GREEN_MONTHS, overrides={(0, month(2026, 7)): 85})
    run_review(SEP, now=NOW)
    db.session.commit()
    assert proposals() == []
    reasons = assess_earned_autonomy(board.unit, SEP).reasons
    assert reasons == ["Measure 1 missed its target (90%) in Jul 2026"]


def test_an_overspend_or_a_concern_stops_the_proposal(autonomy_board):
    from workflow_app.models.cases import Concern
    from workflow_app.models.measures import FinancePosition

    board = autonomy_board
    record_months(board.unit, board.measures, GREEN_MONTHS)
    db.session.add(
        FinancePosition(
            unit_id=board.unit.id,
            period=month(2026, 8),
            ytd_variance=600_000,
            forecast_variance=900_000,
            revision=2,
        )
    )
    db.session.commit()
    assert assess_earned_autonomy(board.unit, SEP).reasons == [
        "the year-to-date overspend in Aug 2026 was £600,000, more than £500,000"
    ]
    db.session.add(
        FinancePosition(
            unit_id=board.unit.id,
            period=month(2026, 8),
            ytd_variance=0,
            forecast_variance=0,
            revision=3,
        )
    )
    db.session.add(
        Concern(
            unit_id=board.unit.id,
            domain_id=board.measures[0].domain_id,
            kind="complaint_trend",
            severity="low",
            summary="Complaints about waiting times rising",
            occurred_on=date(2026, 6, 10),
        )
    )
    db.session.commit()
    assert assess_earned_autonomy(board.unit, SEP).reasons == [
        "a concern was recorded: Complaints about waiting times rising"
    ]


def test_revised_data_supersedes_a_pending_proposal(autonomy_board):
    board = autonomy_board
    record_months(board.unit, board.measures, GREEN_MONTHS)
    run_review(SEP, now=NOW)
    (proposal,) = proposals(board.unit)
    db.session.add(
        MonthlyActual(measure_id=board.measures[1].id, period=month(2026, 5), value=80, revision=2)
    )
    db.session.commit()
    run_review(SEP, now=NOW + timedelta(hours=1))
    db.session.commit()
    assert proposal.status == "superseded"
    assert "Measure 2 missed its target" in proposal.decision_note
    assert proposals(board.unit) == []


def test_approving_earned_autonomy_lightens_the_cadence_without_moving_the_level(
    autonomy_board, clock
):
    board = autonomy_board
    record_months(board.unit, board.measures, GREEN_MONTHS)
    plan_all_cadence_meetings(NOW)
    run_review(SEP, now=NOW)
    db.session.commit()
    assert summary(meetings_of(board.unit)) == [
        ("directorate_review", "requested", Q3),
        ("six_monthly_review", "requested", Q4),
    ]
    (proposal,) = proposals(board.unit)
    case = proposal.case
    version = case.version
    approve(board, proposal)
    assert proposal.status == "approved"
    assert board.unit.earned_autonomy_since == NOW
    assert case.level == "1" and case.version == version  # the case did not move
    assert not db.session.scalar(
        sa.select(LevelChange.id).where(LevelChange.decision_id.is_not(None))
    )
    # The quarterly review stops; the six-monthly reviews chaired by the CEO continue.
    quarterly, six_monthly, next_six_monthly = meetings_of(board.unit)
    assert (quarterly.kind, quarterly.status) == ("directorate_review", "cancelled")
    assert quarterly.cancelled_reason.startswith("Earned autonomy:")
    assert summary([six_monthly, next_six_monthly]) == [
        ("six_monthly_review", "requested", Q4),
        ("six_monthly_review", "requested", Q2_NEXT),
    ]
    # Later top-ups plan six-monthly reviews only.
    later = NOW + timedelta(days=100)
    clock.move_to(later)
    top_up_all_cadences(later)
    db.session.commit()
    assert {m.kind for m in meetings_of(board.unit, status="requested")} == {"six_monthly_review"}
    # The unit is told; the audit trail says so.
    mail = db.session.scalars(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "earned_autonomy")
    ).all()
    assert {m.to_address for m in mail} == {
        "lee@example.nhs.uk",
        "eve@example.nhs.uk",
        "bea@example.nhs.uk",
    }
    assert "six-monthly reviews chaired by the Chief Executive continue" in mail[0].body_text
    assert db.session.scalar(
        sa.select(AuditEvent.id).where(AuditEvent.action == "autonomy.granted")
    )
    # Nothing proposed again while it lasts.
    run_review(month(2026, 10), now=later)
    assert proposals(board.unit) == []


def test_an_escalation_ends_earned_autonomy_and_restores_the_base_cadence(autonomy_board, clock):
    board = autonomy_board
    record_months(board.unit, board.measures, GREEN_MONTHS)
    plan_all_cadence_meetings(NOW)
    run_review(SEP, now=NOW)
    approve(board, proposals(board.unit)[0])
    later = NOW + timedelta(days=2)
    clock.move_to(later)
    move(board, board.unit, "finance", "2b", now=later)
    assert board.unit.earned_autonomy_since is None
    requested = meetings_of(board.unit, status="requested")
    assert summary(requested) == [
        ("budget_review", "requested", requested[0].hold_by),
        ("directorate_review", "requested", Q3),  # requested afresh
        ("six_monthly_review", "requested", Q4),
        ("six_monthly_review", "requested", Q2_NEXT),  # already planned; kept
    ]
    assert requested[1].dedupe_key.endswith(":2")
    assert db.session.scalar(sa.select(AuditEvent.id).where(AuditEvent.action == "autonomy.ended"))


def test_an_escalation_supersedes_a_pending_proposal(autonomy_board):
    board = autonomy_board
    record_months(board.unit, board.measures, GREEN_MONTHS)
    run_review(SEP, now=NOW)
    (proposal,) = proposals(board.unit)
    move(board, board.unit, "finance", "2b", now=NOW)
    assert proposal.status == "superseded"
    with pytest.raises(Conflict):
        approve(board, proposal)


def test_earned_autonomy_cannot_be_approved_at_another_level(autonomy_board):
    board = autonomy_board
    record_months(board.unit, board.measures, GREEN_MONTHS)
    run_review(SEP, now=NOW)
    (proposal,) = proposals(board.unit)
    with pytest.raises(ServiceError, match="does not change the level"):
        decide_proposal(
            board.execs[0],
            proposal,
            outcome="approve",
            reason="Try another level",
            password=PASSWORD,
            to_level="2a",
            meeting_reference=MEETING_REFERENCE,
            now=NOW,
        )
    db.session.rollback()
    assert board.unit.earned_autonomy_since is None


def test_after_a_rejection_a_fresh_run_of_green_months_is_needed(autonomy_board, clock):
    board = autonomy_board
    record_months(board.unit, board.measures, GREEN_MONTHS)
    run_review(SEP, now=NOW)
    (proposal,) = proposals(board.unit)
    decide_proposal(
        board.execs[0],
        proposal,
        outcome="reject",
        reason="Not yet: one more quarter",
        password=PASSWORD,
        now=NOW,
    )
    db.session.commit()
    more = [month(2026, 10), month(2026, 11), month(2026, 12)]
    more += [month(2027, 1), month(2027, 2), month(2027, 3)]
    record_months(board.unit, board.measures, more)
    for period in more[:-1]:
        run_review(period, now=NOW + timedelta(days=30))
        assert proposals(board.unit) == []
    run_review(more[-1], now=NOW + timedelta(days=180))  # October to March: 6 fresh months
    (again,) = proposals(board.unit)
    assert again.period == month(2027, 3)


def test_the_decision_page_shows_and_signs_earned_autonomy(autonomy_board, login):
    board = autonomy_board
    record_months(board.unit, board.measures, GREEN_MONTHS)
    run_review(SEP, now=NOW)
    db.session.commit()
    (proposal,) = proposals(board.unit)
    client = login(board.execs[0])
    page = client.get(f"/decisions/{proposal.id}").get_data(as_text=True)
    assert "Earned autonomy: lighter monitoring at Level 1: Normal arrangements" in page
    assert "Approve: earned autonomy, lighter monitoring at this level" in page
    assert "Approve at a different level" not in page
    signed = client.post(
        f"/decisions/{proposal.id}/sign",
        data={
            "csrf_token": csrf_from(page),
            "outcome": "approve",
            "reason": "Six months of consistent delivery",
            "meeting_reference": MEETING_REFERENCE,
            "password": PASSWORD,
        },
        follow_redirects=True,
    )
    assert signed.status_code == 200
    assert "Surgery has earned autonomy; its monitoring is lighter." in signed.get_data(
        as_text=True
    )
    db.session.expire_all()
    assert db.session.get(Decision, proposal.id).status == "approved"
    assert db.session.get(type(board.unit), board.unit.id).earned_autonomy_since is not None


def test_nhs_wales_earned_autonomy_halves_the_level_1_review(autonomy_board):
    board = autonomy_board
    measures = add_measures(board.wales)
    record_months(board.wales, measures, GREEN_MONTHS, finance=False)  # B has no finance rule
    top_up_all_cadences(NOW)
    db.session.commit()
    assert [m.hold_by for m in meetings_of(board.wales, kind="executive_review")] == [
        date(2027, 4, 15),
        date(2027, 10, 15),
    ]
    run_review(SEP, now=NOW)
    (proposal,) = proposals(board.wales)
    assert proposal.signature_rule == "director_general"  # the rule of 2 -> 1
    assert "the CEO / Executive review is held every 12 months instead of every 6 months" in (
        proposal.reason
    )
    approve(board, proposal, signer=board.director_general)
    first, second = meetings_of(board.wales, kind="executive_review")
    assert (first.status, second.status) == ("cancelled", "requested")
    assert first.cancelled_reason.startswith("Earned autonomy:")
    assert second.hold_by == date(2027, 10, 15)  # annual now
    six_monthly = db.session.scalars(
        sa.select(Deadline).where(
            Deadline.unit_id == board.wales.id,
            Deadline.kind == "cadence:ceo_executive_review",
            Deadline.due_at < NOW + timedelta(days=200),
        )
    ).all()
    assert len(six_monthly) == 5 and {d.status for d in six_monthly} == {"cancelled"}
