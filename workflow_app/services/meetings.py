"""Meetings: requesting, proposing slots, scheduling with calendar invitations, the outcome.

The meeting core every kind of meeting shares (docs/decisions/0018):

* :func:`request_meeting` creates a *requested* meeting with its invitees (idempotent on a
  dedupe key) and asks the chair to schedule it;
* :func:`propose_slots` finds free slots: working days of the unit's framework calendar
  (weekends and bank holidays excluded), office hours in Europe/London, before the hold-by
  date, not overlapping any invitee's other scheduled meeting held in Escalate;
* :func:`schedule_meeting`, :func:`reschedule_meeting` and :func:`cancel_meeting` e-mail every
  invitee an iCalendar invitation (``METHOD:REQUEST`` or ``CANCEL``) through the outbox; the
  event keeps one ``UID`` and its ``SEQUENCE`` goes up on each change;
* :func:`add_invitee` (the budget holder's supporting team members, at most 3 at a Budget
  Review Meeting) and :func:`record_attendance`;
* :func:`record_outcome`: minutes and decisions, the agreed action plan (a draft
  :class:`~workflow_app.models.plans.RecoveryPlan` of kind ``action_plan``) and the chair's
  formal letter;
* :func:`data_pack`: the unit's data pack, frozen on the meeting the first time it is made;
* :func:`request_meetings_for_decision`: a decision's ``meeting:`` consequence (Level 2b: the
  CEO calls a Budget Review Meeting of all Executive Directors and the budget holder);
* :func:`propose_follow_up_meeting`: the follow-up review at the end of a failing plan's review
  period (DOMAIN.md decision 9).

Services only flush; the caller commits (one commit point per request or job).
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

import sqlalchemy as sa
from flask import render_template
from sqlalchemy.orm.attributes import set_committed_value

from state_machines import get_framework
from workflow_app.clock import as_utc, to_london, utcnow
from workflow_app.extensions import db
from workflow_app.models.cases import Decision, EscalationCase
from workflow_app.models.deadlines import Deadline
from workflow_app.models.meetings import (
    ATTENDANCE,
    INVITEE_ROLES,
    MEETING_KINDS,
    Meeting,
    MeetingInvitee,
)
from workflow_app.models.org import Person, Unit
from workflow_app.models.plans import RecoveryPlan
from workflow_app.models.roles import (
    CEO,
    COMMITTEE_MEMBER,
    EXECUTIVE_DIRECTOR,
    PERFORMANCE_TEAM,
    ROLE_TITLES,
)
from workflow_app.notifications.ical import meeting_invitation
from workflow_app.notifications.outbox import absolute_url, queue_email
from workflow_app.permissions import can_view_unit
from workflow_app.services.audit import record_event
from workflow_app.services.deadlines import (
    calendar_for,
    cancel_deadline,
    create_deadline,
    mark_done,
)
from workflow_app.services.errors import PermissionDenied, ServiceError
from workflow_app.services.org import people_with_role, unit_contacts
from workflow_app.working_days import WorkingCalendar

__all__ = [
    "DEFAULT_DURATION",
    "OFFICE_HOURS",
    "SUPPORTING_MEMBER_LIMITS",
    "add_invitee",
    "can_add_supporting_member",
    "can_manage_meeting",
    "can_record_attendance",
    "can_view_meeting",
    "cancel_meeting",
    "data_pack",
    "data_pack_pdf",
    "invitation_ics",
    "propose_follow_up_meeting",
    "propose_slots",
    "record_attendance",
    "record_outcome",
    "request_meeting",
    "request_meetings_for_decision",
    "reschedule_meeting",
    "schedule_meeting",
    "supporting_member_limit",
]

#: Office hours, local time (the framework calendar's time zone): a slot starts at or after
#: the first and ends at or before the second.
OFFICE_HOURS = (time(9, 0), time(17, 0))
#: Candidate slots start on the hour and the half hour.
SLOT_STEP = timedelta(minutes=30)
DEFAULT_DURATION = timedelta(hours=1)
#: With no hold-by date, slots are looked for this many working days ahead.
DEFAULT_HORIZON_WORKING_DAYS = 15
#: How many supporting team members the budget holder may bring, by meeting kind, when the
#: framework file does not say (iqpf: ``optional.supporting_team_members.max: 3``).
SUPPORTING_MEMBER_LIMITS = {"budget_review": 3, "follow_up_review": 3}
#: Meetings that end with an agreed action plan / the chair's formal letter.
ACTION_PLAN_KINDS = frozenset({"budget_review", "six_monthly_review"})
CHAIR_LETTER_KINDS = frozenset({"budget_review", "follow_up_review", "six_monthly_review"})
#: Statuses of a plan that is still live (a meeting's action plan is reused, not duplicated).
LIVE_PLAN_STATUSES = ("draft", "submitted", "in_review", "returned", "approved", "in_delivery",
                      "failing", "review_period")  # fmt: skip
#: The framework section each kind of meeting comes from (shown in the letter and the pack).
KIND_SOURCES = {
    "budget_review": "section 7.8 (Level 2b)",
    "six_monthly_review": "section 5.5.3",
    "directorate_review": "section 5.5.3",
    "follow_up_review": "section 7.8 (Level 2b, review period)",
}


# --- permissions ---------------------------------------------------------------------------


def _signed_in(person: Person | None) -> bool:
    return person is not None and getattr(person, "is_authenticated", False)


def _is_invitee(person: Person, meeting: Meeting) -> bool:
    return any(i.person_id == person.id for i in meeting.invitees)


def can_view_meeting(person: Person | None, meeting: Meeting) -> bool:
    """Whoever may see the unit, and the meeting's own invitees."""
    if not _signed_in(person):
        return False
    return can_view_unit(person, meeting.unit) or _is_invitee(person, meeting)


def can_manage_meeting(person: Person | None, meeting: Meeting) -> bool:
    """Scheduling, rescheduling, cancelling and the outcome: the chair, the Chief Executive
    (who calls the Budget Review Meeting) and the performance team (the CEO's office)."""
    if not _signed_in(person):
        return False
    return person.id == meeting.chair_id or person.has_role(CEO, PERFORMANCE_TEAM)


def can_add_supporting_member(person: Person | None, meeting: Meeting) -> bool:
    """The unit's budget holder chooses their supporting team; the CEO's side may too."""
    if not _signed_in(person):
        return False
    return person.id == meeting.unit.budget_holder_id or can_manage_meeting(person, meeting)


def can_record_attendance(person: Person | None, meeting: Meeting) -> bool:
    """Whoever manages the meeting; an invitee may send their own apologies."""
    return can_manage_meeting(person, meeting) or (
        _signed_in(person) and _is_invitee(person, meeting)
    )


# --- helpers -------------------------------------------------------------------------------


def _calendar(meeting_or_unit: Meeting | Unit) -> WorkingCalendar:
    unit = meeting_or_unit.unit if isinstance(meeting_or_unit, Meeting) else meeting_or_unit
    return calendar_for(unit.framework)


def _aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise ServiceError(f"Give the {what} as a date and time")
    if value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware")
    return as_utc(value)


def _kind_title(kind: str) -> str:
    return MEETING_KINDS.get(kind, kind.replace("_", " ").capitalize())


def _when(value: datetime | None) -> str:
    local = to_london(value)
    return f"{local:%A %d %B %Y, %H:%M}" if local else ""


def _audit(action: str, meeting: Meeting, summary: str, actor, **details) -> None:
    record_event(
        action,
        object_type="meeting",
        object_id=meeting.id,
        summary=summary,
        actor=actor,
        details=details or None,
    )


def _invitee(meeting: Meeting, person: Person) -> MeetingInvitee | None:
    return next((i for i in meeting.invitees if i.person_id == person.id), None)


# --- requesting ----------------------------------------------------------------------------


def request_meeting(
    *,
    kind: str,
    unit: Unit,
    case: EscalationCase | None = None,
    decision: Decision | None = None,
    chair: Person | None = None,
    hold_by: date | None = None,
    title: str | None = None,
    dedupe_key: str | None = None,
    invitees: list[tuple[Person, str]] | None = None,
    deadline: Deadline | None = None,
    follows: Meeting | None = None,
    actor: Person | None = None,
    now: datetime | None = None,
    notify: bool = True,
) -> Meeting:
    """Create a requested meeting with its invitees, once per ``dedupe_key``.

    The chair is invited as ``chair``; each person is invited once (the first role given
    wins, the chair's above all). With ``notify`` the chair is asked by e-mail to schedule it
    ("Please schedule the Budget Review Meeting for Surgery by 14 December 2026").

    :param invitees: ``(person, role)`` pairs; roles are those of
        :data:`workflow_app.models.meetings.INVITEE_ROLES`.
    :param hold_by: the last day the meeting should be held on (the framework's "within").
    """
    now = now or utcnow()
    if dedupe_key:
        existing = db.session.scalar(sa.select(Meeting).where(Meeting.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    if kind not in MEETING_KINDS:
        raise ServiceError(f"{kind!r} is not a kind of meeting Escalate knows")
    meeting = Meeting(
        kind=kind,
        title=(title or f"{_kind_title(kind)}: {unit.name}")[:300],
        unit_id=unit.id,
        unit=unit,
        case_id=case.id if case is not None else None,
        decision_id=decision.id if decision is not None else None,
        deadline_id=deadline.id if deadline is not None else None,
        follows_id=follows.id if follows is not None else None,
        dedupe_key=dedupe_key,
        status="requested",
        chair_id=chair.id if chair is not None else None,
        requested_at=now,
        hold_by=hold_by,
        ical_uid=f"meeting-{uuid.uuid4()}@escalate",
        ical_sequence=0,
        created_by_id=actor.id if actor is not None else None,
    )
    db.session.add(meeting)
    wanted: list[tuple[Person, str]] = []
    if chair is not None:
        wanted.append((chair, "chair"))
    wanted.extend(invitees or [])
    seen: set[int] = set()
    for person, role in wanted:
        if person is None or person.id in seen:
            continue
        if role not in INVITEE_ROLES:
            raise ServiceError(f"{role!r} is not an invitee role")
        seen.add(person.id)
        meeting.invitees.append(
            MeetingInvitee(
                person_id=person.id,
                person=person,
                role=role,
                added_by_id=actor.id if actor is not None else None,
                added_at=now,
            )
        )
    db.session.flush()
    _audit(
        "meeting.requested",
        meeting,
        f"{meeting.title} requested"
        + (f", to be held by {hold_by:%d %b %Y}" if hold_by else "")
        + f"; {len(meeting.invitees)} invited",
        actor,
        kind=kind,
        hold_by=hold_by.isoformat() if hold_by else None,
        invitees=[[i.person_id, i.role] for i in meeting.invitees],
    )
    if notify:
        ask_to_schedule(meeting)
    return meeting


def schedulers_for(meeting: Meeting) -> list[Person]:
    """Who is asked to schedule a meeting: its chair, else the performance team."""
    if meeting.chair is not None:
        return [meeting.chair]
    return people_with_role(PERFORMANCE_TEAM)


def ask_to_schedule(meeting: Meeting) -> None:
    """E-mail the chair (or the performance team) to schedule a requested meeting."""
    by = f" by {meeting.hold_by.day} {meeting.hold_by:%B %Y}" if meeting.hold_by else ""
    for person in schedulers_for(meeting):
        queue_email(
            kind="meeting_request",
            dedupe_key=f"meeting:{meeting.id}:request:{person.id}",
            recipient=person,
            subject=f"Please schedule the {_kind_title(meeting.kind)} for {meeting.unit.name}{by}",
            template="meeting_request",
            link=absolute_url(f"/meetings/{meeting.id}"),
            meeting=meeting,
            kind_title=_kind_title(meeting.kind),
            hold_by=meeting.hold_by,
        )


def _invitees_from_tokens(unit: Unit, tokens: Iterable[str]) -> list[tuple[Person, str]]:
    """Turn a framework's ``invite:`` list into people, from the data.

    ``all_executive_directors``: everyone holding the executive director role;
    ``budget_holder``, ``unit_lead``, ``accountable_executive``: the unit's;
    ``whole_board``: the CEO, the executive directors and the committee members;
    any other word naming a role: everyone holding it.
    """
    people: list[tuple[Person, str]] = []
    for word in tokens or []:
        if word in ("all_executive_directors", "executive_directors", EXECUTIVE_DIRECTOR):
            people += [(p, "executive_director") for p in people_with_role(EXECUTIVE_DIRECTOR)]
        elif word == "budget_holder":
            if unit.budget_holder is not None:
                people.append((unit.budget_holder, "budget_holder"))
        elif word in ("unit_lead", "lead"):
            if unit.lead is not None:
                people.append((unit.lead, "unit_lead"))
        elif word == "accountable_executive":
            if unit.accountable_executive is not None:
                people.append((unit.accountable_executive, "executive_director"))
        elif word == "whole_board":
            for person in people_with_role(CEO, EXECUTIVE_DIRECTOR, COMMITTEE_MEMBER):
                role = "executive_director" if person.has_role(EXECUTIVE_DIRECTOR) else "attendee"
                people.append((person, role))
        else:
            people += [(p, "attendee") for p in people_with_role(word)]
    return people


def _chair_for(role: str | None) -> Person | None:
    if not role:
        return None
    holders = people_with_role(role)
    return holders[0] if holders else None


def request_meetings_for_decision(
    decision: Decision, spec: Mapping[str, Any] | list, actor: Person | None, now: datetime
) -> list[Meeting]:
    """A decided transition's ``meeting:`` consequence(s): the meeting, requested.

    iqpf Level 2b: a Budget Review Meeting chaired by the CEO, inviting every Executive
    Director and the unit's budget holder, to be held within 15 working days; the chair is
    e-mailed to schedule it and an obligation ("Budget Review Meeting to be held") is
    created with the same due time. Safe to call twice (dedupe keys on the decision).
    """
    specs = spec if isinstance(spec, list) else [spec]
    case = decision.case
    unit = case.unit
    calendar = _calendar(unit)
    meetings = []
    for item in specs:
        if not item:
            continue
        kind = item["kind"]
        chair = _chair_for(item.get("chair"))
        due_at = calendar.due_after(now, str(item["within"])) if item.get("within") else None
        deadline = None
        if due_at is not None:
            deadline = create_deadline(
                dedupe_key=f"decision:{decision.id}:meeting:{kind}",
                kind=f"meeting:{kind}",
                title=f"{_kind_title(kind)} to be held",
                unit=unit,
                framework=case.framework,
                case=case,
                owner=chair,
                due_at=due_at,
                actor=actor,
                now=now,
            )
        meetings.append(
            request_meeting(
                kind=kind,
                unit=unit,
                case=case,
                decision=decision,
                chair=chair,
                hold_by=calendar.local_date(due_at) if due_at else None,
                dedupe_key=f"decision:{decision.id}:meeting:{kind}",
                invitees=_invitees_from_tokens(unit, item.get("invite") or []),
                deadline=deadline,
                actor=actor,
                now=now,
            )
        )
    return meetings


# --- slots ---------------------------------------------------------------------------------


def _busy(meeting: Meeting, start: datetime, end: datetime) -> list[tuple[datetime, datetime]]:
    """Other scheduled meetings of any of the invitees that overlap ``[start, end)``."""
    people = [i.person_id for i in meeting.invitees]
    if not people:
        return []
    rows = db.session.execute(
        sa.select(Meeting.starts_at, Meeting.ends_at)
        .join(MeetingInvitee, MeetingInvitee.meeting_id == Meeting.id)
        .where(
            MeetingInvitee.person_id.in_(people),
            Meeting.id != meeting.id,
            Meeting.status == "scheduled",
            Meeting.starts_at < end,
            Meeting.ends_at > start,
        )
        .distinct()
    ).all()
    return [(as_utc(s), as_utc(e)) for s, e in rows]


def propose_slots(
    meeting: Meeting,
    *,
    count: int = 5,
    duration: timedelta = DEFAULT_DURATION,
    now: datetime | None = None,
) -> list[datetime]:
    """Up to ``count`` free start times (aware UTC), earliest first, one per day first.

    A slot is on a working day of the unit's framework calendar (no weekend, no bank holiday
    in any of its regions), from the next working day after today up to the hold-by date
    (or 15 working days ahead when there is none, or when the hold-by date has passed),
    inside office hours (09:00-17:00 local, starting on the hour or half hour) and overlaps
    no scheduled meeting of any invitee.
    The first free slot of each day is taken first; when there are fewer days than ``count``,
    later slots of the same days fill the rest.
    """
    now = as_utc(now or utcnow())
    calendar = _calendar(meeting)
    zone = calendar.zone
    today = calendar.local_date(now)
    first = calendar.next_working_day(today)
    last = meeting.hold_by or calendar.add_working_days(today, DEFAULT_HORIZON_WORKING_DAYS)
    if last < first:  # late already: the soonest free times, as if newly requested
        last = calendar.add_working_days(today, DEFAULT_HORIZON_WORKING_DAYS)
    window_start = calendar.at_local_time(first, time(0, 0))
    window_end = calendar.at_local_time(last + timedelta(days=1), time(0, 0))
    busy = _busy(meeting, window_start, window_end)

    by_day: list[list[datetime]] = []
    day = first
    while day <= last:
        if calendar.is_working_day(day):
            free = []
            opens = datetime.combine(day, OFFICE_HOURS[0], tzinfo=zone)
            closes = datetime.combine(day, OFFICE_HOURS[1], tzinfo=zone)
            start = opens
            while start + duration <= closes:
                begin = as_utc(start)
                end = as_utc(start + duration)
                if begin > now and not any(b < end and e > begin for b, e in busy):
                    free.append(begin)
                start += SLOT_STEP
            if free:
                by_day.append(free)
        day += timedelta(days=1)

    slots: list[datetime] = [free[0] for free in by_day[:count]]
    depth = 1
    while len(slots) < count and any(len(free) > depth for free in by_day):
        for free in by_day:
            if len(free) > depth and len(slots) < count:
                # one more per day, spaced by the duration so they are real alternatives
                pick = next(
                    (s for s in free[depth:] if all(abs(s - o) >= duration for o in slots)),
                    None,
                )
                if pick is not None:
                    slots.append(pick)
        depth += 1
    return sorted(slots)[:count]


# --- invitations ---------------------------------------------------------------------------


def _organiser(meeting: Meeting, actor: Person | None) -> Person | None:
    return meeting.chair or actor


def invitation_ics(meeting: Meeting, *, cancelled: bool = False, stamp: datetime | None = None):
    """The meeting's iCalendar object (bytes) at its current sequence."""
    organiser = _organiser(meeting, meeting.created_by)
    description = (
        f"{_kind_title(meeting.kind)} for {meeting.unit.name}."
        + (f"\nCancelled: {meeting.cancelled_reason}" if cancelled else "")
        + f"\nDetails and the data pack: {absolute_url(f'/meetings/{meeting.id}')}"
    )
    attendees = [(i.person.email, i.person.name) for i in meeting.invitees]
    return meeting_invitation(
        uid=meeting.ical_uid,
        sequence=meeting.ical_sequence,
        title=meeting.title,
        description=description,
        location=meeting.location or "",
        starts_at=as_utc(meeting.starts_at),
        ends_at=as_utc(meeting.ends_at),
        organiser_email=organiser.email if organiser else "escalate@localhost",
        organiser_name=organiser.name if organiser else "Escalate",
        attendees=attendees,
        method="CANCEL" if cancelled else "REQUEST",
        stamp=as_utc(stamp or utcnow()),
    )


def _send_invitations(
    meeting: Meeting,
    *,
    change: str,
    now: datetime,
    only: Iterable[MeetingInvitee] | None = None,
) -> int:
    """One e-mail per invitee for this change, with the .ics; dedupe keys carry the sequence."""
    cancelled = change == "cancelled"
    ics = invitation_ics(meeting, cancelled=cancelled, stamp=now)
    method = "CANCEL" if cancelled else "REQUEST"
    kind_title = _kind_title(meeting.kind)
    subjects = {
        "scheduled": f"Invitation: {meeting.title}, {_when(meeting.starts_at)}",
        "rescheduled": f"Moved: {meeting.title}, now {_when(meeting.starts_at)}",
        "cancelled": f"Cancelled: {meeting.title}, {_when(meeting.starts_at)}",
        "added": f"Invitation: {meeting.title}, {_when(meeting.starts_at)}",
    }
    sent = 0
    for invitee in only if only is not None else meeting.invitees:
        queue_email(
            kind="meeting_invitation" if not cancelled else "meeting_cancellation",
            dedupe_key=(
                f"meeting:{meeting.id}:seq:{meeting.ical_sequence}:{method}:{invitee.person_id}"
            ),
            recipient=invitee.person,
            subject=subjects[change],
            template="meeting_invitation",
            link=absolute_url(f"/meetings/{meeting.id}"),
            attachments=[("invite.ics", f"text/calendar; method={method}", ics)],
            meeting=meeting,
            invitee=invitee,
            change=change,
            kind_title=kind_title,
            role_title=INVITEE_ROLES.get(invitee.role, invitee.role),
            starts_local=to_london(meeting.starts_at),
            ends_local=to_london(meeting.ends_at),
        )
        sent += 1
    return sent


def _times(starts_at: datetime, ends_at: datetime | None, now: datetime):
    starts_at = _aware(starts_at, "start")
    ends_at = _aware(ends_at, "end") if ends_at is not None else starts_at + DEFAULT_DURATION
    if ends_at <= starts_at:
        raise ServiceError("The meeting must end after it starts")
    if starts_at <= now:
        raise ServiceError("Choose a time in the future")
    if ends_at - starts_at > timedelta(hours=12):
        raise ServiceError("A meeting cannot last more than 12 hours")
    return starts_at, ends_at


def schedule_meeting(
    actor: Person,
    meeting: Meeting,
    starts_at: datetime,
    ends_at: datetime | None = None,
    location: str = "",
    now: datetime | None = None,
) -> Meeting:
    """Put a requested meeting in the diary and invite everyone (``SEQUENCE`` 0).

    :raises PermissionDenied: unless the actor is the chair, the CEO or the performance team.
    :raises ServiceError: a meeting that is not waiting to be scheduled; a time in the past.
    """
    now = as_utc(now or utcnow())
    if not can_manage_meeting(actor, meeting):
        raise PermissionDenied("Only the chair or the performance team can schedule this meeting")
    if meeting.status != "requested":
        raise ServiceError(f"This meeting is {meeting.status}; it cannot be scheduled again")
    meeting.starts_at, meeting.ends_at = _times(starts_at, ends_at, now)
    meeting.location = (location or "").strip()[:300]
    meeting.status = "scheduled"
    db.session.flush()
    _audit(
        "meeting.scheduled",
        meeting,
        f"{meeting.title} scheduled for {_when(meeting.starts_at)}"
        + (f" at {meeting.location}" if meeting.location else ""),
        actor,
        starts_at=meeting.starts_at.isoformat(),
        ends_at=meeting.ends_at.isoformat(),
        sequence=meeting.ical_sequence,
    )
    _send_invitations(meeting, change="scheduled", now=now)
    return meeting


def reschedule_meeting(
    actor: Person,
    meeting: Meeting,
    starts_at: datetime,
    ends_at: datetime | None = None,
    location: str | None = None,
    reason: str = "",
    now: datetime | None = None,
) -> Meeting:
    """Move a scheduled meeting: same ``UID``, ``SEQUENCE`` + 1, a new invitation to all."""
    now = as_utc(now or utcnow())
    if not can_manage_meeting(actor, meeting):
        raise PermissionDenied("Only the chair or the performance team can move this meeting")
    if meeting.status != "scheduled":
        raise ServiceError(f"This meeting is {meeting.status}; only a scheduled one can be moved")
    if ends_at is None:
        ends_at = _aware(starts_at, "start") + (as_utc(meeting.ends_at) - as_utc(meeting.starts_at))
    old = meeting.starts_at
    meeting.starts_at, meeting.ends_at = _times(starts_at, ends_at, now)
    if location is not None:
        meeting.location = location.strip()[:300]
    meeting.ical_sequence += 1
    db.session.flush()
    _audit(
        "meeting.rescheduled",
        meeting,
        f"{meeting.title} moved from {_when(old)} to {_when(meeting.starts_at)}"
        + (f": {reason.strip()}" if reason.strip() else ""),
        actor,
        starts_at=meeting.starts_at.isoformat(),
        ends_at=meeting.ends_at.isoformat(),
        sequence=meeting.ical_sequence,
    )
    _send_invitations(meeting, change="rescheduled", now=now)
    return meeting


def cancel_meeting(
    actor: Person, meeting: Meeting, reason: str, now: datetime | None = None
) -> Meeting:
    """Cancel a requested or scheduled meeting, with a reason.

    A scheduled meeting's invitees get ``METHOD:CANCEL`` with ``SEQUENCE`` + 1, so their
    calendars remove the same event; the obligation to hold it (if any) is cancelled with
    the same reason.
    """
    now = as_utc(now or utcnow())
    if not can_manage_meeting(actor, meeting):
        raise PermissionDenied("Only the chair or the performance team can cancel this meeting")
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Give the reason for cancelling the meeting")
    if meeting.status not in ("requested", "scheduled"):
        raise ServiceError(f"This meeting is {meeting.status}; it cannot be cancelled")
    was_scheduled = meeting.status == "scheduled"
    meeting.status = "cancelled"
    meeting.cancelled_reason = reason[:4000]
    if was_scheduled:
        meeting.ical_sequence += 1
    db.session.flush()
    _audit(
        "meeting.cancelled",
        meeting,
        f"{meeting.title} cancelled: {reason}",
        actor,
        sequence=meeting.ical_sequence,
    )
    if was_scheduled:
        _send_invitations(meeting, change="cancelled", now=now)
    if meeting.deadline is not None:
        cancel_deadline(meeting.deadline, f"Meeting cancelled: {reason}", actor=actor)
    return meeting


# --- invitees and attendance ---------------------------------------------------------------


def supporting_member_limit(meeting: Meeting) -> int | None:
    """How many supporting team members the meeting allows (None: no limit).

    From the framework consequence that asked for the meeting
    (``optional.supporting_team_members.max``), else :data:`SUPPORTING_MEMBER_LIMITS`.
    """
    if meeting.decision is not None:
        case = meeting.decision.case
        framework = get_framework(case.framework)
        transition = framework.transition(
            case.track, meeting.decision.from_level, meeting.decision.to_level
        )
        spec = (framework.consequences_for(transition) or {}).get("meeting") if transition else {}
        for item in spec if isinstance(spec, list) else [spec or {}]:
            if item.get("kind") == meeting.kind:
                optional = (item.get("optional") or {}).get("supporting_team_members")
                if isinstance(optional, Mapping) and optional.get("max") is not None:
                    return int(optional["max"])
    return SUPPORTING_MEMBER_LIMITS.get(meeting.kind)


def add_invitee(
    actor: Person,
    meeting: Meeting,
    person: Person,
    role: str = "supporting_member",
    now: datetime | None = None,
) -> MeetingInvitee:
    """Invite one more person. Supporting team members are the budget holder's choice (or
    the CEO's side), up to the meeting's limit: "The budget holder may bring up to 3
    supporting team members; A, B and C are already invited". Once the meeting is in the
    diary, the new invitee gets the invitation at the current ``SEQUENCE``.
    """
    now = as_utc(now or utcnow())
    if role not in INVITEE_ROLES or role == "chair":
        raise ServiceError(f"{role!r} is not a role a person can be invited in")
    if role == "supporting_member":
        if not can_add_supporting_member(actor, meeting):
            raise PermissionDenied(
                "Only the budget holder, the chair or the performance team can add supporting "
                "team members"
            )
    elif not can_manage_meeting(actor, meeting):
        raise PermissionDenied("Only the chair or the performance team can invite people")
    if meeting.status not in ("requested", "scheduled"):
        raise ServiceError(f"This meeting is {meeting.status}; nobody can be added to it")
    if _invitee(meeting, person) is not None:
        raise ServiceError(f"{person.name} is already invited")
    if role == "supporting_member":
        limit = supporting_member_limit(meeting)
        current = [i for i in meeting.invitees if i.role == "supporting_member"]
        if limit is not None and len(current) >= limit:
            names = _join([i.person.name for i in current])
            raise ServiceError(
                f"The budget holder may bring up to {limit} supporting team members; "
                f"{names} {'is' if len(current) == 1 else 'are'} already invited"
            )
    invitee = MeetingInvitee(
        person_id=person.id, person=person, role=role, added_by_id=actor.id, added_at=now
    )
    meeting.invitees.append(invitee)
    db.session.flush()
    _audit(
        "meeting.invitee_added",
        meeting,
        f"{person.name} invited to {meeting.title} as {INVITEE_ROLES[role]}",
        actor,
        person_id=person.id,
        role=role,
    )
    if meeting.status == "scheduled":
        _send_invitations(meeting, change="added", now=now, only=[invitee])
    return invitee


def _join(names: list[str]) -> str:
    if len(names) <= 1:
        return "".join(names)
    return ", ".join(names[:-1]) + " and " + names[-1]


def record_attendance(
    actor: Person,
    meeting: Meeting,
    person: Person,
    attendance: str,
    note: str = "",
    now: datetime | None = None,
) -> MeetingInvitee:
    """Record whether an invitee attended, sent apologies or did not attend.

    Whoever manages the meeting records attendance; an invitee may send their own apologies
    before the meeting. Attended / did not attend only once the meeting has started.
    """
    now = as_utc(now or utcnow())
    if attendance not in ATTENDANCE:
        raise ServiceError("Choose attended, sent apologies or did not attend")
    invitee = _invitee(meeting, person)
    if invitee is None:
        raise ServiceError(f"{person.name} is not invited to this meeting")
    own_apologies = actor.id == person.id and attendance == "apologies"
    if not (can_manage_meeting(actor, meeting) or (own_apologies and _is_invitee(actor, meeting))):
        raise PermissionDenied("Only the chair or the performance team can record attendance")
    if meeting.status not in ("scheduled", "held"):
        raise ServiceError("Attendance is recorded for a meeting in the diary or held")
    if attendance in ("attended", "absent") and as_utc(meeting.starts_at) > now:
        raise ServiceError("Attendance can be recorded once the meeting has started")
    invitee.attendance = attendance
    invitee.attendance_note = (note or "").strip()[:2000]
    db.session.flush()
    _audit(
        "meeting.attendance",
        meeting,
        f"{person.name}: {ATTENDANCE[attendance].lower()} ({meeting.title})",
        actor,
        person_id=person.id,
        attendance=attendance,
    )
    return invitee


# --- after the meeting ---------------------------------------------------------------------


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in (text or "").replace("\r\n", "\n").split("\n\n") if p.strip()]


def _lines(text: str) -> list[str]:
    return [line.strip(" -•*\t") for line in (text or "").splitlines() if line.strip(" -•*\t")]


def _action_plan(meeting: Meeting, actor: Person, now: datetime) -> RecoveryPlan | None:
    """The agreed action plan: a draft plan of kind ``action_plan`` on the meeting's case,
    which the unit then writes (owners, due dates, SMART actions) on the plan pages."""
    if meeting.kind not in ACTION_PLAN_KINDS or meeting.case_id is None:
        return None
    plan = db.session.scalar(
        sa.select(RecoveryPlan)
        .where(
            RecoveryPlan.case_id == meeting.case_id,
            RecoveryPlan.kind == "action_plan",
            RecoveryPlan.status.in_(LIVE_PLAN_STATUSES),
        )
        .order_by(RecoveryPlan.id.desc())
    )
    if plan is None:
        due = db.session.scalar(
            sa.select(Deadline)
            .where(
                Deadline.case_id == meeting.case_id,
                Deadline.kind == "action_plan_due",
                Deadline.status.in_(("open", "paused")),
            )
            .order_by(Deadline.due_at)
        )
        plan = RecoveryPlan(
            case_id=meeting.case_id,
            unit_id=meeting.unit_id,
            decision_id=meeting.decision_id,
            due_deadline_id=due.id if due is not None else None,
            kind="action_plan",
            title=f"Agreed action plan — {meeting.unit.name}",
            status="draft",
            summary=meeting.decisions_text,
            created_by_id=actor.id,
            created_at=now,
            updated_at=now,
        )
        db.session.add(plan)
        db.session.flush()
        record_event(
            "plan.created",
            object_type="plan",
            object_id=plan.id,
            summary=f"{plan.title} created from the {_kind_title(meeting.kind)} of "
            f"{to_london(meeting.starts_at):%d %b %Y}",
            actor=actor,
            details={"meeting_id": meeting.id, "kind": "action_plan"},
        )
    return plan


def _chair_letter(meeting: Meeting, plan: RecoveryPlan | None, actor: Person):
    from workflow_app.letters.store import issue_letter

    if meeting.kind not in CHAIR_LETTER_KINDS or meeting.case is None:
        return None
    due = plan.due_deadline.due_at if plan is not None and plan.due_deadline else None
    return issue_letter(
        case=meeting.case,
        decision=None,
        kind="chair_letter",
        issued_by=meeting.chair or actor,
        response_due_at=due,
        issued_at=meeting.minutes_recorded_at,
        context_extra={
            "review": {
                "kind": meeting.kind,
                "title": _kind_title(meeting.kind),
                "date": f"{to_london(meeting.starts_at).day} {to_london(meeting.starts_at):%B %Y}",
                "section": KIND_SOURCES.get(meeting.kind, ""),
            },
            "discussed": _paragraphs(meeting.minutes),
            "decided": _lines(meeting.decisions_text),
            "action_plan_title": plan.title if plan is not None else "",
        },
    )


def record_outcome(
    actor: Person,
    meeting: Meeting,
    minutes: str,
    decisions_text: str,
    now: datetime | None = None,
):
    """Record the minutes and decisions of a meeting that has taken place.

    The meeting becomes *held*; its obligation is done; a Budget Review Meeting's agreed
    action plan is created (a draft the unit completes on the plan pages) and linked; the
    chair's formal letter is issued, and the unit (lead, budget holder, accountable
    executive) is e-mailed with the letter's PDF once it is made.

    :returns: ``(meeting, plan or None, letter or None)``.
    """
    now = as_utc(now or utcnow())
    if not can_manage_meeting(actor, meeting):
        raise PermissionDenied("Only the chair or the performance team can record the outcome")
    minutes = (minutes or "").strip()
    decisions_text = (decisions_text or "").strip()
    if not minutes:
        raise ServiceError("Enter the minutes of the meeting")
    if not decisions_text:
        raise ServiceError("Enter the decisions and agreed actions")
    if meeting.status != "scheduled":
        raise ServiceError(f"This meeting is {meeting.status}; only a scheduled one can be held")
    if as_utc(meeting.starts_at) > now:
        raise ServiceError("The outcome can be recorded once the meeting has started")
    meeting.status = "held"
    meeting.minutes = minutes
    meeting.decisions_text = decisions_text
    meeting.minutes_recorded_at = now
    meeting.minutes_recorded_by_id = actor.id
    plan = _action_plan(meeting, actor, now)
    if plan is not None:
        meeting.action_plan_id = plan.id
        meeting.action_plan = plan
    db.session.flush()
    _audit(
        "meeting.held",
        meeting,
        f"{meeting.title} held on {_when(meeting.starts_at)}; minutes and decisions recorded",
        actor,
        action_plan_id=plan.id if plan is not None else None,
    )
    if meeting.deadline is not None:
        mark_done(meeting.deadline, by=actor, note=f"Held on {_when(meeting.starts_at)}", at=now)
    letter = _chair_letter(meeting, plan, actor)
    unit = meeting.unit
    for person in unit_contacts(unit):
        queue_email(
            kind="meeting_outcome",
            dedupe_key=f"meeting:{meeting.id}:outcome:{person.id}",
            recipient=person,
            subject=f"Outcome of the {_kind_title(meeting.kind)}: {unit.name}",
            template="meeting_outcome",
            link=absolute_url(f"/meetings/{meeting.id}"),
            meeting=meeting,
            kind_title=_kind_title(meeting.kind),
            plan=plan,
            letter=letter,
            plan_link=absolute_url(f"/plans/{plan.id}") if plan is not None else "",
            hold_for_letter=letter,
        )
    return meeting, plan, letter


# --- the data pack -------------------------------------------------------------------------


@dataclass(frozen=True)
class FinanceRow:
    period: date
    budget: float | None
    ytd_variance: float
    forecast_variance: float


def _finance_rows(unit: Unit, months: int = 12) -> list[FinanceRow]:
    from workflow_app.models.measures import FinancePosition

    latest = (
        sa.select(FinancePosition.period, sa.func.max(FinancePosition.revision).label("revision"))
        .where(FinancePosition.unit_id == unit.id)
        .group_by(FinancePosition.period)
        .subquery()
    )
    rows = db.session.scalars(
        sa.select(FinancePosition)
        .join(
            latest,
            sa.and_(
                FinancePosition.period == latest.c.period,
                FinancePosition.revision == latest.c.revision,
            ),
        )
        .where(FinancePosition.unit_id == unit.id)
        .order_by(FinancePosition.period.desc())
        .limit(months)
    ).all()
    return [
        FinanceRow(
            r.period,
            float(r.budget) if r.budget is not None else None,
            float(r.ytd_variance),
            float(r.forecast_variance),
        )
        for r in reversed(rows)
    ]


def _exceptions(unit: Unit) -> tuple[date | None, list[dict]]:
    """The unit's measures whose latest month is red or amber, worst first."""
    from workflow_app.services.scorecard import RAG_ORDER, measure_views

    try:
        period, views = measure_views(unit)
    except Exception:  # noqa: BLE001 - a unit without measures still gets its pack
        return None, []
    rows = []
    for view in views:
        rag = view.latest_rag
        if rag not in ("red", "amber"):
            continue
        latest = view.measure.series[-1] if view.measure.series else None
        rows.append(
            {
                "name": view.measure.name,
                "code": view.measure.code,
                "rag": rag,
                "target": view.measure.target,
                "unit_of_measure": view.measure.unit_of_measure,
                "actual": latest.actual if latest else None,
                "trajectory": latest.trajectory if latest else None,
                "period": latest.period if latest else None,
                "description": view.description,
            }
        )
    rows.sort(key=lambda r: (-RAG_ORDER.get(r["rag"], 0), r["name"]))
    return period, rows


def _open_plans(unit: Unit) -> list[RecoveryPlan]:
    return list(
        db.session.scalars(
            sa.select(RecoveryPlan)
            .where(RecoveryPlan.unit_id == unit.id, RecoveryPlan.status.in_(LIVE_PLAN_STATUSES))
            .order_by(RecoveryPlan.created_at)
        )
    )


def _open_deadlines(unit: Unit) -> list[Deadline]:
    return list(
        db.session.scalars(
            sa.select(Deadline)
            .where(Deadline.unit_id == unit.id, Deadline.status.in_(("open", "paused")))
            .order_by(Deadline.due_at)
        )
    )


def _levels(unit: Unit) -> list[dict]:
    framework = get_framework(unit.framework)
    cases = db.session.scalars(
        sa.select(EscalationCase)
        .where(EscalationCase.unit_id == unit.id)
        .order_by(EscalationCase.track)
    ).all()
    return [
        {
            "track": framework.track_for(c.track).title if ":" not in c.track else c.track,
            "level": framework.level_title(c.level),
            "since": c.level_since,
        }
        for c in cases
    ]


def _pack_template(kind: str) -> list[str]:
    return [f"meetings/packs/{kind}.html", "meetings/packs/default.html"]


def data_pack(meeting: Meeting, now: datetime | None = None, *, actor=None) -> str:
    """The meeting's data pack as a standalone HTML document, frozen on first use.

    The first call renders the unit's position at that moment (levels, finance position and
    trend with the forecast outturn, the measures in exception, open plans and their
    actions, open obligations) with the one template for the meeting's kind, and stores the
    HTML with its SHA-256 on the meeting; every later call returns the stored HTML
    unchanged, whatever data arrives afterwards ("one version of the truth").
    """
    if meeting.data_pack_html is not None:
        return meeting.data_pack_html
    now = as_utc(now or utcnow())
    from flask import current_app

    unit = meeting.unit
    finance = _finance_rows(unit)
    period, exceptions = _exceptions(unit)
    html = render_template(
        _pack_template(meeting.kind),
        meeting=meeting,
        unit=unit,
        kind_title=_kind_title(meeting.kind),
        source=KIND_SOURCES.get(meeting.kind, ""),
        organisation=current_app.config["ORGANISATION_NAME"],
        generated_at=to_london(now),
        levels=_levels(unit),
        finance=finance,
        latest_finance=finance[-1] if finance else None,
        finance_chart=_finance_chart(finance),
        measures_period=period,
        exceptions=exceptions,
        plans=_open_plans(unit),
        deadlines=_open_deadlines(unit),
        starts_local=to_london(meeting.starts_at),
    )
    digest = hashlib.sha256(html.encode("utf-8")).hexdigest()
    # Frozen by a conditional UPDATE rather than the meeting's version check: when two
    # requests make the first pack at once, the one that loses the race reads and returns
    # the pack the other froze instead of failing with "changed at the same time" (409).
    # The pack does not bump the meeting's version, so forms open on the meeting stay valid.
    db.session.flush()  # a meeting requested in this transaction has its row and id
    won = db.session.execute(
        sa.update(Meeting)
        .where(Meeting.id == meeting.id, Meeting.data_pack_sha256.is_(None))
        .values(data_pack_html=html, data_pack_sha256=digest, data_pack_generated_at=now)
        .execution_options(synchronize_session=False)
    )
    if won.rowcount != 1:
        db.session.refresh(
            meeting, ["data_pack_html", "data_pack_sha256", "data_pack_generated_at"]
        )
        return meeting.data_pack_html
    set_committed_value(meeting, "data_pack_html", html)
    set_committed_value(meeting, "data_pack_sha256", digest)
    set_committed_value(meeting, "data_pack_generated_at", now)
    _audit(
        "meeting.data_pack",
        meeting,
        f"Data pack for {meeting.title} generated and frozen",
        actor,
        sha256=digest,
    )
    return html


def _finance_chart(rows: list[FinanceRow]) -> str:
    """A small server-side SVG of the YTD and forecast variances (no script, no fetch)."""
    if not rows:
        return ""
    from markupsafe import Markup, escape

    width, height, pad = 640, 200, 36
    values = [v for r in rows for v in (r.ytd_variance, r.forecast_variance)] + [0.0]
    lo, hi = min(values), max(values)
    span = (hi - lo) or 1.0
    step = (width - 2 * pad) / max(len(rows) - 1, 1)

    def y(v: float) -> float:
        return pad + (hi - v) / span * (height - 2 * pad)

    def path(attr: str) -> str:
        return " ".join(
            f"{'M' if i == 0 else 'L'}{pad + i * step:.1f},{y(getattr(r, attr)):.1f}"
            for i, r in enumerate(rows)
        )

    dots = "".join(
        f'<circle cx="{pad + i * step:.1f}" cy="{y(r.ytd_variance):.1f}" r="3" fill="#005eb8"/>'
        f'<circle cx="{pad + i * step:.1f}" cy="{y(r.forecast_variance):.1f}" r="3" '
        f'fill="#d5281b"/>'
        for i, r in enumerate(rows)
    )
    labels = "".join(
        f'<text x="{pad + i * step:.1f}" y="{height - 8}" font-size="10" '
        f'text-anchor="middle">{escape(f"{r.period:%b %y}")}</text>'
        for i, r in enumerate(rows)
    )
    svg = (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        f'width="{width}" height="{height}" role="img" aria-label="Year-to-date and forecast '
        f'variance by month; positive is overspend">'
        f'<line x1="{pad}" x2="{width - pad}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
        f'stroke="#768692" stroke-dasharray="4 3"/>'
        f'<path d="{path("ytd_variance")}" fill="none" stroke="#005eb8" stroke-width="2"/>'
        f'<path d="{path("forecast_variance")}" fill="none" stroke="#d5281b" stroke-width="2" '
        f'stroke-dasharray="6 3"/>{dots}{labels}</svg>'
    )
    return Markup(svg)  # noqa: S704 - numbers and escaped month labels only


def data_pack_pdf(meeting: Meeting, *, actor=None) -> bytes:
    """The PDF of the frozen data pack (WeasyPrint, from the stored HTML, nothing fetched)."""
    from workflow_app.letters.pdf import html_to_pdf

    return html_to_pdf(data_pack(meeting, actor=actor))


# --- follow-up review (DOMAIN.md decision 9) ------------------------------------------------


def propose_follow_up_meeting(plan: RecoveryPlan, *, now: datetime | None = None) -> Meeting:
    """A follow-up review meeting for a failing plan, by the end of its review period.

    Chaired and attended as the meeting the plan came from (the Budget Review Meeting whose
    agreed action plan it is, else the case's latest), which it ``follows``; without one, the
    CEO chairs and the Executive Directors and the budget holder are invited. Once per plan
    and review-period end.
    """
    now = as_utc(now or utcnow())
    if plan.review_period_ends_on is None:
        raise ServiceError("The plan has no review period, so no follow-up review is due")
    follows = db.session.scalar(
        sa.select(Meeting).where(Meeting.action_plan_id == plan.id).order_by(Meeting.id.desc())
    ) or db.session.scalar(
        sa.select(Meeting)
        .where(
            Meeting.case_id == plan.case_id,
            Meeting.kind.in_(("budget_review", "follow_up_review")),
            Meeting.status != "cancelled",
        )
        .order_by(Meeting.requested_at.desc(), Meeting.id.desc())
    )
    if follows is not None:
        chair = follows.chair
        invitees = [(i.person, i.role) for i in follows.invitees if i.role != "chair"]
    else:
        chair = _chair_for(CEO)
        invitees = _invitees_from_tokens(plan.unit, ["all_executive_directors", "budget_holder"])
    return request_meeting(
        kind="follow_up_review",
        unit=plan.unit,
        case=plan.case,
        chair=chair,
        hold_by=plan.review_period_ends_on,
        title=f"Follow-up review meeting: {plan.unit.name} ({plan.title})",
        dedupe_key=f"plan:{plan.id}:follow_up:{plan.review_period_ends_on.isoformat()}",
        invitees=invitees,
        follows=follows,
        now=now,
    )


def role_title(role: str) -> str:
    return ROLE_TITLES.get(role, INVITEE_ROLES.get(role, role.replace("_", " ").capitalize()))
