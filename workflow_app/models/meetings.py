"""Meetings: budget review meetings, CEO progress meetings and the cadence reviews.

A meeting is requested (by a decision's consequences, e.g. Level 2b "CEO calls a special
Budget Review Meeting", or by a unit's cadence), scheduled in a slot, held (attendance,
minutes, decisions, an agreed action plan) or cancelled. Its calendar identity (``ical_uid``)
never changes; every reschedule or cancellation bumps ``ical_sequence`` so calendar clients
update the same event.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.cases import Decision, EscalationCase
from workflow_app.models.deadlines import Deadline
from workflow_app.models.org import Person, Unit
from workflow_app.models.plans import RecoveryPlan
from workflow_app.models.types import UTCDateTime

MEETING_KINDS = {
    "budget_review": "Budget Review Meeting",
    "follow_up_review": "Follow-up review meeting",
    "ceo_progress": "CEO progress meeting",
    "executive_review": "CEO / executive review",
    "divisional_performance": "Divisional performance meeting",
    "directorate_review": "Quarterly directorate review",
    "six_monthly_review": "Six-monthly review chaired by the CEO",
    "whole_board_meeting": "Whole board meeting",
}
MEETING_STATUSES = ("requested", "scheduled", "held", "cancelled")
INVITEE_ROLES = {
    "chair": "Chair",
    "executive_director": "Executive Director",
    "budget_holder": "Budget holder",
    "supporting_member": "Supporting team member",
    "unit_lead": "Unit lead",
    "attendee": "Attendee",
}
ATTENDANCE = {
    "invited": "Invited",
    "attended": "Attended",
    "apologies": "Sent apologies",
    "absent": "Did not attend",
}


class Meeting(db.Model):
    """One meeting about one unit (and usually one case)."""

    __tablename__ = "meetings"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in MEETING_STATUSES) + ")", name="status"
        ),
        sa.CheckConstraint("ends_at IS NULL OR ends_at > starts_at", name="ends_after_start"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(40), index=True)
    title: so.Mapped[str] = so.mapped_column(sa.String(300))
    unit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("units.id"), index=True)
    case_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("escalation_cases.id"))
    # The decision whose consequences asked for the meeting (e.g. the 2b decision), if any,
    # and the obligation it discharges (e.g. the cadence deadline or "meeting to be held by").
    decision_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("decisions.id"))
    deadline_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("deadlines.id"))
    # A follow-up meeting points at the meeting it follows (failing plan, review period).
    follows_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("meetings.id"))
    dedupe_key: so.Mapped[str | None] = so.mapped_column(sa.String(200), unique=True)
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default="requested", index=True)
    chair_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    requested_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    hold_by: so.Mapped[date | None] = so.mapped_column(sa.Date)  # the framework's "within"
    starts_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime(), index=True)
    ends_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    location: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    ical_uid: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    ical_sequence: so.Mapped[int] = so.mapped_column(default=0)
    cancelled_reason: so.Mapped[str] = so.mapped_column(sa.Text, default="")

    # After the meeting.
    minutes: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    decisions_text: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    minutes_recorded_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    minutes_recorded_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    action_plan_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("recovery_plans.id"))

    # The data pack, frozen when first generated for the meeting ("one version of the truth").
    data_pack_html: so.Mapped[str | None] = so.mapped_column(sa.Text)
    data_pack_sha256: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    data_pack_generated_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())

    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    lock_version: so.Mapped[int] = so.mapped_column(default=1)

    unit: so.Mapped[Unit] = so.relationship()
    case: so.Mapped[EscalationCase | None] = so.relationship()
    decision: so.Mapped[Decision | None] = so.relationship()
    deadline: so.Mapped[Deadline | None] = so.relationship()
    follows: so.Mapped[Meeting | None] = so.relationship(remote_side=[id])
    chair: so.Mapped[Person | None] = so.relationship(foreign_keys=[chair_id])
    minutes_recorded_by: so.Mapped[Person | None] = so.relationship(
        foreign_keys=[minutes_recorded_by_id]
    )
    created_by: so.Mapped[Person | None] = so.relationship(foreign_keys=[created_by_id])
    action_plan: so.Mapped[RecoveryPlan | None] = so.relationship()
    invitees: so.Mapped[list[MeetingInvitee]] = so.relationship(
        back_populates="meeting", order_by="MeetingInvitee.id", cascade="all, delete-orphan"
    )

    __mapper_args__ = {"version_id_col": lock_version}

    def __repr__(self) -> str:
        return f"<Meeting {self.id} {self.kind} unit={self.unit_id} {self.status}>"


class MeetingInvitee(db.Model):
    """A person invited to a meeting, in what capacity, and whether they came."""

    __tablename__ = "meeting_invitees"
    __table_args__ = (
        sa.UniqueConstraint("meeting_id", "person_id"),
        sa.CheckConstraint(
            "attendance IN ('invited', 'attended', 'apologies', 'absent')", name="attendance"
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    meeting_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("meetings.id"), index=True)
    person_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("people.id"), index=True)
    role: so.Mapped[str] = so.mapped_column(sa.String(32), default="attendee")
    added_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    added_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    attendance: so.Mapped[str] = so.mapped_column(sa.String(16), default="invited")
    attendance_note: so.Mapped[str] = so.mapped_column(sa.Text, default="")

    meeting: so.Mapped[Meeting] = so.relationship(back_populates="invitees")
    person: so.Mapped[Person] = so.relationship(foreign_keys=[person_id])
    added_by: so.Mapped[Person | None] = so.relationship(foreign_keys=[added_by_id])
