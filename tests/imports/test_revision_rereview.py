"""A corrected finance return, loaded through the import, supersedes the pending proposal."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from tests.imports.conftest import csv_bytes
from workflow_app.extensions import db
from workflow_app.imports.batches import create_batch, load_batch
from workflow_app.models.cases import Decision
from workflow_app.services.review import run_review

FINANCE = """
unit_code,month,ytd_variance,forecast_variance
SURG,2026-10,{ytd},968400
"""


def load(analyst, ytd: str, name: str):
    batch = create_batch(analyst, name, csv_bytes(FINANCE.format(ytd=ytd)))
    result = load_batch(analyst, batch, only_valid=False)
    db.session.commit()
    return result


def test_corrected_return_supersedes_the_pending_proposal(world):
    analyst = world["analyst"]
    load(analyst, "742310", "finance-oct.csv")
    (first,) = run_review(date(2026, 10, 1)).created
    db.session.commit()
    assert "£742,310" in first.reason

    result = load(analyst, "801000", "finance-oct-corrected.csv")
    assert result.revised == 1
    pending = db.session.scalars(sa.select(Decision).where(Decision.status == "pending")).all()
    assert len(pending) == 1 and pending[0].supersedes_id == first.id
    assert "£801,000" in pending[0].reason
    db.session.refresh(first)
    assert first.status == "superseded"

    again = load(analyst, "801000", "finance-oct-corrected-again.csv")  # same values
    assert again.revised == 0
    assert db.session.scalar(sa.select(sa.func.count(Decision.id))) == 2
