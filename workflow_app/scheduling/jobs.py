"""Job functions. Each pushes an app context and is safe to run in several processes."""

from __future__ import annotations

from flask import Flask

from workflow_app.notifications.sender import deliver_due_messages


def run_sweep(app: Flask) -> None:
    """The every-minute sweep: deliver due e-mails from the outbox."""
    with app.app_context():
        deliver_due_messages()
