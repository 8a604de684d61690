"""Issued monthly reports, archived so a past report reopens exactly as it was issued.

A report (the Executive Team's monthly escalation overview, seed 000 §7.7, or the report to
the committees, §7.11) is computed from the data, then *issued* for a month: its content is
frozen as canonical JSON with a SHA-256, and its HTML, PDF and XLSX are made from that JSON
alone, so later data revisions never change an issued report. Re-issuing the same month
creates the next ``version``; earlier versions stay readable. The migration adds triggers
that refuse changing or deleting the frozen content.
"""

from __future__ import annotations

from datetime import date, datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.org import Person
from workflow_app.models.types import UTCDateTime

REPORT_KINDS = {
    "executive_overview": "Monthly escalation overview for the Executive Team",
    "committee": "Escalation report to the committees",
}


class IssuedReport(db.Model):
    """One issued version of one kind of report for one month."""

    __tablename__ = "issued_reports"
    __table_args__ = (
        sa.UniqueConstraint("kind", "month", "version"),
        sa.CheckConstraint("version >= 1", name="report_version_positive"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    # First day of the reported month.
    month: so.Mapped[date] = so.mapped_column(sa.Date, index=True)
    version: so.Mapped[int] = so.mapped_column(default=1)
    # Canonical JSON (sorted keys) of everything the report shows, and its SHA-256.
    content: so.Mapped[str] = so.mapped_column(sa.Text)
    content_sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    pdf: so.Mapped[bytes | None] = so.mapped_column(sa.LargeBinary, deferred=True)
    xlsx: so.Mapped[bytes | None] = so.mapped_column(sa.LargeBinary, deferred=True)
    issued_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    issued_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))

    issued_by: so.Mapped[Person | None] = so.relationship()

    @property
    def title(self) -> str:
        """The report's human title."""
        return REPORT_KINDS.get(self.kind, self.kind)

    def __repr__(self) -> str:
        return f"<IssuedReport {self.kind} {self.month:%Y-%m} v{self.version}>"
