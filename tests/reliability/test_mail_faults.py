"""Mail faults (RELIABILITY-ANCHORS section 7, checks 5, 6 and 7), counted at a real SMTP sink.

5. The SMTP server is down while decisions are taken, for an hour of fake time: every
   decision still succeeds, its e-mails wait (spending no attempts on the relay's outage),
   and once the server is back each is delivered exactly once, within two sweeps.
6. Scripted answers: 451 twice then accepted (retried with backoff, delivered once); a
   recipient always refused with 550 (failed at once, flagged on the admin page, never tried
   again); a row whose header cannot be sent fails alone; everything else is delivered.
7. The dispatcher is killed after the server's 250 and before marking the row sent: the
   only duplicates are those crashes, each with the original Message-ID; none without them.
"""

from __future__ import annotations

import random
import signal
from datetime import UTC, date, datetime, timedelta

import pytest
import sqlalchemy as sa
import time_machine

from tests.conftest import PASSWORD, csrf_from, sign_in
from tests.profile import SEED, scaled
from tests.reliability.scheduler_support import SwitchableSMTP, children, deliver_once
from workflow_app.extensions import db
from workflow_app.models.org import Person
from workflow_app.models.outbox import OutboxMessage
from workflow_app.notifications.outbox import queue_email
from workflow_app.notifications.sender import (
    FAULT_KILL_AFTER_SEND,
    STALE_CLAIM,
    deliver_due_messages,
    fault_injection_enabled,
)
from workflow_app.scheduling.jobs import sweep

START = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)  # a Monday


@pytest.fixture
def frozen():
    """A clock that stands still until moved."""
    traveller = time_machine.travel(START, tick=False)
    yield traveller.start()
    traveller.stop()


@pytest.fixture
def sink():
    """A switchable SMTP server on loopback, running."""
    server = SwitchableSMTP()
    server.start()
    yield server
    server.stop()


def mail_app(make_app, sink):
    return make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=sink.port)


def write_messages(person: Person, n: int, prefix: str = "m") -> list[OutboxMessage]:
    messages = [
        queue_email(
            kind="test",
            dedupe_key=f"{prefix}:{i}",
            recipient=person,
            subject=f"Message {prefix}{i}",
            template="password_reset",
            hours=24,
        )
        for i in range(n)
    ]
    db.session.commit()
    return messages


def rows() -> list[OutboxMessage]:
    db.session.expire_all()
    return db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id)).all()


# --- check 5 ----------------------------------------------------------------------------------


def test_decisions_taken_while_smtp_is_down_are_each_delivered_once_after(
    make_app, frozen, sink, create_person, create_unit
):
    from workflow_app.models.cases import Decision
    from workflow_app.models.measures import FinancePosition
    from workflow_app.services.review import run_review

    decisions = scaled(6, 100)
    ceo = create_person("ceo", name="Carys Chief", email="ceo@example.nhs.uk")
    for i in range(decisions):
        lead = create_person("directorate_lead", email=f"lead{i}@example.nhs.uk")
        unit = create_unit(code=f"D{i}", lead=lead, budget_holder_id=lead.id)
        db.session.add(
            FinancePosition(
                unit_id=unit.id,
                period=date(2026, 10, 1),
                ytd_variance=742_310,
                forecast_variance=968_400,
            )
        )
    db.session.commit()
    proposals = run_review(date(2026, 10, 1)).created
    db.session.commit()
    assert len(proposals) == decisions
    proposal_ids = [p.id for p in proposals]

    sink.stop()  # the mail server goes down before the first decision
    app = mail_app(make_app, sink)
    client = app.test_client()
    assert sign_in(client, ceo.email).status_code == 302
    statuses = []
    for n, decision_id in enumerate(proposal_ids):
        page = client.get(f"/decisions/{decision_id}")
        response = client.post(
            f"/decisions/{decision_id}/sign",
            data={
                "csrf_token": csrf_from(page.text),
                "outcome": "approve",
                "reason": "Overspend confirmed at the finance review",
                "password": PASSWORD,
            },
        )
        statuses.append(response.status_code)
        if n % 3 == 2:  # the scheduler keeps sweeping, once a fake minute, while we decide
            frozen.shift(timedelta(minutes=1))
            with app.app_context():
                sweep()
    assert statuses == [302] * decisions
    assert (
        db.session.scalar(
            sa.select(sa.func.count(Decision.id)).where(Decision.status == "approved")
        )
        == decisions
    )

    # An hour of fake time with the server down: a sweep a minute. Full sweeps until every
    # letter has its PDF (20 a sweep) and its e-mails are released; then the dispatcher.
    for _ in range(60):
        frozen.shift(timedelta(minutes=1))
        with app.app_context():
            if "held" in {m.status for m in rows()}:
                sweep()
            else:
                deliver_due_messages()
    waiting = rows()
    assert waiting, "the decisions wrote no e-mails"
    assert {m.status for m in waiting} == {"pending"}  # none lost, none given up
    # The relay's outage spends no message's attempts (an outage of hours never marks the
    # queue failed); the queue waits a minute at a time and the last error says why.
    assert all(m.attempts == 0 for m in waiting)
    assert all(m.next_attempt_at > datetime.now(UTC) for m in waiting)  # waiting for the relay
    assert any("refused" in m.last_error.lower() for m in waiting)
    assert not sink.handler.messages

    sink.start()  # the server is back
    restarted = datetime.now(UTC)
    delivered_at = None
    for minute in range(1, 6 * 60):
        frozen.shift(timedelta(minutes=1))
        with app.app_context():
            deliver_due_messages()
        if {m.status for m in rows()} == {"sent"}:
            delivered_at = minute
            break
    assert delivered_at is not None, "not every e-mail was delivered within 6 fake hours"
    if len(rows()) <= 100:  # one sweep sends up to 100; more take one sweep per hundred
        assert delivered_at <= 2, f"delivered {delivered_at} sweeps after the relay came back"
    sent = rows()
    arrived = sink.handler.message_ids()
    assert arrived == {m.message_id: 1 for m in sent}  # each exactly once, by Message-ID
    print(
        f"\ncheck 5: {decisions} decisions, {len(sent)} e-mails; all delivered "
        f"{delivered_at} fake minutes after the server came back at {restarted:%H:%M}"
    )


# --- check 6 ----------------------------------------------------------------------------------


def test_451_is_retried_550_fails_at_once_and_a_bad_header_fails_alone(
    make_app, frozen, sink, create_person, client, login
):
    admin = create_person("system_admin", email="admin@example.nhs.uk")
    flaky = create_person(email="flaky@example.nhs.uk")
    gone = create_person(email="gone@example.nhs.uk")
    fine = create_person(email="fine@example.nhs.uk")
    write_messages(flaky, 1, "flaky")
    write_messages(gone, 1, "gone")
    write_messages(fine, 3, "fine")
    # A row whose subject carries CR/LF (written by an older version, or straight into the
    # table): it can never be sent as it is.
    bad = queue_email(
        kind="test",
        dedupe_key="bad",
        recipient=fine,
        subject="placeholder",
        template="password_reset",
        hours=24,
    )
    bad.subject = "Hello\r\nBcc: victim@evil.test"
    db.session.commit()
    sink.handler.script["flaky@example.nhs.uk"] = ["451 4.3.0 Busy", "451 4.3.0 Busy"]
    sink.handler.refuse_rcpt.add("gone@example.nhs.uk")
    app = mail_app(make_app, sink)

    def by_address() -> dict[str, list[OutboxMessage]]:
        found: dict[str, list[OutboxMessage]] = {}
        for message in rows():
            key = "bad" if message.dedupe_key == "bad" else message.to_address
            found.setdefault(key, []).append(message)
        return found

    with app.app_context():
        assert deliver_due_messages() == 3  # the three fine ones
    first = by_address()
    assert [m.status for m in first["fine@example.nhs.uk"]] == ["sent"] * 3
    (flaky_row,) = first["flaky@example.nhs.uk"]
    assert (flaky_row.status, flaky_row.attempts) == ("pending", 1)
    assert flaky_row.next_attempt_at > datetime.now(UTC)  # backoff, not at once
    assert "451" in flaky_row.last_error
    (gone_row,) = first["gone@example.nhs.uk"]
    assert (gone_row.status, gone_row.attempts) == ("failed", 1)
    assert "550" in gone_row.last_error
    (bad_row,) = first["bad"]
    assert (bad_row.status, bad_row.attempts) == ("failed", 1)
    assert "BadHeaderError" in bad_row.last_error

    for _ in range(8):  # a few hours of sweeps: the 451s pass, the failures stay failed
        frozen.shift(timedelta(minutes=30))
        with app.app_context():
            deliver_due_messages()
    final = by_address()
    (flaky_row,) = final["flaky@example.nhs.uk"]
    assert (flaky_row.status, flaky_row.attempts) == ("sent", 3)
    assert final["gone@example.nhs.uk"][0].status == "failed"
    assert final["gone@example.nhs.uk"][0].attempts == 1
    assert final["bad"][0].status == "failed"
    assert sink.handler.rcpt_attempts["gone@example.nhs.uk"] == 1  # never tried again
    delivered = [m["to"] for m in sink.handler.messages]
    assert sorted(delivered) == [["fine@example.nhs.uk"]] * 3 + [["flaky@example.nhs.uk"]]
    assert not any("victim@evil.test" in m["data"] for m in sink.handler.messages)

    # The incident is visible to an administrator, with the server's reason.
    login(admin)
    page = client.get("/admin/outbox")
    assert "2 e-mails could not be sent" in page.text
    assert "gone@example.nhs.uk" in page.text
    detail = client.get(f"/admin/outbox/{gone_row.id}")
    assert "550" in detail.text and "No such mailbox" in detail.text


# --- check 7 ----------------------------------------------------------------------------------


def _run_dispatcher(database_url, settings, env, now) -> int:
    process = children().Process(target=deliver_once, args=(database_url, settings, env, now))
    process.start()
    process.join(60)
    assert process.exitcode is not None, "the dispatcher did not finish"
    return process.exitcode


def test_a_crash_after_250_is_the_only_source_of_duplicates(
    app, database_url, sink, create_person, tmp_path
):
    crashes = scaled(3, 20)
    rng = random.Random(SEED)
    settings = {"MAIL_SERVER": "127.0.0.1", "MAIL_PORT": sink.port, "INSTANCE_PATH": tmp_path}
    person = create_person(email="pat@example.nhs.uk")
    write_messages(person, crashes + 2, "c")
    now = datetime.now(UTC)

    # Each crashing dispatcher sends one message, gets 250, and dies before marking it sent.
    for _ in range(crashes):
        exitcode = _run_dispatcher(
            database_url, settings, {FAULT_KILL_AFTER_SEND: "1"}, now + timedelta(seconds=1)
        )
        assert exitcode == -signal.SIGKILL
    in_window = [m for m in rows() if m.status == "sending"]
    assert len(in_window) == crashes
    assert len(sink.handler.messages) == crashes

    # A restart within the claim's lease leaves them alone; after it they are sent again.
    assert _run_dispatcher(database_url, settings, {}, now + timedelta(minutes=1)) == 0
    assert len([m for m in rows() if m.status == "sending"]) == crashes
    later = now + STALE_CLAIM + timedelta(seconds=rng.randint(1, 120))
    assert _run_dispatcher(database_url, settings, {}, later) == 0
    sent = rows()
    assert {m.status for m in sent} == {"sent"}
    arrived = sink.handler.message_ids()
    duplicates = {mid: n for mid, n in arrived.items() if n > 1}
    assert sum(n - 1 for n in duplicates.values()) == crashes
    assert set(duplicates) == {m.message_id for m in in_window}  # the original Message-ID
    assert set(arrived) == {m.message_id for m in sent}

    # Control: the same run without the fault sends every message exactly once.
    write_messages(person, crashes + 2, "control")
    before = len(sink.handler.messages)
    assert _run_dispatcher(database_url, settings, {}, later + timedelta(minutes=1)) == 0
    control = sink.handler.messages[before:]
    assert len(control) == crashes + 2
    assert len({m["message_id"] for m in control}) == crashes + 2


def test_the_crash_hook_cannot_fire_in_production(app, database_url, sink, create_person):
    person = create_person(email="pat@example.nhs.uk")
    (message,) = write_messages(person, 1)
    env = {
        "ESCALATE_ENV": "production",
        "SECRET_KEY": "p" * 40,
        "DATABASE_URL": database_url,
        "MAIL_SERVER": "127.0.0.1",
        "MAIL_PORT": str(sink.port),
        FAULT_KILL_AFTER_SEND: "1",
    }
    # The production app, built from the environment as `escalate scheduler` builds it.
    assert _run_dispatcher(database_url, None, env, datetime.now(UTC)) == 0
    assert rows()[0].status == "sent"
    assert sink.handler.message_ids() == {message.message_id: 1}


def test_the_crash_hook_needs_a_testing_app_outside_production(app, monkeypatch):
    monkeypatch.setenv(FAULT_KILL_AFTER_SEND, "1")
    assert fault_injection_enabled()  # the test app, development environment
    monkeypatch.setenv("ESCALATE_ENV", "production")
    assert not fault_injection_enabled()
    monkeypatch.delenv("ESCALATE_ENV")
    app.testing = False
    assert not fault_injection_enabled()
