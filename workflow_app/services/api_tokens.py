"""API tokens: create, revoke and authenticate the bearer tokens of ``/api/v1``.

A system administrator creates a token for a person with one or more scopes and an expiry of
at most a year; the secret is returned once and only its SHA-256 is stored. A token acts as
its person, so their role grants still decide which units it sees. Creating and revoking are
audited; using a token only updates ``last_used_at`` (at most once a minute, so a busy BI job
does not write on every request).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

import sqlalchemy as sa

from workflow_app.clock import as_utc, to_london, utcnow
from workflow_app.extensions import db
from workflow_app.models.api_tokens import API_SCOPES, ApiToken
from workflow_app.models.org import Person
from workflow_app.permissions import can_manage_people
from workflow_app.services.audit import record_event
from workflow_app.services.errors import Conflict, ServiceError, require

# Secrets start with this, so a leaked one is recognisable (e.g. by secret scanners).
SECRET_PREFIX = "esc_"  # noqa: S105 - a marker, not a secret
PREFIX_LENGTH = 12  # characters of the secret shown in lists
MAX_DAYS = 365
LAST_USED_RESOLUTION = timedelta(minutes=1)


class TokenRefused(ServiceError):
    """The bearer token is missing, unknown, expired, revoked or its person disabled."""


def token_sha256(secret: str) -> str:
    """The stored form of a secret."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def scope_problems(scopes: list[str] | set[str]) -> list[str]:
    """What is wrong with a choice of scopes (empty list: nothing)."""
    unknown = sorted(set(scopes) - API_SCOPES.keys())
    if unknown:
        return [f"Unknown scope {', '.join(unknown)}: choose from {', '.join(API_SCOPES)}"]
    if not scopes:
        return ["Choose at least one scope"]
    return []


def create_token(
    actor: Person,
    *,
    person: Person,
    name: str,
    scopes: list[str] | set[str],
    expires_at: datetime,
) -> tuple[ApiToken, str]:
    """Create a token for ``person``; returns the token and its secret (shown once).

    :raises PermissionDenied: ``actor`` is not a system administrator.
    :raises ServiceError: a blank name, unknown scopes, an expiry in the past or more than
        a year ahead, or a disabled person.
    """
    require(can_manage_people(actor), "Only a system administrator can create API tokens")
    name = (name or "").strip()
    if not name:
        raise ServiceError("Enter a name that says what the token is for, e.g. BI nightly load")
    if len(name) > 120:
        raise ServiceError("The name must be 120 characters or fewer")
    problems = scope_problems(scopes)
    if problems:
        raise ServiceError(problems[0])
    if not person.is_enabled:
        raise ServiceError(f"{person.name}'s account is disabled, so it cannot have a token")
    now = utcnow()
    expires_at = as_utc(expires_at)
    if expires_at <= now:
        raise ServiceError("The expiry must be in the future")
    if expires_at > now + timedelta(days=MAX_DAYS, minutes=1):
        raise ServiceError(f"A token can last at most {MAX_DAYS} days; choose an earlier expiry")
    secret = SECRET_PREFIX + secrets.token_urlsafe(32)
    ordered = [scope for scope in API_SCOPES if scope in set(scopes)]
    token = ApiToken(
        name=name,
        prefix=secret[:PREFIX_LENGTH],
        token_sha256=token_sha256(secret),
        person_id=person.id,
        scopes=" ".join(ordered),
        created_at=now,
        created_by_id=actor.id,
        expires_at=expires_at,
    )
    db.session.add(token)
    db.session.flush()
    record_event(
        "api_token.created",
        object_type="api_token",
        object_id=token.id,
        summary=(
            f"API token '{name}' ({token.prefix}…) created for {person.email} with "
            f"{', '.join(ordered)}, expiring {to_london(expires_at):%d %b %Y}"
        ),
        actor=actor,
        details={
            "person_id": person.id,
            "scopes": ordered,
            "expires_at": expires_at.isoformat(),
            "prefix": token.prefix,
        },
    )
    return token, secret


def revoke_token(actor: Person, token: ApiToken, reason: str) -> None:
    """Revoke a token at once, with the reason; a second revoke is refused.

    :raises Conflict: the token was already revoked.
    """
    require(can_manage_people(actor), "Only a system administrator can revoke API tokens")
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError("Enter the reason for revoking the token")
    now = utcnow()
    revoked = db.session.execute(
        sa.update(ApiToken)
        .where(ApiToken.id == token.id, ApiToken.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by_id=actor.id)
        .execution_options(synchronize_session=False)
    ).rowcount
    db.session.refresh(token)
    if revoked != 1:
        raise Conflict(f"The token '{token.name}' had already been revoked; nothing changed.")
    record_event(
        "api_token.revoked",
        object_type="api_token",
        object_id=token.id,
        summary=f"API token '{token.name}' ({token.prefix}…) revoked: {reason}",
        actor=actor,
        details={"reason": reason[:500], "person_id": token.person_id},
    )


def token_state(token: ApiToken, now: datetime | None = None) -> str:
    """``active``, ``expired`` or ``revoked``."""
    now = now or utcnow()
    if token.revoked_at is not None:
        return "revoked"
    if as_utc(token.expires_at) <= now:
        return "expired"
    return "active"


def authenticate(secret: str) -> ApiToken:
    """The token whose secret this is, if it may be used now; records when it was used.

    :raises TokenRefused: unknown, expired or revoked token, or a disabled person.
    """
    if not secret or len(secret) > 200:
        raise TokenRefused("The bearer token is not valid")
    token = db.session.scalar(
        sa.select(ApiToken).where(ApiToken.token_sha256 == token_sha256(secret))
    )
    if token is None:
        raise TokenRefused("The bearer token is not valid")
    now = utcnow()
    state = token_state(token, now)
    if state == "revoked":
        raise TokenRefused(
            f"This token was revoked on {to_london(token.revoked_at):%d %b %Y}. "
            "Ask a system administrator for a new one."
        )
    if state == "expired":
        raise TokenRefused(
            f"This token expired on {to_london(token.expires_at):%d %b %Y %H:%M}. "
            "Ask a system administrator for a new one."
        )
    if not token.person.is_enabled:
        raise TokenRefused("The account this token belongs to is disabled")
    if token.last_used_at is None or as_utc(token.last_used_at) + LAST_USED_RESOLUTION <= now:
        token.last_used_at = now
        db.session.flush()
    return token


def all_tokens() -> list[ApiToken]:
    """Every token, newest first (for the administration page)."""
    return list(db.session.scalars(sa.select(ApiToken).order_by(ApiToken.id.desc())))
