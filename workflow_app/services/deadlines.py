"""Deadlines: creating them with their reminders, completing, cancelling, pausing, resuming.

Due times follow DOMAIN.md decision 8 (17:00 Europe/London on the Nth working day after the
day of the decision, England and Wales bank holidays; reminders at 08:00 on working days),
with the framework file's ``calendar`` and ``reminders`` sections able to change them.
"""

from __future__ import annotations

from datetime import datetime
from functools import cache
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from state_machines import get_framework, parse_duration
from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase
from workflow_app.models.deadlines import Deadline, DeadlinePause, Reminder
from workflow_app.models.org import Person, Unit
from workflow_app.models.roles import CEO, EXECUTIVE_DIRECTOR, PERFORMANCE_TEAM
from workflow_app.services.audit import record_event
from workflow_app.services.errors import ServiceError, require
from workflow_app.working_days import WorkingCalendar


@cache
def calendar_for(framework_name: str) -> WorkingCalendar:
    """The working calendar a framework file asks for (cached per framework)."""
    return WorkingCalendar.from_framework(get_framework(framework_name).calendar or {})


def can_manage_deadline(person: Person | None, deadline: Deadline) -> bool:
    """Pausing, resuming and cancelling: performance team, executives, the accountable executive."""
    if person is None or not getattr(person, "is_authenticated", False):
        return False
    if person.has_role(PERFORMANCE_TEAM, CEO, EXECUTIVE_DIRECTOR):
        return True
    return deadline.unit.accountable_executive_id == person.id


def can_complete_deadline(person: Person | None, deadline: Deadline) -> bool:
    """Marking done: whoever may manage it, and its owner or the unit's lead."""
    if can_manage_deadline(person, deadline):
        return True
    if person is None or not getattr(person, "is_authenticated", False):
        return False
    return person.id in (deadline.owner_id, deadline.unit.lead_id)


def default_owner(unit: Unit) -> Person | None:
    """Who an obligation falls to when nobody is named: the unit's lead, else its executive."""
    return unit.lead or unit.accountable_executive


def create_deadline(
    *,
    dedupe_key: str,
    kind: str,
    title: str,
    unit: Unit,
    framework: str,
    case: EscalationCase | None = None,
    owner: Person | None = None,
    working_days: int | None = None,
    due_at: datetime | None = None,
    starting: datetime | None = None,
    actor: Person | None = None,
    now: datetime | None = None,
    known_new: bool = False,
) -> Deadline:
    """Create an obligation (once per ``dedupe_key``) and plan its reminders.

    Give either ``working_days`` (counted from ``starting``, default now) or ``due_at``.
    ``now`` (default: the clock) is when the obligation arose: its ``created_at``, and the
    start of the count when ``starting`` is not given, so a decision's deadlines carry the
    decision's time. Reminders are planned against the clock: none is created for a moment
    already past. ``known_new``: the caller has just checked that no deadline has this key
    (skips the look-up; the unique key still stops a duplicate).
    """
    if not known_new:
        existing = db.session.scalar(sa.select(Deadline).where(Deadline.dedupe_key == dedupe_key))
        if existing is not None:
            return existing
    if (working_days is None) == (due_at is None):
        raise ValueError("give exactly one of working_days or due_at")
    calendar = calendar_for(framework)
    owner = owner or default_owner(unit)
    if working_days is not None:
        due_at = calendar.due_at(starting or now or utcnow(), working_days)
    deadline = Deadline(
        dedupe_key=dedupe_key,
        kind=kind,
        title=title,
        unit_id=unit.id,
        unit=unit,
        case_id=case.id if case is not None else None,
        owner_id=owner.id if owner is not None else None,
        framework=framework,
        due_at=due_at,
        working_days=working_days,
        created_at=now or utcnow(),
    )
    db.session.add(deadline)
    db.session.flush()
    plan_reminders(deadline)
    record_event(
        "deadline.created",
        object_type="deadline",
        object_id=deadline.id,
        summary=f"{title} for {unit.name}, due {calendar.local_date(due_at):%d %b %Y}",
        actor=actor,
        details={"kind": kind, "due_at": due_at.isoformat(), "dedupe_key": dedupe_key},
    )
    return deadline


def _working_day_offsets(values) -> list[int]:
    offsets = []
    for value in values or []:
        duration = parse_duration(value)
        if duration.unit != "working_days":
            raise ValueError(f"reminder offsets are in working days, not {value!r}")
        offsets.append(duration.amount)
    return offsets


def plan_reminders(deadline: Deadline, *, now: datetime | None = None) -> list[dict]:
    """Create the reminders of the deadline's current generation that are still ahead;
    returns their column values.

    Before due (e.g. 5 and 1 working days), on the day, after due, and, after the grace,
    to the accountable executive; all at the calendar's reminder time on working days.
    """
    now = now or utcnow()
    framework = get_framework(deadline.framework)
    settings = framework.reminders or {}
    calendar = calendar_for(deadline.framework)
    due_day = calendar.local_date(deadline.due_at)
    if not calendar.is_working_day(due_day):
        due_day = calendar.next_working_day(due_day)
    owner = deadline.owner
    plans: list[tuple[str, int, Person | None, datetime]] = []
    for days in _working_day_offsets(
        settings.get("before_due", ["5 working days", "1 working day"])
    ):
        plans.append(
            (
                "before_due",
                days,
                owner,
                calendar.reminder_at(calendar.add_working_days(due_day, -days)),
            )
        )
    plans.append(("due_today", 0, owner, calendar.reminder_at(due_day)))
    for days in _working_day_offsets(settings.get("after_due", ["1 working day"])):
        plans.append(
            ("overdue", days, owner, calendar.reminder_at(calendar.add_working_days(due_day, days)))
        )
    grace = _working_day_offsets([settings.get("overdue_grace", "2 working days")])[0]
    if settings.get("overdue_escalates_to", "accountable_executive") == "accountable_executive":
        executive = deadline.unit.accountable_executive
        plans.append(
            (
                "overdue_escalation",
                grace,
                executive,
                calendar.reminder_at(calendar.add_working_days(due_day, grace)),
            )
        )
    rows = [
        {
            "deadline_id": deadline.id,
            "generation": deadline.generation,
            "kind": kind,
            "offset_days": offset,
            "recipient_id": recipient.id,
            "send_at": send_at,
        }
        for kind, offset, recipient, send_at in plans
        # nobody to tell, or the moment has passed before the deadline existed
        if recipient is not None and send_at > now
    ]
    if rows:
        # One executemany for the deadline's reminders, not one INSERT (and flush) each.
        db.session.execute(sa.insert(Reminder), rows)
    return rows


def _cancel_pending_reminders(deadline: Deadline, outcome: str) -> None:
    db.session.execute(
        sa.update(Reminder)
        .where(Reminder.deadline_id == deadline.id, Reminder.status == "pending")
        .values(status="cancelled", processed_at=utcnow(), outcome=outcome)
    )


def complete_deadline(actor: Person, deadline: Deadline, *, note: str = "") -> None:
    """Mark an obligation done; its pending reminders are cancelled."""
    require(can_complete_deadline(actor, deadline), "You cannot mark this deadline as done")
    if not deadline.is_live:
        raise ServiceError(f"This deadline is already {deadline.status}")
    mark_done(deadline, by=actor, note=note)


def mark_done(
    deadline: Deadline,
    *,
    by: Person | None = None,
    note: str = "",
    at: datetime | None = None,
) -> None:
    """Record that the obligation is met (used by services that fulfil one, e.g. a plan).

    ``at`` (default now) is when it was met, e.g. a replayed history's time.
    """
    if not deadline.is_live:
        return
    deadline.status = "done"
    deadline.completed_at = at or utcnow()
    deadline.completed_by_id = by.id if by is not None else None
    _cancel_pending_reminders(deadline, "deadline done")
    record_event(
        "deadline.completed",
        object_type="deadline",
        object_id=deadline.id,
        summary=f"Done: {deadline.title} ({deadline.unit.name})" + (f": {note}" if note else ""),
        actor=by,
    )


def cancel_deadline(deadline: Deadline, reason: str, *, actor: Person | None = None) -> None:
    """Cancel an obligation that no longer applies (e.g. the level changed)."""
    if not deadline.is_live:
        return
    deadline.status = "cancelled"
    deadline.cancelled_reason = reason[:300]
    _cancel_pending_reminders(deadline, f"deadline cancelled: {reason}"[:200])
    record_event(
        "deadline.cancelled",
        object_type="deadline",
        object_id=deadline.id,
        summary=f"Cancelled: {deadline.title} ({deadline.unit.name}): {reason}",
        actor=actor,
    )


def pause_deadline(actor: Person, deadline: Deadline, reason: str) -> DeadlinePause:
    """Stop the clock with a reason; reminders stop until it is resumed."""
    require(can_manage_deadline(actor, deadline), "You cannot pause this deadline")
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Give the reason for stopping the clock")
    if deadline.status != "open":
        raise ServiceError(f"Only an open deadline can be paused; this one is {deadline.status}")
    pause = DeadlinePause(
        deadline_id=deadline.id, reason=reason, paused_at=utcnow(), paused_by_id=actor.id
    )
    db.session.add(pause)
    deadline.status = "paused"
    _cancel_pending_reminders(deadline, "deadline paused")
    db.session.flush()
    record_event(
        "deadline.paused",
        object_type="deadline",
        object_id=deadline.id,
        summary=f"Clock stopped on {deadline.title} ({deadline.unit.name}): {reason}",
        actor=actor,
    )
    return pause


def resume_deadline(actor: Person, deadline: Deadline) -> int:
    """Restart the clock: the due date moves by the working days it was paused.

    :returns: the number of working days added.
    """
    require(can_manage_deadline(actor, deadline), "You cannot resume this deadline")
    if deadline.status != "paused":
        raise ServiceError("This deadline is not paused")
    pause = next(p for p in reversed(deadline.pauses) if p.resumed_at is None)
    now = utcnow()
    calendar = calendar_for(deadline.framework)
    added = calendar.working_days_between(
        calendar.local_date(pause.paused_at), calendar.local_date(now)
    )
    old_due = deadline.due_at
    if added:
        new_day = calendar.add_working_days(calendar.local_date(old_due), added)
        deadline.due_at = calendar.at_local_time(
            new_day, old_due.astimezone(ZoneInfo(calendar.timezone)).time()
        )
    pause.resumed_at = now
    pause.resumed_by_id = actor.id
    pause.working_days_added = added
    deadline.status = "open"
    deadline.generation += 1
    db.session.flush()
    plan_reminders(deadline, now=now)
    record_event(
        "deadline.resumed",
        object_type="deadline",
        object_id=deadline.id,
        summary=(
            f"Clock restarted on {deadline.title} ({deadline.unit.name}): due date moved by "
            f"{added} working day{'s' if added != 1 else ''} to "
            f"{calendar.local_date(deadline.due_at):%d %b %Y}"
        ),
        actor=actor,
        details={"old_due_at": old_due.isoformat(), "new_due_at": deadline.due_at.isoformat()},
    )
    return added


def deadlines_for_person(person: Person, *, include_closed: bool = False) -> list[Deadline]:
    """'My deadlines': the ones I own, and those of units I lead or am accountable for."""
    query = (
        sa.select(Deadline)
        .join(Unit, Deadline.unit_id == Unit.id)
        .where(
            sa.or_(
                Deadline.owner_id == person.id,
                Unit.lead_id == person.id,
                Unit.accountable_executive_id == person.id,
            )
        )
        .order_by(Deadline.due_at)
    )
    if not include_closed:
        query = query.where(Deadline.status.in_(("open", "paused")))
    return list(db.session.scalars(query))
