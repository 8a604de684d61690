"""Issuing, reissuing and verifying stored letters; the database keeps them immutable."""

from __future__ import annotations

import hashlib
import json

import pytest
import sqlalchemy as sa

from tests.letters.conftest import DUE
from workflow_app.extensions import db
from workflow_app.letters import (
    LetterAlreadyIssued,
    LetterAlreadySuperseded,
    UnknownLetterKind,
    issue_letter,
    reissue_letter,
    verify_letter,
)
from workflow_app.models.audit import AuditEvent
from workflow_app.models.letters import Letter
from workflow_app.services.audit import verify_chain


def issue(decision, people, kind="escalation_2a", **kwargs):
    letter = issue_letter(
        case=decision.case,
        decision=decision,
        kind=kind,
        issued_by=people["ceo"],
        response_due_at=DUE,
        **kwargs,
    )
    db.session.commit()
    return letter


def test_issue_stores_the_html_with_its_hash_and_an_audit_event(app, make_decision, people):
    decision = make_decision()
    letter = issue(decision, people)
    assert letter.version == 1
    assert letter.kind == "escalation_2a"
    assert letter.decision_id == decision.id
    assert letter.reference.startswith(f"ESC/{decision.case.unit.code}/")
    assert letter.reference.endswith("/1")
    assert letter.reference in letter.html
    assert letter.html_sha256 == hashlib.sha256(letter.html.encode()).hexdigest()
    assert letter.pdf is None and letter.pdf_sha256 is None
    recipients = json.loads(letter.recipients)
    assert [p["name"] for p in recipients["to"]] == ["Lee Lead"]
    assert [p["name"] for p in recipients["cc"]] == ["Eve Executive", "Bea Budget"]
    assert verify_letter(letter)
    event = db.session.scalar(sa.select(AuditEvent).where(AuditEvent.action == "letter.issued"))
    assert event.object_id == str(letter.id)
    assert json.loads(event.details)["html_sha256"] == letter.html_sha256
    assert verify_chain().ok


def test_references_count_up_within_the_unit_and_month(app, make_decision, people):
    first = make_decision()
    letter_a = issue(first, people)
    letter_b = issue(first, people, kind="escalation_3")
    assert letter_a.reference.endswith("/1")
    assert letter_b.reference.endswith("/2")


def test_a_second_letter_for_the_same_decision_and_kind_is_refused(app, make_decision, people):
    decision = make_decision()
    issue(decision, people)
    with pytest.raises(LetterAlreadyIssued, match="reissue"):
        issue_letter(case=decision.case, decision=decision, kind="escalation_2a", issued_by=None)


def test_unknown_kind_issues_nothing(app, make_decision, people):
    decision = make_decision()
    with pytest.raises(UnknownLetterKind):
        issue_letter(case=decision.case, decision=decision, kind="bogus", issued_by=None)
    db.session.rollback()
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Letter)) == 0


def test_a_letter_without_a_decision_shows_who_issued_it(app, make_decision, people):
    decision = make_decision()
    letter = issue_letter(
        case=decision.case,
        decision=None,
        kind="chair_letter",
        issued_by=people["ceo"],
        context_extra={
            "review": {"date": "20 November 2026"},
            "actions": [{"action": "Validate the waiting list", "owner": "Lee Lead", "due": "Jan"}],
        },
    )
    db.session.commit()
    assert letter.decision_id is None
    assert "Carol Chief" in letter.html
    assert "held on 20 November 2026" in letter.html
    assert "Validate the waiting list" in letter.html
    assert "5.5.3" in letter.html


def test_reissue_creates_version_2_and_links_the_old_one(app, make_decision, people):
    decision = make_decision()
    old = issue(decision, people)
    new = reissue_letter(old, issued_by=people["ceo"], reason="Deadline corrected <b>now</b>")
    db.session.commit()
    assert new.version == 2
    assert new.reference == f"{old.reference}/v2"
    assert old.superseded_by_id == new.id
    assert not old.is_current and new.is_current
    assert f"replaces our letter {old.reference}" in new.html
    assert "Deadline corrected &lt;b&gt;now&lt;/b&gt;" in new.html
    assert verify_letter(old) and verify_letter(new)
    with pytest.raises(LetterAlreadySuperseded):
        reissue_letter(old, issued_by=people["ceo"], reason="again")
    third = reissue_letter(new, issued_by=people["ceo"], reason="again")
    db.session.commit()
    assert third.version == 3
    assert third.reference == f"{old.reference}/v3"
    actions = db.session.scalars(sa.select(AuditEvent.action).order_by(AuditEvent.id)).all()
    assert actions == ["letter.issued", "letter.reissued", "letter.reissued"]


def test_the_database_refuses_to_change_or_delete_an_issued_letter(app, make_decision, people):
    letter = issue(make_decision(), people)
    statements = [
        "UPDATE letters SET html = '<p>forged</p>'",
        "UPDATE letters SET html_sha256 = 'x'",
        "UPDATE letters SET reference = 'ESC/OTHER/1'",
        "UPDATE letters SET recipients = '{}'",
        "DELETE FROM letters",
    ]
    for statement in statements:
        with pytest.raises(sa.exc.DatabaseError, match="immutable"):
            db.session.execute(sa.text(statement))
            db.session.flush()
        db.session.rollback()
    # the PDF may be filled once, then never changed
    db.session.execute(
        sa.text("UPDATE letters SET pdf = :pdf, pdf_sha256 = :sha WHERE id = :id"),
        {"pdf": b"%PDF-1", "sha": hashlib.sha256(b"%PDF-1").hexdigest(), "id": letter.id},
    )
    db.session.commit()
    with pytest.raises(sa.exc.DatabaseError, match="immutable"):
        db.session.execute(sa.text("UPDATE letters SET pdf = :pdf"), {"pdf": b"%PDF-2"})
        db.session.flush()
    db.session.rollback()
    db.session.expire_all()
    assert verify_letter(letter)


def test_tampering_after_dropping_the_trigger_is_detected(app, make_decision, people):
    letter = issue(make_decision(), people)
    assert verify_letter(letter)
    postgres = db.engine.dialect.name == "postgresql"
    # What an attacker with DDL rights would do first (the guard is the migration's).
    if postgres:
        db.session.execute(sa.text("ALTER TABLE letters DISABLE TRIGGER letters_immutable_guard"))
    else:
        db.session.execute(sa.text("DROP TRIGGER letters_no_change"))
    try:
        db.session.execute(
            sa.text("UPDATE letters SET html = replace(html, 'Lee Lead', 'Someone Else')")
        )
        db.session.flush()
        assert not verify_letter(letter)
    finally:
        db.session.rollback()  # DDL is transactional on both databases
    assert verify_letter(letter)
