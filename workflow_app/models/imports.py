"""Uploaded data files (performance packs and finance returns) and what became of them.

An upload is parsed and checked first (``previewed``); the stored ``content`` is what the
"Load" step loads, so the person loads exactly the file they previewed. A batch is loaded
at most once (``loaded``) or thrown away (``discarded``).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
import sqlalchemy.orm as so

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.org import Person
from workflow_app.models.types import UTCDateTime

BATCH_STATUSES = {"previewed": "Previewed", "loaded": "Loaded", "discarded": "Discarded"}


class ImportBatch(db.Model):
    """One uploaded file, its problems and, once loaded, the counts of what changed."""

    __tablename__ = "import_batches"
    __table_args__ = (
        sa.CheckConstraint("status IN ('previewed', 'loaded', 'discarded')", name="status"),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    filename: so.Mapped[str] = so.mapped_column(sa.String(255))
    sha256: so.Mapped[str] = so.mapped_column(sa.String(64), index=True)
    # "performance", "finance" or "performance+finance" (a workbook with both sheets).
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    layout: so.Mapped[str] = so.mapped_column(sa.String(80), default="")
    uploaded_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    uploaded_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default="previewed")
    content: so.Mapped[bytes] = so.mapped_column(sa.LargeBinary)
    row_count: so.Mapped[int] = so.mapped_column(default=0)
    problem_count: so.Mapped[int] = so.mapped_column(default=0)
    problems_json: so.Mapped[str] = so.mapped_column(sa.Text, default="[]")
    result_json: so.Mapped[str | None] = so.mapped_column(sa.Text)
    loaded_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    loaded_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())

    uploaded_by: so.Mapped[Person | None] = so.relationship(foreign_keys=[uploaded_by_id])
    loaded_by: so.Mapped[Person | None] = so.relationship(foreign_keys=[loaded_by_id])

    @property
    def problems(self) -> list[dict[str, Any]]:
        return json.loads(self.problems_json or "[]")

    @property
    def result(self) -> dict[str, Any] | None:
        return json.loads(self.result_json) if self.result_json else None

    @property
    def status_title(self) -> str:
        return BATCH_STATUSES.get(self.status, self.status)

    def __repr__(self) -> str:
        return f"<ImportBatch {self.id} {self.filename} {self.status}>"
