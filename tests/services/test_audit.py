"""The hash-chained audit trail: appends, verification, tamper detection."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from workflow_app.cli.audit import audit_cli
from workflow_app.extensions import db
from workflow_app.models.audit import GENESIS_HASH, AuditEvent
from workflow_app.services.audit import record_event, verify_chain


def append(n: int, actor=None) -> None:
    for i in range(n):
        record_event(
            "test.event",
            object_type="thing",
            object_id=i,
            summary=f"event {i}",
            actor=actor,
            details={"i": i, "note": "naïve café"},
        )
    db.session.commit()


def drop_append_only_guard() -> None:
    """What an attacker with DDL rights would do first (the guard is the migration's)."""
    if db.engine.dialect.name == "postgresql":
        db.session.execute(
            sa.text("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change")
        )
    else:
        db.session.execute(sa.text("DROP TRIGGER audit_events_no_update"))
        db.session.execute(sa.text("DROP TRIGGER audit_events_no_delete"))
    db.session.commit()


def test_an_untouched_chain_verifies(app, create_person):
    append(5, actor=create_person("ceo"))
    report = verify_chain()
    assert report.ok
    assert report.checked == 5
    events = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)).all()
    assert events[0].prev_hash == GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in zip(events, events[1:], strict=False))


def test_the_database_refuses_to_change_or_delete_audit_rows(app):
    append(2)
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        db.session.execute(sa.text("UPDATE audit_events SET summary = 'changed'"))
        db.session.flush()
    db.session.rollback()
    with pytest.raises(sa.exc.DatabaseError, match="append-only"):
        db.session.execute(sa.text("DELETE FROM audit_events"))
        db.session.flush()
    db.session.rollback()
    assert verify_chain().ok


def test_a_changed_row_is_detected(app):
    append(4)
    drop_append_only_guard()
    target = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)).all()[2]
    db.session.execute(
        sa.update(AuditEvent).where(AuditEvent.id == target.id).values(summary="nothing happened")
    )
    db.session.commit()
    report = verify_chain()
    assert not report.ok
    assert report.first_bad_id == target.id
    assert report.checked == 2
    assert "changed after it was written" in report.problem


def test_a_removed_row_is_detected(app):
    append(4)
    drop_append_only_guard()
    target = db.session.scalars(sa.select(AuditEvent).order_by(AuditEvent.id)).all()[1]
    db.session.execute(sa.delete(AuditEvent).where(AuditEvent.id == target.id))
    db.session.commit()
    report = verify_chain()
    assert not report.ok
    assert "chain is broken" in report.problem


def test_a_second_append_on_the_same_head_cannot_fork_the_chain(app):
    append(1)
    head = db.session.scalar(sa.select(AuditEvent).order_by(AuditEvent.id.desc()))
    fork = AuditEvent(
        occurred_at=head.occurred_at,
        action="fork",
        object_type="x",
        object_id="1",
        summary="fork",
        details="{}",
        prev_hash=head.prev_hash,
        hash="f" * 64,
    )
    db.session.add(fork)
    with pytest.raises(sa.exc.IntegrityError):
        db.session.flush()
    db.session.rollback()


def test_cli_verify_reports_ok_and_tampering(app):
    append(3)
    runner = app.test_cli_runner()
    ok = runner.invoke(audit_cli, ["verify"])
    assert ok.exit_code == 0, ok.output
    assert "3 audit events, chain intact" in ok.output
    drop_append_only_guard()
    db.session.execute(sa.update(AuditEvent).where(AuditEvent.id == 2).values(action="x"))
    db.session.commit()
    bad = runner.invoke(audit_cli, ["verify"])
    assert bad.exit_code == 1
    assert "TAMPERED" in bad.output


def test_concurrent_appends_never_fork_the_chain(app):
    """Writers in several threads: every committed append is in one unbroken chain.

    PostgreSQL queues them on the advisory lock, so all succeed. SQLite allows one writer;
    a writer that loses may fail cleanly ("database is locked") and then wrote nothing.
    """
    committed, failed = [], []

    def writer(n: int) -> None:
        with app.app_context():
            for i in range(5):
                try:
                    record_event("race", object_type="t", object_id=f"{n}-{i}", summary="race")
                    db.session.commit()
                    committed.append((n, i))
                except (sa.exc.OperationalError, sa.exc.IntegrityError):
                    db.session.rollback()
                    failed.append((n, i))
            db.session.remove()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    db.session.expire_all()
    report = verify_chain()
    assert report.ok, report.problem
    assert report.checked == len(committed)
    assert len(committed) + len(failed) == 20
    if db.engine.dialect.name == "postgresql":
        assert not failed


def test_an_event_rolled_back_with_its_savepoint_leaves_no_gap_in_the_chain(app):
    """The chain head remembered within a transaction (decision 0034) is forgotten when a
    savepoint holding an event rolls back, so the next event chains onto what was kept."""
    record_event("kept", object_type="t", object_id=1, summary="kept")
    savepoint = db.session.begin_nested()
    record_event("dropped", object_type="t", object_id=2, summary="dropped")
    db.session.flush()
    savepoint.rollback()
    record_event("after", object_type="t", object_id=3, summary="after")
    db.session.commit()
    actions = db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["kept", "after"]
    report = verify_chain()
    assert report.ok, report.problem
