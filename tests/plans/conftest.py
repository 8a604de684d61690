"""A unit whose performance case is at Level 2a with a "Recovery plan due" deadline, the
people around it (lead, accountable executive, performance team reviewer, another unit's lead)
and a SMART plan's data, for the plan authoring and review tests."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORD
from workflow_app.extensions import db


@dataclass
class PlanWorld:
    lead: object
    executive: object
    reviewer: object
    other_lead: object
    unit: object
    other_unit: object
    case: object
    decision: object
    deadline: object
    measures: dict
    domains: dict

    def smart_data(self, **changes) -> dict:
        """Data for save_draft that passes the SMART check (two actions, a trajectory)."""
        data = {
            "summary": "Referral to treatment has fallen below 80% for three months.",
            "risk_assessment": "Long waits raise the risk of harm; clinical review of the list.",
            "risk_level": "high",
            "support_requested": "Two locum consultants for six months.",
            "headlines": "",
            "narrative": "",
            "queries": "",
            "actions": [
                {
                    "id": None,
                    "description": "Run weekend theatre lists for orthopaedics",
                    "measure_id": self.measures["RTT18"].id,
                    "expected_effect": "from 76% to 85% by March 2027",
                    "owner_id": self.lead.id,
                    "resources": "Theatre staff overtime, £120k",
                    "domain_id": self.domains["access"].id,
                    "deliverable": "Orthopaedic backlog cleared",
                    "due_on": date(2027, 3, 31),
                    "milestones": "31/01/2027 first lists running",
                },
                {
                    "id": None,
                    "description": "Validate the waiting list with every patient",
                    "measure_id": self.measures["RTT18"].id,
                    "expected_effect": "2 percentage points",
                    "owner_id": self.executive.id,
                    "resources": "Two administrators for three months",
                    "domain_id": self.domains["quality"].id,
                    "deliverable": "",
                    "due_on": date(2027, 2, 26),
                    "milestones": "",
                },
            ],
            "trajectory": [
                {
                    "measure_id": self.measures["RTT18"].id,
                    "period": date(2026, 12, 1),
                    "planned_value": Decimal("78"),
                },
                {
                    "measure_id": self.measures["RTT18"].id,
                    "period": date(2027, 3, 1),
                    "planned_value": Decimal("85"),
                },
            ],
        }
        data.update(changes)
        return data


@pytest.fixture
def world(app, clock, create_person, create_unit, create_domain) -> PlanWorld:
    """Built on Monday 23 November 2026 (the clock fixture; time still ticks)."""
    from workflow_app.models.cases import EscalationCase
    from workflow_app.models.deadlines import Deadline
    from workflow_app.models.measures import Measure
    from workflow_app.services.decisions import decide_proposal, raise_escalation

    domains = {
        "access": create_domain("access_activity", "Access & Activity"),
        "quality": create_domain("quality_safety_experience", "Quality, Safety & Experience"),
    }
    lead = create_person("directorate_lead", name="Lee Lead", email="lead@example.nhs.uk")
    executive = create_person("executive_director", name="Eve Exec", email="exec@example.nhs.uk")
    reviewer = create_person(
        "performance_team", name="Pat Performance", email="perf@example.nhs.uk"
    )
    other_lead = create_person("directorate_lead", name="Olly Other", email="other@example.nhs.uk")
    unit = create_unit(
        code="SURG",
        name="Surgery",
        lead=lead,
        accountable_executive_id=executive.id,
        budget_holder_id=lead.id,
    )
    other_unit = create_unit(code="MED", name="Medicine", lead=other_lead)
    measures = {}
    for code, name, target in (
        ("RTT18", "Referral to treatment in 18 weeks", 92),
        ("ED4", "Four-hour A&E", 95),
    ):
        measure = Measure(
            unit_id=unit.id,
            domain_id=domains["access"].id,
            code=code,
            name=name,
            kind="national_target",
            target=Decimal(target),
            direction="higher_is_better",
            unit_of_measure="percent",
        )
        db.session.add(measure)
        measures[code] = measure
    foreign = Measure(
        unit_id=other_unit.id,
        domain_id=domains["access"].id,
        code="RTT18",
        name="Referral to treatment (Medicine)",
        target=Decimal(92),
        direction="higher_is_better",
        unit_of_measure="percent",
    )
    db.session.add(foreign)
    measures["foreign"] = foreign
    db.session.commit()
    case = db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == "performance"
        )
    )
    decision = raise_escalation(
        executive,
        case,
        to_level="2a",
        reason="Referral to treatment below target for three months",
        evidence_note="RTT18 at 76%, 77%, 76% in Aug-Oct 2026",
    )
    db.session.commit()
    decide_proposal(
        executive,
        decision,
        outcome="approve",
        reason="Sustained deterioration",
        password=PASSWORD,
        meeting_reference="Executive Team, 23 November 2026, item 4",
    )
    db.session.commit()
    deadline = db.session.scalar(
        sa.select(Deadline).where(Deadline.case_id == case.id, Deadline.kind == "recovery_plan_due")
    )
    assert case.level == "2a" and deadline is not None
    return PlanWorld(
        lead=lead,
        executive=executive,
        reviewer=reviewer,
        other_lead=other_lead,
        unit=unit,
        other_unit=other_unit,
        case=case,
        decision=decision,
        deadline=deadline,
        measures=measures,
        domains=domains,
    )


@pytest.fixture
def draft(world):
    """A started plan whose working copy passes the SMART check (not yet submitted)."""
    from workflow_app.services.plans import save_draft, start_plan

    plan = start_plan(world.lead, world.case)
    db.session.commit()
    save_draft(world.lead, plan, world.smart_data(), plan.lock_version)
    db.session.commit()
    return plan
