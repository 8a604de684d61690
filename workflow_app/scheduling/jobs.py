"""Job functions. Each pushes an app context and is safe to run in several processes.

The sweep is the only periodic job: every minute (and at start-up, to catch up after an
outage) it does whatever has fallen due. Every step claims its rows or its period
atomically, so a missed tick, a restart or a second scheduler loses and doubles nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime

import sqlalchemy as sa
from flask import Flask, current_app

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.notifications.sender import deliver_due_messages
from workflow_app.scheduling.monthly_review import previous_month, run_due_monthly_review
from workflow_app.scheduling.periods import claim_period
from workflow_app.scheduling.reminders import process_due_reminders, send_daily_digests
from workflow_app.services.cadence import top_up_all_cadences
from workflow_app.services.deadlines import calendar_for
from workflow_app.services.returns import close_complete_returns, plan_returns

log = logging.getLogger(__name__)


@dataclass
class SweepReport:
    """What one sweep did, step by step; ``errors`` names the steps that failed."""

    reminders_sent: int = 0
    reminders_digested: int = 0
    reminders_skipped: int = 0
    digests: int = 0
    cadence_planned: int = 0
    returns_planned: int = 0
    returns_closed: int = 0
    monthly_review: str = ""
    letter_pdfs: int = 0
    emails_released: int = 0
    emails_sent: int = 0
    errors: list[str] = field(default_factory=list)


def top_up_cadence_daily(now: datetime) -> int:
    """Once a day, plan the next cadence occurrences of every case."""
    calendar = calendar_for(current_app.config["ESCALATE_FRAMEWORK"])
    key = calendar.local_date(now).isoformat()
    if claim_period("cadence_topup", key, now=now) is None:
        return 0
    created = top_up_all_cadences(now)
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()
        return 0
    return created


def plan_and_close_returns(now: datetime) -> tuple[int, int]:
    """Once a month, plan last month's returns; every sweep, close the complete ones."""
    calendar = calendar_for(current_app.config["ESCALATE_FRAMEWORK"])
    period = previous_month(calendar.local_date(now))
    key = f"{period:%Y-%m}"
    planned = 0
    if claim_period("returns_plan", key, now=now, period=period) is not None:
        planned = len(plan_returns(period, now=now))
        try:
            db.session.commit()
        except sa.exc.IntegrityError:
            db.session.rollback()
            planned = 0
    closed = close_complete_returns()
    try:
        db.session.commit()
    except sa.exc.IntegrityError:
        db.session.rollback()
        return 0, 0
    return planned, closed


def sweep(now: datetime | None = None) -> SweepReport:
    """Do everything that has fallen due by ``now`` (in an app context)."""
    now = now or utcnow()
    report = SweepReport()

    def step(name: str, action) -> None:
        try:
            action()
        except Exception:  # noqa: BLE001 - one failing step must not stop the others
            db.session.rollback()
            log.exception("sweep step %s failed", name)
            report.errors.append(name)

    def reminders() -> None:
        result = process_due_reminders(now)
        report.reminders_sent = result.sent
        report.reminders_digested = result.digested
        report.reminders_skipped = result.skipped

    def digests() -> None:
        report.digests = send_daily_digests(now)

    def cadence() -> None:
        report.cadence_planned = top_up_cadence_daily(now)

    def returns() -> None:
        report.returns_planned, report.returns_closed = plan_and_close_returns(now)

    def review() -> None:
        result = run_due_monthly_review(now)
        report.monthly_review = f"{result.period:%Y-%m}" if result else ""

    def letters() -> None:
        from workflow_app.letters.pdf import render_pending_pdfs
        from workflow_app.notifications.outbox import release_held_messages

        report.letter_pdfs = render_pending_pdfs()
        report.emails_released = release_held_messages()

    def mail() -> None:
        report.emails_sent = deliver_due_messages()

    step("reminders", reminders)
    step("digests", digests)
    step("cadence", cadence)
    step("returns", returns)
    step("monthly_review", review)
    step("letters", letters)
    step("mail", mail)
    return report


def run_sweep(app: Flask) -> None:
    """The scheduler's entry point for the sweep."""
    with app.app_context():
        report = sweep()
        if report.errors:
            log.warning("sweep finished with failed steps: %s", ", ".join(report.errors))
        db.session.remove()
