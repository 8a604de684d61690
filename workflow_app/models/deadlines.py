"""Deadlines, their pauses and reminders, digest items, and scheduled job runs.

Durable time lives here (DESIGN.md principle 3): every obligation is a row with a due time
and a status; every reminder is a row with a send time and a status. The scheduler's sweep
only wakes up and claims what is due.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase
from workflow_app.models.org import Person, Unit
from workflow_app.models.types import UTCDateTime

DEADLINE_STATUSES = ("open", "paused", "done", "cancelled")
REMINDER_STATUSES = ("pending", "sent", "skipped", "cancelled")
REMINDER_KINDS = {
    "before_due": "Before due",
    "due_today": "Due today",
    "overdue": "Overdue",
    "overdue_escalation": "Overdue: escalated to the accountable executive",
}


class Deadline(db.Model):
    """An obligation with a due time: a plan due, a monthly update, a review meeting ..."""

    __tablename__ = "deadlines"
    __table_args__ = (
        sa.CheckConstraint("status IN ('open', 'paused', 'done', 'cancelled')", name="status"),
        sa.Index("ix_deadlines_owner_status", "owner_id", "status"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    # What created it; unique so the same cause never creates two deadlines.
    dedupe_key: so.Mapped[str] = so.mapped_column(sa.String(200), unique=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(60))
    title: so.Mapped[str] = so.mapped_column(sa.String(300))
    unit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("units.id"), index=True)
    case_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("escalation_cases.id"), index=True
    )
    owner_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    framework: so.Mapped[str] = so.mapped_column(sa.String(64))
    due_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), index=True)
    # Set when the due time was computed in working days, so a pause can move it by them.
    working_days: so.Mapped[int | None] = so.mapped_column()
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default="open", index=True)
    # Bumped whenever the due time moves: reminders of an older generation no longer apply.
    generation: so.Mapped[int] = so.mapped_column(default=1)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    completed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    completed_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    cancelled_reason: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    version: so.Mapped[int] = so.mapped_column(default=1)

    unit: so.Mapped[Unit] = so.relationship()
    case: so.Mapped[EscalationCase | None] = so.relationship()
    owner: so.Mapped[Person | None] = so.relationship(foreign_keys=[owner_id])
    pauses: so.Mapped[list[DeadlinePause]] = so.relationship(
        back_populates="deadline", order_by="DeadlinePause.paused_at"
    )

    __mapper_args__ = {"version_id_col": version}

    @property
    def is_live(self) -> bool:
        """True while the obligation still needs doing (open or paused)."""
        return self.status in ("open", "paused")


class DeadlinePause(db.Model):
    """A stopped clock: who paused a deadline, why, and how far it moved when resumed."""

    __tablename__ = "deadline_pauses"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    deadline_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("deadlines.id"), index=True)
    reason: so.Mapped[str] = so.mapped_column(sa.Text)
    paused_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime())
    paused_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("people.id"))
    resumed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    resumed_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    working_days_added: so.Mapped[int | None] = so.mapped_column()

    deadline: so.Mapped[Deadline] = so.relationship(back_populates="pauses")
    paused_by: so.Mapped[Person] = so.relationship(foreign_keys=[paused_by_id])
    resumed_by: so.Mapped[Person | None] = so.relationship(foreign_keys=[resumed_by_id])


class Reminder(db.Model):
    """One reminder of one deadline to one person at one time; sent at most once."""

    __tablename__ = "reminders"
    __table_args__ = (
        sa.UniqueConstraint("deadline_id", "generation", "kind", "offset_days", "recipient_id"),
        sa.CheckConstraint("status IN ('pending', 'sent', 'skipped', 'cancelled')", name="status"),
        sa.Index("ix_reminders_due", "status", "send_at"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    deadline_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("deadlines.id"), index=True)
    generation: so.Mapped[int] = so.mapped_column()
    kind: so.Mapped[str] = so.mapped_column(sa.String(32))
    # Working days before (before_due) or after (overdue) the due date; 0 otherwise.
    offset_days: so.Mapped[int] = so.mapped_column(default=0)
    recipient_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("people.id"))
    send_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime())
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default="pending")
    processed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    outcome: so.Mapped[str] = so.mapped_column(sa.String(200), default="")

    deadline: so.Mapped[Deadline] = so.relationship()
    recipient: so.Mapped[Person] = so.relationship()


class DigestItem(db.Model):
    """A line waiting for a person's daily digest e-mail (people who chose a digest)."""

    __tablename__ = "digest_items"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    person_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("people.id"), index=True)
    reminder_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("reminders.id"), unique=True
    )
    subject: so.Mapped[str] = so.mapped_column(sa.String(300))
    text: so.Mapped[str] = so.mapped_column(sa.Text)
    link: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    digest_message_id: so.Mapped[int | None] = so.mapped_column(
        sa.ForeignKey("outbox_messages.id"), index=True
    )


class JobRun(db.Model):
    """One run of a periodic job for one period (e.g. the monthly review of 2026-10).

    The unique key makes the run happen once however many schedulers notice it is due.
    """

    __tablename__ = "job_runs"
    __table_args__ = (sa.UniqueConstraint("job", "period_key"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    job: so.Mapped[str] = so.mapped_column(sa.String(60))
    period_key: so.Mapped[str] = so.mapped_column(sa.String(40))
    period: so.Mapped[date | None] = so.mapped_column(sa.Date)
    started_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    finished_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    summary: so.Mapped[str] = so.mapped_column(sa.Text, default="")
