"""Password hashing with argon2id (RELIABILITY-ANCHORS section 5: not Werkzeug's scrypt)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

MIN_PASSWORD_LENGTH = 12


def _hasher() -> PasswordHasher:
    config = current_app.config
    if "ARGON2_TIME_COST" in config:
        return PasswordHasher(
            time_cost=config["ARGON2_TIME_COST"], memory_cost=config["ARGON2_MEMORY_COST"]
        )
    return PasswordHasher()


def hash_password(password: str) -> str:
    """Return an argon2id hash of ``password``."""
    return _hasher().hash(password)


def check_password(password_hash: str | None, password: str) -> bool:
    """True when ``password`` matches ``password_hash``; False for no hash or a bad hash."""
    if not password_hash:
        return False
    try:
        return _hasher().verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def password_problems(password: str, *, email: str = "", name: str = "") -> list[str]:
    """Return what is wrong with a new password, in words a person can act on."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"Password must be at least {MIN_PASSWORD_LENGTH} characters long")
    lowered = password.lower()
    local_part = email.split("@")[0].lower()
    if local_part and len(local_part) >= 4 and local_part in lowered:
        problems.append("Password must not contain your e-mail address")
    if name and any(len(part) >= 4 and part.lower() in lowered for part in name.split()):
        problems.append("Password must not contain your name")
    return problems
