"""A submitted plan version is kept as sent: the database refuses to change or delete it."""

from __future__ import annotations

import hashlib

import pytest
import sqlalchemy as sa

from workflow_app.extensions import db


def test_the_database_refuses_to_change_or_delete_a_submitted_version(
    app, create_person, create_unit
):
    from workflow_app.models.cases import EscalationCase
    from workflow_app.models.plans import PlanVersion, RecoveryPlan

    lead = create_person("directorate_lead")
    unit = create_unit(lead=lead)
    case = db.session.scalar(sa.select(EscalationCase).where(EscalationCase.unit_id == unit.id))
    plan = RecoveryPlan(case=case, unit=unit, title="Recovery plan", status="submitted")
    content = '{"summary": "Theatre lists restored"}'
    version = PlanVersion(
        plan=plan,
        number=1,
        content=content,
        content_sha256=hashlib.sha256(content.encode()).hexdigest(),
        submitted_by_id=lead.id,
    )
    db.session.add_all([plan, version])
    db.session.commit()

    for statement in (
        "UPDATE plan_versions SET content = '{}'",
        "UPDATE plan_versions SET number = 2",
        "DELETE FROM plan_versions",
    ):
        with pytest.raises(sa.exc.DatabaseError, match="immutable"):
            db.session.execute(sa.text(statement))
            db.session.flush()
        db.session.rollback()

    # The review outcome is recorded on the version; that is allowed.
    db.session.execute(sa.text("UPDATE plan_versions SET outcome = 'returned'"))
    db.session.commit()
    stored = db.session.scalar(sa.select(PlanVersion))
    assert stored.content == content
    assert stored.outcome == "returned"
