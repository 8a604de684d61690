"""The demo health board, loaded once for the reports package (it costs a few seconds).

Its history runs to October 2026 and the clock stands at 23 November 2026; the October review
has run (as the scheduler runs it, on 13 November), so its proposals await decision and
the performance team has had its e-mail. Tests
that change data do so only in months the content checks do not read (June and August 2026).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
import sqlalchemy as sa
import time_machine
from flask import Flask

from tests.conftest import _make_app, _truncate_all, sign_in
from workflow_app.demo import demo_logins, load_demo
from workflow_app.extensions import db
from workflow_app.models.org import Person

TODAY = date(2026, 11, 23)
NOW = "2026-11-23 10:00:00+00:00"
OCT = date(2026, 10, 1)
SEP = date(2026, 9, 1)
OCTOBER_REVIEW_AT = datetime(2026, 11, 13, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="package")
def demo_app(db_kind, migrated_database, tmp_path_factory) -> Iterator[Flask]:
    from workflow_app.scheduling.monthly_review import run_monthly_review

    traveller = time_machine.travel(NOW, tick=True)
    traveller.start()
    if db_kind == "postgres":
        url = migrated_database
    else:
        path = tmp_path_factory.mktemp("reports") / "demo.sqlite3"
        shutil.copyfile(migrated_database, path)
        url = f"sqlite:///{path}"
    app = _make_app(url)
    with app.app_context():
        load_demo(today=TODAY)
        db.session.commit()
        assert run_monthly_review(OCT, now=OCTOBER_REVIEW_AT) is not None
        db.session.commit()
        db.session.remove()
    yield app
    with app.app_context():
        db.session.remove()
        db.engine.dispose()
    if db_kind == "postgres":
        _truncate_all(app)
    traveller.stop()


@pytest.fixture
def demo(demo_app) -> Iterator[Flask]:
    """The demo app with an app context pushed for the test's own queries."""
    with demo_app.app_context():
        yield demo_app
        db.session.remove()


@pytest.fixture
def person_with_role(demo):
    """The demo person who holds ``role``."""

    def find(role: str) -> Person:
        (login,) = [entry for entry in demo_logins() if entry.role == role]
        return db.session.scalar(sa.select(Person).where(Person.email == login.email))

    return find


@pytest.fixture
def client_as(demo_app):
    """A test client signed in as the demo person with ``role``."""

    def make(role: str):
        (login,) = [entry for entry in demo_logins() if entry.role == role]
        client = demo_app.test_client()
        response = sign_in(client, login.email, login.password)
        assert response.status_code == 302, role
        return client

    return make
