"""Issued letters: immutable stored copies of the HTML (and, once the job has made it, the PDF).

A letter is never edited (DESIGN.md principle 4): the migration adds database triggers that
refuse to change its HTML, its hashes, its identity, or its PDF once set, and refuse DELETE.
A correction is a *reissue*: a new row with the next ``version`` whose predecessor points to
it through ``superseded_by_id`` (the one column that may go from NULL to a value, once).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.cases import Decision, EscalationCase
from workflow_app.models.org import Person
from workflow_app.models.types import UTCDateTime


class Letter(db.Model):
    """One issued letter of one kind (``escalation_2a``, ``chair_letter`` ...), one version."""

    __tablename__ = "letters"
    __table_args__ = (
        sa.UniqueConstraint("decision_id", "kind", "version"),
        sa.CheckConstraint("version >= 1", name="version_positive"),
        sa.CheckConstraint(
            "(pdf IS NULL AND pdf_sha256 IS NULL) OR (pdf IS NOT NULL AND pdf_sha256 IS NOT NULL)",
            name="pdf_has_hash",
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    case_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("escalation_cases.id"), index=True)
    decision_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("decisions.id"), index=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(64))
    version: so.Mapped[int] = so.mapped_column(default=1)
    reference: so.Mapped[str] = so.mapped_column(sa.String(120), unique=True)
    html: so.Mapped[str] = so.mapped_column(sa.Text)
    html_sha256: so.Mapped[str] = so.mapped_column(sa.String(64))
    # Made from the stored HTML after commit by workflow_app.letters.pdf.render_pending_pdfs.
    pdf: so.Mapped[bytes | None] = so.mapped_column(sa.LargeBinary, deferred=True)
    pdf_sha256: so.Mapped[str | None] = so.mapped_column(sa.String(64))
    issued_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    issued_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    superseded_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("letters.id"))
    # JSON: {"to": [{name, email, role}], "cc": [...]}
    recipients: so.Mapped[str] = so.mapped_column(sa.Text, default="{}")

    case: so.Mapped[EscalationCase] = so.relationship()
    decision: so.Mapped[Decision | None] = so.relationship()
    issued_by: so.Mapped[Person | None] = so.relationship()
    superseded_by: so.Mapped[Letter | None] = so.relationship(remote_side=[id])

    @property
    def recipient_list(self) -> dict[str, Any]:
        """``recipients`` decoded."""
        return json.loads(self.recipients or "{}")

    @property
    def is_current(self) -> bool:
        """False once the letter has been reissued."""
        return self.superseded_by_id is None

    def __repr__(self) -> str:
        return f"<Letter {self.reference} {self.kind} v{self.version}>"
