"""The append-only, hash-chained audit trail (DESIGN.md principle 6)."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from workflow_app.extensions import db
from workflow_app.models.types import UTCDateTime

GENESIS_HASH = "0" * 64


class AuditEvent(db.Model):
    """One audited action. ``hash`` covers this row's content and ``prev_hash``.

    ``prev_hash`` is unique: two writers that read the same chain head cannot both append,
    so the chain can never fork (RELIABILITY-ANCHORS section 4.2). Database triggers,
    created by the migration, refuse UPDATE and DELETE.
    """

    __tablename__ = "audit_events"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    occurred_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime())
    actor_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    action: so.Mapped[str] = so.mapped_column(sa.String(80), index=True)
    object_type: so.Mapped[str] = so.mapped_column(sa.String(60))
    object_id: so.Mapped[str] = so.mapped_column(sa.String(60))
    summary: so.Mapped[str] = so.mapped_column(sa.String(500))
    details: so.Mapped[str] = so.mapped_column(sa.Text, default="{}")  # canonical JSON
    prev_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)

    actor = so.relationship("Person")
