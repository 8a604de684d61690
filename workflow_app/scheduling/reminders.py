"""Processing due reminders and sending daily digests.

Due reminders are taken in batches, one transaction each. A batch is claimed with one
conditional UPDATE per outcome (``pending`` -> ``sent`` or ``skipped`` where still
``pending``, ``RETURNING`` the ids it changed), in the same transaction that writes the
claimed reminders' e-mails (or digest lines) to the outbox. On PostgreSQL the batch is
selected ``FOR UPDATE SKIP LOCKED``, so concurrent sweeps take disjoint batches; on SQLite
the single writer lock serialises them and the conditional UPDATE returns the loser nothing.
A crash before commit leaves the rows pending for the next sweep: nothing is lost, nothing is
sent twice.
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
from workflow_app.notifications.outbox import Email, absolute_url, queue_email, queue_emails
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


def _claim(ids: list[int], status: str, outcome: str, now: datetime) -> set[int]:
    """Mark the reminders ``ids`` that are still pending; return the ids this call claimed.

    One conditional ``UPDATE ... RETURNING`` for the lot: a reminder another sweep took
    first is not returned, so whatever follows is done for it once only.
    """
    if not ids:
        return set()
    table = Reminder.__table__
    claimed = db.session.execute(
        sa.update(table)
        .where(table.c.id.in_(ids), table.c.status == "pending")
        .values(status=status, processed_at=now, outcome=outcome)
        .returning(table.c.id)
    )
    return set(claimed.scalars())


def _process_batch(batch: list[Reminder], now: datetime, report: ReminderReport) -> None:
    """Claim a batch of due reminders and write their e-mails and digest lines."""
    skipped: dict[str, list[int]] = {}
    digest: list[Reminder] = []
    email: list[Reminder] = []
    for reminder in batch:
        reason = _skip_reason(reminder)
        if reason is not None:
            skipped.setdefault(reason, []).append(reminder.id)
        elif reminder.recipient.notification_mode == "digest":
            digest.append(reminder)
        else:
            email.append(reminder)
    for reason, ids in skipped.items():
        report.skipped += len(_claim(ids, "skipped", reason, now))
    claimed = _claim([r.id for r in digest], "sent", "added to digest", now)
    claimed |= _claim([r.id for r in email], "sent", "e-mailed", now)

    items = []
    emails = []
    for reminder in digest + email:
        if reminder.id not in claimed:
            continue  # another sweep had it
        deadline = reminder.deadline
        subject = reminder_subject(reminder, now)
        link = _deadline_link(deadline)
        calendar = calendar_for(deadline.framework)
        due_local = deadline.due_at.astimezone(ZoneInfo(calendar.timezone))
        if reminder.recipient.notification_mode == "digest":
            items.append(
                {
                    "person_id": reminder.recipient_id,
                    "reminder_id": reminder.id,
                    "subject": subject,
                    "text": f"{deadline.title} ({deadline.unit.name}), "
                    f"due {due_local:%H:%M on %d %b %Y}",
                    "link": link,
                    # The sweep's moment, like processed_at: stamped with the clock instead,
                    # the item would be later than the ``now`` the same sweep's digest step
                    # uses, and miss today's digest.
                    "created_at": now,
                }
            )
            continue
        emails.append(
            Email(
                kind=f"reminder_{reminder.kind}",
                dedupe_key=f"reminder:{reminder.id}",
                recipient=reminder.recipient,
                subject=subject,
                template="reminder",
                link=link,
                context={
                    "deadline": deadline,
                    "reminder": reminder,
                    "due_local": due_local,
                    "is_overdue": deadline.due_at <= now,
                },
            )
        )
    if items:
        db.session.execute(sa.insert(DigestItem.__table__), items)
        report.digested += len(items)
    queue_emails(emails)
    report.sent += len(emails)


def process_due_reminders(
    now: datetime | None = None, batch_size: int = BATCH_SIZE
) -> ReminderReport:
    """Send every reminder whose time has come, in batches, each batch one transaction.

    Per batch: one SELECT, one claiming UPDATE per outcome, one dedupe SELECT and one
    executemany INSERT for the e-mails (one for digest lines), one commit.
    """
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
        _process_batch(batch, now, report)
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
