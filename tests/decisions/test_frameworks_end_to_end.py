"""Each framework end to end at service level: data -> review -> proposal -> decision ->
letter -> deadlines -> notifications (iqpf is covered in test_decide.py)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from tests.conftest import PASSWORD
from workflow_app.extensions import db
from workflow_app.models.cases import Concern, EscalationCase
from workflow_app.models.deadlines import Deadline
from workflow_app.models.letters import Letter
from workflow_app.models.measures import Measure, MonthlyActual, TrajectoryValue
from workflow_app.models.outbox import OutboxMessage
from workflow_app.services.decisions import decide_proposal
from workflow_app.services.review import run_review


def test_system_tiers_two_months_under_target_to_an_improvement_plan(
    create_person, create_unit, create_domain
):
    analyst = create_person("performance_team", name="Pat Analyst", email="pat@example.nhs.uk")
    lead = create_person("directorate_lead", name="Lee Lead", email="lee@example.nhs.uk")
    unit = create_unit(framework="system_tiers", name="Elective Care", lead=lead)
    measure = Measure(
        unit_id=unit.id,
        domain_id=create_domain().id,
        code="RTT18",
        name="RTT within 18 weeks",
        target=92,
        direction="higher_is_better",
        unit_of_measure="percent",
        kind="national_target",
    )
    db.session.add(measure)
    db.session.flush()
    for month, value in ((5, 93), (6, 94), (7, 93), (8, 92.5), (9, 89), (10, 88)):
        db.session.add(
            MonthlyActual(measure_id=measure.id, period=date(2026, month, 1), value=value)
        )
        db.session.add(
            TrajectoryValue(measure_id=measure.id, period=date(2026, month, 1), value=92)
        )
    db.session.commit()
    outcome = run_review(date(2026, 10, 1))
    db.session.commit()
    (proposal,) = outcome.created
    assert proposal.case.track == "measure:RTT18"
    assert (proposal.from_level, proposal.to_level) == ("performing", "improvement_plan")
    assert "2 consecutive months" in proposal.reason or "Sep" in proposal.reason
    decide_proposal(
        analyst, proposal, outcome="approve", reason="Agreed at the P&P meeting", password=PASSWORD
    )
    db.session.commit()
    case = db.session.get(EscalationCase, proposal.case_id)
    assert case.level == "improvement_plan"
    assert db.session.scalar(sa.select(Letter.kind)) == "improvement_plan_required"
    kinds = set(db.session.scalars(sa.select(Deadline.kind)))
    assert {"improvement_plan_due", "risk_assessment_due"} <= kinds
    assert (
        db.session.scalar(
            sa.select(OutboxMessage.to_address).where(OutboxMessage.kind == "decision")
        )
        == lead.email
    )


def test_nhs_wales_a_serious_concern_to_enhanced_monitoring(
    create_person, create_unit, create_domain
):
    dg = create_person("director_general", name="Dai General", email="dg@example.gov.wales")
    chief = create_person("directorate_lead", name="Org Chief", email="chief@example.nhs.wales")
    unit = create_unit(framework="nhs_wales", kind="organisation", name="Health Board", lead=chief)
    domain = create_domain("quality", "Quality")
    db.session.add(
        Concern(
            unit_id=unit.id,
            domain_id=domain.id,
            kind="inspection",
            severity="serious",
            summary="HIW: immediate assurance required",
            occurred_on=date(2026, 10, 8),
        )
    )
    db.session.commit()
    outcome = run_review(date(2026, 10, 1))
    db.session.commit()
    assert outcome.created, "a serious quality concern proposes escalation on the quality pillar"
    proposal = outcome.created[0]
    assert proposal.case.track == "quality"
    assert proposal.signature_rule == "director_general"
    decide_proposal(
        dg,
        proposal,
        outcome="approve",
        reason="Agreed with officials",
        password=PASSWORD,
        meeting_reference="Tripartite meeting 12 November 2026",
    )
    db.session.commit()
    case = db.session.get(EscalationCase, proposal.case_id)
    assert case.level == proposal.to_level != "1"
    letter = db.session.scalar(sa.select(Letter))
    assert letter is not None and "Health Board" in letter.html
    titles = {d.title for d in db.session.scalars(sa.select(Deadline))}
    assert "CEO / Executive review" in titles  # the new level's review cadence
