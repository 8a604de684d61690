"""iCalendar (RFC 5545 / iTIP RFC 5546) invitations for meetings, built with ``icalendar``.

One meeting keeps one ``UID`` for its whole life (e.g. ``meeting-42@escalate``), so mail
clients treat every message about it as the same event:

* the first invitation and every reschedule: ``METHOD:REQUEST``, ``STATUS:CONFIRMED``,
  with a higher ``SEQUENCE`` each time the date, time or place changes;
* a cancellation: ``METHOD:CANCEL``, ``STATUS:CANCELLED``, with a higher ``SEQUENCE``.

The caller keeps the sequence number (it must only go up) and attaches the bytes as
``text/calendar; method=REQUEST`` (or ``CANCEL``). All text is escaped by the library, never
formatted by hand; the output depends only on the arguments (``DTSTAMP`` is ``stamp``), so the
same inputs give the same bytes.
"""

from __future__ import annotations

from datetime import UTC, datetime

from icalendar import Calendar, Event, vCalAddress

__all__ = ["PRODID", "meeting_invitation", "parse_uid_and_sequence"]

PRODID = "-//Escalate//NHS escalation engine//EN"

_METHODS = ("REQUEST", "CANCEL", "PUBLISH")


def _utc(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (got naive {value.isoformat()})")
    return value.astimezone(UTC)


def _address(email: str, name: str, what: str) -> vCalAddress:
    if not isinstance(email, str) or not email.strip():
        raise ValueError(f"{what} needs an e-mail address")
    email = email.strip()
    if email.lower().startswith("mailto:"):
        email = email[len("mailto:") :]
    if any(c in email for c in "\r\n") or "@" not in email:
        raise ValueError(f"{what}: {email!r} is not an e-mail address")
    address = vCalAddress(f"mailto:{email}")
    if name:
        address.params["CN"] = str(name)
    return address


def meeting_invitation(
    *,
    uid: str,
    sequence: int,
    title: str,
    description: str,
    location: str,
    starts_at: datetime,
    ends_at: datetime,
    organiser_email: str,
    organiser_name: str,
    attendees: list[tuple[str, str]],
    method: str = "REQUEST",
    cancelled: bool = False,
    stamp: datetime,
) -> bytes:
    """An iCalendar object with one ``VEVENT`` for a meeting, as bytes.

    :param uid: stable for the meeting's lifetime, e.g. ``"meeting-42@escalate"``.
    :param sequence: 0 for the first invitation; higher for every change and the cancellation.
    :param attendees: ``(email, display name)`` pairs.
    :param method: ``REQUEST`` (default), ``CANCEL`` or ``PUBLISH``.
    :param cancelled: a cancellation: ``STATUS:CANCELLED`` and ``METHOD:CANCEL`` (the default
        ``REQUEST`` is replaced; ``method="CANCEL"`` alone means the same).
    :param stamp: ``DTSTAMP``, when the message was made (aware).
    :raises ValueError: on naive datetimes, an empty uid, a negative sequence, an end not after
        the start, an unknown method or a cancellation sent as ``PUBLISH``.
    """
    if not isinstance(uid, str) or not uid.strip() or any(c in uid for c in "\r\n"):
        raise ValueError("uid must be non-empty text on one line, e.g. 'meeting-42@escalate'")
    if isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 0:
        raise ValueError(f"sequence must be a whole number >= 0, not {sequence!r}")
    method = str(method).upper()
    if method not in _METHODS:
        raise ValueError(f"method must be one of {', '.join(_METHODS)}, not {method!r}")
    if method == "CANCEL":
        cancelled = True
    elif cancelled:
        if method != "REQUEST":
            raise ValueError(f"a cancellation is sent with METHOD:CANCEL, not {method}")
        method = "CANCEL"
    start = _utc(starts_at, "starts_at")
    end = _utc(ends_at, "ends_at")
    dtstamp = _utc(stamp, "stamp")
    if end <= start:
        raise ValueError("ends_at must be after starts_at")

    cal = Calendar()
    cal.add("prodid", PRODID)
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)

    event = Event()
    event.add("uid", uid)
    event.add("sequence", sequence)
    event.add("dtstamp", dtstamp)
    event.add("dtstart", start)
    event.add("dtend", end)
    event.add("summary", title or "")
    if description:
        event.add("description", description)
    if location:
        event.add("location", location)
    event.add("status", "CANCELLED" if cancelled else "CONFIRMED")
    event.add("organizer", _address(organiser_email, organiser_name, "organiser"))
    for i, (email, name) in enumerate(attendees):
        attendee = _address(email, name, f"attendees[{i}]")
        attendee.params["ROLE"] = "REQ-PARTICIPANT"
        attendee.params["PARTSTAT"] = "NEEDS-ACTION"
        attendee.params["RSVP"] = "TRUE"
        event.add("attendee", attendee, encode=False)
    cal.add_component(event)
    return cal.to_ical()


def parse_uid_and_sequence(ics: bytes) -> tuple[str, int, str]:
    """``(uid, sequence, method)`` of the first ``VEVENT`` in an iCalendar object.

    :raises ValueError: if there is no ``VEVENT`` or it has no ``UID``.
    """
    cal = Calendar.from_ical(ics)
    method = str(cal.get("method", ""))
    for event in cal.walk("VEVENT"):
        uid = event.get("uid")
        if uid is None:
            raise ValueError("the VEVENT has no UID")
        return str(uid), int(event.get("sequence", 0)), method
    raise ValueError("no VEVENT in the iCalendar object")
