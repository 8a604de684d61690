"""Configuration for Escalate.

``Config`` is the embedded default: SQLite in ``instance/``, mail kept in the outbox, the
scheduler running inside the web process. ``ProductionConfig`` reads everything from the
environment and refuses to start without a ``SECRET_KEY``. ``TestConfig`` is used by pytest.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent


def env_bool(name: str, default: bool) -> bool:
    """Read a boolean from the environment, failing loudly on anything unrecognised."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    value = raw.strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"0", "false", "no", "off"}:
        return False
    raise ValueError(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int) -> int:
    """Read an integer from the environment, failing loudly on anything that is not one."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be a whole number, not {raw!r}") from None


class Config:
    """Embedded default: one process, SQLite, local mail outbox, scheduler in process."""

    INSTANCE_PATH = Path(os.environ.get("ESCALATE_INSTANCE_PATH", BASE_DIR / "instance"))
    SECRET_KEY = os.environ.get("SECRET_KEY") or "dev-only-not-secret-change-me"
    SQLALCHEMY_DATABASE_URI = os.environ.get(
        "DATABASE_URL", f"sqlite:///{INSTANCE_PATH / 'escalate.sqlite3'}"
    )
    SQLALCHEMY_ENGINE_OPTIONS: dict = {"pool_pre_ping": True}
    TEMPLATES_FOLDER = BASE_DIR / "templates"
    LETTERS_FOLDER = BASE_DIR / "letters"

    # The organisation's framework (a file in state_machines/frameworks/).
    ESCALATE_FRAMEWORK = os.environ.get("ESCALATE_FRAMEWORK", "iqpf")
    ORGANISATION_NAME = os.environ.get("ORGANISATION_NAME", "Demo Health Board")
    DISPLAY_TIMEZONE = "Europe/London"

    # Sessions and cookies (RELIABILITY-ANCHORS section 5: Flask-Login's remember cookie is
    # not used at all; session cookies are HttpOnly and SameSite=Lax, Secure in production).
    SESSION_COOKIE_HTTPONLY = True
    SESSION_COOKIE_SAMESITE = "Lax"
    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", False)
    PERMANENT_SESSION_LIFETIME = env_int("SESSION_LIFETIME_SECONDS", 8 * 3600)
    # A session unused for this long ends (0: never), checked on the server (decision 0030).
    SESSION_IDLE_MINUTES = env_int("SESSION_IDLE_MINUTES", 30)
    # Send the session cookie only when the session changed. Refreshing it on every response
    # let a slow response (a stylesheet, the favicon) that was in flight during sign-out put
    # the signed-in cookie back; the lifetime now runs from sign-in (docs/decisions/0003).
    SESSION_REFRESH_EACH_REQUEST = False
    REMEMBER_COOKIE_DURATION = 0
    WTF_CSRF_TIME_LIMIT = 8 * 3600
    MAX_CONTENT_LENGTH = 10 * 1024 * 1024

    # Login throttling: after LOGIN_MAX_FAILURES failures within LOGIN_LOCK_MINUTES the
    # account is locked for LOGIN_LOCK_MINUTES; per address, a rate limit on the form.
    LOGIN_MAX_FAILURES = env_int("LOGIN_MAX_FAILURES", 5)
    LOGIN_LOCK_MINUTES = env_int("LOGIN_LOCK_MINUTES", 15)
    LOGIN_RATE_LIMIT = os.environ.get("LOGIN_RATE_LIMIT", "20 per minute")
    # Failed sign-ins per client address (only refusals count; docs/decisions/0030).
    LOGIN_ADDRESS_FAILURES = os.environ.get("LOGIN_ADDRESS_FAILURES", "10 per 15 minutes")
    RATELIMIT_STORAGE_URI = os.environ.get("RATELIMIT_STORAGE_URI", "memory://")
    RATELIMIT_ENABLED = env_bool("RATELIMIT_ENABLED", True)
    PASSWORD_RESET_HOURS = env_int("PASSWORD_RESET_HOURS", 24)

    # Mail: with no MAIL_SERVER, messages stay in the outbox, readable in the app.
    MAIL_SERVER = os.environ.get("MAIL_SERVER", "")
    MAIL_PORT = env_int("MAIL_PORT", 25)
    MAIL_USE_TLS = env_bool("MAIL_USE_TLS", False)
    MAIL_USE_SSL = env_bool("MAIL_USE_SSL", False)
    MAIL_USERNAME = os.environ.get("MAIL_USERNAME") or None
    MAIL_PASSWORD = os.environ.get("MAIL_PASSWORD") or None
    MAIL_DEFAULT_SENDER = os.environ.get("MAIL_DEFAULT_SENDER", "escalate@localhost")
    # Flask-Mail suppresses sending when TESTING; our tests talk to a real SMTP server.
    MAIL_SUPPRESS_SEND = False
    BASE_URL = os.environ.get("BASE_URL", "http://127.0.0.1:5000")

    # "embedded": BackgroundScheduler in the web process (one-process trial);
    # "off": run `escalate scheduler` as its own process (gunicorn with several workers).
    SCHEDULER_MODE = os.environ.get("SCHEDULER_MODE", "embedded")
    SWEEP_SECONDS = env_int("SWEEP_SECONDS", 60)

    DEMO_MODE = env_bool("DEMO_MODE", False)


class TestConfig(Config):
    """pytest: a database chosen by the test fixtures, no scheduler thread, fast hashing."""

    TESTING = True
    SECRET_KEY = "test-secret-key"  # noqa: S105 - test only
    SQLALCHEMY_DATABASE_URI = os.environ.get("TEST_DATABASE_URL", "sqlite://")
    SCHEDULER_MODE = "off"
    RATELIMIT_ENABLED = False
    MAIL_SERVER = ""
    # Cheap argon2 parameters keep the suite fast; production uses the library defaults.
    # Tests move the clock by hours and days between requests of one signed-in client;
    # tests/security/test_sessions.py switches the idle timeout on.
    SESSION_IDLE_MINUTES = 0
    ARGON2_TIME_COST = 1
    ARGON2_MEMORY_COST = 1024


class ProductionConfig(Config):
    """Production: everything from the environment; refuses to start without a secret."""

    SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", True)
    SCHEDULER_MODE = os.environ.get("SCHEDULER_MODE", "off")

    def __init__(self) -> None:
        secret = os.environ.get("SECRET_KEY", "")
        if len(secret) < 32:
            raise RuntimeError(
                "SECRET_KEY must be set to a random value of at least 32 characters in "
                "production (for example: python -c 'import secrets; print(secrets.token_hex(32))')"
            )
        self.SECRET_KEY = secret
        if "DATABASE_URL" not in os.environ:
            raise RuntimeError("DATABASE_URL must be set in production (PostgreSQL)")


def config_from_env() -> type[Config] | Config:
    """Pick the configuration named by ``ESCALATE_ENV`` (development, production)."""
    name = os.environ.get("ESCALATE_ENV", "development").lower()
    if name == "production":
        return ProductionConfig()
    if name in {"development", "dev", "demo"}:
        return Config
    raise ValueError(f"ESCALATE_ENV must be development or production, not {name!r}")
