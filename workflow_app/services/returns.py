"""Monthly returns: each unit's performance pack and finance return for a month.

A return is an obligation like any other: a deadline per unit per month, due the
framework's ``monthly_returns.due`` working days after month end (chased by the usual
reminders through the outbox), done as soon as every active measure has a value for the
month and the finance position is in. A unit that misses ``missed_returns_exception``
returns in a row is itself a data-quality exception (framework D, appendix 6: timeliness
and completeness).
"""

from __future__ import annotations

import calendar as month_calendar
from dataclasses import dataclass
from datetime import date, datetime, time

import sqlalchemy as sa

from state_machines import get_framework, parse_duration
from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.deadlines import Deadline
from workflow_app.models.measures import FinancePosition, Measure, MonthlyActual
from workflow_app.models.org import Unit
from workflow_app.services.deadlines import calendar_for, create_deadline, mark_done

RETURN_KIND = "monthly_return"


@dataclass(frozen=True)
class ReturnStatus:
    """What has arrived of one unit's return for one month."""

    measures_expected: int
    measures_received: int
    finance_received: bool

    @property
    def complete(self) -> bool:
        return self.measures_received >= self.measures_expected and self.finance_received


def return_status(unit: Unit, period: date) -> ReturnStatus:
    """Count the measures with a value for ``period`` and whether finance is in."""
    expected = db.session.scalar(
        sa.select(sa.func.count(Measure.id)).where(
            Measure.unit_id == unit.id, Measure.is_active.is_(True)
        )
    )
    received = db.session.scalar(
        sa.select(sa.func.count(sa.distinct(MonthlyActual.measure_id)))
        .join(Measure, Measure.id == MonthlyActual.measure_id)
        .where(
            Measure.unit_id == unit.id,
            Measure.is_active.is_(True),
            MonthlyActual.period == period,
        )
    )
    finance = db.session.scalar(
        sa.select(FinancePosition.id)
        .where(FinancePosition.unit_id == unit.id, FinancePosition.period == period)
        .limit(1)
    )
    return ReturnStatus(expected or 0, received or 0, finance is not None)


def return_key(unit: Unit, period: date) -> str:
    """The dedupe key of a unit's return deadline for a month."""
    return f"return:{unit.id}:{period:%Y-%m}"


def plan_returns(period: date, *, now: datetime | None = None) -> list[Deadline]:
    """Create each active unit's return deadline for ``period`` (idempotent)."""
    now = now or utcnow()
    created = []
    units = db.session.scalars(sa.select(Unit).where(Unit.is_active.is_(True))).all()
    for unit in units:
        framework = get_framework(unit.framework)
        calendar = calendar_for(framework.name)
        last_day = date(
            period.year, period.month, month_calendar.monthrange(*period.timetuple()[:2])[1]
        )
        month_end = calendar.at_local_time(last_day, time(12, 0))
        working_days = parse_duration(framework.monthly_returns["due"]).amount
        key = return_key(unit, period)
        if db.session.scalar(sa.select(Deadline.id).where(Deadline.dedupe_key == key)):
            continue
        deadline = create_deadline(
            dedupe_key=key,
            kind=RETURN_KIND,
            title=f"Monthly return for {period:%B %Y} (performance pack and finance)",
            unit=unit,
            framework=framework.name,
            working_days=working_days,
            starting=month_end,
        )
        if return_status(unit, period).complete:
            mark_done(deadline, note="return complete when planned")
        created.append(deadline)
    return created


def close_complete_returns() -> int:
    """Mark done every open return whose data has all arrived; returns how many."""
    closed = 0
    open_returns = db.session.scalars(
        sa.select(Deadline).where(
            Deadline.kind == RETURN_KIND, Deadline.status.in_(("open", "paused"))
        )
    ).all()
    for deadline in open_returns:
        period = date.fromisoformat(deadline.dedupe_key.rsplit(":", 1)[1] + "-01")
        if return_status(deadline.unit, period).complete:
            mark_done(deadline, note="all data received")
            closed += 1
    return closed


def late_returns(now: datetime | None = None) -> list[Deadline]:
    """Open returns past their due time, oldest first (the performance team's chase list)."""
    now = now or utcnow()
    return list(
        db.session.scalars(
            sa.select(Deadline)
            .where(Deadline.kind == RETURN_KIND, Deadline.status == "open", Deadline.due_at < now)
            .order_by(Deadline.due_at)
        )
    )


def repeated_missers(now: datetime | None = None) -> dict[int, int]:
    """Units whose last N returns were each late or still missing: unit id -> N.

    N is the framework's ``missed_returns_exception``.
    """
    now = now or utcnow()
    result = {}
    for unit in db.session.scalars(sa.select(Unit).where(Unit.is_active.is_(True))):
        needed = get_framework(unit.framework).monthly_returns["missed_returns_exception"]
        recent = db.session.scalars(
            sa.select(Deadline)
            .where(Deadline.unit_id == unit.id, Deadline.kind == RETURN_KIND, Deadline.due_at < now)
            .order_by(Deadline.due_at.desc())
            .limit(needed)
        ).all()
        if len(recent) < needed:
            continue
        missed = [
            d
            for d in recent
            if d.status == "open" or (d.completed_at is not None and d.completed_at > d.due_at)
        ]
        if len(missed) == needed:
            result[unit.id] = needed
    return result
