"""Meeting invitations as iCalendar (workflow_app.notifications.ical)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from icalendar import Calendar

from workflow_app.notifications.ical import PRODID, meeting_invitation, parse_uid_and_sequence

STAMP = datetime(2026, 10, 1, 9, 0, tzinfo=UTC)
BST = timezone(timedelta(hours=1))


def invitation(**overrides: object) -> bytes:
    args: dict[str, object] = {
        "uid": "meeting-42@escalate",
        "sequence": 0,
        "title": "Level 3 review: Emergency Department",
        "description": "Agenda and papers to follow.",
        "location": "Board room, Headquarters",
        "starts_at": datetime(2026, 10, 20, 10, 0, tzinfo=BST),
        "ends_at": datetime(2026, 10, 20, 11, 30, tzinfo=BST),
        "organiser_email": "performance@example.nhs.uk",
        "organiser_name": "Performance Team",
        "attendees": [
            ("ceo@example.nhs.uk", "Smith, Jane"),
            ("lead@example.nhs.uk", "Dr Ravi Patel"),
        ],
        "stamp": STAMP,
    }
    args.update(overrides)
    return meeting_invitation(**args)  # type: ignore[arg-type]


def event_of(ics: bytes):
    cal = Calendar.from_ical(ics)
    events = cal.walk("VEVENT")
    assert len(events) == 1
    return cal, events[0]


def test_invitation_round_trips() -> None:
    ics = invitation()
    cal, event = event_of(ics)
    assert str(cal["prodid"]) == PRODID == "-//Escalate//NHS escalation engine//EN"
    assert str(cal["version"]) == "2.0"
    assert str(cal["method"]) == "REQUEST"
    assert str(event["uid"]) == "meeting-42@escalate"
    assert int(event["sequence"]) == 0
    assert str(event["status"]) == "CONFIRMED"
    assert str(event["summary"]) == "Level 3 review: Emergency Department"
    assert str(event["location"]) == "Board room, Headquarters"
    # 10:00 BST is 09:00 UTC, written in UTC ("Z").
    assert event["dtstart"].dt == datetime(2026, 10, 20, 9, 0, tzinfo=UTC)
    assert event["dtstart"].dt.utcoffset() == timedelta(0)
    assert event["dtend"].dt == datetime(2026, 10, 20, 10, 30, tzinfo=UTC)
    assert event["dtstamp"].dt == STAMP
    assert b"DTSTART:20261020T090000Z" in ics
    assert b"DTEND:20261020T103000Z" in ics

    organiser = event["organizer"]
    assert str(organiser) == "mailto:performance@example.nhs.uk"
    assert organiser.params["CN"] == "Performance Team"
    attendees = event["attendee"]
    assert [str(a) for a in attendees] == [
        "mailto:ceo@example.nhs.uk",
        "mailto:lead@example.nhs.uk",
    ]
    assert [a.params["CN"] for a in attendees] == ["Smith, Jane", "Dr Ravi Patel"]
    for attendee in attendees:
        assert attendee.params["ROLE"] == "REQ-PARTICIPANT"
        assert attendee.params["PARTSTAT"] == "NEEDS-ACTION"
        assert attendee.params["RSVP"] == "TRUE"
    assert parse_uid_and_sequence(ics) == ("meeting-42@escalate", 0, "REQUEST")


def test_output_is_deterministic() -> None:
    assert invitation() == invitation()


def test_single_attendee_is_still_a_list_after_parsing() -> None:
    _, event = event_of(invitation(attendees=[("ceo@example.nhs.uk", "Jane Smith")]))
    attendee = event["attendee"]
    assert str(attendee) == "mailto:ceo@example.nhs.uk"  # icalendar gives one value, not a list


def test_reschedule_keeps_uid_and_bumps_sequence() -> None:
    first = invitation()
    moved = invitation(
        sequence=1,
        starts_at=datetime(2026, 10, 27, 10, 0, tzinfo=UTC),  # GMT after the clock change
        ends_at=datetime(2026, 10, 27, 11, 0, tzinfo=UTC),
    )
    uid0, seq0, method0 = parse_uid_and_sequence(first)
    uid1, seq1, method1 = parse_uid_and_sequence(moved)
    assert uid1 == uid0
    assert seq1 > seq0
    assert method0 == method1 == "REQUEST"
    _, event = event_of(moved)
    assert event["dtstart"].dt == datetime(2026, 10, 27, 10, 0, tzinfo=UTC)


def test_cancellation() -> None:
    ics = invitation(sequence=2, cancelled=True)
    cal, event = event_of(ics)
    assert str(cal["method"]) == "CANCEL"
    assert str(event["status"]) == "CANCELLED"
    assert parse_uid_and_sequence(ics) == ("meeting-42@escalate", 2, "CANCEL")
    assert b"METHOD:CANCEL" in ics and b"STATUS:CANCELLED" in ics
    # method="CANCEL" alone means the same.
    assert invitation(sequence=2, method="CANCEL") == ics


def test_cancellation_must_not_be_published() -> None:
    with pytest.raises(ValueError, match="CANCEL"):
        invitation(method="PUBLISH", cancelled=True)
    with pytest.raises(ValueError, match="method"):
        invitation(method="REPLY")


def test_special_characters_are_escaped_and_round_trip() -> None:
    title = "Review, level 3; RTT\nsecond line: \\ backslash"
    description = "Agenda:\n1. Data, trends; actions\n2. Any other business"
    location = "Room 1; Block B, Main Site"
    name = 'O\'Brien, Siobhan; "Ops"'
    ics = invitation(
        title=title,
        description=description,
        location=location,
        attendees=[("ops@example.nhs.uk", name)],
    )
    # Escaped on the wire (RFC 5545 3.3.11): no raw newline inside the SUMMARY value.
    assert b"SUMMARY:Review\\, level 3\\; RTT\\nsecond line: \\\\ backslash" in ics.replace(
        b"\r\n ", b""
    )
    _, event = event_of(ics)
    assert str(event["summary"]) == title
    assert str(event["description"]) == description
    assert str(event["location"]) == location
    assert event["attendee"].params["CN"] == name


@pytest.mark.parametrize("field", ["starts_at", "ends_at", "stamp"])
def test_naive_datetime_rejected(field: str) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        invitation(**{field: datetime(2026, 10, 20, 10, 0)})


def test_other_bad_input() -> None:
    with pytest.raises(ValueError, match="after"):
        invitation(ends_at=datetime(2026, 10, 20, 9, 0, tzinfo=BST))
    with pytest.raises(ValueError, match="uid"):
        invitation(uid="")
    with pytest.raises(ValueError, match="sequence"):
        invitation(sequence=-1)
    with pytest.raises(ValueError, match="e-mail"):
        invitation(attendees=[("not an address", "X")])


def test_parse_without_event() -> None:
    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    with pytest.raises(ValueError, match="VEVENT"):
        parse_uid_and_sequence(cal.to_ical())
