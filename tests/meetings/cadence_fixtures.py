"""Helpers for the cadence-meeting and earned-autonomy tests (issue #7): a health board with
a CEO, two Executive Directors, the performance team, an NHS Wales Director General and
Minister, a framework A directorate and an NHS Wales organisation; level changes through the
real signing path; and green months of data.

Plain functions (not fixtures), so each test module wraps them in its own fixture and nothing
here clashes with ``tests/meetings/conftest.py``.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from types import SimpleNamespace

import sqlalchemy as sa

from tests.conftest import PASSWORD
from workflow_app.extensions import db
from workflow_app.models.cases import Decision, EscalationCase
from workflow_app.models.meetings import Meeting
from workflow_app.models.org import Domain, Unit
from workflow_app.services.decisions import decide_proposal, raise_escalation

#: Thursday 15 October 2026, 10:00 London: in the third quarter of the 2026/27 financial year.
NOW = datetime(2026, 10, 15, 9, 0, tzinfo=UTC)
MEETING_REFERENCE = "Executive Team, 15 October 2026, item 4"


def make_board(create_person, create_unit) -> SimpleNamespace:
    """The people and two units: Surgery (framework A directorate), Powys (NHS Wales)."""
    ceo = create_person("ceo", name="Carys Chief", email="ceo@example.nhs.uk")
    exec_a = create_person("executive_director", name="Eve Exec", email="eve@example.nhs.uk")
    exec_b = create_person("executive_director", name="Finn Finance", email="finn@example.nhs.uk")
    performance = create_person("performance_team", name="Pat Analyst", email="pat@example.nhs.uk")
    lead = create_person("directorate_lead", name="Lee Lead", email="lee@example.nhs.uk")
    holder = create_person("directorate_lead", name="Bea Budget", email="bea@example.nhs.uk")
    director_general = create_person(
        "director_general", name="Dai General", email="dg@example.gov.wales"
    )
    minister = create_person("minister", name="Mari Minister", email="minister@example.gov.wales")
    org_ceo = create_person(name="Owain Org", email="owain@example.wales.nhs.uk")
    unit = create_unit(
        code="SURG",
        name="Surgery",
        lead=lead,
        accountable_executive_id=exec_a.id,
        budget_holder_id=holder.id,
    )
    wales = create_unit(
        code="PTHB",
        name="Powys Teaching Health Board",
        framework="nhs_wales",
        kind="organisation",
        lead=org_ceo,
        accountable_executive_id=org_ceo.id,
    )
    return SimpleNamespace(
        ceo=ceo,
        execs=[exec_a, exec_b],
        performance=performance,
        lead=lead,
        holder=holder,
        director_general=director_general,
        minister=minister,
        org_ceo=org_ceo,
        unit=unit,
        wales=wales,
    )


def case_of(unit: Unit, track: str) -> EscalationCase:
    return db.session.scalar(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.track == track
        )
    )


def move(
    board,
    unit: Unit,
    track: str,
    to_level: str,
    *,
    now: datetime,
    signers=None,
    support_options: dict | None = None,
) -> Decision:
    """Raise a move by hand and sign it through ``decide_proposal`` (committed)."""
    case = case_of(unit, track)
    decision = raise_escalation(
        board.performance,
        case,
        to_level=to_level,
        reason=f"Moved to {to_level} for the test",
        evidence_note="Figures in the monthly pack",
        now=now,
    )
    db.session.commit()
    for signer in signers or [board.ceo]:
        decide_proposal(
            signer,
            decision,
            outcome="approve",
            reason="Agreed",
            password=PASSWORD,
            meeting_reference=MEETING_REFERENCE,
            support_options=support_options,
            now=now,
        )
        db.session.commit()
    assert decision.status == "approved"
    return decision


def meetings_of(unit: Unit, *, status: str | None = None, kind: str | None = None):
    query = sa.select(Meeting).where(Meeting.unit_id == unit.id)
    if status:
        query = query.where(Meeting.status == status)
    if kind:
        query = query.where(Meeting.kind == kind)
    return list(db.session.scalars(query.order_by(Meeting.hold_by, Meeting.id)))


def summary(meetings) -> list[tuple[str, str, date | None]]:
    return [(m.kind, m.status, m.hold_by) for m in meetings]


def add_measures(unit: Unit, count: int = 2):
    """``count`` measures (higher is better, target 90) on a fresh domain."""
    from workflow_app.models.measures import Measure

    domain = db.session.scalar(sa.select(Domain).where(Domain.code == "access_activity"))
    if domain is None:
        domain = Domain(code="access_activity", name="Access & Activity")
        db.session.add(domain)
        db.session.flush()
    measures = []
    for n in range(1, count + 1):
        measure = Measure(
            unit_id=unit.id,
            domain_id=domain.id,
            code=f"M{unit.id}-{n}",
            name=f"Measure {n}",
            target=90,
            direction="higher_is_better",
            unit_of_measure="percent",
            kind="key_deliverable",
        )
        db.session.add(measure)
        measures.append(measure)
    db.session.commit()
    return measures


def month(year: int, m: int) -> date:
    return date(year, m, 1)


def record_months(unit: Unit, measures, months, *, value=95.0, overrides=None, finance=True):
    """Actuals for every measure in each month (``overrides``: {(measure index, month): v})
    and a finance return within the thresholds."""
    from workflow_app.models.measures import FinancePosition, MonthlyActual

    overrides = overrides or {}
    for period in months:
        for i, measure in enumerate(measures):
            db.session.add(
                MonthlyActual(
                    measure_id=measure.id,
                    period=period,
                    value=overrides.get((i, period), value),
                )
            )
        if finance:
            db.session.add(
                FinancePosition(
                    unit_id=unit.id, period=period, ytd_variance=-20_000, forecast_variance=10_000
                )
            )
    db.session.commit()
