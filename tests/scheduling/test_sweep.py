"""The sweep: concurrency, SMTP outages, the monthly review, level-driven cadence."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from tests.conftest import free_port
from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase
from workflow_app.models.deadlines import Deadline, JobRun, Reminder
from workflow_app.models.outbox import OutboxMessage
from workflow_app.notifications.sender import deliver_due_messages
from workflow_app.scheduling.jobs import sweep
from workflow_app.scheduling.reminders import process_due_reminders
from workflow_app.services import deadlines as service
from workflow_app.services.cadence import replan_cadence


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def many_deadlines(unit, n: int) -> None:
    for i in range(n):
        service.create_deadline(
            dedupe_key=f"d{i}",
            kind="update_due",
            title=f"Update {i}",
            unit=unit,
            framework="iqpf",
            working_days=10,
        )
    db.session.commit()


def test_concurrent_sweeps_write_each_email_once(app, frozen, people_and_unit):
    lead, executive, unit = people_and_unit
    many_deadlines(unit, 30)
    frozen.move_to(utc(2026, 11, 5, 12, 0))  # every reminder of every deadline is due
    due = db.session.scalar(sa.select(sa.func.count(Reminder.id)))
    errors = []

    def run() -> None:
        with app.app_context():
            try:
                process_due_reminders(batch_size=20)
            except sa.exc.OperationalError as error:  # SQLite: "database is locked"
                errors.append(error)
                db.session.rollback()
            db.session.remove()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    process_due_reminders()  # whatever a locked-out sweep left is picked up next tick
    db.session.expire_all()
    keys = db.session.scalars(sa.select(OutboxMessage.dedupe_key)).all()
    assert len(keys) == due == 150
    assert len(set(keys)) == len(keys)
    assert set(db.session.scalars(sa.select(Reminder.status))) == {"sent"}
    if db.engine.dialect.name == "postgresql":
        assert not errors  # SKIP LOCKED: the sweeps share the work without waiting


def test_smtp_down_then_up_delivers_every_email_once(make_app, frozen, smtp_server):
    from aiosmtpd.controller import Controller

    from tests.conftest import SMTPCollector

    port = free_port()
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    with app.app_context():
        from workflow_app.models.org import Person
        from workflow_app.notifications.outbox import queue_email

        person = Person(name="Pat", email="pat@example.nhs.uk")
        db.session.add(person)
        db.session.commit()
        for i in range(5):
            queue_email(
                kind="t",
                dedupe_key=f"t{i}",
                recipient=person,
                subject=f"S{i}",
                template="password_reset",
                hours=1,
            )
        db.session.commit()
        assert deliver_due_messages() == 0  # nothing listens: all fail, none lost
        assert set(db.session.scalars(sa.select(OutboxMessage.status))) == {"pending"}

        handler = SMTPCollector()
        server = Controller(handler, hostname="127.0.0.1", port=port)
        server.start()
        try:
            assert deliver_due_messages() == 0  # backing off: not yet
            frozen.shift(timedelta(hours=1))  # an hour of fake time later
            assert deliver_due_messages() == 5
            assert deliver_due_messages() == 0
        finally:
            server.stop()
        assert sorted(m["data"].split("Subject: ")[1][:2] for m in handler.messages) == [
            "S0",
            "S1",
            "S2",
            "S3",
            "S4",
        ]
        rows = db.session.scalars(sa.select(OutboxMessage)).all()
        assert {r.status for r in rows} == {"sent"}
        # The relay's outage spent no attempt: each message was offered once, and sent.
        assert {r.attempts for r in rows} == {1}


def _queue_one_message() -> None:
    """One e-mail to one person, committed (inside an app context)."""
    from workflow_app.models.org import Person
    from workflow_app.notifications.outbox import queue_email

    person = Person(name="Pat", email="pat@example.nhs.uk")
    db.session.add(person)
    db.session.commit()
    queue_email(
        kind="t", dedupe_key="t", recipient=person, subject="S", template="password_reset", hours=1
    )
    db.session.commit()


class AlwaysLater:
    """An aiosmtpd handler that answers every recipient "451 try again later"."""

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        return "451 4.3.0 Try again later"


def test_after_repeated_temporary_refusals_a_message_is_marked_failed(make_app, frozen):
    from aiosmtpd.controller import Controller

    from workflow_app.notifications.sender import MAX_ATTEMPTS

    port = free_port()
    server = Controller(AlwaysLater(), hostname="127.0.0.1", port=port)
    server.start()
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=port)
    try:
        with app.app_context():
            _queue_one_message()
            for _ in range(MAX_ATTEMPTS):
                deliver_due_messages()
                frozen.shift(timedelta(hours=5))
            message = db.session.scalar(sa.select(OutboxMessage))
            assert message.status == "failed"
            assert message.attempts == MAX_ATTEMPTS
            assert "451" in message.last_error
    finally:
        server.stop()


def test_an_unreachable_relay_never_marks_the_queue_failed(make_app, frozen):
    from workflow_app.notifications.sender import MAX_ATTEMPTS

    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port())  # nothing listens
    with app.app_context():
        _queue_one_message()
        for _ in range(MAX_ATTEMPTS * 3):  # far longer than the attempts would last
            deliver_due_messages()
            frozen.shift(timedelta(hours=5))
        message = db.session.scalar(sa.select(OutboxMessage))
        assert (message.status, message.attempts) == ("pending", 0)


def test_the_monthly_review_runs_once_on_its_working_day(frozen, create_person, create_unit):
    analyst = create_person("performance_team", email="analyst@example.nhs.uk")
    create_unit(name="Surgery")
    # October 2026's review: 10th working day after 31 Oct = Fri 13 Nov, at 08:00 GMT.
    frozen.move_to(utc(2026, 11, 13, 7, 59))
    assert sweep().monthly_review == ""
    frozen.move_to(utc(2026, 11, 13, 8, 0))
    assert sweep().monthly_review == "2026-10"
    assert sweep().monthly_review == ""
    frozen.move_to(utc(2026, 11, 30, 8, 0))  # later in the month: still not again
    assert sweep().monthly_review == ""
    runs = db.session.scalars(sa.select(JobRun).where(JobRun.job == "monthly_review")).all()
    assert [r.period_key for r in runs] == ["2026-10"]
    message = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "monthly_review")
    )
    assert message.to_address == analyst.email
    assert "October 2026" in message.subject
    assert "Surgery" in message.body_text  # its return (no data) is listed as incomplete


def test_the_monthly_review_catches_up_after_an_outage(frozen, create_person, create_unit):
    create_person("performance_team")
    create_unit()
    frozen.move_to(utc(2026, 11, 13, 9, 0))
    assert sweep().monthly_review == "2026-10"
    frozen.move_to(utc(2027, 1, 20, 12, 0))  # nothing ran from mid November to now
    # November's review (due 14 Dec) and December's (due 15 Jan) each run once, in order.
    assert sweep().monthly_review == "2026-11"
    assert sweep().monthly_review == "2026-12"
    assert sweep().monthly_review == ""


def test_a_new_installation_does_not_review_history(frozen, create_person, create_unit):
    create_person("performance_team")
    create_unit()
    frozen.move_to(utc(2026, 12, 2, 12, 0))  # installed after October's review date
    assert sweep().monthly_review == ""
    frozen.move_to(utc(2026, 12, 14, 8, 0))  # November's: the 10th working day after 30 Nov
    assert sweep().monthly_review == "2026-11"


def level(case: EscalationCase, to: str, when: datetime) -> None:
    case.level = to
    case.level_since = when
    db.session.flush()


def test_changing_level_replans_the_cadence(frozen, people_and_unit):
    lead, executive, unit = people_and_unit
    case = db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == "performance"
        )
    )
    assert replan_cadence(case).created == []  # Level 1 has no cadence of its own
    level(case, "2a", utc(2026, 10, 15, 9, 0))
    plan = replan_cadence(case)
    db.session.commit()
    assert [(d.title, d.due_at) for d in plan.created] == [
        ("Monthly update to the Executive Committee", utc(2026, 11, 16, 17, 0)),  # 15 Nov: Sun
        ("Monthly update to the Executive Committee", utc(2026, 12, 15, 17, 0)),
    ]
    assert replan_cadence(case).created == []  # idempotent

    frozen.move_to(utc(2026, 11, 2, 10, 0))
    level(case, "3", utc(2026, 11, 2, 10, 0))
    plan = replan_cadence(case)
    db.session.commit()
    assert len(plan.cancelled) == 2
    assert sorted({d.title for d in plan.created}) == [
        "Monthly update to the Executive Committee",
        "Monthly update to the relevant committee",
    ]
    level(case, "2a", utc(2026, 12, 1, 10, 0))
    frozen.move_to(utc(2026, 12, 1, 10, 0))
    plan = replan_cadence(case)
    db.session.commit()
    assert len(plan.cancelled) == 4
    live = db.session.scalars(
        sa.select(Deadline).where(Deadline.status == "open", Deadline.case_id == case.id)
    ).all()
    assert {d.title for d in live} == {"Monthly update to the Executive Committee"}
    cancelled = db.session.scalars(sa.select(Deadline).where(Deadline.status == "cancelled")).all()
    assert all("level changed" in d.cancelled_reason for d in cancelled)
    # No reminder of a cancelled occurrence is ever sent.
    frozen.move_to(utc(2027, 2, 1, 10, 0))
    process_due_reminders()
    sent_for = db.session.scalars(
        sa.select(Reminder.deadline_id).where(Reminder.status == "sent")
    ).all()
    assert not set(sent_for) & {d.id for d in cancelled}


def test_nhs_wales_review_cadence_follows_the_level(frozen, create_unit):
    unit = create_unit(framework="nhs_wales", kind="organisation")
    case = db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == "quality"
        )
    )
    level(case, "4", utc(2026, 10, 15, 9, 0))
    plan = replan_cadence(case)
    reviews = [d.due_at.date() for d in plan.created if d.title == "CEO / Executive review"]
    assert reviews == [datetime(2026, 12, 15).date(), datetime(2027, 2, 15).date()]  # 2-monthly
