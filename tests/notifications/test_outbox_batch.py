"""``queue_emails`` (the batch form of ``queue_email``) and the batched reminder sweep."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
import time_machine

from workflow_app.extensions import db
from workflow_app.models.deadlines import Reminder
from workflow_app.models.outbox import OutboxMessage
from workflow_app.notifications.outbox import Email, queue_email, queue_emails
from workflow_app.scheduling.reminders import process_due_reminders
from workflow_app.services import deadlines as service


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.fixture
def frozen():
    traveller = time_machine.travel(utc(2026, 10, 15, 9, 0), tick=False)
    yield traveller.start()
    traveller.stop()


@pytest.fixture
def deadline(frozen, create_person, create_unit):
    lead = create_person("directorate_lead", name="Lee <Lead>", email="lead@example.nhs.uk")
    unit = create_unit(lead=lead, name="Surgery & Theatres")
    created = service.create_deadline(
        dedupe_key="d",
        kind="recovery_plan_due",
        title='Recovery plan "A" due',
        unit=unit,
        framework="iqpf",
        working_days=10,
    )
    db.session.commit()
    return created


def _reminder_email(deadline, key: str, recipient=None) -> dict:
    reminder = db.session.scalars(
        sa.select(Reminder).where(Reminder.deadline_id == deadline.id).order_by(Reminder.id)
    ).first()
    return {
        "kind": "reminder_before_due",
        "dedupe_key": key,
        "recipient": recipient or deadline.unit.lead,
        "subject": "Reminder:\r\nBcc: x@example.com",
        "template": "reminder",
        "link": f"https://escalate.example/deadlines/{deadline.id}",
        "context": {
            "deadline": deadline,
            "reminder": reminder,
            "due_local": deadline.due_at,
            "is_overdue": False,
        },
    }


def _columns(message: OutboxMessage) -> tuple:
    return (
        message.kind,
        message.recipient_id,
        message.to_address,
        message.subject,
        message.body_text,
        message.body_html,
        message.link,
        message.status,
        message.last_error,
        message.attempts,
    )


def test_a_batch_writes_the_same_message_as_queue_email(app, deadline):
    spec = _reminder_email(deadline, "one")
    single = queue_email(**{k: v for k, v in spec.items() if k != "context"}, **spec["context"])
    assert queue_emails([Email(**{**spec, "dedupe_key": "batch"})]) == {"batch"}
    db.session.commit()
    batch = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.dedupe_key == "batch"))
    assert _columns(batch) == _columns(single)
    assert "Lee &lt;Lead&gt;" in batch.body_html  # autoescaped like render_template
    assert "\n" not in batch.subject and batch.status == "pending"
    assert batch.created_at is not None and batch.next_attempt_at is not None
    assert batch.message_id != single.message_id


def test_a_batch_skips_keys_already_in_the_outbox_and_repeated_keys(app, deadline):
    spec = _reminder_email(deadline, "k1")
    queue_email(**{k: v for k, v in spec.items() if k != "context"}, **spec["context"])
    db.session.commit()
    written = queue_emails(
        [
            Email(**spec),
            Email(**{**spec, "dedupe_key": "k2"}),
            Email(**{**spec, "dedupe_key": "k2"}),
        ]
    )
    db.session.commit()
    assert written == {"k2"}
    assert db.session.scalar(sa.select(sa.func.count(OutboxMessage.id))) == 2
    assert queue_emails([]) == set()


def test_a_bad_address_in_a_batch_is_marked_failed_not_dropped(app, deadline, create_person):
    bad = create_person("directorate_lead", name="Bad", email="a@example.com, b@example.com")
    queue_emails([Email(**_reminder_email(deadline, "bad", recipient=bad))])
    db.session.commit()
    message = db.session.scalar(sa.select(OutboxMessage).where(OutboxMessage.dedupe_key == "bad"))
    assert message.status == "failed" and "not a single valid e-mail address" in message.last_error


def test_a_sweep_in_small_batches_sends_skips_and_claims_each_reminder_once(
    app, frozen, create_person, create_unit
):
    lead = create_person("directorate_lead", name="Lee Lead", email="lead@example.nhs.uk")
    unit = create_unit(lead=lead, name="Surgery")
    deadlines = [
        service.create_deadline(
            dedupe_key=f"d{i}",
            kind="recovery_plan_due",
            title=f"Plan {i}",
            unit=unit,
            framework="iqpf",
            working_days=10,
        )
        for i in range(7)
    ]
    db.session.commit()
    deadlines[0].status = "done"  # its reminders are skipped, not sent
    db.session.commit()
    frozen.move_to(utc(2026, 10, 22, 7, 0))  # 08:00 BST: the 5-day reminders are due
    due = db.session.scalar(
        sa.select(sa.func.count(Reminder.id)).where(
            Reminder.status == "pending", Reminder.send_at <= utc(2026, 10, 22, 7, 0)
        )
    )
    report = process_due_reminders(batch_size=3)
    assert (report.sent, report.skipped) == (due - due // 7, due // 7)
    assert process_due_reminders(batch_size=3).sent == 0  # nothing is claimed twice
    keys = db.session.scalars(sa.select(OutboxMessage.dedupe_key)).all()
    assert len(keys) == len(set(keys)) == report.sent
    sent = db.session.scalars(sa.select(Reminder).where(Reminder.status == "sent")).all()
    assert {f"reminder:{r.id}" for r in sent} == set(keys)
    assert {r.outcome for r in sent} == {"e-mailed"}
    skipped = db.session.scalars(sa.select(Reminder).where(Reminder.status == "skipped")).all()
    assert {r.outcome for r in skipped} == {"deadline done"}
    assert all(r.processed_at is not None for r in sent + skipped)
