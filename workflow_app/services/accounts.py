"""Signing in, passwords, people and role grants."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app

from workflow_app.clock import to_london, utcnow
from workflow_app.extensions import db
from workflow_app.models.org import PasswordResetToken, Person, RoleGrant
from workflow_app.models.roles import ROLE_TITLES
from workflow_app.notifications.outbox import absolute_url, is_plain_address, queue_email
from workflow_app.permissions import can_manage_people
from workflow_app.services.audit import record_event
from workflow_app.services.errors import NotFound, ServiceError, require
from workflow_app.services.passwords import (
    check_password,
    hash_password,
    needs_rehash,
    password_problems,
)

# Verifying against a real hash for unknown e-mails keeps the response time the same, so
# the sign-in form does not reveal which addresses have accounts.
_DUMMY_HASH: str | None = None


class LoginRefused(ServiceError):
    """Sign-in refused; the message never says whether the e-mail exists."""


def normalise_email(email: str) -> str:
    """Lower-case and strip an e-mail address for storage and look-up."""
    return email.strip().lower()


def device_fingerprint(person: Person) -> str:
    """A short digest of the person's current password hash: a trusted-device mark made
    before a password change or reset stops counting once the password changes."""
    return hashlib.sha256((person.password_hash or "").encode()).hexdigest()[:16]


def authenticate(
    email: str, password: str, *, trusted: set[tuple[int, str]] = frozenset()
) -> Person:
    """Return the person whose credentials these are, counting failures per account.

    After ``LOGIN_MAX_FAILURES`` failures the account is locked for ``LOGIN_LOCK_MINUTES``,
    except for a browser in which the person has signed in before (``trusted`` holds
    ``(person id, device_fingerprint)`` pairs from its signed cookie), so an attacker
    cannot lock the owner out (docs/decisions/0030). A hash made with weaker parameters
    than the configured ones is replaced on success.

    :raises LoginRefused: wrong credentials, disabled account, or locked account.
    """
    global _DUMMY_HASH
    config = current_app.config
    now = utcnow()
    person = db.session.scalar(sa.select(Person).where(Person.email == normalise_email(email)))
    if person is None or not person.password_hash:
        if _DUMMY_HASH is None:
            _DUMMY_HASH = hash_password(secrets.token_hex(8))
        check_password(_DUMMY_HASH, password)
        raise LoginRefused("Enter a correct e-mail address and password")
    known_device = (person.id, device_fingerprint(person)) in trusted
    locked = person.locked_until is not None and person.locked_until > now
    if locked and not known_device:
        until = to_london(person.locked_until).strftime("%H:%M")
        raise LoginRefused(
            f"Too many failed attempts. This account is locked until {until}; "
            "try again then, or ask a system administrator to reset your password"
        )
    if not check_password(person.password_hash, password):
        person.failed_logins += 1
        if person.failed_logins >= config["LOGIN_MAX_FAILURES"]:
            person.failed_logins = 0
            person.locked_until = now + timedelta(minutes=config["LOGIN_LOCK_MINUTES"])
            record_event(
                "login.locked",
                object_type="person",
                object_id=person.id,
                summary=f"Account {person.email} locked after repeated failed sign-ins",
            )
        raise LoginRefused("Enter a correct e-mail address and password")
    if not person.is_enabled:
        raise LoginRefused("This account has been disabled. Ask a system administrator.")
    if not locked:  # a known device passing a lock leaves it in place for everyone else
        person.failed_logins = 0
        person.locked_until = None
    if needs_rehash(person.password_hash):
        person.password_hash = hash_password(password)
    person.last_login_at = now
    record_event(
        "login.succeeded",
        object_type="person",
        object_id=person.id,
        summary=f"{person.email} signed in",
        actor=person,
    )
    return person


def record_failed_signature(person: Person, *, object_type: str, object_id: int) -> None:
    """A wrong password when signing: audited, and counted like a failed sign-in.

    At ``LOGIN_MAX_FAILURES`` the account is locked and every session of the person ends,
    so a stolen session cannot be used to guess the password through the signing form
    (RELIABILITY-ANCHORS check 15).
    """
    config = current_app.config
    person.failed_logins += 1
    locked = person.failed_logins >= config["LOGIN_MAX_FAILURES"]
    record_event(
        "signature.refused",
        object_type=object_type,
        object_id=object_id,
        summary=f"{person.email} entered a wrong password to sign"
        + ("; the account is locked and signed out" if locked else ""),
        actor=person,
    )
    if locked:
        person.failed_logins = 0
        person.locked_until = utcnow() + timedelta(minutes=config["LOGIN_LOCK_MINUTES"])
        person.session_epoch += 1


def sign_out(person: Person) -> None:
    """End every session of ``person``: a copied session cookie is worthless afterwards."""
    person.session_epoch += 1


def change_password(person: Person, current_password: str, new_password: str) -> None:
    """Change one's own password; other sessions of the person are ended."""
    if not check_password(person.password_hash, current_password):
        raise ServiceError("Your current password is not correct")
    problems = password_problems(new_password, email=person.email, name=person.name)
    if problems:
        raise ServiceError("; ".join(problems))
    person.password_hash = hash_password(new_password)
    person.session_epoch += 1
    record_event(
        "person.password_changed",
        object_type="person",
        object_id=person.id,
        summary=f"{person.email} changed their password",
        actor=person,
    )


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_password_reset(actor: Person, person: Person) -> str:
    """Create a one-time reset link for ``person`` and put it in their e-mail outbox.

    :returns: the token (only the hash is stored).
    """
    require(can_manage_people(actor), "Only a system administrator can reset a password")
    token = secrets.token_urlsafe(32)
    hours = current_app.config["PASSWORD_RESET_HOURS"]
    reset = PasswordResetToken(
        person_id=person.id,
        token_hash=_token_hash(token),
        created_by_id=actor.id,
        expires_at=utcnow() + timedelta(hours=hours),
    )
    db.session.add(reset)
    db.session.flush()
    queue_email(
        kind="password_reset",
        dedupe_key=f"password_reset:{reset.id}",
        recipient=person,
        subject="Set a new password for Escalate",
        template="password_reset",
        link=absolute_url(f"/auth/reset/{token}"),
        hours=hours,
    )
    record_event(
        "person.password_reset_issued",
        object_type="person",
        object_id=person.id,
        summary=f"Password reset link sent to {person.email}",
        actor=actor,
    )
    return token


def find_reset_token(token: str) -> PasswordResetToken:
    """Return the live reset token for ``token``.

    :raises NotFound: unknown, used or expired.
    """
    reset = db.session.scalar(
        sa.select(PasswordResetToken).where(PasswordResetToken.token_hash == _token_hash(token))
    )
    if reset is None or reset.used_at is not None or reset.expires_at <= utcnow():
        raise NotFound(
            "This password reset link has expired or has already been used. "
            "Ask a system administrator for a new one."
        )
    return reset


def reset_password(token: str, new_password: str) -> Person:
    """Set a new password with a one-time link; the link is spent, other sessions end."""
    reset = find_reset_token(token)
    person = reset.person
    problems = password_problems(new_password, email=person.email, name=person.name)
    if problems:
        raise ServiceError("; ".join(problems))
    # Spend the token with a conditional update so two submissions cannot both use it.
    spent = db.session.execute(
        sa.update(PasswordResetToken)
        .where(PasswordResetToken.id == reset.id, PasswordResetToken.used_at.is_(None))
        .values(used_at=utcnow())
    )
    if spent.rowcount != 1:
        raise NotFound("This password reset link has already been used.")
    person.password_hash = hash_password(new_password)
    person.session_epoch += 1
    person.failed_logins = 0
    person.locked_until = None
    record_event(
        "person.password_reset",
        object_type="person",
        object_id=person.id,
        summary=f"{person.email} set a new password with a reset link",
        actor=person,
    )
    return person


def create_person(
    actor: Person, *, name: str, email: str, job_title: str = "", roles: list[str] | None = None
) -> Person:
    """Add a person (without a password: they get one through a reset link)."""
    require(can_manage_people(actor), "Only a system administrator can add people")
    email = normalise_email(email)
    if not is_plain_address(email):
        raise ServiceError(
            f"{email[:100]!r} is not an e-mail address. Enter one address, like name@nhs.net"
        )
    if db.session.scalar(sa.select(Person.id).where(Person.email == email)) is not None:
        raise ServiceError(f"Someone with the e-mail address {email} already exists")
    person = Person(name=name.strip(), email=email, job_title=job_title.strip())
    db.session.add(person)
    db.session.flush()
    record_event(
        "person.created",
        object_type="person",
        object_id=person.id,
        summary=f"Added {person.name} <{person.email}>",
        actor=actor,
        details={"job_title": person.job_title},
    )
    for role in roles or []:
        grant_role(actor, person, role)
    return person


def update_person(actor: Person, person: Person, *, name: str, job_title: str) -> None:
    """Change a person's name and job title."""
    require(can_manage_people(actor), "Only a system administrator can change people")
    before = {"name": person.name, "job_title": person.job_title}
    person.name = name.strip()
    person.job_title = job_title.strip()
    record_event(
        "person.updated",
        object_type="person",
        object_id=person.id,
        summary=f"Updated {person.name}",
        actor=actor,
        details={"before": before, "after": {"name": person.name, "job_title": person.job_title}},
    )


def grant_role(actor: Person, person: Person, role: str, *, allowed_roles: set[str] | None = None):
    """Give ``person`` a role (built-in, or a decider role of a framework)."""
    require(can_manage_people(actor), "Only a system administrator can grant roles")
    known = set(ROLE_TITLES) | (allowed_roles or set())
    if role not in known:
        raise ServiceError(f"{role!r} is not a role this organisation uses")
    if role in person.roles:
        raise ServiceError(f"{person.name} already holds the role {role}")
    grant = RoleGrant(person_id=person.id, role=role, granted_by_id=actor.id)
    db.session.add(grant)
    person.grants.append(grant)
    db.session.flush()
    record_event(
        "role.granted",
        object_type="person",
        object_id=person.id,
        summary=f"Granted {role} to {person.name}",
        actor=actor,
        details={"role": role},
    )
    return grant


def revoke_role(actor: Person, person: Person, role: str) -> None:
    """Take a role away from ``person``."""
    require(can_manage_people(actor), "Only a system administrator can revoke roles")
    grant = next((g for g in person.grants if g.role == role), None)
    if grant is None:
        raise NotFound(f"{person.name} does not hold the role {role}")
    if person.id == actor.id and role == "system_admin":
        raise ServiceError("You cannot remove your own system administrator role")
    person.grants.remove(grant)
    db.session.flush()
    record_event(
        "role.revoked",
        object_type="person",
        object_id=person.id,
        summary=f"Revoked {role} from {person.name}",
        actor=actor,
        details={"role": role},
    )


def set_enabled(actor: Person, person: Person, enabled: bool) -> None:
    """Disable (or re-enable) an account; disabling ends the person's sessions."""
    require(can_manage_people(actor), "Only a system administrator can disable accounts")
    if person.id == actor.id and not enabled:
        raise ServiceError("You cannot disable your own account")
    if person.is_enabled == enabled:
        return
    person.is_enabled = enabled
    person.session_epoch += 1
    record_event(
        "person.enabled" if enabled else "person.disabled",
        object_type="person",
        object_id=person.id,
        summary=f"{'Enabled' if enabled else 'Disabled'} the account of {person.email}",
        actor=actor,
    )


NOTIFICATION_MODES = ("immediate", "digest")


def set_notification_mode(person: Person, mode: str) -> None:
    """Choose one e-mail per reminder (``immediate``) or a daily ``digest``."""
    if mode not in NOTIFICATION_MODES:
        raise ServiceError("Choose immediate e-mails or a daily digest")
    if person.notification_mode == mode:
        return
    person.notification_mode = mode
    record_event(
        "person.notification_mode",
        object_type="person",
        object_id=person.id,
        summary=f"{person.email} chose {mode} reminders",
        actor=person,
    )
