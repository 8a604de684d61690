"""Meeting invitations as iCalendar, parsed back with ``icalendar``: one event per meeting,
the same UID for life, SEQUENCE going up, one e-mail per invitee per change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from icalendar import Calendar

from workflow_app.extensions import db
from workflow_app.models.outbox import OutboxMessage
from workflow_app.notifications.ical import parse_uid_and_sequence
from workflow_app.services.meetings import (
    _send_invitations,
    cancel_meeting,
    invitation_ics,
    request_meeting,
    reschedule_meeting,
    schedule_meeting,
)

NOW = datetime(2026, 12, 14, 9, 0, tzinfo=UTC)
START = datetime(2026, 12, 22, 10, 0, tzinfo=UTC)


def outbox() -> list[OutboxMessage]:
    return list(db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)))


def test_the_invitation_names_everyone_and_escapes_text(board, create_unit):
    unit = create_unit(code="WCH", name="Women's, Children's; & Families", lead=board.lead)
    meeting = request_meeting(
        kind="budget_review",
        unit=unit,
        chair=board.ceo,
        invitees=[(board.execs[0], "executive_director"), (board.holder, "budget_holder")],
        notify=False,
    )
    schedule_meeting(board.ceo, meeting, START, location="Room 1, HQ; floor 2", now=NOW)
    db.session.commit()
    cal = Calendar.from_ical(invitation_ics(meeting, stamp=NOW))
    (event,) = cal.walk("VEVENT")
    assert str(event["summary"]) == "Budget Review Meeting: Women's, Children's; & Families"
    assert str(event["location"]) == "Room 1, HQ; floor 2"
    assert event.decoded("dtstamp") == NOW
    names = {a.params["CN"] for a in event.get("attendee")}
    assert names == {"Carys Chief", "Eve Exec", "Bea Budget"}
    assert event["organizer"].params["CN"] == "Carys Chief"
    assert f"/meetings/{meeting.id}" in str(event["description"])


def test_one_email_per_invitee_per_change(board, budget_review):
    schedule_meeting(board.ceo, budget_review, START, now=NOW)
    db.session.commit()
    assert len([m for m in outbox() if m.kind == "meeting_invitation"]) == 5
    before = len(outbox())
    # sending the same change again writes nothing (dedupe keys carry the sequence)
    _send_invitations(budget_review, change="scheduled", now=NOW)
    db.session.commit()
    assert len(outbox()) == before
    reschedule_meeting(board.ceo, budget_review, START + timedelta(days=1), now=NOW)
    reschedule_meeting(board.ceo, budget_review, START + timedelta(days=2), now=NOW)
    cancel_meeting(board.ceo, budget_review, "No longer needed", now=NOW)
    db.session.commit()
    calendar_mail = [
        m for m in outbox() if m.kind in ("meeting_invitation", "meeting_cancellation")
    ]
    assert len(calendar_mail) == 5 * 4
    seen = {}
    for message in calendar_mail:
        uid, sequence, method = parse_uid_and_sequence(message.attachments[0].content)
        assert uid == budget_review.ical_uid
        seen.setdefault(sequence, set()).add((method, message.to_address))
    assert sorted(seen) == [0, 1, 2, 3]
    assert {method for method, _ in seen[3]} == {"CANCEL"}
    assert all(len(recipients) == 5 for recipients in seen.values())


def test_the_ics_of_a_cancelled_meeting_is_a_cancel(board, budget_review):
    schedule_meeting(board.ceo, budget_review, START, now=NOW)
    cancel_meeting(board.ceo, budget_review, "Recovered", now=NOW)
    uid, sequence, method = parse_uid_and_sequence(invitation_ics(budget_review, cancelled=True))
    assert (uid, sequence, method) == (budget_review.ical_uid, 1, "CANCEL")


def test_a_meeting_without_a_chair_is_organised_by_whoever_requested_it(board):
    meeting = request_meeting(
        kind="directorate_review",
        unit=board.unit,
        invitees=[(board.lead, "unit_lead")],
        actor=board.performance,
        notify=False,
    )
    schedule_meeting(board.performance, meeting, START, now=NOW)
    (event,) = Calendar.from_ical(invitation_ics(meeting, stamp=NOW)).walk("VEVENT")
    assert str(event["organizer"]) == "mailto:pat@example.nhs.uk"
