"""Plans in delivery made directly with the models (no authoring flow), for the delivery and
export tests: ``pytest_plugins = ["tests.plans.delivery_fixtures"]``.

``delivery_measure``, ``delivery_actuals`` and ``delivery_plan`` are factories (prefixed so they
never clash with the authoring tests' fixtures). ``delivery_setup`` is a unit at Level 2a with
a lead, a budget holder, an action owner and a plan approved on 14 May 2026 in delivery,
targeting one measure (RTT, higher is better, target 92%) and one lower-is-better measure
(WAIT), with two actions. The clock fixture puts "today" at 23 November 2026, so October 2026
is last month.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import sqlalchemy as sa

from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase
from workflow_app.models.measures import Measure, MonthlyActual, TrajectoryValue
from workflow_app.models.plans import PlanAction, PlanTrajectoryPoint, RecoveryPlan

APPROVED_AT = datetime(2026, 5, 14, 11, 0, tzinfo=UTC)


def month(year: int, m: int) -> date:
    return date(year, m, 1)


def case_of(unit, track: str = "performance") -> EscalationCase:
    return db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == track
        )
    )


@pytest.fixture
def delivery_measure(app, create_domain):
    def factory(
        unit,
        code: str,
        *,
        target: float,
        direction: str = "higher_is_better",
        domain: tuple[str, str] = ("access_activity", "Access & Activity"),
        kind: str = "national_target",
        unit_of_measure: str = "percent",
        name: str | None = None,
        local: dict[date, float] | None = None,
    ) -> Measure:
        measure = Measure(
            unit_id=unit.id,
            domain_id=create_domain(*domain).id,
            code=code,
            name=name or f"Measure {code}",
            kind=kind,
            target=Decimal(str(target)),
            direction=direction,
            unit_of_measure=unit_of_measure,
        )
        db.session.add(measure)
        db.session.flush()
        for period, value in (local or {}).items():
            db.session.add(
                TrajectoryValue(measure_id=measure.id, period=period, value=Decimal(str(value)))
            )
        db.session.commit()
        return measure

    return factory


@pytest.fixture
def delivery_actuals(app):
    def add(measure: Measure, values: dict[date, float], revision: int = 1) -> None:
        for period, value in values.items():
            db.session.add(
                MonthlyActual(
                    measure_id=measure.id,
                    period=period,
                    value=Decimal(str(value)),
                    revision=revision,
                )
            )
        db.session.commit()

    return add


@pytest.fixture
def delivery_plan(app):
    def factory(
        unit,
        *,
        track: str = "performance",
        level: str | None = "2a",
        status: str = "in_delivery",
        approved_at: datetime | None = APPROVED_AT,
        trajectory: dict[Measure, dict[date, float]] | None = None,
        actions: list[dict] | None = None,
        kind: str = "recovery_plan",
        title: str = "Recovery plan for elective waits",
        **fields,
    ) -> RecoveryPlan:
        case = case_of(unit, track)
        if level is not None and case.level != level:
            case.level = level
        plan = RecoveryPlan(
            case_id=case.id,
            unit_id=unit.id,
            kind=kind,
            title=title,
            status=status,
            approved_at=approved_at,
            current_version=1 if approved_at else 0,
            **fields,
        )
        for position, spec in enumerate(actions or []):
            plan.actions.append(PlanAction(position=position, **spec))
        for measure, values in (trajectory or {}).items():
            for period, value in values.items():
                plan.trajectory.append(
                    PlanTrajectoryPoint(
                        measure_id=measure.id, period=period, planned_value=Decimal(str(value))
                    )
                )
        db.session.add(plan)
        db.session.commit()
        return plan

    return factory


@dataclass
class PlanSetup:
    unit: object
    lead: object
    holder: object
    owner: object
    rtt: Measure
    wait: Measure
    plan: RecoveryPlan

    @property
    def actions(self) -> list[PlanAction]:
        return list(self.plan.actions)


# RTT (higher is better, target 92%): the plan climbs from 80% in June 2026 to 92% in March 2027.
RTT_PLAN = {
    month(2026, 6): 80,
    month(2026, 7): 82,
    month(2026, 8): 84,
    month(2026, 9): 85,
    month(2026, 10): 86,
    month(2026, 11): 87,
    month(2026, 12): 88,
    month(2027, 1): 89,
    month(2027, 2): 90,
    month(2027, 3): 92,
}
# WAIT (lower is better, target 18 weeks): the plan brings it down from 30 to 20.
WAIT_PLAN = {month(2026, m): 30 - (m - 6) * 2 for m in range(6, 11)}


@pytest.fixture
def delivery_setup(clock, create_person, create_unit, delivery_measure, delivery_plan) -> PlanSetup:
    lead = create_person("directorate_lead", name="Lena Lead")
    holder = create_person("directorate_lead", name="Bob Budget")
    owner = create_person("directorate_lead", name="Olu Owner")
    unit = create_unit(lead=lead, name="Planned Care", budget_holder_id=holder.id)
    rtt = delivery_measure(unit, "RTT", target=92, name="Referral to treatment within 18 weeks")
    wait = delivery_measure(
        unit,
        "WAIT",
        target=18,
        direction="lower_is_better",
        unit_of_measure="weeks",
        name="Median wait",
        local={month(2026, 10): 25},
    )
    plan = delivery_plan(
        unit,
        trajectory={rtt: RTT_PLAN, wait: WAIT_PLAN},
        actions=[
            {
                "description": "Open a second theatre list on Saturdays",
                "measure_id": rtt.id,
                "expected_effect": "+4 points by March",
                "owner_id": lead.id,
                "due_on": date(2027, 3, 31),
            },
            {
                "description": "Validate the waiting list",
                "measure_id": wait.id,
                "expected_effect": "-6 weeks",
                "owner_id": owner.id,
                "due_on": date(2026, 12, 31),
            },
        ],
        headlines="Waits are falling for the third month running.",
        narrative="Theatre capacity is the constraint.\nA second list starts in December.",
        queries="Funding for weekend lists is not yet agreed.",
        risk_level="high",
    )
    return PlanSetup(unit, lead, holder, owner, rtt, wait, plan)
