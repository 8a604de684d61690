"""Deadlines and reminders with a moving clock: working days, bank holidays, BST/GMT."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.deadlines import Deadline, Reminder
from workflow_app.models.outbox import OutboxMessage
from workflow_app.scheduling.reminders import process_due_reminders
from workflow_app.services import deadlines as service
from workflow_app.services.errors import PermissionDenied, ServiceError


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def plan(unit, *, key="plan", working_days=10, starting=None):
    deadline = service.create_deadline(
        dedupe_key=key,
        kind="recovery_plan_due",
        title="Recovery plan due",
        unit=unit,
        framework="iqpf",
        working_days=working_days,
        starting=starting,
    )
    db.session.commit()
    return deadline


def schedule(deadline) -> list[tuple[str, int, str, datetime]]:
    rows = db.session.scalars(
        sa.select(Reminder).where(Reminder.deadline_id == deadline.id).order_by(Reminder.send_at)
    )
    return [(r.kind, r.offset_days, r.recipient.email, r.send_at) for r in rows]


def test_due_time_and_reminders_across_the_end_of_british_summer_time(frozen, people_and_unit):
    """Decided Thu 15 Oct 2026 (BST); BST ends Sun 25 Oct. Counted by hand:
    working days after 15 Oct: 16,19,20,21,22,23,26,27,28,29 -> due Thu 29 Oct 17:00 GMT."""
    lead, executive, unit = people_and_unit
    deadline = plan(unit)
    assert deadline.due_at == utc(2026, 10, 29, 17, 0)
    assert schedule(deadline) == [
        ("before_due", 5, lead.email, utc(2026, 10, 22, 7, 0)),  # 08:00 BST
        ("before_due", 1, lead.email, utc(2026, 10, 28, 8, 0)),  # 08:00 GMT
        ("due_today", 0, lead.email, utc(2026, 10, 29, 8, 0)),
        ("overdue", 1, lead.email, utc(2026, 10, 30, 8, 0)),
        ("overdue_escalation", 2, executive.email, utc(2026, 11, 2, 8, 0)),
    ]


def test_due_time_and_reminders_across_christmas_bank_holidays(frozen, people_and_unit):
    """Decided Thu 17 Dec 2026. Bank holidays: Fri 25 Dec, Mon 28 Dec (Boxing Day
    substitute), Fri 1 Jan. Working days: 18,21,22,23,24,29,30,31 Dec, 4,5 Jan -> due Tue 5 Jan.
    5 working days before: 4 Jan, 31, 30, 29, 24 Dec -> Thu 24 Dec."""
    lead, executive, unit = people_and_unit
    frozen.move_to(utc(2026, 12, 17, 11, 0))
    deadline = plan(unit)
    assert deadline.due_at == utc(2027, 1, 5, 17, 0)
    assert [(k, at) for k, _, _, at in schedule(deadline)] == [
        ("before_due", utc(2026, 12, 24, 8, 0)),
        ("before_due", utc(2027, 1, 4, 8, 0)),
        ("due_today", utc(2027, 1, 5, 8, 0)),
        ("overdue", utc(2027, 1, 6, 8, 0)),
        ("overdue_escalation", utc(2027, 1, 7, 8, 0)),
    ]


def test_each_reminder_goes_out_once_at_its_time(frozen, people_and_unit):
    lead, executive, unit = people_and_unit
    deadline = plan(unit)
    frozen.move_to(utc(2026, 10, 22, 6, 59))
    assert process_due_reminders().sent == 0
    frozen.move_to(utc(2026, 10, 22, 7, 0))
    assert process_due_reminders().sent == 1
    assert process_due_reminders().sent == 0
    message = db.session.scalar(sa.select(OutboxMessage))
    assert message.to_address == lead.email
    assert message.subject == "Reminder: Recovery plan due (Surgery) is due 29 Oct 2026"
    assert f"/deadlines/{deadline.id}" in message.body_text
    assert "17:00 on Thursday 29 October 2026" in message.body_text
    assert message.body_html and "Recovery plan due" in message.body_html


def test_restart_catch_up_sends_every_missed_reminder_exactly_once(frozen, people_and_unit):
    """Nothing ran for a week past the due date; the first sweep catches up, once."""
    lead, executive, unit = people_and_unit
    plan(unit)
    frozen.move_to(utc(2026, 11, 5, 12, 0))  # a week after the due date
    report = process_due_reminders()
    assert report.sent == 5
    assert process_due_reminders().sent == 0
    messages = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()
    assert [m.to_address for m in messages] == [lead.email] * 4 + [executive.email]
    assert messages[-1].subject.startswith("Overdue, escalated to you")
    assert all("Overdue" in m.subject for m in messages)  # worded for the moment it is sent


def test_a_completed_deadline_stops_its_reminders(frozen, people_and_unit):
    lead, executive, unit = people_and_unit
    deadline = plan(unit)
    frozen.move_to(utc(2026, 10, 22, 9, 0))
    assert process_due_reminders().sent == 1
    service.complete_deadline(lead, deadline, note="Plan submitted")
    db.session.commit()
    frozen.move_to(utc(2026, 11, 30, 9, 0))
    assert process_due_reminders().sent == 0
    statuses = db.session.scalars(sa.select(Reminder.status).order_by(Reminder.send_at)).all()
    assert statuses == ["sent", "cancelled", "cancelled", "cancelled", "cancelled"]
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 1


def test_stopping_the_clock_moves_the_due_date_by_the_paused_working_days(
    frozen, people_and_unit, create_person
):
    lead, executive, unit = people_and_unit
    analyst = create_person("performance_team")
    deadline = plan(unit)  # due Thu 29 Oct
    frozen.move_to(utc(2026, 10, 19, 10, 0))  # Monday
    service.pause_deadline(analyst, deadline, "Waiting for the external review report")
    db.session.commit()
    frozen.move_to(utc(2026, 10, 22, 9, 0))  # Thursday: reminder time passes while paused
    assert process_due_reminders().sent == 0
    added = service.resume_deadline(analyst, deadline)  # Tue, Wed, Thu: 3 working days
    db.session.commit()
    assert added == 3
    assert deadline.due_at == utc(2026, 11, 3, 17, 0)  # 29 Oct + 3 working days: Fri, Mon, Tue
    assert deadline.generation == 2
    live = db.session.scalars(
        sa.select(Reminder).where(Reminder.status == "pending").order_by(Reminder.send_at)
    ).all()
    assert all(r.generation == 2 for r in live)
    assert live[0].send_at == utc(2026, 10, 27, 8, 0)  # 5 working days before Tue 3 Nov
    actions = db.session.scalars(sa.select(AuditEvent.action)).all()
    assert "deadline.paused" in actions and "deadline.resumed" in actions


def test_pausing_needs_a_reason_and_a_right(frozen, people_and_unit):
    lead, executive, unit = people_and_unit
    deadline = plan(unit)
    with pytest.raises(ServiceError, match="Give the reason"):
        service.pause_deadline(executive, deadline, "   ")
    with pytest.raises(PermissionDenied):
        service.pause_deadline(lead, deadline, "I would rather not")
    db.session.rollback()
    assert db.session.get(Deadline, deadline.id).status == "open"


def test_the_same_cause_creates_one_deadline(frozen, people_and_unit):
    lead, executive, unit = people_and_unit
    first = plan(unit, key="decision:7:plan")
    second = plan(unit, key="decision:7:plan")
    assert first.id == second.id
    assert db.session.scalar(sa.select(sa.func.count(Deadline.id))) == 1


def test_digest_mode_collects_reminders_into_one_morning_email(frozen, people_and_unit):
    from workflow_app.scheduling.reminders import send_daily_digests
    from workflow_app.services.accounts import set_notification_mode

    lead, executive, unit = people_and_unit
    set_notification_mode(lead, "digest")
    plan(unit, key="a")
    plan(unit, key="b")
    frozen.move_to(utc(2026, 10, 22, 6, 30))  # Thursday 07:30 BST: before digest time
    assert send_daily_digests() == 0
    frozen.move_to(utc(2026, 10, 22, 7, 0))  # 08:00 BST: reminders and digest both due
    report = process_due_reminders()
    assert (report.sent, report.digested) == (0, 2)
    assert send_daily_digests() == 1
    assert send_daily_digests() == 0  # once a day, however often the sweep runs
    digest = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.kind == "digest"))
    assert digest.to_address == lead.email
    assert digest.body_text.count("- Reminder: Recovery plan due (Surgery)") == 2
    frozen.move_to(utc(2026, 10, 28, 8, 0))  # next reminders (1 working day before) go in
    process_due_reminders()
    assert send_daily_digests() == 1
    assert (
        db.session.scalar(
            sa.select(sa.func.count(OutboxMessage.id)).where(OutboxMessage.kind == "digest")
        )
        == 2
    )
