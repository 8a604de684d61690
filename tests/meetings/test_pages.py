"""The meeting pages: the calendar, one meeting and its forms, who sees and who acts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_from, sign_in
from workflow_app.clock import LONDON
from workflow_app.extensions import db
from workflow_app.models.meetings import Meeting
from workflow_app.models.outbox import OutboxMessage
from workflow_app.services.meetings import add_invitee, schedule_meeting

NOW = datetime(2026, 12, 14, 9, 0, tzinfo=UTC)


@pytest.fixture
def meeting(budget_review, clock):
    clock.move_to(NOW)
    return budget_review


def open_as(app, person):
    client = app.test_client()
    response = sign_in(client, person.email)
    assert response.status_code == 302, response.text
    return client


def fresh(meeting_id: int) -> Meeting:
    db.session.expire_all()
    return db.session.get(Meeting, meeting_id)


def invitations() -> list[OutboxMessage]:
    return list(
        db.session.scalars(
            sa.select(OutboxMessage).where(OutboxMessage.kind == "meeting_invitation")
        )
    )


def test_the_ceo_schedules_a_proposed_slot(app, board, meeting):
    client = open_as(app, board.ceo)
    page = client.get(f"/meetings/{meeting.id}")
    assert page.status_code == 200
    assert "Schedule the meeting" in page.text
    values = re.findall(r'name="slot"[^>]*value="([^"]+)"', page.text) or re.findall(
        r'value="([^"]+)"[^>]*name="slot"', page.text
    )
    assert len(values) == 6 and values[-1] == "other"
    assert "Tuesday 15 December 2026, 09:00 to 10:00" in page.text
    response = client.post(
        f"/meetings/{meeting.id}/schedule",
        data={
            "csrf_token": csrf_from(page.text),
            "slot": values[0],
            "duration": "90",
            "location": "Board room",
        },
    )
    assert response.status_code == 302, response.text
    meeting = fresh(meeting.id)
    assert meeting.status == "scheduled"
    assert meeting.starts_at.replace(tzinfo=UTC) == datetime(2026, 12, 15, 9, tzinfo=UTC)
    assert meeting.ends_at - meeting.starts_at == timedelta(minutes=90)
    assert len(invitations()) == 5
    shown = client.get(f"/meetings/{meeting.id}")
    assert "Invitations have been sent to 5 people" in shown.text
    assert "Move the meeting" in shown.text
    assert "Download the calendar event (.ics)" in shown.text


def test_another_date_and_time_in_uk_time(app, board, meeting):
    client = open_as(app, board.performance)
    page = client.get(f"/meetings/{meeting.id}")
    response = client.post(
        f"/meetings/{meeting.id}/schedule",
        data={
            "csrf_token": csrf_from(page.text),
            "slot": "other",
            "day": "2026-12-18",
            "start_time": "14:30",
            "duration": "60",
            "location": "",
        },
    )
    assert response.status_code == 302, response.text
    local = fresh(meeting.id).starts_at.replace(tzinfo=UTC).astimezone(LONDON)
    assert (local.day, local.hour, local.minute) == (18, 14, 30)


def test_a_bad_time_is_explained_and_nothing_is_sent(app, board, meeting):
    client = open_as(app, board.ceo)
    page = client.get(f"/meetings/{meeting.id}")
    token = csrf_from(page.text)
    missing = client.post(
        f"/meetings/{meeting.id}/schedule",
        data={"csrf_token": token, "slot": "other", "day": "", "start_time": "2pm"},
    )
    assert missing.status_code == 400
    assert "Enter the date of the meeting" in missing.text
    assert "Enter the start time as hours and minutes" in missing.text
    past = client.post(
        f"/meetings/{meeting.id}/schedule",
        data={"csrf_token": token, "slot": "other", "day": "2026-12-01", "start_time": "10:00"},
    )
    assert past.status_code == 400
    assert "Choose a time in the future" in past.text
    assert fresh(meeting.id).status == "requested"
    assert invitations() == []


def test_who_sees_and_who_acts(app, board, meeting):
    stranger = open_as(app, board.stranger)  # another unit's lead
    assert stranger.get(f"/meetings/{meeting.id}").status_code == 404
    assert stranger.get(f"/meetings/{meeting.id}/pack").status_code == 404
    calendar = stranger.get("/meetings/").text
    assert "Surgery" not in calendar
    token = csrf_from(calendar)  # the sign-out form's
    assert (
        stranger.post(f"/meetings/{meeting.id}/schedule", data={"csrf_token": token}).status_code
        == 404
    )

    executive = open_as(app, board.execs[1])
    page = executive.get(f"/meetings/{meeting.id}")
    assert page.status_code == 200
    assert "Schedule the meeting" not in page.text
    assert "Add supporting team member" not in page.text
    refused = executive.post(
        f"/meetings/{meeting.id}/schedule",
        data={"csrf_token": csrf_from(page.text), "slot": "other"},
    )
    assert refused.status_code == 403
    assert "Only the chair, the Chief Executive or the performance team" in refused.text

    lead = open_as(app, board.lead)  # the unit's lead sees it, but is not the budget holder
    page = lead.get(f"/meetings/{meeting.id}")
    assert page.status_code == 200
    added = lead.post(
        f"/meetings/{meeting.id}/invitees",
        data={"csrf_token": csrf_from(page.text), "email": "team1@example.nhs.uk"},
    )
    assert added.status_code == 403
    assert fresh(meeting.id).status == "requested"


def test_the_budget_holder_adds_members_and_the_fourth_is_refused(app, board, meeting):
    client = open_as(app, board.holder)
    page = client.get(f"/meetings/{meeting.id}")
    assert "The budget holder may bring up to 3 supporting team members" in page.text
    token = csrf_from(page.text)
    for n in (1, 2, 3):
        response = client.post(
            f"/meetings/{meeting.id}/invitees",
            data={"csrf_token": token, "email": f"TEAM{n}@example.nhs.uk"},
        )
        assert response.status_code == 302, response.text
    assert (
        "All 3 places for supporting team members are taken"
        in client.get(f"/meetings/{meeting.id}").text
    )
    refused = client.post(
        f"/meetings/{meeting.id}/invitees",
        data={"csrf_token": token, "email": "team4@example.nhs.uk"},
    )
    assert refused.status_code == 400
    assert (
        "The budget holder may bring up to 3 supporting team members; Team Member 1, "
        "Team Member 2 and Team Member 3 are already invited"
    ) in refused.text
    unknown = client.post(
        f"/meetings/{meeting.id}/invitees",
        data={"csrf_token": token, "email": "nobody@example.nhs.uk"},
    )
    assert unknown.status_code == 400
    assert "Nobody with that e-mail address can use Escalate" in unknown.text
    assert len([i for i in fresh(meeting.id).invitees if i.role == "supporting_member"]) == 3


def test_the_calendar_groups_by_week_and_filters(app, board, meeting):
    schedule_meeting(board.ceo, meeting, datetime(2026, 12, 22, 10, tzinfo=UTC), now=NOW)
    db.session.commit()
    client = open_as(app, board.execs[0])
    page = client.get("/meetings/")
    assert page.status_code == 200
    assert "Week beginning Monday 21 December 2026" in page.text
    assert "Budget Review Meeting" in page.text
    assert ">Meetings<" in page.text  # in the navigation
    other_unit = client.get(f"/meetings/?unit={board.other_unit.id}")
    assert "Week beginning" not in other_unit.text
    assert "Week beginning" in client.get(f"/meetings/?person={board.holder.id}").text
    assert "Week beginning" not in client.get(f"/meetings/?person={board.lead.id}").text
    # "my meetings": the budget holder's only, for a supporting member who cannot see the unit
    add_invitee(board.holder, meeting, board.team[0], now=NOW)
    db.session.commit()
    member = open_as(app, board.team[0])
    mine = member.get("/meetings/?mine=1")
    assert "My meetings" in mine.text and "Week beginning Monday 21 December 2026" in mine.text
    assert member.get(f"/meetings/{meeting.id}").status_code == 200


def test_the_case_page_lists_its_meetings(app, board, meeting):
    client = open_as(app, board.lead)
    page = client.get(f"/cases/{meeting.case_id}")
    assert page.status_code == 200
    assert f'href="/meetings/{meeting.id}"' in page.text
    assert "to be scheduled by 06 January 2027" in page.text


def test_cancel_and_outcome_forms(app, board, meeting, clock):
    starts = datetime(2026, 12, 22, 10, tzinfo=UTC)
    schedule_meeting(board.ceo, meeting, starts, now=NOW)
    db.session.commit()
    client = open_as(app, board.ceo)
    page = client.get(f"/meetings/{meeting.id}")
    assert "Minutes and decisions" not in page.text  # not before the meeting
    empty = client.post(
        f"/meetings/{meeting.id}/cancel", data={"csrf_token": csrf_from(page.text), "reason": ""}
    )
    assert empty.status_code == 400
    assert "Give the reason for cancelling the meeting" in empty.text

    clock.move_to(starts + timedelta(hours=1, minutes=30))
    client = open_as(app, board.ceo)  # a new day, a new session
    page = client.get(f"/meetings/{meeting.id}")
    assert "Minutes and decisions" in page.text
    token = csrf_from(page.text)
    saved = client.post(
        f"/meetings/{meeting.id}/attendance",
        data={
            "csrf_token": token,
            **{f"attendance-{i.id}": "attended" for i in meeting.invitees},
        },
    )
    assert saved.status_code == 302
    held = client.post(
        f"/meetings/{meeting.id}/outcome",
        data={
            "csrf_token": token,
            "minutes": "Position discussed.",
            "decisions_text": "Recovery actions agreed",
        },
    )
    assert held.status_code == 302, held.text
    meeting = fresh(meeting.id)
    assert meeting.status == "held"
    assert {i.attendance for i in meeting.invitees} == {"attended"}
    assert meeting.action_plan.kind == "action_plan"
    page = client.get(f"/meetings/{meeting.id}")
    assert "Recovery actions agreed" in page.text
    assert "Agreed action plan — Surgery" in page.text
    plan_link = f'<a href="/plans/{meeting.action_plan.id}">Agreed action plan — Surgery</a>'
    assert plan_link in page.text  # the meeting links to the plan it agreed
    assert client.get(f"/plans/{meeting.action_plan.id}").status_code == 200


def test_an_invitee_sends_apologies_from_the_page(app, board, meeting):
    schedule_meeting(board.ceo, meeting, datetime(2026, 12, 22, 10, tzinfo=UTC), now=NOW)
    db.session.commit()
    client = open_as(app, board.execs[2])
    page = client.get(f"/meetings/{meeting.id}")
    assert "Send my apologies" in page.text
    response = client.post(
        f"/meetings/{meeting.id}/attendance",
        data={"csrf_token": csrf_from(page.text), "apologies": "1", "note": "On leave"},
    )
    assert response.status_code == 302
    mine = next(i for i in fresh(meeting.id).invitees if i.person_id == board.execs[2].id)
    assert (mine.attendance, mine.attendance_note) == ("apologies", "On leave")
    other = next(i for i in fresh(meeting.id).invitees if i.person_id == board.execs[1].id)
    forged = client.post(
        f"/meetings/{meeting.id}/attendance",
        data={"csrf_token": csrf_from(page.text), f"attendance-{other.id}": "apologies"},
    )
    assert forged.status_code == 403


def test_ics_download(app, board, meeting):
    client = open_as(app, board.execs[0])
    assert client.get(f"/meetings/{meeting.id}/invite.ics").status_code == 404  # no date yet
    schedule_meeting(board.ceo, meeting, datetime(2026, 12, 22, 10, tzinfo=UTC), now=NOW)
    db.session.commit()
    response = client.get(f"/meetings/{meeting.id}/invite.ics")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/calendar")
    assert f"UID:{meeting.ical_uid}" in response.text


def test_a_late_meeting_still_gets_the_soonest_slots(app, board, meeting, clock):
    clock.move_to(datetime(2027, 1, 8, 9, tzinfo=UTC))  # the hold-by date was 6 January
    client = open_as(app, board.ceo)
    page = client.get(f"/meetings/{meeting.id}")
    assert "This meeting should have been held by 06 January 2027" in page.text
    assert "Monday 11 January 2027, 09:00 to 10:00" in page.text
