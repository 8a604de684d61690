"""API tokens: scoped, expiring bearer tokens for the performance and BI teams.

A system administrator creates a token for a person; the secret is shown once and only its
SHA-256 is stored. A token acts as its person (their role grants still limit which units it
sees) and only within its scopes (``read``, ``data:write``). It stops working at
``expires_at`` or when revoked; ``last_used_at`` shows whether it is still in use.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.org import Person
from workflow_app.models.types import UTCDateTime

# Every scope a token can carry, with what it allows (shown on the admin page).
API_SCOPES = {
    "read": "Read units, measures, cases, levels, plans and meetings",
    "data:write": "Post monthly data (the same checks as the upload page)",
}


class ApiToken(db.Model):
    """One bearer token: its hash, owner, scopes, expiry and revocation."""

    __tablename__ = "api_tokens"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    # First characters of the secret, shown in lists so a token can be recognised.
    prefix: so.Mapped[str] = so.mapped_column(sa.String(16))
    token_sha256: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    person_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("people.id"), index=True)
    # Space-separated scope names from API_SCOPES.
    scopes: so.Mapped[str] = so.mapped_column(sa.String(200))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime())
    revoked_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    revoked_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    last_used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())

    person: so.Mapped[Person] = so.relationship(foreign_keys=[person_id])
    created_by: so.Mapped[Person | None] = so.relationship(foreign_keys=[created_by_id])
    revoked_by: so.Mapped[Person | None] = so.relationship(foreign_keys=[revoked_by_id])

    @property
    def scope_set(self) -> set[str]:
        """The scopes as a set."""
        return set(self.scopes.split())

    def __repr__(self) -> str:
        return f"<ApiToken {self.id} {self.prefix}… {self.scopes}>"
