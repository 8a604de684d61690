"""Shared fixtures: the app on a real database (SQLite or PostgreSQL), clients, factories,
a clock, and an SMTP server on loopback.

Choose the database with ``--db=sqlite`` (default) or ``--db=postgres``; PostgreSQL uses
``TEST_DATABASE_URL`` (default ``postgresql+psycopg://postgres@127.0.0.1:5432/test``).
The schema is built once per run by the real migrations; SQLite tests each get a copy of
the migrated file, PostgreSQL tests truncate every table afterwards.
"""

from __future__ import annotations

import contextvars
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient

from config import TestConfig
from workflow_app import create_app
from workflow_app.extensions import db

DEFAULT_POSTGRES_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--db",
        choices=["sqlite", "postgres"],
        default=os.environ.get("TEST_DB", "sqlite"),
        help="database the suite runs against (default sqlite)",
    )


def pytest_report_header(config: pytest.Config) -> str:
    return f"escalate database: {config.getoption('--db')}"


class IsolatedClient(FlaskClient):
    """A test client whose requests never share the test's own app context.

    Flask reuses an already-pushed app context for a request of the same app, which would
    share ``g`` (and the database session) between requests and with the test. Running each
    request in an empty ``contextvars`` context gives it its own, as in production.
    """

    def open(self, *args, **kwargs):
        return contextvars.Context().run(super().open, *args, **kwargs)


def _make_app(url: str, **overrides) -> Flask:
    class Cfg(TestConfig):
        SQLALCHEMY_DATABASE_URI = url

    for key, value in overrides.items():
        setattr(Cfg, key, value)
    app = create_app(Cfg)
    app.test_client_class = IsolatedClient
    return app


def postgres_url() -> str:
    """The PostgreSQL URL tests use."""
    url = os.environ.get("TEST_DATABASE_URL", DEFAULT_POSTGRES_URL)
    return url.replace("postgresql://", "postgresql+psycopg://", 1)


def postgres_available() -> str | None:
    """None when PostgreSQL answers, else the reason it does not."""
    try:
        engine = sa.create_engine(postgres_url(), connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
    except Exception as error:  # noqa: BLE001 - any failure means "not available"
        return f"PostgreSQL not reachable at {postgres_url()}: {type(error).__name__}"
    return None


def reset_postgres_schema(url: str) -> None:
    """Drop everything in the public schema of the test database."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP SCHEMA public CASCADE"))
        conn.execute(sa.text("CREATE SCHEMA public"))
    engine.dispose()


def migrate_to_head(url: str) -> None:
    """Run the real migrations against ``url``."""
    from flask_migrate import upgrade

    app = _make_app(url)
    with app.app_context():
        upgrade()
        db.engine.dispose()


@pytest.fixture(scope="session")
def db_kind(request: pytest.FixtureRequest) -> str:
    return request.config.getoption("--db")


@pytest.fixture(scope="session")
def migrated_database(db_kind: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    """A database at the migrations' head: a template file (SQLite) or the test DB (PG)."""
    if db_kind == "postgres":
        reason = postgres_available()
        if reason:
            pytest.skip(reason)
        url = postgres_url()
        reset_postgres_schema(url)
        migrate_to_head(url)
        return url
    template = tmp_path_factory.mktemp("db") / "template.sqlite3"
    migrate_to_head(f"sqlite:///{template}")
    return str(template)


def _truncate_all(app: Flask) -> None:
    with app.app_context():
        db.session.remove()
        tables = [t.name for t in db.metadata.sorted_tables]
        with db.engine.begin() as conn:
            conn.execute(sa.text(f"TRUNCATE {', '.join(tables)} RESTART IDENTITY CASCADE"))
        db.engine.dispose()


@pytest.fixture
def database_url(db_kind: str, migrated_database: str, tmp_path: Path) -> str:
    """A fresh, migrated, empty database for one test."""
    if db_kind == "postgres":
        return migrated_database
    target = tmp_path / "test.sqlite3"
    shutil.copyfile(migrated_database, target)
    return f"sqlite:///{target}"


@pytest.fixture
def make_app(database_url: str, db_kind: str) -> Iterator[Callable[..., Flask]]:
    """Build apps on the test database with config overrides; cleaned up afterwards."""
    built: list[Flask] = []

    def factory(**overrides) -> Flask:
        app = _make_app(database_url, **overrides)
        built.append(app)
        return app

    yield factory
    for app in built:
        with app.app_context():
            db.session.remove()
            db.engine.dispose()
    if db_kind == "postgres" and built:
        _truncate_all(built[0])


@pytest.fixture
def app(make_app) -> Iterator[Flask]:
    """The application, with an app context pushed for the test's own queries."""
    application = make_app()
    with application.app_context():
        yield application
        db.session.remove()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


# --- factories ---------------------------------------------------------------------------

PASSWORD = "correct horse battery staple"


@pytest.fixture
def create_person(app: Flask) -> Callable[..., object]:
    """Create a person with roles and a password (``PASSWORD``), committed."""
    from workflow_app.models.org import Person, RoleGrant
    from workflow_app.services.passwords import hash_password

    counter = iter(range(1, 10_000))
    hashed = hash_password(PASSWORD)

    def factory(*roles: str, name: str | None = None, email: str | None = None, password=None):
        n = next(counter)
        person = Person(
            name=name or f"Person {n}",
            email=(email or f"person{n}@example.nhs.uk").lower(),
            password_hash=hash_password(password) if password else hashed,
        )
        person.grants = [RoleGrant(role=role) for role in roles]
        db.session.add(person)
        db.session.commit()
        return person

    return factory


@pytest.fixture
def create_unit(app: Flask, create_person) -> Callable[..., object]:
    """Create a unit (with its level-1 cases), committed."""
    from workflow_app.models.org import Unit
    from workflow_app.services.org import open_cases_for_unit

    counter = iter(range(1, 10_000))

    def factory(*, lead=None, code: str | None = None, framework: str = "iqpf", **values):
        n = next(counter)
        unit = Unit(
            code=code or f"U{n}",
            name=values.pop("name", f"Unit {n}"),
            kind=values.pop("kind", "operational_directorate"),
            framework=framework,
            lead_id=lead.id if lead is not None else None,
            **values,
        )
        db.session.add(unit)
        db.session.flush()
        open_cases_for_unit(unit)
        db.session.commit()
        return unit

    return factory


@pytest.fixture
def create_domain(app: Flask):
    from workflow_app.models.org import Domain

    def factory(code: str = "access_activity", name: str = "Access & Activity"):
        domain = db.session.scalar(sa.select(Domain).where(Domain.code == code))
        if domain is None:
            domain = Domain(code=code, name=name)
            db.session.add(domain)
            db.session.commit()
        return domain

    return factory


# --- signing in --------------------------------------------------------------------------

CSRF_RE = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|value="([^"]+)"[^>]*name="csrf_token"')


def csrf_from(html: str) -> str:
    """The CSRF token in a rendered form."""
    match = CSRF_RE.search(html)
    assert match, "no csrf_token in the page"
    return match.group(1) or match.group(2)


def sign_in(client: FlaskClient, email: str, password: str = PASSWORD, **extra):
    """Sign in through the real form (CSRF included); returns the POST response."""
    page = client.get("/auth/login")
    data = {"email": email, "password": password, "csrf_token": csrf_from(page.text), **extra}
    return client.post("/auth/login", data=data)


@pytest.fixture
def login(client: FlaskClient):
    def do(person, password: str = PASSWORD):
        response = sign_in(client, person.email, password)
        assert response.status_code == 302, response.text
        return client

    return do


# --- clock and SMTP ----------------------------------------------------------------------


@pytest.fixture
def clock():
    """Move time: ``clock.move_to("2026-11-23 09:00")``; starts at 2026-11-23 10:00 UTC."""
    import time_machine

    traveller = time_machine.travel("2026-11-23 10:00:00+00:00", tick=True)
    shift = traveller.start()
    yield shift
    traveller.stop()


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing is listening on right now."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class SMTPCollector:
    """An aiosmtpd handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        with self.lock:
            self.messages.append(
                {
                    "from": envelope.mail_from,
                    "to": list(envelope.rcpt_tos),
                    "data": envelope.content.decode("utf-8", "replace"),
                }
            )
        return "250 OK"


@pytest.fixture
def smtp_server():
    """A real SMTP server on 127.0.0.1 (aiosmtpd); ``.port`` and ``.handler.messages``."""
    from aiosmtpd.controller import Controller

    handler = SMTPCollector()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()
