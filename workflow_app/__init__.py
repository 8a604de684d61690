"""Escalate: the Flask application factory.

``create_app`` is an ordered list of ``init_app`` calls. It never creates tables or runs
migrations by itself (``escalate db upgrade`` and ``escalate demo`` do that).
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Flask

from config import BASE_DIR, Config

PACKAGE_DIR = Path(__file__).resolve().parent
MIGRATIONS_DIR = PACKAGE_DIR / "migrations"


def create_app(config: object | None = None) -> Flask:
    """Build the application.

    :param config: a config class or object; defaults to the one named by ``ESCALATE_ENV``.
    """
    from config import config_from_env

    app = Flask(
        __name__,
        template_folder=str(BASE_DIR / "templates"),
        static_folder=str(PACKAGE_DIR / "static"),
        instance_path=str(Path(getattr(config, "INSTANCE_PATH", Config.INSTANCE_PATH))),
    )
    app.config.from_object(config if config is not None else config_from_env())
    Path(app.instance_path).mkdir(parents=True, exist_ok=True)

    _init_extensions(app)
    _init_database_events(app)

    from workflow_app.web import register_web

    register_web(app)

    from workflow_app.cli import register_cli

    register_cli(app)

    from workflow_app.scheduling.scheduler import init_scheduler

    init_scheduler(app)
    return app


def _init_extensions(app: Flask) -> None:
    from workflow_app import models  # noqa: F401  (registers every table)
    from workflow_app.extensions import csrf, db, limiter, login_manager, mail, migrate

    db.init_app(app)
    migrate.init_app(app, db, directory=str(MIGRATIONS_DIR), render_as_batch=True)
    csrf.init_app(app)
    mail.init_app(app)
    limiter.init_app(app)
    login_manager.init_app(app)
    login_manager.login_view = "auth.login"
    login_manager.login_message = "Sign in to see this page."
    login_manager.login_message_category = "info"
    login_manager.session_protection = "strong"

    @login_manager.user_loader
    def load_person(session_id: str):
        from workflow_app.models.org import Person

        person_id, _, epoch = session_id.partition(":")
        if not person_id.isdigit() or not epoch.isdigit():
            return None
        # The grants come in the same query: nearly every page asks for the person's roles.
        person = db.session.get(Person, int(person_id), options=[so.joinedload(Person.grants)])
        # A password change, reset or disabling bumps the epoch and ends old sessions.
        if person is None or person.session_epoch != int(epoch) or not person.is_enabled:
            return None
        return person


def _init_database_events(app: Flask) -> None:
    from workflow_app.extensions import db

    with app.app_context():
        engine = db.engine
        if engine.dialect.name == "sqlite":

            @sa.event.listens_for(engine, "connect")
            def _sqlite_pragmas(dbapi_connection, _record) -> None:
                cursor = dbapi_connection.cursor()
                cursor.execute("PRAGMA foreign_keys=ON")
                cursor.execute("PRAGMA busy_timeout=5000")
                # Write-ahead logging: readers never wait for a writer (gunicorn workers and
                # the scheduler share one file), and a commit costs one fsync instead of the
                # rollback journal's three. synchronous stays FULL, so a committed decision
                # survives a power cut (docs/decisions/0038).
                # A read-only file or mount keeps the mode it has.
                with contextlib.suppress(sqlite3.OperationalError):
                    cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=FULL")
                cursor.close()
