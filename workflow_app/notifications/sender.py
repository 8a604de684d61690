"""Delivering outbox messages over SMTP, once, with retry and backoff.

Each message is claimed with a conditional UPDATE (pending -> sending), so two sweeps
running at once never send the same row twice. One bad message fails alone: a refusal the
server means for good (5xx for the recipient or the content) or a header that cannot be
sent fails the row at once; a temporary refusal (4xx) is retried with backoff; a relay
that cannot be reached holds the whole queue a minute at a time without spending anyone's
attempts, so the queue goes out at the first sweep after the relay is back.
A delivery run keeps one SMTP session open and drains the queue, a batch at a time, for up
to ``DRAIN_SECONDS``. With no ``MAIL_SERVER`` configured nothing is sent: the outbox is the
mailbox.

The one window where a message can go out twice is "the server answered 250, the process
died before the row was marked sent": the row stays ``sending``, is claimed again after
``STALE_CLAIM`` and sent again with the same Message-ID (RELIABILITY-ANCHORS check 7).
"""

from __future__ import annotations

import contextlib
import os
import signal
import smtplib
import time
from datetime import timedelta

import sqlalchemy as sa
from flask import current_app
from flask_mail import BadHeaderError, Message

from workflow_app.clock import utcnow
from workflow_app.extensions import db, mail
from workflow_app.models.outbox import OutboxMessage

MAX_ATTEMPTS = 8
# A row left in "sending" this long (the process died mid-send) is tried again.
STALE_CLAIM = timedelta(minutes=10)
# While the relay cannot be reached, the queue waits this long and one message tries again.
RELAY_RETRY = timedelta(minutes=1)
# One delivery run stops taking new batches after this long, inside the sweep's minute.
DRAIN_SECONDS = 45.0


#: Test-only fault injection: with this set to 1, a *testing* app outside production kills
#: its own process right after the server accepted a message, before the row is marked sent.
FAULT_KILL_AFTER_SEND = "ESCALATE_FAULT_KILL_AFTER_SEND"


def _backoff(attempts: int) -> timedelta:
    return timedelta(minutes=min(2**attempts, 240))


def is_permanent_failure(error: Exception) -> bool:
    """True when sending again cannot help: the server refused the recipient or the content
    with a 5xx reply, or the message has a header that cannot be sent (CR/LF in it).

    A refused sender or failed login (5xx too) is a server setting, not this message: those
    are retried like an outage, so fixing the setting lets every message through.
    """
    if isinstance(error, BadHeaderError):
        return True
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        return bool(error.recipients) and all(code >= 500 for code, _ in error.recipients.values())
    if isinstance(error, smtplib.SMTPDataError):
        return error.smtp_code >= 500
    return False


def relay_unreachable(error: Exception) -> bool:
    """True when the failure is the relay's, not the message's: the connection was refused,
    dropped or timed out before the server answered about this message."""
    if isinstance(error, (smtplib.SMTPConnectError, smtplib.SMTPServerDisconnected)):
        return True
    # smtplib's own errors are OSErrors too; those are answers about the message.
    return isinstance(error, OSError) and not isinstance(error, smtplib.SMTPException)


def fault_injection_enabled() -> bool:
    """True only for a testing app outside production that was asked to crash after 250."""
    return (
        current_app.testing
        and os.environ.get("ESCALATE_ENV", "development").lower() != "production"
        and os.environ.get(FAULT_KILL_AFTER_SEND) == "1"
    )


def _due_message_ids(now, limit: int) -> list[int]:
    """Up to ``limit`` messages due now, oldest first (and sends a crash left half-done)."""
    due_ids = db.session.scalars(
        sa.select(OutboxMessage.id)
        .where(
            sa.or_(
                sa.and_(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now),
                sa.and_(
                    OutboxMessage.status == "sending",
                    OutboxMessage.next_attempt_at <= now - STALE_CLAIM,
                ),
            )
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    ).all()
    db.session.rollback()
    return due_ids


def deliver_due_messages(limit: int = 100, budget_seconds: float = DRAIN_SECONDS) -> int:
    """Send due messages, ``limit`` at a time, until none is due or ``budget_seconds`` have
    passed (the next sweep carries on); return how many were sent.

    One SMTP session carries the whole run: a morning's thousands of reminders go out in
    the sweep that queued them, not 100 a minute, and the relay sees one connection.
    """
    if not current_app.config.get("MAIL_SERVER"):
        return 0
    started = time.monotonic()
    sent = 0
    connection = None
    try:
        while due_ids := _due_message_ids(utcnow(), limit):
            now = utcnow()
            if connection is None:
                connection, error = _connect()
                if connection is None:  # the relay is down: the queue waits for it
                    _hold_queue_for_relay(now, error)
                    return sent
            for message_id in due_ids:
                if not _claim(message_id, now):
                    continue
                outcome = _send_claimed(message_id, connection)
                if outcome is None:  # the relay went away: stop, and let the queue wait
                    _hold_queue_for_relay(now)
                    return sent
                sent += outcome
            if len(due_ids) < limit or time.monotonic() - started >= budget_seconds:
                break
    finally:
        _close(connection)
    return sent


def _connect():
    """``(an open SMTP session, None)``, or ``(None, why)`` when the relay cannot be reached."""
    connection = mail.connect()
    try:
        connection.__enter__()
    except Exception as error:  # noqa: BLE001 - which failures mean "relay down" is decided below
        if not relay_unreachable(error):
            raise
        why = f"Mail relay unreachable: {type(error).__name__}: {error}"
        current_app.logger.warning(why)
        return None, why
    return connection, None


def _close(connection) -> None:
    """End the SMTP session politely; a relay that has already gone needs no goodbye."""
    if connection is None or connection.host is None:
        return
    with contextlib.suppress(smtplib.SMTPException, OSError):
        connection.host.quit()


def _hold_queue_for_relay(now, error: str | None = None) -> None:
    """The relay cannot be reached: every due message waits ``RELAY_RETRY``, showing
    ``error`` (when given) as its last error under Administration -> Mail outbox.

    The failure is the relay's, so no message spends an attempt on it (a long outage never
    uses up MAX_ATTEMPTS and marks the queue failed), and the next sweep tries again, so once
    the relay is back the queue goes out at the next tick (RELIABILITY-ANCHORS check 5).
    """
    values = {"next_attempt_at": now + RELAY_RETRY}
    if error is not None:
        values["last_error"] = error[:2000]
    db.session.execute(
        sa.update(OutboxMessage)
        .where(OutboxMessage.status == "pending", OutboxMessage.next_attempt_at <= now)
        .values(**values)
    )
    db.session.commit()


def _claim(message_id: int, now) -> bool:
    claimed = db.session.execute(
        sa.update(OutboxMessage)
        .where(
            OutboxMessage.id == message_id,
            sa.or_(
                OutboxMessage.status == "pending",
                sa.and_(
                    OutboxMessage.status == "sending",
                    OutboxMessage.next_attempt_at <= now - STALE_CLAIM,
                ),
            ),
        )
        .values(status="sending", next_attempt_at=now, attempts=OutboxMessage.attempts + 1)
    )
    db.session.commit()
    return claimed.rowcount == 1


def _send_claimed(message_id: int, connection) -> int | None:
    """Send one claimed message: 1 if sent, 0 if it failed, None if the relay is down."""
    message = db.session.get(OutboxMessage, message_id)
    email = Message(
        subject=message.subject,
        recipients=[message.to_address],
        body=message.body_text,
        sender=current_app.config["MAIL_DEFAULT_SENDER"],
        html=message.body_html or None,
    )
    email.msgId = message.message_id  # stable across retries: a resend is recognisable
    for attachment in message.attachments:
        email.attach(attachment.filename, attachment.content_type, attachment.content)
    try:
        connection.send(email)
    except Exception as error:  # noqa: BLE001 - any failure is recorded on the row
        message.last_error = f"{type(error).__name__}: {error}"[:2000]
        if relay_unreachable(error):
            # Not this message's fault: the attempt is not counted and it waits with the rest.
            message.status = "pending"
            message.attempts -= 1
            message.next_attempt_at = utcnow() + RELAY_RETRY
            db.session.commit()
            current_app.logger.warning("Mail relay unreachable: %s", message.last_error)
            return None
        if message.attempts >= MAX_ATTEMPTS or is_permanent_failure(error):
            message.status = "failed"
        else:
            message.status = "pending"
            message.next_attempt_at = utcnow() + _backoff(message.attempts)
        db.session.commit()
        current_app.logger.warning("E-mail %s not sent: %s", message.id, message.last_error)
        return 0
    if fault_injection_enabled():
        os.kill(os.getpid(), signal.SIGKILL)
    message.status = "sent"
    message.sent_at = utcnow()
    message.last_error = ""
    db.session.commit()
    return 1


def retry_failed_message(actor, message: OutboxMessage) -> None:
    """Put a failed message back in the queue, due now; audited."""
    from workflow_app.services.audit import record_event
    from workflow_app.services.errors import ServiceError

    if message.status != "failed":
        raise ServiceError(f"Only a failed e-mail can be retried; this one is {message.status}")
    message.status = "pending"
    message.next_attempt_at = utcnow()
    record_event(
        "outbox.retried",
        object_type="outbox_message",
        object_id=message.id,
        summary=f"E-mail to {message.to_address} queued again after failing: {message.subject}",
        actor=actor,
    )
