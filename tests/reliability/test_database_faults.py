"""The database misbehaving or misused: a read-only or full SQLite file gives a clear error
page and stores nothing; the application's PostgreSQL role cannot rewrite the audit trail,
a superuser's tampering is reported by ``escalate audit verify``, and concurrent appends
from several processes never fork the chain (RELIABILITY-ANCHORS check 23)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from tests.conftest import csrf_from, sign_in
from tests.profile import scaled
from tests.reliability.conftest import UNTOUCHED, approve_form, decision_state
from tests.reliability.servers import ROOT
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent

APP_ROLE = "escalate_app"


def _sqlite_path(database_url: str) -> Path:
    return Path(sa.engine.make_url(database_url).database)


# --- read-only and full SQLite -------------------------------------------------------------


@pytest.fixture
def sqlite_only(db_kind: str) -> None:
    if db_kind != "sqlite":
        pytest.skip("a read-only or full database file is an SQLite fault")


def _signed_in_session_cookie(app, person) -> str:
    client = app.test_client()
    assert sign_in(client, person.email).status_code == 302
    return client.get_cookie("session").value


def test_a_read_only_database_file_gives_a_clear_error_and_stores_nothing(
    sqlite_only, database_url, make_app, decision_board
):
    board = decision_board(1)
    (decision,) = board.decision_ids
    cookie = _signed_in_session_cookie(make_app(), board.people.exec1)
    # As on a read-only mount: SQLite opens the file but refuses every write.
    read_only = make_app(
        SQLALCHEMY_DATABASE_URI=f"sqlite:///file:{_sqlite_path(database_url)}?mode=ro&uri=true"
    )
    client = read_only.test_client()
    client.set_cookie("session", cookie)
    page = client.get(f"/decisions/{decision}")
    assert page.status_code == 200  # reading still works
    reply = client.post(f"/decisions/{decision}/sign", data=approve_form(csrf_from(page.text)))
    assert reply.status_code == 503
    assert "cannot be written to (the disk is full or read-only)" in reply.text
    assert "Nothing has been changed" in reply.text
    assert decision_state(decision) == UNTOUCHED


def test_a_full_disk_gives_a_clear_error_and_stores_nothing(sqlite_only, make_app, decision_board):
    board = decision_board(1)
    (decision,) = board.decision_ids
    with db.engine.connect() as conn:
        conn.exec_driver_sql("VACUUM")  # no free pages left inside the file either
    cookie = _signed_in_session_cookie(make_app(), board.people.exec1)
    full = make_app()
    with full.app_context():

        @sa.event.listens_for(db.engine, "connect")
        def _no_room_to_grow(dbapi_connection, _record) -> None:
            # The file may not grow by a single page: SQLite's "database or disk is full",
            # exactly what a full disk gives.
            cursor = dbapi_connection.cursor()
            pages = cursor.execute("PRAGMA page_count").fetchone()[0]
            cursor.execute(f"PRAGMA max_page_count = {pages}")
            cursor.close()

    client = full.test_client()
    client.set_cookie("session", cookie)
    page = client.get(f"/decisions/{decision}")
    reply = client.post(f"/decisions/{decision}/sign", data=approve_form(csrf_from(page.text)))
    assert reply.status_code == 503
    assert "cannot be written to (the disk is full or read-only)" in reply.text
    assert decision_state(decision) == UNTOUCHED


# --- check 23: the audit trail's protection ------------------------------------------------


@pytest.fixture
def app_role_url(db_kind: str, database_url: str, app) -> str:
    """The test database as the application's own role: may read and write the tables,
    may only INSERT into the audit trail, owns nothing, is no superuser."""
    if db_kind != "postgres":
        pytest.skip("database roles are PostgreSQL's; SQLite has no users")
    with db.engine.begin() as conn:
        conn.exec_driver_sql(
            f"""DO $$ BEGIN
                IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{APP_ROLE}') THEN
                    CREATE ROLE {APP_ROLE} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;
                END IF;
            END $$"""
        )
        conn.exec_driver_sql(f"GRANT USAGE ON SCHEMA public TO {APP_ROLE}")
        conn.exec_driver_sql(
            f"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {APP_ROLE}"
        )
        conn.exec_driver_sql(f"GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO {APP_ROLE}")
        conn.exec_driver_sql(f"REVOKE UPDATE, DELETE, TRUNCATE ON audit_events FROM {APP_ROLE}")
    url = sa.engine.make_url(database_url).set(username=APP_ROLE)
    yield url.render_as_string(hide_password=False)
    with db.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP OWNED BY {APP_ROLE}")  # its grants in this database


def test_the_application_role_cannot_update_or_delete_audit_rows(
    app_role_url, make_app, decision_board
):
    decision_board(1)  # audited work, done as the superuser who migrated
    as_app = make_app(SQLALCHEMY_DATABASE_URI=app_role_url)
    with as_app.app_context():
        role = db.session.execute(
            sa.text(
                "SELECT rolsuper, (SELECT count(*) FROM pg_class WHERE relowner = r.oid) "
                "FROM pg_roles r WHERE rolname = current_user"
            )
        ).one()
        assert tuple(role) == (False, 0)
        from workflow_app.services.audit import record_event

        record_event("test.appended", object_type="test", object_id=1, summary="as the app")
        db.session.commit()  # appending works
        rows = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
        for statement in (
            "UPDATE audit_events SET summary = 'rewritten'",
            "DELETE FROM audit_events",
        ):
            with pytest.raises(sa.exc.ProgrammingError, match="permission denied"):
                db.session.execute(sa.text(statement))
            db.session.rollback()
        assert db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent)) == rows
        db.session.remove()


def _as_superuser_without_triggers(db_kind: str, statement: str) -> None:
    """What an administrator with full rights can do: switch the guard off and write."""
    with db.engine.begin() as conn:
        if db_kind == "postgres":
            conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        else:
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_update")
            conn.exec_driver_sql("DROP TRIGGER audit_events_no_delete")
        conn.exec_driver_sql(statement)


@pytest.mark.parametrize("tampering", ["edited", "deleted"])
def test_tampering_by_a_superuser_is_reported_with_the_first_broken_event(
    app, db_kind, decision_board, tampering
):
    decision_board(3)
    ids = db.session.scalars(sa.select(AuditEvent.id).order_by(AuditEvent.id)).all()
    assert len(ids) >= 3
    with pytest.raises(sa.exc.DatabaseError, match="append-only|not allowed|audit"):
        db.session.execute(sa.text("UPDATE audit_events SET summary = 'x'"))
    db.session.rollback()
    runner = app.test_cli_runner()
    assert runner.invoke(args=["audit", "verify"]).exit_code == 0

    victim = ids[1]
    if tampering == "edited":
        _as_superuser_without_triggers(
            db_kind, f"UPDATE audit_events SET summary = 'nothing happened' WHERE id = {victim}"
        )
        first_broken = victim
    else:
        _as_superuser_without_triggers(db_kind, f"DELETE FROM audit_events WHERE id = {victim}")
        first_broken = ids[2]  # the event whose predecessor is gone
    db.session.expire_all()
    result = runner.invoke(args=["audit", "verify"])
    assert result.exit_code == 1
    assert f"TAMPERED: event {first_broken} " in result.output


def append_audit_events(database_url: str, threads: int, per_thread: int) -> int:
    """A writer process: ``threads`` threads each appending ``per_thread`` events, retrying
    when a concurrent writer got there first. Prints and returns how many were committed."""
    import threading

    from tests.conftest import _make_app
    from workflow_app.services.audit import record_event

    app = _make_app(database_url)
    committed = []

    def write(thread: int) -> None:
        with app.app_context():
            for n in range(per_thread):
                for _attempt in range(50):
                    try:
                        record_event(
                            "test.concurrent",
                            object_type="test",
                            object_id=f"{thread}-{n}",
                            summary="concurrent append",
                        )
                        db.session.commit()
                        committed.append(1)
                        break
                    except (sa.exc.IntegrityError, sa.exc.OperationalError):
                        db.session.rollback()  # lost the race for the head: nothing stored
            db.session.remove()

    workers = [threading.Thread(target=write, args=(t,)) for t in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    print(json.dumps({"committed": len(committed)}))
    return len(committed)


def test_concurrent_appends_from_three_processes_never_fork_the_chain(app, database_url):
    threads, per_thread = scaled(4, 16), scaled(10, 50)
    script = (
        "import sys; from tests.reliability.test_database_faults import append_audit_events; "
        "append_audit_events(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))"
    )
    writers = [
        subprocess.Popen(  # noqa: S603 - fixed arguments
            [sys.executable, "-c", script, database_url, str(threads), str(per_thread)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    committed = 0
    for writer in writers:
        out, _ = writer.communicate(timeout=240)
        assert writer.returncode == 0
        committed += json.loads(out.strip().splitlines()[-1])["committed"]
    assert committed == 3 * threads * per_thread
    db.session.expire_all()
    rows = db.session.scalar(sa.select(sa.func.count()).select_from(AuditEvent))
    links = db.session.scalar(sa.select(sa.func.count(sa.distinct(AuditEvent.prev_hash))))
    assert rows == links == committed  # every event has its own predecessor: no fork
    assert app.test_cli_runner().invoke(args=["audit", "verify"]).exit_code == 0
