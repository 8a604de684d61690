"""Monthly returns: planned after month end, chased when late, closed when complete."""

from __future__ import annotations

from datetime import UTC, date, datetime

import sqlalchemy as sa

from workflow_app.extensions import db
from workflow_app.models.deadlines import Deadline
from workflow_app.models.measures import FinancePosition, Measure, MonthlyActual
from workflow_app.models.outbox import OutboxMessage
from workflow_app.scheduling.jobs import sweep
from workflow_app.services.returns import RETURN_KIND, repeated_missers


def utc(*args) -> datetime:
    return datetime(*args, tzinfo=UTC)


def returns() -> list[Deadline]:
    return db.session.scalars(
        sa.select(Deadline).where(Deadline.kind == RETURN_KIND).order_by(Deadline.due_at)
    ).all()


def add_measure(unit, domain) -> Measure:
    measure = Measure(
        unit_id=unit.id,
        domain_id=domain.id,
        code="RTT18",
        name="RTT",
        target=92,
        direction="higher_is_better",
    )
    db.session.add(measure)
    db.session.commit()
    return measure


def test_returns_are_planned_after_month_end_and_due_five_working_days_later(
    frozen, people_and_unit
):
    lead, executive, unit = people_and_unit
    frozen.move_to(utc(2026, 11, 1, 0, 5))  # just after October ends (Sunday, GMT)
    report = sweep()
    assert report.returns_planned == 1
    (deadline,) = returns()
    # 5 working days after Sat 31 Oct: Mon 2, Tue 3, Wed 4, Thu 5, Fri 6 Nov, 17:00 GMT.
    assert deadline.due_at == utc(2026, 11, 6, 17, 0)
    assert deadline.owner_id == lead.id
    assert "October 2026" in deadline.title
    assert sweep().returns_planned == 0  # once a month


def test_a_late_return_is_chased_and_closes_when_the_data_arrives(
    frozen, people_and_unit, create_domain
):
    lead, executive, unit = people_and_unit
    measure = add_measure(unit, create_domain())
    frozen.move_to(utc(2026, 11, 1, 9, 0))
    sweep()
    frozen.move_to(utc(2026, 11, 9, 8, 0))  # Monday after the due Friday
    sweep()
    chasers = db.session.scalars(
        sa.select(OutboxMessage.subject).where(OutboxMessage.to_address == lead.email)
    ).all()
    assert any(s.startswith("Overdue: Monthly return for October 2026") for s in chasers)

    db.session.add(MonthlyActual(measure_id=measure.id, period=date(2026, 10, 1), value=90))
    db.session.commit()
    assert sweep().returns_closed == 0  # finance still missing
    db.session.add(
        FinancePosition(
            unit_id=unit.id, period=date(2026, 10, 1), ytd_variance=0, forecast_variance=0
        )
    )
    db.session.commit()
    assert sweep().returns_closed == 1
    assert returns()[0].status == "done"


def test_units_missing_returns_repeatedly_are_an_exception(frozen, people_and_unit, create_person):
    lead, executive, unit = people_and_unit
    create_person("performance_team", email="team@example.nhs.uk")
    frozen.move_to(utc(2026, 10, 1, 9, 0))
    sweep()  # September's return
    frozen.move_to(utc(2026, 11, 1, 9, 0))
    sweep()  # October's return
    frozen.move_to(utc(2026, 11, 13, 8, 0))  # October's review day
    assert repeated_missers() == {unit.id: 2}
    assert sweep().monthly_review == "2026-10"
    review = db.session.scalar(
        sa.select(OutboxMessage).where(OutboxMessage.kind == "monthly_review")
    )
    assert "Surgery: the last 2 returns late or missing" in review.body_text
