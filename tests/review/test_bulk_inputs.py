"""The review loads every unit's inputs with a few set-based queries (``unit_inputs``); they
must be exactly what ``unit_input`` reads unit by unit (decision 0035)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from workflow_app.demo import load_demo
from workflow_app.evaluation import ConcernInput, FinancePoint, MeasureInput, MonthPoint, UnitInput
from workflow_app.extensions import db
from workflow_app.models.cases import Concern, EscalationCase
from workflow_app.models.measures import FinancePosition, Measure, TrajectoryValue
from workflow_app.models.org import Unit
from workflow_app.services.review import (
    HISTORY_MONTHS,
    _months_back,
    latest_actuals,
    unit_input,
    unit_inputs,
)


def reference_unit_input(unit: Unit, period: date) -> UnitInput:
    """``unit_input`` as it was before decision 0035: several queries per unit."""
    start = _months_back(period, HISTORY_MONTHS - 1)
    months = [_months_back(period, n) for n in range(HISTORY_MONTHS - 1, -1, -1)]
    measures = db.session.scalars(
        sa.select(Measure)
        .where(Measure.unit_id == unit.id, Measure.is_active.is_(True))
        .order_by(Measure.code)
    ).all()
    ids = [m.id for m in measures]
    actuals = latest_actuals(ids, start, period)
    trajectories = (
        {
            (t.measure_id, t.period): float(t.value)
            for t in db.session.scalars(
                sa.select(TrajectoryValue).where(
                    TrajectoryValue.measure_id.in_(ids),
                    TrajectoryValue.period.between(start, period),
                )
            )
        }
        if ids
        else {}
    )
    # The unit's plans; a plan's planned values are its measures' trajectory for those months.
    from workflow_app.services.plan_delivery import plans_for_review

    plans, planned = plans_for_review(unit, start, period)
    trajectories.update(planned)
    measure_inputs = tuple(
        MeasureInput(
            code=m.code,
            name=m.name,
            domain=m.domain.code,
            kind=m.kind,
            target=float(m.target),
            direction=m.direction,
            tolerance=float(m.tolerance) if m.tolerance is not None else None,
            unit_of_measure=m.unit_of_measure,
            series=tuple(
                MonthPoint(p, actuals.get((m.id, p)), trajectories.get((m.id, p))) for p in months
            ),
        )
        for m in measures
    )
    finance_rows = db.session.scalars(
        sa.select(FinancePosition)
        .where(FinancePosition.unit_id == unit.id, FinancePosition.period.between(start, period))
        .order_by(FinancePosition.period, FinancePosition.revision)
    ).all()
    latest_finance: dict[date, FinancePosition] = {}
    for row in finance_rows:
        latest_finance[row.period] = row  # ordered by revision: the last one wins
    finance = tuple(
        FinancePoint(p, float(r.ytd_variance), float(r.forecast_variance))
        for p, r in sorted(latest_finance.items())
    )
    concerns = tuple(
        ConcernInput(
            kind=c.kind,
            severity=c.severity,
            domain=c.domain.code,
            summary=c.summary,
            occurred_on=c.occurred_on or c.recorded_at.date(),
        )
        for c in db.session.scalars(sa.select(Concern).where(Concern.unit_id == unit.id))
    )
    cases = db.session.scalars(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.framework == unit.framework
        )
    ).all()
    levels = {case.track: case.level for case in cases}
    level_since = {case.track: case.level_since.date() for case in cases}
    return UnitInput(
        code=unit.code,
        name=unit.name,
        kind=unit.kind,
        framework=unit.framework,
        levels=levels,
        measures=measure_inputs,
        finance=finance,
        concerns=concerns,
        plans=plans,
        level_since=level_since,
    )


def test_bulk_inputs_equal_the_unit_by_unit_inputs_on_the_demo(app):
    load_demo(today=date(2026, 11, 23))
    db.session.commit()
    units = db.session.scalars(sa.select(Unit).order_by(Unit.code)).all()
    # Months before, inside and at the end of the demo's history (plans, concerns, revisions).
    for period in (date(2025, 4, 1), date(2025, 11, 1), date(2026, 3, 1), date(2026, 10, 1)):
        bulk = unit_inputs(units, period)
        assert set(bulk) == {u.id for u in units}
        for unit in units:
            expected = reference_unit_input(unit, period)
            assert bulk[unit.id] == expected, (unit.code, period)
            assert unit_input(unit, period) == expected
    assert any(i.plans for i in bulk.values()), "the demo has plans at its latest month"
    assert any(i.concerns for i in bulk.values())
    assert unit_inputs([], date(2026, 10, 1)) == {}
