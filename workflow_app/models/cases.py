"""Escalation cases, their level history, decisions with signatures, and concerns."""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.org import Domain, Person, Unit
from workflow_app.models.types import UTCDateTime


class EscalationCase(db.Model):
    """One unit's position on one track of one framework (DOMAIN.md decision 1).

    ``version`` is SQLAlchemy's version counter: an UPDATE that finds another writer got
    there first matches no row and raises ``StaleDataError``, which the web layer turns
    into a 409 "already decided" (DESIGN.md principle 5).
    """

    __tablename__ = "escalation_cases"
    __table_args__ = (sa.UniqueConstraint("unit_id", "framework", "track"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    unit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("units.id"), index=True)
    framework: so.Mapped[str] = so.mapped_column(sa.String(64))
    # A track name, or "measure:<code>" for per-measure tracks (framework C).
    track: so.Mapped[str] = so.mapped_column(sa.String(80))
    level: so.Mapped[str] = so.mapped_column(sa.String(32))
    level_since: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    opened_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    version: so.Mapped[int] = so.mapped_column(default=1)

    unit: so.Mapped[Unit] = so.relationship()
    level_changes: so.Mapped[list[LevelChange]] = so.relationship(
        back_populates="case", order_by="LevelChange.changed_at"
    )

    __mapper_args__ = {"version_id_col": version}

    def __repr__(self) -> str:
        return f"<EscalationCase {self.unit_id} {self.framework}/{self.track} at {self.level}>"


class LevelChange(db.Model):
    """One step in a case's level history."""

    __tablename__ = "level_changes"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    case_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("escalation_cases.id"), index=True)
    from_level: so.Mapped[str | None] = so.mapped_column(sa.String(32))
    to_level: so.Mapped[str] = so.mapped_column(sa.String(32))
    decision_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("decisions.id"))
    changed_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    case: so.Mapped[EscalationCase] = so.relationship(back_populates="level_changes")


DECISION_STATUSES = ("pending", "approved", "rejected", "superseded")


class Decision(db.Model):
    """A proposed or decided level change (or formal notification) on a case.

    It takes effect when the signatures its framework rule requires are complete
    (DOMAIN.md decision 2).
    """

    __tablename__ = "decisions"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('pending', 'approved', 'rejected', 'superseded')", name="status"
        ),
        sa.CheckConstraint("status = 'pending' OR decided_at IS NOT NULL", name="decided_has_time"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    case_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("escalation_cases.id"), index=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(32))  # escalate | de_escalate | notice
    from_level: so.Mapped[str] = so.mapped_column(sa.String(32))
    to_level: so.Mapped[str] = so.mapped_column(sa.String(32))
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default="pending")
    signature_rule: so.Mapped[str] = so.mapped_column(sa.String(64))
    reason: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    evidence: so.Mapped[str] = so.mapped_column(sa.Text, default="")  # JSON document
    meeting_reference: so.Mapped[str] = so.mapped_column(sa.String(200), default="")
    proposed_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    proposed_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    decided_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    # "engine" for a proposal made by the monthly review, "manual" when raised by a person.
    origin: so.Mapped[str] = so.mapped_column(sa.String(16), default="manual")
    rule_id: so.Mapped[str] = so.mapped_column(sa.String(80), default="")
    period: so.Mapped[date | None] = so.mapped_column(sa.Date)  # the month reviewed
    # Stable hash of the evidence: revised data that changes it supersedes the proposal.
    fingerprint: so.Mapped[str] = so.mapped_column(sa.String(64), default="")
    # Re-running a review never writes the same proposal twice.
    dedupe_key: so.Mapped[str | None] = so.mapped_column(sa.String(200), unique=True)
    supersedes_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("decisions.id"))
    # Set when revised data changed the evidence after this was decided (DOMAIN.md dec. 10).
    evidence_revised_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    # Level 3 support options the CEO chose (DOMAIN.md decision 7), JSON: {"option": {...}}.
    support_options: so.Mapped[str] = so.mapped_column(sa.Text, default="{}")
    # Why it was rejected, or amended to another level: kept beside the original reason.
    decision_note: so.Mapped[str] = so.mapped_column(sa.Text, default="")

    case: so.Mapped[EscalationCase] = so.relationship()
    proposed_by: so.Mapped[Person | None] = so.relationship()
    supersedes: so.Mapped[Decision | None] = so.relationship(remote_side=[id])
    signatures: so.Mapped[list[DecisionSignature]] = so.relationship(
        back_populates="decision", order_by="DecisionSignature.signed_at"
    )


class DecisionSignature(db.Model):
    """A signature on a decision: who, when, in which role, meaning what."""

    __tablename__ = "decision_signatures"
    __table_args__ = (sa.UniqueConstraint("decision_id", "person_id"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    decision_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("decisions.id"), index=True)
    person_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("people.id"))
    role: so.Mapped[str] = so.mapped_column(sa.String(64))
    meaning: so.Mapped[str] = so.mapped_column(sa.String(200))  # e.g. "approved"
    on_behalf_of_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    signed_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    # What was signed (RELIABILITY-ANCHORS check 15, the Part 11 signature manifestation):
    # the case's version when signed, and the SHA-256 of the canonical JSON of the decision's
    # content, the signer, role, meaning and time (workflow_app.services.signatures).
    case_version: so.Mapped[int | None] = so.mapped_column()
    payload_sha256: so.Mapped[str | None] = so.mapped_column(sa.String(64))

    decision: so.Mapped[Decision] = so.relationship(back_populates="signatures")
    person: so.Mapped[Person] = so.relationship(foreign_keys=[person_id])
    on_behalf_of: so.Mapped[Person | None] = so.relationship(foreign_keys=[on_behalf_of_id])


CONCERN_KINDS = {
    "inspection": "Inspection finding (e.g. HIW)",
    "never_event": "Never event",
    "external_review": "External review",
    "complaint_trend": "Complaints trend",
    "incident_trend": "Incidents trend",
    "speaking_up": "Speaking up",
    "well_led_self_assessment": "Well-led self-assessment",
    "quality_standard_failed": "Failure of a quality standard",
}
CONCERN_SEVERITIES = {"low": "Low", "moderate": "Moderate", "high": "High", "serious": "Serious"}


class Concern(db.Model):
    """Qualitative intelligence recorded against a unit and domain (DOMAIN.md decision 6)."""

    __tablename__ = "concerns"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    unit_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("units.id"), index=True)
    domain_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("domains.id"))
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    severity: so.Mapped[str] = so.mapped_column(sa.String(16))
    summary: so.Mapped[str] = so.mapped_column(sa.String(300))
    evidence: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    occurred_on: so.Mapped[date | None] = so.mapped_column(sa.Date)
    recorded_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    recorded_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    unit: so.Mapped[Unit] = so.relationship()
    domain: so.Mapped[Domain] = so.relationship()
    recorded_by: so.Mapped[Person | None] = so.relationship()


class Delegation(db.Model):
    """Authority delegated for a period (leave cover): the delegate may sign in the role of
    the delegator, and the record shows "signed by X as delegate of Y"."""

    __tablename__ = "delegations"
    __table_args__ = (sa.CheckConstraint("ends_at > starts_at", name="period"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    delegator_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("people.id"), index=True)
    delegate_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("people.id"), index=True)
    role: so.Mapped[str] = so.mapped_column(sa.String(64))
    starts_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime())
    ends_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime())
    reason: so.Mapped[str] = so.mapped_column(sa.String(300), default="")
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())

    delegator: so.Mapped[Person] = so.relationship(foreign_keys=[delegator_id])
    delegate: so.Mapped[Person] = so.relationship(foreign_keys=[delegate_id])
