"""The outbox sender against a real SMTP server on loopback (aiosmtpd)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from workflow_app.extensions import db
from workflow_app.models.outbox import OutboxMessage
from workflow_app.notifications.outbox import queue_email
from workflow_app.notifications.sender import deliver_due_messages


def write_messages(person, n: int) -> None:
    for i in range(n):
        queue_email(
            kind="test",
            dedupe_key=f"test:{i}",
            recipient=person,
            subject=f"Message {i}\r\nBcc: victim@example.com",
            template="password_reset",
            link="http://127.0.0.1/x",
            hours=24,
        )
    db.session.commit()


def test_without_a_mail_server_messages_stay_in_the_outbox(app, create_person):
    write_messages(create_person(), 2)
    assert deliver_due_messages() == 0
    assert db.session.scalars(sa.select(OutboxMessage.status)).all() == ["pending", "pending"]


def test_the_same_cause_writes_one_message(app, create_person):
    person = create_person()
    write_messages(person, 1)
    write_messages(person, 1)
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 1


def test_messages_are_delivered_once_with_a_stable_message_id(make_app, smtp_server):
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    with app.app_context():
        from workflow_app.models.org import Person

        person = Person(name="Pat", email="pat@example.nhs.uk")
        db.session.add(person)
        db.session.commit()
        write_messages(person, 3)
        assert deliver_due_messages() == 3
        assert deliver_due_messages() == 0
        rows = db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()
        assert [r.status for r in rows] == ["sent"] * 3
    received = smtp_server.handler.messages
    assert len(received) == 3
    assert all(m["to"] == ["pat@example.nhs.uk"] for m in received)
    assert rows[0].message_id in received[0]["data"]
    # The subject's CR/LF was flattened: no injected Bcc header.
    assert "\nBcc:" not in received[0]["data"]


def test_concurrent_sweeps_send_each_message_once(make_app, smtp_server):
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    with app.app_context():
        from workflow_app.models.org import Person

        person = Person(name="Pat", email="pat@example.nhs.uk")
        db.session.add(person)
        db.session.commit()
        write_messages(person, 12)

    def sweep() -> None:
        with app.app_context():
            try:
                deliver_due_messages()
            except sa.exc.OperationalError:
                db.session.rollback()  # SQLite "database is locked": the other sweep has it
            db.session.remove()

    threads = [threading.Thread(target=sweep) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with app.app_context():
        deliver_due_messages()  # a later sweep picks up anything a locked sweep skipped
        statuses = db.session.scalars(sa.select(OutboxMessage.status)).all()
    assert statuses == ["sent"] * 12
    assert len(smtp_server.handler.messages) == 12


def test_an_unreachable_server_leaves_messages_pending_with_the_error(make_app, clock):
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=1)  # nothing listens on port 1
    with app.app_context():
        from workflow_app.models.org import Person

        person = Person(name="Pat", email="pat@example.nhs.uk")
        db.session.add(person)
        db.session.commit()
        write_messages(person, 1)
        assert deliver_due_messages() == 0
        message = db.session.scalar(sa.select(OutboxMessage))
        assert message.status == "pending"
        assert message.attempts == 0  # the relay's outage is not the message's attempt
        assert "Connection" in message.last_error or "refused" in message.last_error.lower()
        assert message.next_attempt_at > message.created_at
        assert deliver_due_messages() == 0  # the queue waits for the relay: not at once
        assert db.session.scalar(sa.select(OutboxMessage.attempts)) == 0


def test_a_calendar_invitation_travels_as_a_text_calendar_attachment(make_app, smtp_server):
    from datetime import UTC, datetime

    from workflow_app.notifications.ical import meeting_invitation

    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    with app.app_context():
        from workflow_app.models.org import Person

        person = Person(name="Pat", email="pat@example.nhs.uk")
        db.session.add(person)
        db.session.commit()
        start = datetime(2026, 12, 3, 10, 0, tzinfo=UTC)
        ics = meeting_invitation(
            uid="meeting-42@escalate",
            sequence=0,
            title="Budget Review Meeting",
            description="Level 2b",
            location="Board room",
            starts_at=start,
            ends_at=start.replace(hour=11),
            organiser_email="ceo@example.nhs.uk",
            organiser_name="CEO",
            attendees=[("pat@example.nhs.uk", "Pat")],
            stamp=start,
        )
        queue_email(
            kind="invite",
            dedupe_key="invite:42:0",
            recipient=person,
            subject="Invitation: Budget Review Meeting",
            template="password_reset",
            hours=1,
            attachments=[("invite.ics", "text/calendar; method=REQUEST", ics)],
        )
        db.session.commit()
        assert deliver_due_messages() == 1
    data = smtp_server.handler.messages[0]["data"]
    assert "Content-Type: text/calendar; method=REQUEST" in data
    assert 'filename="invite.ics"' in data or "filename=invite.ics" in data


class SessionCountingCollector:
    """Keeps accepted messages and counts SMTP sessions (one EHLO each)."""

    def __init__(self) -> None:
        self.messages = 0
        self.sessions = 0

    async def handle_EHLO(self, server, session, envelope, hostname, responses):  # noqa: N802
        self.sessions += 1
        session.host_name = hostname
        return responses

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
        self.messages += 1
        return "250 OK"


@pytest.fixture
def counting_smtp_server():
    """A real SMTP server on 127.0.0.1 that counts sessions as well as messages."""
    from aiosmtpd.controller import Controller

    from tests.conftest import free_port

    controller = Controller(SessionCountingCollector(), hostname="127.0.0.1", port=free_port())
    controller.start()
    yield controller
    controller.stop()


def queue_for_pat(app, n: int) -> None:
    """``n`` messages to one person, committed, in ``app``'s database."""
    from workflow_app.models.org import Person

    person = Person(name="Pat", email="pat@example.nhs.uk")
    db.session.add(person)
    db.session.commit()
    write_messages(person, n)


def test_a_morning_queue_goes_out_in_one_run_over_one_smtp_session(make_app, counting_smtp_server):
    # 10,000 reminders fall due at 08:00: they must not leave 100 a minute over 100 minutes.
    server = counting_smtp_server
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=server.port)
    with app.app_context():
        queue_for_pat(app, 250)
        assert deliver_due_messages(limit=100) == 250
        assert deliver_due_messages(limit=100) == 0
        statuses = db.session.scalars(sa.select(OutboxMessage.status)).all()
    assert statuses == ["sent"] * 250
    assert (server.handler.messages, server.handler.sessions) == (250, 1)


def test_a_run_stops_taking_batches_when_its_time_is_up_and_the_next_carries_on(
    make_app, counting_smtp_server
):
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=counting_smtp_server.port)
    with app.app_context():
        queue_for_pat(app, 25)
        assert deliver_due_messages(limit=10, budget_seconds=0) == 10
        assert deliver_due_messages(limit=10, budget_seconds=0) == 10
        assert deliver_due_messages(limit=10) == 5
    assert counting_smtp_server.handler.messages == 25


def test_with_the_relay_down_no_message_spends_an_attempt_and_each_says_why(make_app):
    from tests.conftest import free_port

    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=free_port())  # nothing listens there
    with app.app_context():
        queue_for_pat(app, 3)
        assert deliver_due_messages() == 0
        rows = db.session.scalars(sa.select(OutboxMessage)).all()
    assert [(r.status, r.attempts) for r in rows] == [("pending", 0)] * 3
    assert all(r.last_error.startswith("Mail relay unreachable: ") for r in rows)
