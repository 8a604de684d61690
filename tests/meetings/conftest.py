"""A health board with a CEO, three Executive Directors, the performance team and a unit
whose budget holder is not its lead; and a helper that takes the unit to Level 2b through the
real path (finance return -> monthly review -> the CEO's signed decision)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORD
from workflow_app.extensions import db
from workflow_app.models.measures import FinancePosition
from workflow_app.models.meetings import Meeting
from workflow_app.services.decisions import decide_proposal
from workflow_app.services.review import run_review

OCT = date(2026, 10, 1)
#: Friday 11 December 2026, 10:00 UTC: 15 working days later, across Christmas Day (Fri 25),
#: Boxing Day's substitute bank holiday (Mon 28) and New Year's Day (Fri 1 Jan), is
#: Wednesday 6 January 2027.
DECIDED_AT = datetime(2026, 12, 11, 10, 0, tzinfo=UTC)


@pytest.fixture
def board(create_person, create_unit):
    ceo = create_person("ceo", name="Carys Chief", email="ceo@example.nhs.uk")
    execs = [
        create_person("executive_director", name=name, email=f"{slug}@example.nhs.uk")
        for name, slug in (
            ("Eve Exec", "eve"),
            ("Finn Finance", "finn"),
            ("Nia Nursing", "nia"),
        )
    ]
    performance = create_person("performance_team", name="Pat Analyst", email="pat@example.nhs.uk")
    lead = create_person("directorate_lead", name="Lee Lead", email="lee@example.nhs.uk")
    holder = create_person("directorate_lead", name="Bea Budget", email="bea@example.nhs.uk")
    team = [
        create_person(name=f"Team Member {n}", email=f"team{n}@example.nhs.uk") for n in range(1, 5)
    ]
    stranger = create_person("directorate_lead", name="Olly Other", email="olly@example.nhs.uk")
    unit = create_unit(
        code="SURG",
        name="Surgery",
        lead=lead,
        accountable_executive_id=execs[0].id,
        budget_holder_id=holder.id,
    )
    other_unit = create_unit(code="MED", name="Medicine", lead=stranger)
    return SimpleNamespace(
        ceo=ceo,
        execs=execs,
        performance=performance,
        lead=lead,
        holder=holder,
        team=team,
        stranger=stranger,
        unit=unit,
        other_unit=other_unit,
    )


def approve_2b(board, now: datetime = DECIDED_AT):
    """The unit's October overspend, the monthly review's proposal, the CEO's approval."""
    db.session.add(
        FinancePosition(
            unit_id=board.unit.id, period=OCT, ytd_variance=742_310, forecast_variance=968_400
        )
    )
    db.session.commit()
    (proposal,) = run_review(OCT).created
    db.session.commit()
    decide_proposal(
        board.ceo,
        proposal,
        outcome="approve",
        reason="Overspend confirmed",
        password=PASSWORD,
        now=now,
    )
    db.session.commit()
    return proposal


@pytest.fixture
def budget_review(board, clock):
    """The requested Budget Review Meeting of a unit just moved to Level 2b."""
    clock.move_to(DECIDED_AT)
    decision = approve_2b(board)
    return db.session.scalar(sa.select(Meeting).where(Meeting.decision_id == decision.id))
