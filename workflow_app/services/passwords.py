"""Password hashing with argon2id (RELIABILITY-ANCHORS section 5: not Werkzeug's scrypt)."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import current_app

MIN_PASSWORD_LENGTH = 12

#: The most used passwords, most used first: the first 1,987 lines (1,979 distinct ignoring
#: case) of the UK National Cyber Security Centre's "100k most used passwords" list (from
#: Have I Been Pwned), as published in danielmiessler/SecLists (MIT licence),
#: Passwords/Common-Credentials/100k-most-used-passwords-NCSC.txt at commit 13dfe500.
#: ASVS 5.0 6.2.4 asks for such a check.
COMMON_PASSWORDS_FILE = Path(__file__).with_name("common_passwords.txt")
_DECORATION = re.compile(r"[\d\W_]+$")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    """The bundled list of the most used passwords, lower-cased."""
    lines = COMMON_PASSWORDS_FILE.read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip().lower() for line in lines if line.strip())


def is_common(password: str) -> bool:
    """True for a password on the list, or one of them with digits or symbols added at the
    end (``password1234!``), or one character repeated."""
    lowered = password.strip().lower()
    if len(set(lowered)) <= 1:
        return True
    common = common_passwords()
    if lowered in common:
        return True
    base = _DECORATION.sub("", lowered)
    return not base or base in common


def hasher_for(config) -> PasswordHasher:
    """The argon2id hasher ``config`` asks for (argon2-cffi's defaults, RFC 9106's low-memory
    profile: t=3, m=64 MiB, p=4, unless ``ARGON2_TIME_COST``/``ARGON2_MEMORY_COST`` are set)."""
    if config.get("ARGON2_TIME_COST"):
        return PasswordHasher(
            time_cost=config["ARGON2_TIME_COST"], memory_cost=config["ARGON2_MEMORY_COST"]
        )
    return PasswordHasher()


def _hasher() -> PasswordHasher:
    return hasher_for(current_app.config)


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


def needs_rehash(password_hash: str | None) -> bool:
    """True when ``password_hash`` was made with other (e.g. older, weaker) parameters than
    the configured ones, or is not an argon2 hash at all; it is replaced at the next sign-in."""
    if not password_hash:
        return False
    try:
        return _hasher().check_needs_rehash(password_hash)
    except (InvalidHashError, ValueError):
        return True


def password_problems(password: str, *, email: str = "", name: str = "") -> list[str]:
    """Return what is wrong with a new password, in words a person can act on."""
    problems = []
    if len(password) < MIN_PASSWORD_LENGTH:
        problems.append(f"Password must be at least {MIN_PASSWORD_LENGTH} characters long")
    if is_common(password):
        problems.append(
            "Password is one of the most used passwords, which are tried first when "
            "accounts are attacked. Choose another, for example three or four random words"
        )
    lowered = password.lower()
    local_part = email.split("@")[0].lower()
    if local_part and len(local_part) >= 4 and local_part in lowered:
        problems.append("Password must not contain your e-mail address")
    if name and any(len(part) >= 4 and part.lower() in lowered for part in name.split()):
        problems.append("Password must not contain your name")
    return problems
