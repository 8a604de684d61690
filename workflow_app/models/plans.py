"""Recovery / improvement plans: SMART actions, trajectories, versions, reviews, updates.

A plan belongs to an escalation case (the case that needs it) and moves through the review
cycle in :mod:`state_machines.plan_review` (draft -> submitted -> in review -> returned ->
... -> approved -> in delivery -> completed, or failing -> review period). The editable
working copy is the plan row with its :class:`PlanAction` and :class:`PlanTrajectoryPoint`
rows; every submission freezes that copy into a :class:`PlanVersion` (JSON, hashed), so the
reviewer can compare versions and nothing a directorate sent is ever overwritten.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import sqlalchemy as sa
import sqlalchemy.orm as so

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.cases import Decision, EscalationCase
from workflow_app.models.deadlines import Deadline
from workflow_app.models.measures import Measure
from workflow_app.models.org import Domain, Person, Unit
from workflow_app.models.types import UTCDateTime

PLAN_KINDS = {
    "recovery_plan": "Recovery plan",
    "improvement_plan": "Improvement plan",
    "action_plan": "Agreed action plan",
}
PLAN_STATUSES = (
    "draft",
    "submitted",
    "in_review",
    "returned",
    "approved",
    "in_delivery",
    "failing",
    "review_period",
    "completed",
    "withdrawn",
)
# A plan is open until it is completed or withdrawn (state_machines/plan_review.OPEN_STATUSES).
OPEN_PLAN_CONDITION = "status NOT IN ('completed', 'withdrawn')"
RISK_LEVELS = ("low", "moderate", "high", "severe")
UPDATE_STATUSES = {"on_track": "On track", "at_risk": "At risk", "off_track": "Off track"}


class RecoveryPlan(db.Model):
    """One plan for one case: the working copy and where it is in the review cycle."""

    __tablename__ = "recovery_plans"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN (" + ", ".join(f"'{s}'" for s in PLAN_STATUSES) + ")", name="status"
        ),
        # One open plan per case, held by the database: two "Start the plan" clicks racing
        # give one plan and one 409, not two drafts (services/plans.start_plan).
        sa.Index(
            "uq_recovery_plans_one_open_per_case",
            "case_id",
            unique=True,
            sqlite_where=sa.text(OPEN_PLAN_CONDITION),
            postgresql_where=sa.text(OPEN_PLAN_CONDITION),
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    case_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("escalation_cases.id"), index=True)
    unit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("units.id"), index=True)
    # The decision whose consequences asked for this plan, and the "plan due" obligation.
    decision_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("decisions.id"))
    due_deadline_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("deadlines.id"))
    kind: so.Mapped[str] = so.mapped_column(sa.String(32), default="recovery_plan")
    title: so.Mapped[str] = so.mapped_column(sa.String(300))
    status: so.Mapped[str] = so.mapped_column(sa.String(20), default="draft", index=True)

    summary: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    risk_assessment: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    risk_level: so.Mapped[str | None] = so.mapped_column(sa.String(16))
    support_requested: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    # Plan on a page: headlines, narrative, queries / escalations.
    headlines: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    narrative: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    queries: so.Mapped[str] = so.mapped_column(sa.Text, default="")

    current_version: so.Mapped[int] = so.mapped_column(default=0)  # 0 = never submitted
    submitted_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    approved_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    approved_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    review_period_ends_on: so.Mapped[date | None] = so.mapped_column(sa.Date)
    completed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    # Optimistic lock: two people saving the same plan at once cannot overwrite each other.
    lock_version: so.Mapped[int] = so.mapped_column(default=1)

    case: so.Mapped[EscalationCase] = so.relationship()
    unit: so.Mapped[Unit] = so.relationship()
    decision: so.Mapped[Decision | None] = so.relationship()
    due_deadline: so.Mapped[Deadline | None] = so.relationship()
    approved_by: so.Mapped[Person | None] = so.relationship(foreign_keys=[approved_by_id])
    created_by: so.Mapped[Person | None] = so.relationship(foreign_keys=[created_by_id])
    actions: so.Mapped[list[PlanAction]] = so.relationship(
        back_populates="plan", order_by="PlanAction.position", cascade="all, delete-orphan"
    )
    trajectory: so.Mapped[list[PlanTrajectoryPoint]] = so.relationship(
        back_populates="plan",
        order_by="(PlanTrajectoryPoint.measure_id, PlanTrajectoryPoint.period)",
        cascade="all, delete-orphan",
    )
    versions: so.Mapped[list[PlanVersion]] = so.relationship(
        back_populates="plan", order_by="PlanVersion.number"
    )
    status_changes: so.Mapped[list[PlanStatusChange]] = so.relationship(
        back_populates="plan", order_by="PlanStatusChange.id"
    )

    __mapper_args__ = {"version_id_col": lock_version}

    def __repr__(self) -> str:
        return f"<RecoveryPlan {self.id} case={self.case_id} {self.status}>"


class PlanAction(db.Model):
    """One SMART action of a plan (working copy; frozen into each submitted version).

    Specific: ``description``. Measurable: ``measure`` and ``expected_effect`` (by how much).
    Achievable / agreed: ``owner`` and ``resources``. Relevant / realistic: ``domain`` and
    ``deliverable``. Time-bound: ``due_on`` and ``milestones`` (one per line).
    """

    __tablename__ = "plan_actions"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    plan_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("recovery_plans.id"), index=True)
    position: so.Mapped[int] = so.mapped_column(default=0)
    description: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    measure_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("measures.id"))
    expected_effect: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    owner_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    resources: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    domain_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("domains.id"))
    deliverable: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    due_on: so.Mapped[date | None] = so.mapped_column(sa.Date)
    milestones: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    delivered_on: so.Mapped[date | None] = so.mapped_column(sa.Date)

    plan: so.Mapped[RecoveryPlan] = so.relationship(back_populates="actions")
    measure: so.Mapped[Measure | None] = so.relationship()
    owner: so.Mapped[Person | None] = so.relationship()
    domain: so.Mapped[Domain | None] = so.relationship()
    updates: so.Mapped[list[PlanActionUpdate]] = so.relationship(
        back_populates="action", order_by="PlanActionUpdate.period"
    )


class PlanTrajectoryPoint(db.Model):
    """A planned value for one measure in one month (the plan's trajectory)."""

    __tablename__ = "plan_trajectory_points"
    __table_args__ = (sa.UniqueConstraint("plan_id", "measure_id", "period"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    plan_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("recovery_plans.id"), index=True)
    measure_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("measures.id"))
    period: so.Mapped[date] = so.mapped_column(sa.Date)  # first day of the month
    planned_value: so.Mapped[Decimal] = so.mapped_column(sa.Numeric(18, 4))

    plan: so.Mapped[RecoveryPlan] = so.relationship(back_populates="trajectory")
    measure: so.Mapped[Measure] = so.relationship()


class PlanVersion(db.Model):
    """A submitted version of a plan, frozen as JSON and hashed; never changed."""

    __tablename__ = "plan_versions"
    __table_args__ = (sa.UniqueConstraint("plan_id", "number"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    plan_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("recovery_plans.id"), index=True)
    number: so.Mapped[int] = so.mapped_column()
    content: so.Mapped[str] = so.mapped_column(sa.Text)  # JSON snapshot of the working copy
    content_sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    submitted_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("people.id"))
    submitted_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    # The review outcome of this version: returned / approved, with the overall comment.
    outcome: so.Mapped[str | None] = so.mapped_column(sa.String(16))
    outcome_note: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    reviewed_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    reviewed_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())

    plan: so.Mapped[RecoveryPlan] = so.relationship(back_populates="versions")
    submitted_by: so.Mapped[Person] = so.relationship(foreign_keys=[submitted_by_id])
    reviewed_by: so.Mapped[Person | None] = so.relationship(foreign_keys=[reviewed_by_id])
    comments: so.Mapped[list[PlanReviewComment]] = so.relationship(
        back_populates="version", order_by="PlanReviewComment.id"
    )


class PlanReviewComment(db.Model):
    """A reviewer's comment on one action (or the plan as a whole) of a submitted version."""

    __tablename__ = "plan_review_comments"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    version_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("plan_versions.id"), index=True)
    # The action's id in the working copy (stable across versions); None = the whole plan.
    action_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("plan_actions.id"))
    field: so.Mapped[str] = so.mapped_column(sa.String(40), default="")
    comment: so.Mapped[str] = so.mapped_column(sa.Text)
    author_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("people.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    version: so.Mapped[PlanVersion] = so.relationship(back_populates="comments")
    action: so.Mapped[PlanAction | None] = so.relationship()
    author: so.Mapped[Person] = so.relationship()


class PlanStatusChange(db.Model):
    """One step of a plan through the review-cycle machine, with who, when and why."""

    __tablename__ = "plan_status_changes"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    plan_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("recovery_plans.id"), index=True)
    event: so.Mapped[str] = so.mapped_column(sa.String(32))
    from_status: so.Mapped[str | None] = so.mapped_column(sa.String(20))
    to_status: so.Mapped[str] = so.mapped_column(sa.String(20))
    actor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    note: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    changed_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    plan: so.Mapped[RecoveryPlan] = so.relationship(back_populates="status_changes")
    actor: so.Mapped[Person | None] = so.relationship()


class PlanActionUpdate(db.Model):
    """A monthly progress update on one action: on track / at risk / off track, and why."""

    __tablename__ = "plan_action_updates"
    __table_args__ = (
        sa.UniqueConstraint("action_id", "period"),
        sa.CheckConstraint("status IN ('on_track', 'at_risk', 'off_track')", name="status"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    action_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("plan_actions.id"), index=True)
    period: so.Mapped[date] = so.mapped_column(sa.Date)  # the month reported on
    status: so.Mapped[str] = so.mapped_column(sa.String(16))
    narrative: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    updated_by_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("people.id"))
    updated_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    action: so.Mapped[PlanAction] = so.relationship(back_populates="updates")
    updated_by: so.Mapped[Person] = so.relationship()
