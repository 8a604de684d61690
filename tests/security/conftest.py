"""A small organisation for the security checks (issue 9, RELIABILITY-ANCHORS checks 12,
13, 18, 19): two units with their leads, one person per role, and one object of every kind
belonging to unit B, so that every URL parameter of every route can be filled in.

``world`` is built through the real services (a monthly review proposal signed by the CEO
takes unit B to 2b on finance with its letter, deadlines, meeting and e-mails; an executive
raises and decides 2a on performance, which asks for a recovery plan that B's lead starts).
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from types import SimpleNamespace

import pytest
import sqlalchemy as sa

from tests.conftest import PASSWORD, sign_in
from workflow_app.extensions import db

ROLES = (
    "anonymous",
    "ceo",
    "executive_director",
    "directorate_lead",  # the lead of unit A, looking at unit B's objects (IDOR)
    "performance_team",
    "committee_member",
    "system_admin",
)

OCT = date(2026, 10, 1)
DECIDED_AT = datetime(2026, 11, 23, 10, 0, tzinfo=UTC)


def table_counts() -> dict[str, int]:
    """Row count of every table."""
    db.session.expire_all()
    return {
        table.name: db.session.scalar(sa.select(sa.func.count()).select_from(table))
        for table in db.metadata.sorted_tables
    }


def snapshot() -> dict[str, int]:
    """A digest of every row of every table: the 'nothing changed at all' check (updates
    included, which row counts miss)."""
    db.session.expire_all()
    digests = {}
    for table in db.metadata.sorted_tables:
        rows = db.session.execute(sa.select(table).order_by(*table.primary_key.columns)).all()
        digests[table.name] = hash(tuple(tuple(map(repr, row)) for row in rows))
    db.session.rollback()
    return digests


def build_world(create_person, create_unit, create_domain):
    from workflow_app.models.cases import EscalationCase
    from workflow_app.models.deadlines import Deadline
    from workflow_app.models.imports import ImportBatch
    from workflow_app.models.letters import Letter
    from workflow_app.models.measures import FinancePosition, Measure
    from workflow_app.models.meetings import Meeting
    from workflow_app.models.outbox import OutboxMessage
    from workflow_app.services.decisions import decide_proposal, raise_escalation
    from workflow_app.services.plans import start_plan
    from workflow_app.services.review import run_review

    people = {
        role: create_person(role, name=f"The {role.replace('_', ' ')}")
        for role in ROLES
        if role != "anonymous"
    }
    lead_b = create_person("directorate_lead", name="Lead of B")
    unit_a = create_unit(code="UA", name="Unit A", lead=people["directorate_lead"])
    unit_b = create_unit(
        code="UB",
        name="Unit B",
        lead=lead_b,
        budget_holder_id=lead_b.id,
        accountable_executive_id=people["executive_director"].id,
    )
    domain = create_domain()
    measure = Measure(
        unit_id=unit_b.id,
        domain_id=domain.id,
        code="RTT18",
        name="Referral to treatment",
        kind="national_target",
        target=Decimal(92),
        direction="higher_is_better",
        unit_of_measure="percent",
    )
    db.session.add(measure)
    db.session.add(
        FinancePosition(
            unit_id=unit_b.id, period=OCT, ytd_variance=742_310, forecast_variance=968_400
        )
    )
    db.session.commit()

    def case_of(track):
        return db.session.scalar(
            sa.select(EscalationCase).where(
                EscalationCase.unit_id == unit_b.id, EscalationCase.track == track
            )
        )

    (finance_decision,) = run_review(OCT).created
    db.session.commit()
    decide_proposal(
        people["ceo"],
        finance_decision,
        outcome="approve",
        reason="Overspend confirmed",
        password=PASSWORD,
        now=DECIDED_AT,
    )
    db.session.commit()
    performance = case_of("performance")
    decision = raise_escalation(
        people["executive_director"],
        performance,
        to_level="2a",
        reason="Referral to treatment below target",
        evidence_note="RTT18 at 76%, 77%, 76%",
    )
    db.session.commit()
    decide_proposal(
        people["executive_director"],
        decision,
        outcome="approve",
        reason="Sustained deterioration",
        password=PASSWORD,
        meeting_reference="Executive Team, item 4",
    )
    db.session.commit()
    plan = start_plan(lead_b, performance)
    db.session.commit()
    batch = ImportBatch(
        filename="returns.csv",
        sha256="0" * 64,
        kind="performance",
        uploaded_by_id=people["performance_team"].id,
        content=b"",
    )
    db.session.add(batch)
    db.session.commit()

    def first(model, *where):
        obj = db.session.scalar(sa.select(model).where(*where).order_by(model.id))
        assert obj is not None, model.__name__
        return obj

    ids = {
        "unit_id": unit_b.id,
        "case_id": performance.id,
        "decision_id": decision.id,
        "letter_id": first(Letter).id,
        "deadline_id": first(Deadline, Deadline.case_id == performance.id).id,
        "plan_id": plan.id,
        "number": 1,
        "meeting_id": first(Meeting).id,
        "batch_id": batch.id,
        "message_id": first(OutboxMessage).id,
        "measure_id": measure.id,
        "person_id": lead_b.id,
        "role": "directorate_lead",
        "token": "not-a-real-reset-token",
        "name": "iqpf",
        "ext": "csv",
        "filename": "css/escalate.css",
    }
    return SimpleNamespace(people=people, lead_b=lead_b, unit_a=unit_a, unit_b=unit_b, ids=ids)


@pytest.fixture
def world(app, clock, create_person, create_unit, create_domain):
    clock.move_to(DECIDED_AT)
    return build_world(create_person, create_unit, create_domain)


@pytest.fixture
def clients(app, world):
    """One signed-in test client per role (``anonymous`` is signed out)."""
    result = {"anonymous": app.test_client()}
    for role, person in world.people.items():
        client = app.test_client()
        assert sign_in(client, person.email).status_code == 302, role
        result[role] = client
    return result
