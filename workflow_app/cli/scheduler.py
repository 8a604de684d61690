"""``escalate scheduler``: run the scheduler as its own process (production)."""

from __future__ import annotations

import click
from flask import current_app
from flask.cli import with_appcontext


@click.command("scheduler")
@with_appcontext
def scheduler_command() -> None:
    """Run the sweep and the cron jobs in this process until interrupted.

    Use this with ``SCHEDULER_MODE=off`` for the web workers (gunicorn), so jobs run in one
    place. Running two by mistake is still safe: every due row is claimed atomically.
    """
    from workflow_app.scheduling.scheduler import build_scheduler

    scheduler = build_scheduler(current_app._get_current_object(), blocking=True)
    click.echo("Scheduler running; press Ctrl+C to stop.")
    try:
        scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        scheduler.shutdown(wait=False)
