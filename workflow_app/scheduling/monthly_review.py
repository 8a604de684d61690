"""The monthly escalation review: when it is due, and running it once per month.

Framework A reviews escalation status monthly on month-end reporting (seed 000, 7.7). The
review of a month falls due on the Nth working day after that month ends (the framework's
``monthly_returns.review_after``, e.g. 10 working days) at the reminder time (08:00 London).
A :class:`JobRun` row per month, written in the same transaction as the review's result,
makes it happen exactly once however many schedulers are running, and catch up after an
outage. The result goes to everyone in the performance team.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

import sqlalchemy as sa
from flask import current_app

from state_machines import get_framework, parse_duration
from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase
from workflow_app.models.deadlines import Deadline, JobRun
from workflow_app.models.org import Person, RoleGrant, Unit
from workflow_app.models.roles import PERFORMANCE_TEAM
from workflow_app.notifications.outbox import absolute_url, queue_email
from workflow_app.scheduling.periods import claim_period
from workflow_app.services.audit import record_event
from workflow_app.services.deadlines import calendar_for
from workflow_app.services.returns import repeated_missers, return_status
from workflow_app.services.review import run_review

JOB = "monthly_review"


def previous_month(day: date) -> date:
    """The first day of the month before ``day``'s month."""
    return date(day.year - 1, 12, 1) if day.month == 1 else date(day.year, day.month - 1, 1)


def review_due_at(period: date) -> datetime:
    """When the review of ``period`` (first of a month) falls due, as aware UTC."""
    name = current_app.config["ESCALATE_FRAMEWORK"]
    calendar = calendar_for(name)
    after = parse_duration(get_framework(name).monthly_returns["review_after"]).amount
    day = calendar.month_end_plus_working_days(period.year, period.month, after)
    return calendar.reminder_at(day)


@dataclass
class UnitReturn:
    """One unit's monthly return for the review: what arrived and where it stands."""

    unit: Unit
    levels: dict[str, str]
    measures_expected: int
    measures_received: int
    finance_received: bool
    overdue_deadlines: int

    @property
    def complete(self) -> bool:
        return self.measures_received >= self.measures_expected and self.finance_received


@dataclass
class ReviewResult:
    """The monthly review of one period."""

    period: date
    returns: list[UnitReturn] = field(default_factory=list)
    # Units that missed their last N returns: a data-quality exception in themselves.
    repeated_missers: list[tuple[Unit, int]] = field(default_factory=list)
    # What the evaluation proposed (pending decisions), and what it superseded.
    proposals: list = field(default_factory=list)
    superseded: int = 0

    @property
    def missing(self) -> list[UnitReturn]:
        return [r for r in self.returns if not r.complete]


def build_review(period: date, now: datetime | None = None) -> ReviewResult:
    """Gather each active unit's return, levels and overdue obligations for ``period``.

    The evaluation itself (proposals with their evidence) is ``services.review.run_review``,
    which :func:`run_monthly_review` runs beside this.
    """
    now = now or utcnow()
    result = ReviewResult(period)
    units = db.session.scalars(
        sa.select(Unit).where(Unit.is_active.is_(True)).order_by(Unit.code)
    ).all()
    for unit in units:
        status = return_status(unit, period)
        overdue = db.session.scalar(
            sa.select(sa.func.count(Deadline.id)).where(
                Deadline.unit_id == unit.id, Deadline.status == "open", Deadline.due_at < now
            )
        )
        levels = {
            case.track: case.level
            for case in db.session.scalars(
                sa.select(EscalationCase).where(EscalationCase.unit_id == unit.id)
            )
        }
        result.returns.append(
            UnitReturn(
                unit,
                levels,
                status.measures_expected,
                status.measures_received,
                status.finance_received,
                overdue,
            )
        )
    missers = repeated_missers(now)
    result.repeated_missers = [
        (r.unit, missers[r.unit.id]) for r in result.returns if r.unit.id in missers
    ]
    return result


def run_monthly_review(
    period: date, *, now: datetime | None = None, actor=None
) -> ReviewResult | None:
    """Run the review of ``period`` once: record it, and e-mail the performance team.

    :returns: the result, or None if that month's review has already run.
    """
    now = now or utcnow()
    key = period.strftime("%Y-%m")
    run = claim_period(JOB, key, now=now, period=period)
    if run is None:
        return None
    result = build_review(period, now)
    outcome = run_review(period, now=now, actor=actor)
    result.proposals = outcome.created
    result.superseded = len(outcome.superseded)
    team = db.session.scalars(
        sa.select(Person)
        .join(RoleGrant, RoleGrant.person_id == Person.id)
        .where(RoleGrant.role == PERFORMANCE_TEAM, Person.is_enabled.is_(True))
        .order_by(Person.id)
    ).all()
    for person in team:
        queue_email(
            kind="monthly_review",
            dedupe_key=f"monthly_review:{key}:{person.id}",
            recipient=person,
            subject=f"Monthly escalation review for {period:%B %Y}: "
            f"{len(result.proposals)} proposals, "
            f"{len(result.missing)} of {len(result.returns)} returns incomplete",
            template="monthly_review",
            link=absolute_url("/"),
            result=result,
        )
    run.finished_at = utcnow()
    run.summary = (
        f"{len(result.returns)} units; {len(result.proposals)} proposals; "
        f"{len(result.missing)} returns incomplete; "
        f"sent to {len(team)} people in the performance team"
    )
    record_event(
        "review.monthly_run",
        object_type="job_run",
        object_id=run.id,
        summary=f"Monthly escalation review for {period:%B %Y}: {run.summary}",
        actor=actor,
    )
    return result


def next_month(period: date) -> date:
    """The first day of the month after ``period``."""
    return (
        date(period.year + 1, 1, 1)
        if period.month == 12
        else date(period.year, period.month + 1, 1)
    )


def due_review_periods(now: datetime) -> list[date]:
    """Months whose review is due and has not run, oldest first.

    After an outage every month since the last run is caught up. A new installation does
    not review history: its first review is last month's, once that falls due.
    """
    calendar = calendar_for(current_app.config["ESCALATE_FRAMEWORK"])
    last_month = previous_month(calendar.local_date(now))
    last_month_due = now >= review_due_at(last_month)
    last_run = db.session.scalar(sa.select(sa.func.max(JobRun.period)).where(JobRun.job == JOB))
    if last_run is None:
        return [last_month] if last_month_due else []
    latest_due = last_month if last_month_due else previous_month(last_month)
    periods = []
    period = next_month(last_run)
    while period <= latest_due:
        periods.append(period)
        period = next_month(period)
    return periods


def run_due_monthly_review(now: datetime | None = None) -> ReviewResult | None:
    """Run the oldest review that is due and has not run yet (catch-up safe).

    :returns: the result of the review run, or None if none was due.
    """
    now = now or utcnow()
    for period in due_review_periods(now):
        result = run_monthly_review(period, now=now)
        if result is None:
            continue
        try:
            db.session.commit()
        except sa.exc.IntegrityError:
            db.session.rollback()  # another scheduler ran it first
            return None
        return result
    db.session.rollback()
    return None
