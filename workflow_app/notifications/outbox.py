"""Writing messages to the outbox, in the caller's transaction."""

from __future__ import annotations

import re
import uuid

import sqlalchemy as sa
from flask import current_app, render_template
from jinja2 import TemplateNotFound

from workflow_app.extensions import db
from workflow_app.models.org import Person
from workflow_app.models.outbox import OutboxAttachment, OutboxMessage

# One address, no display name, nothing that could end a header line or add a recipient.
_PLAIN_ADDRESS = re.compile(r"^[^\s@,;<>\"\\\x00-\x1f\x7f]+@[^\s@,;<>\"\\\x00-\x1f\x7f]+$")


def is_plain_address(address: str) -> bool:
    """True for one bare e-mail address that is safe in a To: header."""
    return bool(_PLAIN_ADDRESS.match(address or ""))


def header_safe(text: str, limit: int = 300) -> str:
    """``text`` on one line: CR, LF and every other control character become spaces, so a
    name or subject cannot start a header of its own (RELIABILITY-ANCHORS check 21)."""
    flattened = "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in text)
    return " ".join(flattened.split())[:limit]


def absolute_url(path: str) -> str:
    """Turn an app path into a link for an e-mail, using ``BASE_URL``."""
    return f"{current_app.config['BASE_URL'].rstrip('/')}{path}"


def queue_email(
    *,
    kind: str,
    dedupe_key: str,
    recipient: Person,
    subject: str,
    template: str,
    link: str = "",
    attachments: list[tuple[str, str, bytes]] | None = None,
    known_new: bool = False,
    hold_for_letter=None,
    **context: object,
) -> OutboxMessage:
    """Write an e-mail to the outbox unless one with ``dedupe_key`` already exists.

    Both parts are rendered now, from ``templates/emails/<template>.txt`` and ``.html``
    (the HTML part is optional), so the message says what was true when its cause happened.

    :param link: absolute URL of the page the message is about.
    :param attachments: ``(filename, content_type, content)`` triples, e.g. an .ics invite.
    :param hold_for_letter: a letter whose PDF must be attached: the message is held until the
        PDF exists, then released by the sweep.
    :param known_new: the caller guarantees no message with ``dedupe_key`` exists (e.g. it
        has just claimed the cause atomically): skip the look-up and the flush, for batches.
        The unique constraint still stops a duplicate.
    """
    if not known_new:
        existing = db.session.scalar(
            sa.select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)
        )
        if existing is not None:
            return existing
    domain = current_app.config["MAIL_DEFAULT_SENDER"].rpartition("@")[2] or "localhost"
    context = {
        "recipient": recipient,
        "base_url": current_app.config["BASE_URL"].rstrip("/"),
        "organisation": current_app.config["ORGANISATION_NAME"],
        "link": link,
        **context,
    }
    body_text = render_template(f"emails/{template}.txt", **context)
    try:
        body_html = render_template(f"emails/{template}.html", **context)
    except TemplateNotFound:
        body_html = ""
    message = OutboxMessage(
        kind=kind,
        dedupe_key=dedupe_key,
        message_id=f"<{uuid.uuid4()}@{domain}>",
        recipient_id=recipient.id,
        to_address=recipient.email,
        subject=header_safe(subject),  # no CR/LF: no header injection
        body_text=body_text,
        body_html=body_html,
        link=link,
    )
    if hold_for_letter is not None:
        message.status = "held"
        message.letter_id = hold_for_letter.id
    if not is_plain_address(recipient.email):
        # Never sent, and flagged under Administration -> Mail outbox; the cause (a decision,
        # a reminder) still happens: one bad address must not stop it (check 6).
        message.status = "failed"
        message.last_error = (
            f"{header_safe(recipient.email, 100)!r} is not a single valid e-mail address, so "
            "this message was not sent. Correct the person's address under Administration "
            "-> People; later messages will reach them."
        )
    for filename, content_type, content in attachments or []:
        message.attachments.append(
            OutboxAttachment(
                filename=header_safe(filename, 200).replace("/", "-").replace("\\", "-"),
                content_type=header_safe(content_type, 100),
                content=content,
            )
        )
    db.session.add(message)
    if not known_new:
        db.session.flush()
    return message


def release_held_messages() -> int:
    """Attach each held message's letter PDF, once it exists, and queue the message."""
    from workflow_app.models.letters import Letter

    held = db.session.scalars(
        sa.select(OutboxMessage)
        .join(Letter, Letter.id == OutboxMessage.letter_id)
        .where(OutboxMessage.status == "held", Letter.pdf.is_not(None))
    ).all()
    for message in held:
        letter = db.session.get(Letter, message.letter_id)
        message.attachments.append(
            OutboxAttachment(
                filename=f"{letter.reference.replace('/', '-')}.pdf",
                content_type="application/pdf",
                content=letter.pdf,
            )
        )
        message.status = "pending"
    db.session.commit()
    return len(held)
