"""Issuing, reissuing and verifying letters: the stored, hashed, immutable copies.

Every function here works in the caller's transaction and only flushes: a letter is issued
in the same transaction as the decision it reports (DESIGN.md principle 4), so both are
committed, or neither is. The PDF comes later (:mod:`workflow_app.letters.pdf`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any

import sqlalchemy as sa

from workflow_app.clock import to_london, utcnow
from workflow_app.extensions import db
from workflow_app.letters.render import format_date, letter_context, render_letter
from workflow_app.models.cases import Decision, EscalationCase
from workflow_app.models.letters import Letter
from workflow_app.models.org import Person
from workflow_app.services.audit import record_event

REFERENCE_PREFIX = "ESC"


class LetterAlreadyIssued(Exception):
    """A current letter of this kind exists for the decision: reissue it instead."""


class LetterAlreadySuperseded(Exception):
    """Only the current version of a letter can be reissued."""


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def next_reference(case: EscalationCase, issued_at: datetime) -> str:
    """``ESC/<unit code>/<YYYY-MM>/<n>``: n counts the unit's first-version letters of that
    month (Europe/London). Two letters racing for the same number fail on the unique
    reference, and the losing transaction is retried by its caller."""
    month = to_london(issued_at).strftime("%Y-%m")
    prefix = f"{REFERENCE_PREFIX}/{case.unit.code}/{month}/"
    existing = db.session.scalars(
        sa.select(Letter.reference).where(Letter.reference.startswith(prefix, autoescape=True))
    ).all()
    numbers = [int(m[1]) for r in existing if (m := re.match(r"^(\d+)", r[len(prefix) :]))]
    return f"{prefix}{max(numbers, default=0) + 1}"


def _recipients(context: Mapping[str, Any]) -> str:
    to = [context["addressee"]] if context.get("addressee") else []
    return json.dumps(
        {"to": to, "cc": list(context.get("copied_to") or [])}, sort_keys=True, ensure_ascii=False
    )


def _create(
    *,
    case: EscalationCase,
    decision: Decision | None,
    kind: str,
    version: int,
    reference: str,
    issued_at: datetime,
    issued_by: Person | None,
    response_due_at: date | datetime | None,
    context_extra: Mapping[str, Any] | None,
    reissue: Mapping[str, Any] | None = None,
) -> Letter:
    extra = dict(context_extra or {})
    if reissue is not None:
        extra["reissue"] = dict(reissue)
    context = letter_context(
        decision,
        case=case,
        response_due_at=response_due_at,
        extra=extra,
        issued_at=issued_at,
        issued_by=issued_by,
        reference=reference,
    )
    html = render_letter(kind, context)
    letter = Letter(
        case_id=case.id,
        decision_id=decision.id if decision is not None else None,
        kind=kind,
        version=version,
        reference=reference,
        html=html,
        html_sha256=sha256_text(html),
        issued_at=issued_at,
        issued_by_id=issued_by.id if issued_by is not None else None,
        recipients=_recipients(context),
    )
    db.session.add(letter)
    db.session.flush()
    return letter


def issue_letter(
    *,
    case: EscalationCase,
    decision: Decision | None,
    kind: str,
    context_extra: Mapping[str, Any] | None = None,
    issued_by: Person | None,
    response_due_at: date | datetime | None = None,
    issued_at: datetime | None = None,
) -> Letter:
    """Render the letter ``kind`` about ``decision`` (or about ``case`` alone), store its HTML
    with its SHA-256, give it version 1 and a reference, and record ``letter.issued`` in the
    audit trail. Flushes; the caller commits with the decision.

    ``issued_at`` (default: now) is the letter's date and the month of its reference; a
    decision passes its own time, so the letter carries the date it was decided.

    :raises LetterAlreadyIssued: when a current letter of this kind exists for the decision.
    :raises workflow_app.letters.render.UnknownLetterKind: for a kind with no template.
    """
    if decision is not None:
        if decision.case_id != case.id:
            raise ValueError(f"decision {decision.id} belongs to another case than {case.id}")
        existing = db.session.scalar(
            sa.select(Letter).where(Letter.decision_id == decision.id, Letter.kind == kind)
        )
        if existing is not None:
            raise LetterAlreadyIssued(
                f"a {kind} letter ({existing.reference}) was already issued for decision "
                f"{decision.id}; reissue it to change it"
            )
    issued_at = issued_at or utcnow()
    letter = _create(
        case=case,
        decision=decision,
        kind=kind,
        version=1,
        reference=next_reference(case, issued_at),
        issued_at=issued_at,
        issued_by=issued_by,
        response_due_at=response_due_at,
        context_extra=context_extra,
    )
    record_event(
        "letter.issued",
        object_type="letter",
        object_id=letter.id,
        summary=f"Letter {letter.reference} ({kind}) issued to {case.unit.name}",
        actor=issued_by,
        details={
            "reference": letter.reference,
            "kind": kind,
            "version": 1,
            "case_id": case.id,
            "decision_id": letter.decision_id,
            "html_sha256": letter.html_sha256,
        },
    )
    return letter


def reissue_letter(
    letter: Letter,
    *,
    issued_by: Person | None,
    reason: str,
    context_extra: Mapping[str, Any] | None = None,
    response_due_at: date | datetime | None = None,
) -> Letter:
    """Issue the next version of ``letter`` (rendered afresh from the same decision) and
    point the old one at it. The new letter says which letter it replaces and why. Records
    ``letter.reissued``. Flushes only.

    :raises LetterAlreadySuperseded: when ``letter`` is not the current version.
    """
    if letter.superseded_by_id is not None:
        raise LetterAlreadySuperseded(
            f"letter {letter.reference} was already replaced; reissue the current version"
        )
    version = letter.version + 1
    base = re.sub(r"/v\d+$", "", letter.reference)
    new = _create(
        case=letter.case,
        decision=letter.decision,
        kind=letter.kind,
        version=version,
        reference=f"{base}/v{version}",
        issued_at=utcnow(),
        issued_by=issued_by,
        response_due_at=response_due_at,
        context_extra=context_extra,
        reissue={
            "version": version,
            "replaces": letter.reference,
            "replaces_date": format_date(letter.issued_at),
            "reason": reason,
        },
    )
    letter.superseded_by_id = new.id
    db.session.flush()
    record_event(
        "letter.reissued",
        object_type="letter",
        object_id=new.id,
        summary=f"Letter {new.reference} ({new.kind}) issued, replacing {letter.reference}",
        actor=issued_by,
        details={
            "reference": new.reference,
            "replaces": letter.reference,
            "replaces_id": letter.id,
            "kind": new.kind,
            "version": version,
            "reason": reason,
            "html_sha256": new.html_sha256,
        },
    )
    return new


def verify_letter(letter: Letter) -> bool:
    """True when the letter's stored HTML, and its PDF if made, still match their hashes.

    Reads the stored row (not the object in memory), so it checks what the database holds.
    """
    row = db.session.execute(
        sa.select(Letter.html, Letter.html_sha256, Letter.pdf, Letter.pdf_sha256).where(
            Letter.id == letter.id
        )
    ).first()
    if row is None or row.html is None:
        return False
    if sha256_text(row.html) != row.html_sha256:
        return False
    if row.pdf is None:
        return row.pdf_sha256 is None
    return hashlib.sha256(row.pdf).hexdigest() == row.pdf_sha256
