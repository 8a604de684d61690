"""Writing messages to the outbox, in the caller's transaction."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from flask import current_app, render_template

from workflow_app.extensions import db
from workflow_app.models.org import Person
from workflow_app.models.outbox import OutboxMessage


def queue_email(
    *,
    kind: str,
    dedupe_key: str,
    recipient: Person,
    subject: str,
    template: str,
    **context: object,
) -> OutboxMessage:
    """Write an e-mail to the outbox unless one with ``dedupe_key`` already exists.

    The body is rendered now, from ``templates/emails/<template>.txt``, so the message
    says what was true when its cause happened.
    """
    existing = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)
    )
    if existing is not None:
        return existing
    domain = current_app.config["MAIL_DEFAULT_SENDER"].rpartition("@")[2] or "localhost"
    body = render_template(
        f"emails/{template}.txt",
        recipient=recipient,
        base_url=current_app.config["BASE_URL"].rstrip("/"),
        organisation=current_app.config["ORGANISATION_NAME"],
        **context,
    )
    message = OutboxMessage(
        kind=kind,
        dedupe_key=dedupe_key,
        message_id=f"<{uuid.uuid4()}@{domain}>",
        recipient_id=recipient.id,
        to_address=recipient.email,
        subject=" ".join(subject.split()),  # no CR/LF: header injection is impossible
        body_text=body,
    )
    db.session.add(message)
    db.session.flush()
    return message
