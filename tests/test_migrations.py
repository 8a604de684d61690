"""Migrations: one head, and upgrade/downgrade on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory

from tests.conftest import _make_app, postgres_available, postgres_url, reset_postgres_schema
from workflow_app import MIGRATIONS_DIR
from workflow_app.extensions import db


def test_there_is_exactly_one_head():
    config = AlembicConfig(str(MIGRATIONS_DIR / "alembic.ini"))
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    heads = ScriptDirectory.from_config(config).get_heads()
    assert len(heads) == 1, heads


def _upgrade_downgrade(url: str) -> None:
    from flask_migrate import downgrade, upgrade

    app = _make_app(url)
    with app.app_context():
        upgrade()
        tables = set(sa.inspect(db.engine).get_table_names())
        assert set(db.metadata.tables) <= tables
        downgrade(revision="base")
        left = set(sa.inspect(db.engine).get_table_names()) - {"alembic_version"}
        assert left == set()
        upgrade()
        db.engine.dispose()


def test_upgrade_and_downgrade_on_sqlite(tmp_path):
    _upgrade_downgrade(f"sqlite:///{tmp_path / 'm.sqlite3'}")


def test_upgrade_and_downgrade_on_postgresql(db_kind):
    if db_kind != "postgres":
        pytest.skip("PostgreSQL migration test runs with --db=postgres (it resets the test DB)")
    reason = postgres_available()
    if reason:
        pytest.skip(reason)
    url = postgres_url()
    reset_postgres_schema(url)
    _upgrade_downgrade(url)


def test_models_and_migrations_agree(database_url):
    """Autogenerate finds nothing to add: the migration matches the models."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    app = _make_app(database_url)
    with app.app_context(), db.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), db.metadata)
    assert diff == []
