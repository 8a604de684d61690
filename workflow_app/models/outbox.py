"""The outbox: every e-mail is a row written in the same transaction as its cause.

A sender delivers pending rows later, once (DESIGN.md principle 4). With no SMTP server
configured the messages stay here and are readable in the app.
"""

from __future__ import annotations

from datetime import datetime

import sqlalchemy as sa
import sqlalchemy.orm as so

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.types import UTCDateTime

OUTBOX_STATUSES = ("pending", "sending", "sent", "failed", "held")


class OutboxMessage(db.Model):
    """An e-mail waiting to be sent, being sent, sent, or failed."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        sa.CheckConstraint(
            "status IN ('pending', 'sending', 'sent', 'failed', 'held')", name="status"
        ),
    )

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    kind: so.Mapped[str] = so.mapped_column(sa.String(60))
    # Stops the same message being written twice for the same cause.
    dedupe_key: so.Mapped[str] = so.mapped_column(sa.String(200), unique=True)
    # Stable Message-ID: a resend after a crash is recognisable as the same message.
    message_id: so.Mapped[str] = so.mapped_column(sa.String(200), unique=True)
    recipient_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("people.id"))
    to_address: so.Mapped[str] = so.mapped_column(sa.String(254))
    subject: so.Mapped[str] = so.mapped_column(sa.String(300))
    body_text: so.Mapped[str] = so.mapped_column(sa.Text)
    body_html: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    # The page the message is about (absolute URL), shown as a link in both parts.
    link: so.Mapped[str] = so.mapped_column(sa.String(500), default="")
    status: so.Mapped[str] = so.mapped_column(sa.String(16), default="pending", index=True)
    attempts: so.Mapped[int] = so.mapped_column(default=0)
    last_error: so.Mapped[str] = so.mapped_column(sa.Text, default="")
    created_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    next_attempt_at: so.Mapped[datetime] = so.mapped_column(UTCDateTime(), default=utcnow)
    sent_at: so.Mapped[datetime | None] = so.mapped_column(UTCDateTime())
    # A message "held" for a letter is released, with the letter's PDF attached, once the
    # PDF exists (DESIGN.md principle 4).
    letter_id: so.Mapped[int | None] = so.mapped_column(sa.ForeignKey("letters.id"), index=True)

    recipient = so.relationship("Person")
    attachments: so.Mapped[list[OutboxAttachment]] = so.relationship(
        back_populates="message", order_by="OutboxAttachment.id", cascade="all, delete-orphan"
    )


class OutboxAttachment(db.Model):
    """A file sent with an outbox message, such as a calendar invitation (.ics)."""

    __tablename__ = "outbox_attachments"

    id: so.Mapped[int] = so.mapped_column(primary_key=True)
    message_id: so.Mapped[int] = so.mapped_column(
        sa.ForeignKey("outbox_messages.id", ondelete="CASCADE"), index=True
    )
    filename: so.Mapped[str] = so.mapped_column(sa.String(200))
    content_type: so.Mapped[str] = so.mapped_column(sa.String(100))
    content: so.Mapped[bytes] = so.mapped_column(sa.LargeBinary)

    message: so.Mapped[OutboxMessage] = so.relationship(back_populates="attachments")
