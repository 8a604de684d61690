"""``escalate demo``: migrates a new database, loads the demo (with its lived history) once,
prints the sign-ins."""

from __future__ import annotations

import sqlalchemy as sa

from tests.conftest import _make_app
from workflow_app.cli.demo import demo_command
from workflow_app.extensions import db
from workflow_app.models.cases import Decision
from workflow_app.models.letters import Letter
from workflow_app.models.org import Person, Unit
from workflow_app.models.outbox import OutboxMessage


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
        # The history was lived and committed: decided proposals, each approval's letter,
        # nothing pending (the latest month's review is the scheduler's), e-mails sent.
        # Earned autonomy (proposed in the history) changes no level and has no letter.
        statuses = db.session.scalars(
            sa.select(Decision.status).where(Decision.kind != "earned_autonomy")
        ).all()
        letters = db.session.scalar(sa.select(sa.func.count(Letter.id)))
        mail = db.session.execute(
            sa.select(OutboxMessage.status, OutboxMessage.created_at, OutboxMessage.kind)
        ).all()
    assert units >= 10
    assert statuses.count("approved") >= 5
    assert "pending" not in statuses
    assert letters == statuses.count("approved")
    # E-mails about history went out then; only the present's wait to be sent (decision
    # 0014): "please schedule" a meeting that falls due next, and, when a cadence meeting
    # falls due today and the demo is built after its time, that meeting's invitation and
    # minutes (the demo runs on the real clock, so this depends on the day and the hour).
    last_sent = max(created for status, created, _kind in mail if status == "sent")
    assert all(created >= last_sent for status, created, _kind in mail if status != "sent")
    assert {kind for status, _c, kind in mail if status != "sent"} <= {
        "meeting_request",
        "meeting_invitation",
        "meeting_outcome",
    }

    second = runner.invoke(demo_command, ["--no-serve"])
    assert second.exit_code == 0, second.output
    assert "already loaded" in second.output
    with app.app_context():
        assert db.session.scalar(sa.select(sa.func.count(Person.id))) == people
        db.engine.dispose()
