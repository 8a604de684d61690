"""Processing due reminders and sending daily digests.

Each due reminder is claimed with a conditional UPDATE (``pending`` -> ``sent`` where it is
still ``pending``) in the same transaction that writes its e-mail (or digest line) to the
outbox. On PostgreSQL the batch is selected ``FOR UPDATE SKIP LOCKED``, so concurrent
sweeps take disjoint batches; on SQLite the single writer lock serialises them and the
conditional UPDATE makes the loser skip. A crash before commit leaves the rows pending for
the next sweep: nothing is lost, nothing is sent twice.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import current_app

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.deadlines import Deadline, DigestItem, Reminder
from workflow_app.models.org import Person
from workflow_app.notifications.outbox import absolute_url, queue_email
from workflow_app.scheduling.periods import claim_period
from workflow_app.services.deadlines import calendar_for

BATCH_SIZE = 500


@dataclass
class ReminderReport:
    """What one pass over the due reminders did."""

    sent: int = 0
    digested: int = 0
    skipped: int = 0


def _deadline_link(deadline: Deadline) -> str:
    return absolute_url(f"/deadlines/{deadline.id}")


def reminder_subject(reminder: Reminder, now: datetime) -> str:
    """A subject line that says what is due, for which unit, and how urgent it is."""
    deadline = reminder.deadline
    calendar = calendar_for(deadline.framework)
    due = calendar.local_date(deadline.due_at)
    if reminder.kind == "overdue_escalation":
        return f"Overdue, escalated to you: {deadline.title} ({deadline.unit.name})"
    if deadline.due_at <= now:
        return f"Overdue: {deadline.title} ({deadline.unit.name}) was due {due:%d %b %Y}"
    if calendar.local_date(now) == due:
        return f"Due today: {deadline.title} ({deadline.unit.name})"
    return f"Reminder: {deadline.title} ({deadline.unit.name}) is due {due:%d %b %Y}"


def _skip_reason(reminder: Reminder) -> str | None:
    deadline = reminder.deadline
    if deadline.status != "open":
        return f"deadline {deadline.status}"
    if reminder.generation != deadline.generation:
        return "due date moved"
    return None


def _claim(reminder_id: int, status: str, outcome: str, now: datetime) -> bool:
    result = db.session.execute(
        sa.update(Reminder)
        .where(Reminder.id == reminder_id, Reminder.status == "pending")
        .values(status=status, processed_at=now, outcome=outcome)
        .execution_options(synchronize_session=False)
    )
    return result.rowcount == 1


def _deliver(reminder: Reminder, now: datetime, report: ReminderReport) -> None:
    deadline = reminder.deadline
    recipient = reminder.recipient
    subject = reminder_subject(reminder, now)
    link = _deadline_link(deadline)
    calendar = calendar_for(deadline.framework)
    due_local = deadline.due_at.astimezone(ZoneInfo(calendar.timezone))
    if recipient.notification_mode == "digest":
        if not _claim(reminder.id, "sent", "added to digest", now):
            return
        db.session.add(
            DigestItem(
                person_id=recipient.id,
                reminder_id=reminder.id,
                subject=subject,
                text=f"{deadline.title} ({deadline.unit.name}), due {due_local:%H:%M on %d %b %Y}",
                link=link,
                # The sweep's moment, like processed_at: stamped with the clock instead, the
                # item would be later than the ``now`` the same sweep's digest step uses,
                # and miss today's digest.
                created_at=now,
            )
        )
        report.digested += 1
        return
    if not _claim(reminder.id, "sent", "e-mailed", now):
        return
    queue_email(
        kind=f"reminder_{reminder.kind}",
        dedupe_key=f"reminder:{reminder.id}",
        recipient=recipient,
        subject=subject,
        template="reminder",
        link=link,
        known_new=True,  # the reminder was claimed atomically just above
        deadline=deadline,
        reminder=reminder,
        due_local=due_local,
        is_overdue=deadline.due_at <= now,
    )
    report.sent += 1


def process_due_reminders(
    now: datetime | None = None, batch_size: int = BATCH_SIZE
) -> ReminderReport:
    """Send every reminder whose time has come, in batches, each batch one transaction."""
    now = now or utcnow()
    report = ReminderReport()
    postgres = db.session.get_bind().dialect.name == "postgresql"
    while True:
        query = (
            sa.select(Reminder)
            .where(Reminder.status == "pending", Reminder.send_at <= now)
            .order_by(Reminder.send_at, Reminder.id)
            .limit(batch_size)
            .options(
                so.joinedload(Reminder.deadline).joinedload(Deadline.unit),
                so.joinedload(Reminder.recipient),
            )
        )
        if postgres:
            query = query.with_for_update(skip_locked=True, of=Reminder)
        batch = db.session.scalars(query).unique().all()
        if not batch:
            db.session.rollback()
            return report
        for reminder in batch:
            reason = _skip_reason(reminder)
            if reason is not None:
                if _claim(reminder.id, "skipped", reason, now):
                    report.skipped += 1
                continue
            _deliver(reminder, now, report)
        db.session.commit()
        if len(batch) < batch_size:
            return report


def send_daily_digests(now: datetime | None = None) -> int:
    """Once a working day from the reminder time (08:00), e-mail each person their digest.

    The day's run is a :class:`JobRun` row written in the same transaction as the e-mails,
    so several schedulers, or a restart, still send one digest per person per day.
    """
    now = now or utcnow()
    calendar = calendar_for(current_app.config["ESCALATE_FRAMEWORK"])
    today = calendar.local_date(now)
    if not calendar.is_working_day(today) or now < calendar.reminder_at(today):
        return 0
    key = today.isoformat()
    run = claim_period("digest", key, now=now, period=today)
    if run is None:
        return 0
    items = db.session.scalars(
        sa.select(DigestItem)
        .where(DigestItem.digest_message_id.is_(None), DigestItem.created_at <= now)
        .order_by(DigestItem.person_id, DigestItem.created_at)
    ).all()
    by_person: dict[int, list[DigestItem]] = {}
    for item in items:
        by_person.setdefault(item.person_id, []).append(item)
    for person_id, person_items in by_person.items():
        person = db.session.get(Person, person_id)
        message = queue_email(
            kind="digest",
            dedupe_key=f"digest:{person_id}:{key}",
            recipient=person,
            subject=f"Your Escalate digest for {today:%d %b %Y}: {len(person_items)} item"
            + ("s" if len(person_items) != 1 else ""),
            template="digest",
            link=absolute_url("/deadlines/"),
            items=person_items,
            day=today,
        )
        for item in person_items:
            item.digest_message_id = message.id
    run.finished_at = utcnow()
    run.summary = f"{len(by_person)} digests, {len(items)} items"
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()  # another scheduler sent today's digests first
        return 0
    return len(by_person)
