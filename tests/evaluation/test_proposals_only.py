"""``evaluate_unit(measures=False)``, what the monthly review runs (decision 0041), proposes
exactly what the full evaluation proposes, with the same finance signals and warnings: it only
leaves out the measure evaluations (RAG by month, and the results no trigger asked for).
"""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from state_machines import get_framework
from state_machines.framework import available_frameworks
from workflow_app.demo import load_demo
from workflow_app.evaluation import evaluate_unit
from workflow_app.extensions import db
from workflow_app.models.org import Unit
from workflow_app.services.review import _months_back, unit_inputs

TODAY = date(2026, 11, 23)


def test_the_review_s_evaluation_proposes_what_the_full_evaluation_proposes(app):
    load_demo(today=TODAY)
    db.session.commit()
    units = db.session.scalars(sa.select(Unit).order_by(Unit.code)).all()
    frameworks = [get_framework(name) for name in available_frameworks()]
    assert len(frameworks) >= 3  # iqpf, nhs_wales, system_tiers: every kind of trigger
    compared = proposed = 0
    period = date(2026, 10, 1)
    for _ in range(24):
        inputs = unit_inputs(units, period)
        for unit in units:
            for framework in frameworks:
                full = evaluate_unit(inputs[unit.id], period, framework)
                lean = evaluate_unit(inputs[unit.id], period, framework, measures=False)
                assert lean.measures == ()
                assert full.measures, "the full evaluation has the measures"
                assert repr(lean.proposals) == repr(full.proposals), (unit.code, period)
                assert lean.finance_signals == full.finance_signals
                assert lean.warnings == full.warnings
                compared += 1
                proposed += len(full.proposals)
        period = _months_back(period, 1)
    assert compared == 24 * len(units) * len(frameworks)
    assert proposed > 50, "the demo's history makes proposals under every framework"
