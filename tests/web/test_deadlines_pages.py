"""Deadline pages: my deadlines, stopping and restarting the clock, marking done; failed e-mails."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from tests.conftest import csrf_from
from workflow_app.extensions import db
from workflow_app.models.deadlines import Deadline
from workflow_app.models.outbox import OutboxMessage
from workflow_app.services.deadlines import create_deadline


def make_deadline(unit, key="x"):
    deadline = create_deadline(
        dedupe_key=key,
        kind="recovery_plan_due",
        title="Recovery plan due",
        unit=unit,
        framework="iqpf",
        working_days=10,
    )
    db.session.commit()
    return deadline


def test_my_deadlines_lists_what_i_own(client, login, create_person, create_unit):
    lead = create_person("directorate_lead")
    unit = create_unit(lead=lead, name="Surgery")
    deadline = make_deadline(unit)
    login(lead)
    page = client.get("/deadlines/")
    assert page.status_code == 200
    assert "Recovery plan due" in page.text
    assert f"/deadlines/{deadline.id}" in page.text
    detail = client.get(f"/deadlines/{deadline.id}")
    assert "Before due" in detail.text or "Before due".lower() in detail.text.lower()
    assert "Stop the clock" not in detail.text  # a lead may not stop the clock
    assert "Mark as done" in detail.text


def test_a_lead_cannot_see_another_units_deadline(client, login, create_person, create_unit):
    lead = create_person("directorate_lead")
    create_unit(lead=lead)
    other = make_deadline(create_unit(name="Medicine"))
    login(lead)
    assert client.get(f"/deadlines/{other.id}").status_code == 404
    assert "Medicine" not in client.get("/deadlines/").text


def test_stopping_the_clock_needs_a_reason_then_works(client, login, create_person, create_unit):
    analyst = create_person("performance_team")
    deadline = make_deadline(create_unit())
    login(analyst)
    page = client.get(f"/deadlines/{deadline.id}")
    empty = client.post(
        f"/deadlines/{deadline.id}/pause",
        data={"csrf_token": csrf_from(page.text), "reason": ""},
        follow_redirects=True,
    )
    assert "Give the reason for stopping the clock" in empty.text
    db.session.expire_all()
    assert db.session.get(Deadline, deadline.id).status == "open"
    stopped = client.post(
        f"/deadlines/{deadline.id}/pause",
        data={
            "csrf_token": csrf_from(page.text),
            "reason": "Waiting for the <b>external</b> review",
        },
        follow_redirects=True,
    )
    assert "The clock is stopped" in stopped.text
    assert "Waiting for the &lt;b&gt;external&lt;/b&gt; review" in stopped.text  # escaped
    db.session.expire_all()
    assert db.session.get(Deadline, deadline.id).status == "paused"
    restarted = client.post(
        f"/deadlines/{deadline.id}/resume",
        data={"csrf_token": csrf_from(page.text)},
        follow_redirects=True,
    )
    assert "The clock has restarted" in restarted.text


def test_marking_done_twice_says_so(client, login, create_person, create_unit):
    lead = create_person("directorate_lead")
    deadline = make_deadline(create_unit(lead=lead))
    login(lead)
    token = csrf_from(client.get(f"/deadlines/{deadline.id}").text)
    first = client.post(
        f"/deadlines/{deadline.id}/complete", data={"csrf_token": token}, follow_redirects=True
    )
    assert "Marked as done" in first.text
    second = client.post(
        f"/deadlines/{deadline.id}/complete", data={"csrf_token": token}, follow_redirects=True
    )
    assert "already done" in second.text


def test_case_page_shows_its_deadlines(client, login, create_person, create_unit):
    from workflow_app.models.cases import EscalationCase

    unit = create_unit()
    case = db.session.scalar(sa.select(EscalationCase).where(EscalationCase.unit_id == unit.id))
    create_deadline(
        dedupe_key="c",
        kind="k",
        title="Monthly update",
        unit=unit,
        framework="iqpf",
        case=case,
        due_at=datetime(2030, 1, 2, 17, tzinfo=UTC),
    )
    db.session.commit()
    login(create_person("ceo"))
    assert "Monthly update" in client.get(f"/cases/{case.id}").text


def test_a_failed_email_is_shown_and_can_be_sent_again(client, login, create_person):
    admin = create_person("system_admin")
    message = OutboxMessage(
        kind="t",
        dedupe_key="t",
        message_id="<t@x>",
        to_address="a@b.nhs.uk",
        subject="Stuck",
        body_text="x",
        status="failed",
        attempts=8,
        last_error="SMTPRecipientsRefused",
    )
    db.session.add(message)
    db.session.commit()
    login(admin)
    listing = client.get("/admin/outbox")
    assert "1 e-mail could not be sent" in listing.text
    page = client.get(f"/admin/outbox/{message.id}")
    assert "SMTPRecipientsRefused" in page.text
    response = client.post(
        f"/admin/outbox/{message.id}/retry",
        data={"csrf_token": csrf_from(page.text)},
        follow_redirects=True,
    )
    assert "will be sent again" in response.text
    db.session.expire_all()
    assert db.session.get(OutboxMessage, message.id).status == "pending"


def test_settings_choose_a_daily_digest(client, login, create_person):
    person = create_person("directorate_lead")
    login(person)
    page = client.get("/auth/settings")
    client.post(
        "/auth/settings", data={"csrf_token": csrf_from(page.text), "notification_mode": "digest"}
    )
    db.session.expire_all()
    from workflow_app.models.org import Person

    assert db.session.get(Person, person.id).notification_mode == "digest"
    bad = client.post(
        "/auth/settings",
        data={"csrf_token": csrf_from(page.text), "notification_mode": "carrier pigeon"},
    )
    assert "Not a valid choice" in bad.text
