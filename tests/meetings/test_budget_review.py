"""The Level 2b Budget Review Meeting end to end (issue #7): decision -> meeting requested ->
invitees computed -> 4th supporting member refused -> slots around the bank holidays and an
invitee's other meeting -> invitations with .ics -> reschedule -> cancel -> attendance ->
minutes, agreed action plan and the chair's letter -> follow-up review of a failing plan."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
from icalendar import Calendar

from state_machines import get_framework
from tests.meetings.conftest import DECIDED_AT
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.deadlines import Deadline
from workflow_app.models.letters import Letter
from workflow_app.models.meetings import Meeting, MeetingInvitee
from workflow_app.models.outbox import OutboxMessage
from workflow_app.models.plans import RecoveryPlan
from workflow_app.services.audit import verify_chain
from workflow_app.services.errors import PermissionDenied, ServiceError
from workflow_app.services.meetings import (
    add_invitee,
    cancel_meeting,
    propose_follow_up_meeting,
    propose_slots,
    record_attendance,
    record_outcome,
    request_meeting,
    reschedule_meeting,
    schedule_meeting,
)


def mails(kind: str) -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.kind == kind).order_by(OutboxMessage.id)
        )
    )


def ics_of(message: OutboxMessage) -> Calendar:
    (attachment,) = message.attachments
    assert attachment.filename.endswith(".ics")
    return Calendar.from_ical(attachment.content)


def event_of(message: OutboxMessage):
    (event,) = ics_of(message).walk("VEVENT")
    return event


def london(y, m, d, hh, mm=0) -> datetime:
    from workflow_app.clock import LONDON

    return datetime(y, m, d, hh, mm, tzinfo=LONDON).astimezone(UTC)


# --- the framework's consequence -----------------------------------------------------------


def test_the_iqpf_2b_consequence_declares_the_budget_review_meeting():
    framework = get_framework("iqpf")
    spec = framework.consequences_for(framework.transition("finance", "1", "2b"))
    meeting = spec["meeting"]
    assert meeting["kind"] == "budget_review"
    assert meeting["chair"] == "ceo"
    assert meeting["invite"] == ["all_executive_directors", "budget_holder"]
    assert meeting["optional"]["supporting_team_members"]["max"] == 3
    assert meeting["within"] == "15 working days"


def test_a_2b_decision_requests_the_meeting_with_invitees_from_the_data(board, budget_review):
    meeting = budget_review
    assert meeting is not None
    assert (meeting.kind, meeting.status) == ("budget_review", "requested")
    assert meeting.unit_id == board.unit.id and meeting.case.track == "finance"
    assert meeting.chair_id == board.ceo.id
    # 15 working days from Friday 11 December 2026 across Christmas, the substitute Boxing Day
    # bank holiday and New Year's Day
    assert meeting.hold_by == date(2027, 1, 6)
    assert meeting.ical_uid.startswith("meeting-") and meeting.ical_uid.endswith("@escalate")
    assert meeting.ical_sequence == 0
    roles = {i.person.name: i.role for i in meeting.invitees}
    assert roles == {
        "Carys Chief": "chair",
        "Eve Exec": "executive_director",
        "Finn Finance": "executive_director",
        "Nia Nursing": "executive_director",
        "Bea Budget": "budget_holder",
    }
    # the obligation to hold it, owned by the CEO, due with the hold-by date
    deadline = meeting.deadline
    assert deadline.kind == "meeting:budget_review" and deadline.owner_id == board.ceo.id
    assert deadline.due_at == london(2027, 1, 6, 17)
    # the CEO is asked to schedule it, with a link
    (ask,) = mails("meeting_request")
    assert ask.to_address == "ceo@example.nhs.uk"
    assert ask.subject == "Please schedule the Budget Review Meeting for Surgery by 6 January 2027"
    assert ask.link.endswith(f"/meetings/{meeting.id}")
    assert "Bea Budget (Budget holder)" in ask.body_text
    assert "meeting.requested" in db.session.scalars(sa.select(AuditEvent.action)).all()


def test_requesting_again_with_the_same_key_creates_nothing_twice(board, budget_review):
    again = request_meeting(
        kind="budget_review", unit=board.unit, dedupe_key=budget_review.dedupe_key
    )
    assert again.id == budget_review.id
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Meeting)) == 1
    assert len(mails("meeting_request")) == 1


def test_nhs_wales_special_measures_request_a_whole_board_meeting(create_person, create_unit):
    from workflow_app.models.cases import Decision, EscalationCase
    from workflow_app.services.meetings import request_meetings_for_decision

    ceo = create_person("ceo", name="Carys Chief")
    director = create_person("executive_director", name="Dai Director")
    member = create_person("committee_member", name="Nora Non-exec")
    unit = create_unit(framework="nhs_wales", kind="organisation", name="Powys THB")
    case = db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == "leadership"
        )
    )
    decision = Decision(
        case_id=case.id, kind="escalate", from_level="4", to_level="5", status="approved",
        signature_rule="wg", reason="Special measures", decided_at=DECIDED_AT,
    )  # fmt: skip
    db.session.add(decision)
    db.session.flush()
    framework = get_framework("nhs_wales")
    spec = framework.consequences_for(framework.transition("leadership", "4", "5"))
    (meeting,) = request_meetings_for_decision(decision, spec["meeting"], None, DECIDED_AT)
    assert meeting.kind == "whole_board_meeting"
    assert meeting.chair_id is None
    assert {i.person_id for i in meeting.invitees} == {ceo.id, director.id, member.id}
    assert meeting.hold_by == date(2027, 1, 11)  # 1 month, moved to the next working day
    # no chair named: the performance team is asked (there is none here, so no e-mail)
    assert mails("meeting_request") == []


# --- supporting team members ---------------------------------------------------------------


def test_the_budget_holder_adds_three_team_members_and_a_fourth_is_refused(board, budget_review):
    meeting = budget_review
    for person in board.team[:3]:
        add_invitee(board.holder, meeting, person)
    db.session.commit()
    before = db.session.scalar(sa.select(sa.func.count()).select_from(MeetingInvitee))
    with pytest.raises(ServiceError) as refused:
        add_invitee(board.holder, meeting, board.team[3])
    db.session.rollback()
    assert str(refused.value) == (
        "The budget holder may bring up to 3 supporting team members; Team Member 1, "
        "Team Member 2 and Team Member 3 are already invited"
    )
    assert db.session.scalar(sa.select(sa.func.count()).select_from(MeetingInvitee)) == before
    assert board.team[3].id not in {i.person_id for i in meeting.invitees}


def test_only_the_budget_holder_or_the_ceo_side_adds_supporting_members(board, budget_review):
    with pytest.raises(PermissionDenied):
        add_invitee(board.lead, budget_review, board.team[0])
    with pytest.raises(PermissionDenied):
        add_invitee(board.execs[1], budget_review, board.team[0])
    db.session.rollback()
    add_invitee(board.ceo, budget_review, board.team[0])
    add_invitee(board.performance, budget_review, board.team[1])
    with pytest.raises(ServiceError, match="already invited"):
        add_invitee(board.holder, budget_review, board.team[0])


# --- slots ---------------------------------------------------------------------------------


def test_slots_skip_the_christmas_bank_holidays_and_an_invitees_other_meeting(board, budget_review):
    # Finn Finance already has a meeting on Thursday 24 December, 09:00-11:00
    other = request_meeting(
        kind="directorate_review",
        unit=board.other_unit,
        chair=board.execs[1],
        notify=False,
    )
    schedule_meeting(
        board.ceo,
        other,
        london(2026, 12, 24, 9),
        london(2026, 12, 24, 11),
        now=DECIDED_AT,
    )
    db.session.commit()
    now = london(2026, 12, 23, 16)
    slots = propose_slots(budget_review, now=now)
    local = [s.astimezone(UTC) for s in slots]
    assert local == [
        london(2026, 12, 24, 11),  # after Finn's meeting
        london(2026, 12, 29, 9),  # 25 (Christmas Day) and 28 (Boxing Day, substitute) skipped
        london(2026, 12, 30, 9),
        london(2026, 12, 31, 9),
        london(2027, 1, 4, 9),  # 1 January is New Year's Day
    ]
    assert all(s.tzinfo is not None for s in slots)
    # nothing after the hold-by date
    later = propose_slots(budget_review, count=50, now=now)
    assert max(later) < london(2027, 1, 7, 0)
    assert all(
        s.astimezone(UTC).date() not in (date(2026, 12, 25), date(2026, 12, 28)) for s in later
    )
    # once the hold-by date has passed, the soonest free times
    late = propose_slots(budget_review, now=london(2027, 1, 6, 12))
    assert late[0] == london(2027, 1, 7, 9) and len(late) == 5


def test_slots_respect_office_hours_and_the_duration(board, budget_review):
    now = london(2026, 12, 30, 12)
    slots = propose_slots(budget_review, count=8, duration=timedelta(hours=2), now=now)
    from workflow_app.clock import to_london

    for slot in slots:
        start = to_london(slot)
        assert start.hour >= 9 and (start + timedelta(hours=2)).hour <= 17
        assert start.weekday() < 5
    # a cancelled or held meeting does not block a slot; a scheduled one does
    first = slots[0]
    blocker = request_meeting(kind="ceo_progress", unit=board.unit, chair=board.ceo, notify=False)
    schedule_meeting(board.ceo, blocker, first, first + timedelta(hours=1), now=now)
    assert first not in propose_slots(budget_review, count=8, duration=timedelta(hours=2), now=now)
    cancel_meeting(board.ceo, blocker, "Not needed", now=now)
    assert first in propose_slots(budget_review, count=8, duration=timedelta(hours=2), now=now)


# --- invitations ---------------------------------------------------------------------------


def test_schedule_reschedule_and_cancel_send_one_calendar_event(board, budget_review, clock):
    meeting = budget_review
    add_invitee(board.holder, meeting, board.team[0])
    db.session.commit()
    now = london(2026, 12, 23, 16)
    clock.move_to(now)
    slot = propose_slots(meeting, now=now)[1]
    schedule_meeting(board.ceo, meeting, slot, location="Board room, Bronllys", now=now)
    db.session.commit()

    invites = mails("meeting_invitation")
    assert len(invites) == 6  # chair, 3 executives, the budget holder, the team member
    assert {m.to_address for m in invites} == {i.person.email for i in meeting.invitees}
    for message in invites:
        cal = ics_of(message)
        assert str(cal["method"]) == "REQUEST"
        event = event_of(message)
        assert str(event["uid"]) == meeting.ical_uid
        assert int(event["sequence"]) == 0
        assert event.decoded("dtstart") == slot
        assert event.decoded("dtend") == slot + timedelta(hours=1)
        assert str(event["location"]) == "Board room, Bronllys"
        attendees = {str(a).removeprefix("mailto:") for a in event.get("attendee")}
        assert attendees == {i.person.email for i in meeting.invitees}
        assert str(event["organizer"]) == "mailto:ceo@example.nhs.uk"
        assert message.attachments[0].content_type == "text/calendar; method=REQUEST"
    assert (
        invites[0].subject
        == "Invitation: Budget Review Meeting: Surgery, Tuesday 29 December 2026, 09:00"
    )

    # schedule twice: refused, nothing new
    with pytest.raises(ServiceError, match="cannot be scheduled again"):
        schedule_meeting(board.ceo, meeting, slot, now=now)
    db.session.rollback()

    # reschedule: same UID, SEQUENCE 1, one more e-mail each
    new_start = london(2027, 1, 5, 14)
    reschedule_meeting(board.ceo, meeting, new_start, reason="CEO at Welsh Government", now=now)
    db.session.commit()
    invites = mails("meeting_invitation")
    assert len(invites) == 12
    moved = invites[6:]
    for message in moved:
        event = event_of(message)
        assert str(event["uid"]) == meeting.ical_uid
        assert int(event["sequence"]) == 1
        assert event.decoded("dtstart") == new_start
        assert event.decoded("dtend") == new_start + timedelta(hours=1)  # length kept
    assert moved[0].subject.startswith("Moved: ")

    # cancel: METHOD:CANCEL, same UID, SEQUENCE 2
    cancel_meeting(board.ceo, meeting, "Position recovered; meeting no longer needed", now=now)
    db.session.commit()
    cancellations = mails("meeting_cancellation")
    assert len(cancellations) == 6
    for message in cancellations:
        cal = ics_of(message)
        assert str(cal["method"]) == "CANCEL"
        event = event_of(message)
        assert (str(event["uid"]), int(event["sequence"])) == (meeting.ical_uid, 2)
        assert str(event["status"]) == "CANCELLED"
        assert message.attachments[0].content_type == "text/calendar; method=CANCEL"
    assert "Position recovered" in cancellations[0].body_text
    assert meeting.deadline.status == "cancelled"
    assert verify_chain().ok


def test_a_member_added_after_scheduling_gets_the_current_invitation_only(board, budget_review):
    now = london(2026, 12, 14, 9)
    schedule_meeting(board.ceo, budget_review, london(2026, 12, 22, 10), now=now)
    add_invitee(board.holder, budget_review, board.team[2], now=now)
    db.session.commit()
    invites = mails("meeting_invitation")
    assert len(invites) == 6
    assert invites[-1].to_address == "team3@example.nhs.uk"
    assert int(event_of(invites[-1])["sequence"]) == 0


def test_scheduling_is_for_the_chair_and_the_performance_team(board, budget_review):
    now = london(2026, 12, 14, 9)
    for person in (board.execs[0], board.holder, board.lead, board.stranger):
        with pytest.raises(PermissionDenied):
            schedule_meeting(person, budget_review, london(2026, 12, 22, 10), now=now)
    with pytest.raises(ServiceError, match="future"):
        schedule_meeting(board.ceo, budget_review, london(2026, 12, 10, 10), now=now)
    db.session.rollback()
    schedule_meeting(board.performance, budget_review, london(2026, 12, 22, 10), now=now)
    assert budget_review.status == "scheduled"


# --- at and after the meeting --------------------------------------------------------------


def test_attendance_minutes_action_plan_and_the_chairs_letter(board, budget_review, clock):
    meeting = budget_review
    add_invitee(board.holder, meeting, board.team[0])
    starts = london(2026, 12, 22, 10)
    schedule_meeting(board.ceo, meeting, starts, now=london(2026, 12, 14, 9))
    db.session.commit()

    # an invitee sends their own apologies before the meeting; attendance waits for the start
    record_attendance(board.execs[2], meeting, board.execs[2], "apologies", "On leave")
    db.session.commit()
    with pytest.raises(ServiceError, match="started"):
        record_attendance(board.ceo, meeting, board.execs[0], "attended")
    with pytest.raises(PermissionDenied):
        record_attendance(board.execs[2], meeting, board.execs[1], "apologies")
    with pytest.raises(ServiceError, match="outcome can be recorded once"):
        record_outcome(board.ceo, meeting, "Minutes", "Decisions")
    db.session.rollback()

    clock.move_to(starts + timedelta(hours=2))
    for person in (board.ceo, board.execs[0], board.execs[1], board.holder, board.team[0]):
        record_attendance(board.ceo, meeting, person, "attended")
    db.session.commit()
    attendance = {i.person.name: i.attendance for i in meeting.invitees}
    assert attendance["Nia Nursing"] == "apologies"
    assert attendance["Team Member 1"] == "attended"

    with pytest.raises(PermissionDenied):
        record_outcome(board.holder, meeting, "Minutes", "Decisions")
    meeting, plan, letter = record_outcome(
        board.ceo,
        meeting,
        "The budget holder presented the position: agency spend in theatres.\n\n"
        "The executives challenged the forecast.",
        "Stop non-contracted agency shifts from January\nReport weekly to the Finance Director",
    )
    db.session.commit()

    assert meeting.status == "held"
    assert meeting.minutes_recorded_by_id == board.ceo.id
    # the agreed action plan: a draft plan of kind action_plan on the finance case
    assert plan is not None and meeting.action_plan_id == plan.id
    assert (plan.kind, plan.status) == ("action_plan", "draft")
    assert plan.case_id == meeting.case_id and plan.unit_id == board.unit.id
    assert plan.title == "Agreed action plan — Surgery"
    assert plan.due_deadline is not None and plan.due_deadline.kind == "action_plan_due"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(RecoveryPlan)) == 1
    # the obligation to hold the meeting is done
    assert meeting.deadline.status == "done"
    # the chair's formal letter
    assert letter.kind == "chair_letter" and letter.decision_id is None
    assert letter.issued_by_id == board.ceo.id
    html = letter.html
    assert "Budget Review Meeting: Surgery" in html
    assert "held on 22 December 2026" in html
    assert "section 7.8 (Level 2b)" in html
    assert "agency spend in theatres" in html
    assert "Stop non-contracted agency shifts from January" in html
    assert "Agreed action plan — Surgery" in html
    assert "Carys Chief" in html
    letters = db.session.scalars(sa.select(Letter.kind).order_by(Letter.id)).all()
    assert letters == ["escalation_2b", "chair_letter"]
    # the unit hears of it, with the letter's PDF when made
    outcome = mails("meeting_outcome")
    assert {m.to_address for m in outcome} == {
        "lee@example.nhs.uk",
        "bea@example.nhs.uk",
        "eve@example.nhs.uk",
    }
    assert {m.status for m in outcome} == {"held"}
    assert {m.letter_id for m in outcome} == {letter.id}

    # held once only
    with pytest.raises(ServiceError):
        record_outcome(board.ceo, meeting, "Again", "Again")
    db.session.rollback()
    assert verify_chain().ok


def test_follow_up_review_for_a_failing_plan(board, budget_review, clock):
    meeting = budget_review
    add_invitee(board.holder, meeting, board.team[0])
    starts = london(2026, 12, 22, 10)
    schedule_meeting(board.ceo, meeting, starts, now=london(2026, 12, 14, 9))
    clock.move_to(starts + timedelta(hours=2))
    _, plan, _ = record_outcome(board.ceo, meeting, "Minutes", "Decisions")
    db.session.commit()

    with pytest.raises(ServiceError, match="no review period"):
        propose_follow_up_meeting(plan)

    # the delivery side sets the review period (DOMAIN.md decision 9: 2 months)
    plan.status = "review_period"
    plan.review_period_ends_on = date(2027, 3, 22)
    db.session.commit()
    follow_up = propose_follow_up_meeting(plan)
    db.session.commit()
    assert follow_up.kind == "follow_up_review"
    assert follow_up.status == "requested"
    assert follow_up.hold_by == date(2027, 3, 22)
    assert follow_up.follows_id == meeting.id
    assert follow_up.chair_id == board.ceo.id
    assert follow_up.case_id == meeting.case_id
    assert {(i.person_id, i.role) for i in follow_up.invitees} == {
        (i.person_id, i.role) for i in meeting.invitees
    }
    assert follow_up.ical_uid != meeting.ical_uid
    # once per plan and review period
    assert propose_follow_up_meeting(plan).id == follow_up.id
    asks = [m for m in mails("meeting_request") if f"/meetings/{follow_up.id}" in m.link]
    assert len(asks) == 1
    assert asks[0].subject == (
        "Please schedule the Follow-up review meeting for Surgery by 22 March 2027"
    )


def test_follow_up_without_a_budget_review_invites_from_the_data(board, clock):
    from workflow_app.models.cases import EscalationCase

    case = db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == board.unit.id, EscalationCase.track == "finance"
        )
    )
    plan = RecoveryPlan(
        case_id=case.id,
        unit_id=board.unit.id,
        kind="action_plan",
        title="Action plan",
        status="review_period",
        review_period_ends_on=date(2027, 2, 26),
    )
    db.session.add(plan)
    db.session.commit()
    follow_up = propose_follow_up_meeting(plan)
    assert follow_up.follows_id is None
    assert follow_up.chair_id == board.ceo.id
    roles = {i.person_id: i.role for i in follow_up.invitees}
    assert roles[board.holder.id] == "budget_holder"
    assert sum(1 for r in roles.values() if r == "executive_director") == 3


def test_a_requested_meeting_can_be_cancelled_without_invitations(board, budget_review):
    with pytest.raises(ServiceError, match="reason"):
        cancel_meeting(board.ceo, budget_review, "  ")
    cancel_meeting(board.ceo, budget_review, "Raised in error")
    db.session.commit()
    assert budget_review.status == "cancelled"
    assert budget_review.ical_sequence == 0
    assert mails("meeting_cancellation") == []
    assert db.session.get(Deadline, budget_review.deadline_id).status == "cancelled"
