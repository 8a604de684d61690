"""Writing messages to the outbox, in the caller's transaction."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field

import sqlalchemy as sa
from flask import current_app, render_template
from jinja2 import Template, TemplateNotFound

from workflow_app.extensions import db
from workflow_app.models.org import Person
from workflow_app.models.outbox import OutboxAttachment, OutboxMessage

# One address, no display name, nothing that could end a header line or add a recipient.
_PLAIN_ADDRESS = re.compile(r"^[^\s@,;<>\"\\\x00-\x1f\x7f]+@[^\s@,;<>\"\\\x00-\x1f\x7f]+$")


# Every control character (C0 and DEL) becomes a space: see :func:`header_safe`.
_CONTROL_TO_SPACE = {code: " " for code in (*range(32), 127)}


def is_plain_address(address: str) -> bool:
    """True for one bare e-mail address that is safe in a To: header."""
    return bool(_PLAIN_ADDRESS.match(address or ""))


def header_safe(text: str, limit: int = 300) -> str:
    """``text`` on one line: CR, LF and every other control character become spaces, so a
    name or subject cannot start a header of its own (RELIABILITY-ANCHORS check 21)."""
    return " ".join(text.translate(_CONTROL_TO_SPACE).split())[:limit]


def absolute_url(path: str) -> str:
    """Turn an app path into a link for an e-mail, using ``BASE_URL``."""
    return f"{current_app.config['BASE_URL'].rstrip('/')}{path}"


def _domain() -> str:
    return current_app.config["MAIL_DEFAULT_SENDER"].rpartition("@")[2] or "localhost"


def _context(recipient: Person, link: str, context: dict) -> dict:
    return {
        "recipient": recipient,
        "base_url": current_app.config["BASE_URL"].rstrip("/"),
        "organisation": current_app.config["ORGANISATION_NAME"],
        "link": link,
        **context,
    }


def _row(
    kind: str,
    dedupe_key: str,
    recipient: Person,
    subject: str,
    link: str,
    body_text: str,
    body_html: str,
    domain: str,
) -> dict:
    """The columns of a new outbox message (a bad address makes it ``failed`` at once)."""
    row = {
        "kind": kind,
        "dedupe_key": dedupe_key,
        "message_id": f"<{uuid.uuid4()}@{domain}>",
        "recipient_id": recipient.id,
        "to_address": recipient.email,
        "subject": header_safe(subject),  # no CR/LF: no header injection
        "body_text": body_text,
        "body_html": body_html,
        "link": link,
        "status": "pending",
        "last_error": "",
    }
    if not is_plain_address(recipient.email):
        # Never sent, and flagged under Administration -> Mail outbox; the cause (a decision,
        # a reminder) still happens: one bad address must not stop it (check 6).
        row["status"] = "failed"
        row["last_error"] = (
            f"{header_safe(recipient.email, 100)!r} is not a single valid e-mail address, so "
            "this message was not sent. Correct the person's address under Administration "
            "-> People; later messages will reach them."
        )
    return row


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
    context = _context(recipient, link, context)
    body_text = render_template(f"emails/{template}.txt", **context)
    try:
        body_html = render_template(f"emails/{template}.html", **context)
    except TemplateNotFound:
        body_html = ""
    message = OutboxMessage(
        **_row(kind, dedupe_key, recipient, subject, link, body_text, body_html, _domain())
    )
    if hold_for_letter is not None:
        message.letter_id = hold_for_letter.id
        if message.status != "failed":  # a bad address is never sent, held or not
            message.status = "held"
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


@dataclass
class Email:
    """One e-mail for :func:`queue_emails`: the arguments of :func:`queue_email`."""

    kind: str
    dedupe_key: str
    recipient: Person
    subject: str
    template: str
    link: str = ""
    context: dict = field(default_factory=dict)


class _BatchRenderer:
    """Renders many e-mails exactly as ``render_template`` would, with less work per message.

    Per batch instead of per part of every message: the compiled templates are looked up,
    the context processors run (they do not depend on the message), and each template's
    globals are flattened into a plain dict. Jinja's ``render`` copies its globals, a
    ``ChainMap``, key by key into every context; here the context is the flattened globals
    overlaid with the message's values, passed ``shared`` (as is). Only the template
    signals of ``render_template`` are not sent.
    """

    def __init__(self) -> None:
        self.env = current_app.jinja_env
        self.base: dict = {}
        current_app.update_template_context(self.base)
        self.templates: dict[str, tuple[Template, dict] | None] = {}

    def _template(self, name: str) -> tuple[Template, dict] | None:
        if name not in self.templates:
            try:
                template = self.env.get_template(name)
            except TemplateNotFound:
                self.templates[name] = None
            else:
                self.templates[name] = (template, {**template.globals, **self.base})
        return self.templates[name]

    @staticmethod
    def _render(template: Template, variables: dict) -> str:
        # What Template.render does, minus copying the globals (already in ``variables``).
        context = template.new_context(variables, shared=True)
        try:
            return template.environment.concat(template.root_render_func(context))
        except Exception:  # noqa: BLE001 - Jinja rewrites the traceback to the template line
            return template.environment.handle_exception()

    def render(self, template: str, context: dict) -> tuple[str, str]:
        """The text and HTML parts (HTML ``""`` when the template has none)."""
        text = self._template(f"emails/{template}.txt")
        if text is None:
            raise TemplateNotFound(f"emails/{template}.txt")
        body_text = self._render(text[0], {**text[1], **context})
        html = self._template(f"emails/{template}.html")
        body_html = self._render(html[0], {**html[1], **context}) if html is not None else ""
        return body_text, body_html


def queue_emails(emails: Iterable[Email]) -> set[str]:
    """Write many e-mails to the outbox in one go; return the dedupe keys written.

    The same as :func:`queue_email` for each (no attachments, never held), with one
    ``SELECT ... IN`` for the keys already in the outbox (and a key repeated in ``emails``
    written once), and one executemany ``INSERT`` for the rest, in the caller's transaction.
    """
    emails = list(emails)
    if not emails:
        return set()
    keys = {email.dedupe_key for email in emails}
    existing = set(
        db.session.scalars(
            sa.select(OutboxMessage.dedupe_key).where(OutboxMessage.dedupe_key.in_(keys))
        )
    )
    renderer = _BatchRenderer()
    domain = _domain()
    rows = []
    for email in emails:
        if email.dedupe_key in existing:
            continue
        existing.add(email.dedupe_key)
        body_text, body_html = renderer.render(
            email.template, _context(email.recipient, email.link, email.context)
        )
        rows.append(
            _row(
                email.kind,
                email.dedupe_key,
                email.recipient,
                email.subject,
                email.link,
                body_text,
                body_html,
                domain,
            )
        )
    if rows:
        # Core executemany: created_at and next_attempt_at take their Python defaults.
        db.session.execute(sa.insert(OutboxMessage.__table__), rows)
    return {row["dedupe_key"] for row in rows}


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
