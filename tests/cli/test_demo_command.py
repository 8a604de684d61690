"""``escalate demo``: migrates a new database, loads the demo once, prints the sign-ins."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import _make_app
from workflow_app.cli.demo import demo_command
from workflow_app.extensions import db
from workflow_app.models.org import Person, Unit


def test_demo_command_builds_a_new_database_and_prints_one_login_per_role(tmp_path):
    app = _make_app(f"sqlite:///{tmp_path / 'fresh.sqlite3'}")
    runner = app.test_cli_runner()
    first = runner.invoke(demo_command, ["--no-serve"])
    assert first.exit_code == 0, first.output
    for title in (
        "Chief Executive",
        "Executive Director",
        "Directorate lead",
        "Performance team",
        "Committee member",
    ):
        assert title in first.output
    assert "Loading the demo health board" in first.output
    with app.app_context():
        units = db.session.scalar(sa.select(sa.func.count(Unit.id)))
        people = db.session.scalar(sa.select(sa.func.count(Person.id)))
    assert units >= 10

    second = runner.invoke(demo_command, ["--no-serve"])
    assert second.exit_code == 0, second.output
    assert "already loaded" in second.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Person.id))) == people
        db.engine.dispose()
