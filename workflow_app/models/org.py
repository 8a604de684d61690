"""People, their role grants, units and domains."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask_login import UserMixin

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.roles import (
    DIRECTORATE_LEAD,
    ORGANISATION_WIDE_ROLES,
    ROLE_TITLES,
    UNIT_KINDS,
)
from workflow_app.models.types import UTCDateTime


class Person(UserMixin, db.Model):
    """Someone the engine knows: may sign in (has a password) and may hold several roles."""

    __tablename__ = "people"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120))
    email: so.Mapped[str] = so.mapped_column(sa.String(254), unique=True)
    job_title: so.Mapped[str] = so.mapped_column(sa.String(160), default="")
    password_hash: so.Mapped[str | None] = so.mapped_column(sa.String(255))
    is_enabled: so.Mapped[bool] = so.mapped_column(default=True)
    failed_logins: so.Mapped[int] = so.mapped_column(default=0)
    locked_until: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    last_login_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    # Bumped on password change, reset and disabling: invalidates every other session.
    session_epoch: so.Mapped[int] = so.mapped_column(default=0)
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    # "immediate": one e-mail per reminder; "digest": one e-mail a working day at 08:00.
    notification_mode: so.Mapped[str] = so.mapped_column(sa.String(16), default="immediate")

    grants: so.Mapped[list[RoleGrant]] = so.relationship(
        back_populates="person",
        cascade="all, delete-orphan",
        foreign_keys="RoleGrant.person_id",
    )

    def __repr__(self) -> str:
        return f"<Person {self.id} {self.email}>"

    # Flask-Login: the session stores "<id>:<epoch>" so old sessions die on password change.
    def get_id(self) -> str:
        return f"{self.id}:{self.session_epoch}"

    @property
    def is_active(self) -> bool:  # Flask-Login refuses inactive users
        return self.is_enabled

    @property
    def display_name(self) -> str:
        return self.name

    @property
    def roles(self) -> set[str]:
        """Names of every role this person holds."""
        return {grant.role for grant in self.grants}

    @property
    def role_titles(self) -> list[str]:
        """Human titles of the roles held, for the page header."""
        return sorted(ROLE_TITLES.get(role, role.replace("_", " ").title()) for role in self.roles)

    def has_role(self, *roles: str) -> bool:
        """True when the person holds any of ``roles``."""
        return bool(self.roles.intersection(roles))

    @property
    def sees_whole_organisation(self) -> bool:
        """True for roles that may see every unit (not only the units they lead).

        Framework decider roles (e.g. NHS Wales' Director General or Minister) decide for the
        whole organisation, so they see it too; only a directorate lead is limited.
        """
        return bool(self.roles & ORGANISATION_WIDE_ROLES) or bool(
            self.roles - ORGANISATION_WIDE_ROLES - {DIRECTORATE_LEAD}
        )


class RoleGrant(db.Model):
    """One role held by one person. Framework decider roles are granted the same way."""

    __tablename__ = "role_grants"
    __table_args__ = (sa.UniqueConstraint("person_id", "role"),)

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    person_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("people.id", ondelete="CASCADE"))
    role: so.Mapped[str] = so.mapped_column(sa.String(64))
    granted_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    granted_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)

    person: so.Mapped[Person] = so.relationship(back_populates="grants", foreign_keys=[person_id])


class Domain(db.Model):
    """A domain (pillar) of performance: access, quality, finance, workforce, leadership."""

    __tablename__ = "domains"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    code: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(120))


class Unit(db.Model):
    """A directorate, corporate department, clinical service area or commissioned provider."""

    __tablename__ = "units"
    __table_args__ = (
        sa.CheckConstraint(
            "kind IN (" + ", ".join(f"'{kind}'" for kind in UNIT_KINDS) + ")", name="kind"
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    code: so.Mapped[str] = so.mapped_column(sa.String(32), unique=True)
    name: so.Mapped[str] = so.mapped_column(sa.String(160))
    kind: so.Mapped[str] = so.mapped_column(sa.String(40))
    parent_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("units.id"))
    accountable_executive_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    lead_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    budget_holder_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    framework: so.Mapped[str] = so.mapped_column(sa.String(64), default="iqpf")
    is_active: so.Mapped[bool] = so.mapped_column(default=True)
    # Earned autonomy (framework A 7.8, framework B 7.1): consistent delivery at the lowest
    # level earns lighter monitoring (fewer meetings) from this time; any escalation clears it.
    earned_autonomy_since: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())

    parent: so.Mapped[Unit | None] = so.relationship(remote_side=[id])
    accountable_executive: so.Mapped[Person | None] = so.relationship(
        foreign_keys=[accountable_executive_id]
    )
    lead: so.Mapped[Person | None] = so.relationship(foreign_keys=[lead_id])
    budget_holder: so.Mapped[Person | None] = so.relationship(foreign_keys=[budget_holder_id])

    @property
    def kind_title(self) -> str:
        return UNIT_KINDS.get(self.kind, self.kind)

    def __repr__(self) -> str:
        return f"<Unit {self.code}>"


class PasswordResetToken(db.Model):
    """A one-time password reset link; only the token's hash is stored."""

    __tablename__ = "password_reset_tokens"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    person_id: so.Mapped[int] = so.mapped_column(sa.ForeignKey("people.id", ondelete="CASCADE"))
    token_hash: so.Mapped[str] = so.mapped_column(sa.String(64), unique=True)
    created_by_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    expires_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime())
    used_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())

    person: so.Mapped[Person] = so.relationship(foreign_keys=[person_id])
