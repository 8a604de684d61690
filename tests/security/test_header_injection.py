"""Check 21 (RELIABILITY-ANCHORS section 7): e-mail header injection.

Names, subjects and unit names carrying CR/LF, ``%0a`` or ``Bcc:`` are flattened onto one
line before they reach a header; an address that is not one plain address is never sent
(the message is flagged, its cause still happens). What reaches the aiosmtpd sink is
counted there: the envelope recipients and the headers of every message.
"""

from __future__ import annotations

from email import message_from_string

import pytest
import sqlalchemy as sa

from workflow_app.extensions import db

PAYLOADS = [
    "Ward 7\r\nBcc: victim@evil.test",
    "Ward 7\nBcc: victim@evil.test",
    "Ward 7\rCc: victim@evil.test",
    "Ward 7%0aBcc: victim@evil.test",
    "Ward 7%0d%0aTo: victim@evil.test",
    "Ward 7\r\n\r\n<script>body injection</script>",
    "Ward 7\x00\x0bX-Injected: yes",
]
EXPECTED_HEADERS = {
    "subject", "from", "to", "date", "message-id", "mime-version", "content-type",
    "content-transfer-encoding",
}  # fmt: skip


def _app_with_smtp(make_app, smtp_server):
    return make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)


def _queue(person, n: int, subject: str, filename: str = "letter.pdf") -> None:
    from workflow_app.notifications.outbox import queue_email

    queue_email(
        kind="test",
        dedupe_key=f"injection:{person.id}:{n}",
        recipient=person,
        subject=subject,
        template="password_reset",
        link="http://127.0.0.1/x",
        hours=24,
        attachments=[(filename, "application/pdf", b"%PDF-1.4 test")],
    )


def test_hostile_names_and_subjects_reach_the_sink_as_one_message_to_one_recipient(
    make_app, smtp_server
):
    from workflow_app.models.org import Person
    from workflow_app.models.outbox import OutboxMessage
    from workflow_app.notifications.sender import deliver_due_messages

    app = _app_with_smtp(make_app, smtp_server)
    with app.app_context():
        person = Person(name=PAYLOADS[0], email="pat@example.nhs.uk")
        db.session.add(person)
        db.session.commit()
        for n, payload in enumerate(PAYLOADS):
            _queue(person, n, f"Escalation of {payload}", filename=f"{payload}.pdf")
        db.session.commit()
        assert deliver_due_messages() == len(PAYLOADS)
        statuses = db.session.scalars(sa.select(OutboxMessage.status)).all()
    assert statuses == ["sent"] * len(PAYLOADS)
    received = smtp_server.handler.messages
    assert len(received) == len(PAYLOADS)
    for message in received:
        assert message["to"] == ["pat@example.nhs.uk"]  # the envelope: nobody else
        parsed = message_from_string(message["data"])
        names = {key.lower() for key in parsed}
        assert names <= EXPECTED_HEADERS | {"x-peer", "x-mailfrom", "x-rcptto"}, names
        assert parsed.get_all("Bcc") is None and parsed.get_all("Cc") is None
        assert parsed.get_all("X-Injected") is None
        assert parsed["To"] == "pat@example.nhs.uk"
        assert "\n" not in parsed["Subject"] and "\r" not in parsed["Subject"]
        for part in parsed.walk():
            disposition = part.get("Content-Disposition", "")
            assert (
                "\n" not in part.get_filename("")
                and "victim" not in disposition.split("filename")[0]
            )


def test_an_address_that_is_not_one_plain_address_is_never_sent(make_app, smtp_server):
    from workflow_app.models.org import Person
    from workflow_app.models.outbox import OutboxMessage
    from workflow_app.notifications.sender import deliver_due_messages

    app = _app_with_smtp(make_app, smtp_server)
    with app.app_context():
        good = Person(name="Pat", email="pat@example.nhs.uk")
        bad = Person(name="Mallory", email="mal@example.nhs.uk\r\nBcc: victim@evil.test")
        listed = Person(name="Eve", email="eve@example.nhs.uk,victim@evil.test")
        db.session.add_all([good, bad, listed])
        db.session.commit()
        for n, person in enumerate((good, bad, listed)):
            _queue(person, n, "Reminder")
        db.session.commit()
        assert deliver_due_messages() == 1
        rows = {
            m.to_address: m
            for m in db.session.scalars(sa.select(OutboxMessage).order_by(OutboxMessage.id))
        }
        assert rows["pat@example.nhs.uk"].status == "sent"
        for address in (bad.email, listed.email):
            assert rows[address].status == "failed"
            assert "not a single valid e-mail address" in rows[address].last_error
    assert [m["to"] for m in smtp_server.handler.messages] == [["pat@example.nhs.uk"]]


def test_people_cannot_be_created_with_such_an_address(app, create_person):
    from workflow_app.models.org import Person
    from workflow_app.services.accounts import create_person as add_person
    from workflow_app.services.errors import ServiceError

    admin = create_person("system_admin")
    before = db.session.scalar(sa.select(sa.func.count(Person.id)))
    for email in ("a@b.nhs.uk\r\nBcc: v@evil.test", "a@b.nhs.uk, v@evil.test", "Pat <a@b.nhs.uk>"):
        with pytest.raises(ServiceError, match="not an e-mail address"):
            add_person(admin, name="Mallory", email=email)
        db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count(Person.id))) == before


def test_a_unit_name_with_a_line_break_reaches_the_subject_flattened(
    make_app, smtp_server, create_person, create_unit
):
    """Through a real cause: a decision's e-mails name the unit in their subject."""
    from tests.conftest import PASSWORD
    from workflow_app.models.outbox import OutboxMessage
    from workflow_app.notifications.sender import deliver_due_messages
    from workflow_app.services.decisions import decide_proposal, raise_escalation

    ceo = create_person("ceo")
    executive = create_person("executive_director")
    lead = create_person("directorate_lead", name="Lee\r\nBcc: victim@evil.test")
    unit = create_unit(
        lead=lead, name="Surgery\r\nBcc: victim@evil.test", accountable_executive_id=executive.id
    )
    from workflow_app.models.cases import EscalationCase

    case = db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == "performance"
        )
    )
    decision = raise_escalation(executive, case, to_level="2a", reason="RTT", evidence_note="x")
    db.session.commit()
    decide_proposal(executive, decision, outcome="approve", reason="Agreed", password=PASSWORD,
                    meeting_reference="Executive Team, item 1")  # fmt: skip
    db.session.commit()
    subjects = db.session.scalars(sa.select(OutboxMessage.subject)).all()
    assert subjects and all("\n" not in s and "\r" not in s for s in subjects)
    assert any("Surgery Bcc:" in s for s in subjects), subjects
    assert ceo is not None
    app = make_app(MAIL_SERVER="127.0.0.1", MAIL_PORT=smtp_server.port)
    with app.app_context():
        deliver_due_messages()
    for message in smtp_server.handler.messages:
        assert "victim@evil.test" not in message["to"]
        assert message_from_string(message["data"]).get_all("Bcc") is None
