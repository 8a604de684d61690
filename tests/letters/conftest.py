"""Fixtures for the letter tests: a unit with its lead, accountable executive and budget
holder, and a decided decision with two signatures (one by a delegate)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime

import pytest

from workflow_app.extensions import db
from workflow_app.models.cases import Decision, DecisionSignature, EscalationCase

SIGNED_AT = datetime(2026, 11, 14, 11, 30, tzinfo=UTC)
DELEGATE_SIGNED_AT = datetime(2026, 11, 14, 12, 5, tzinfo=UTC)
DUE = date(2026, 12, 7)
MEETING = "Executive Team 14 November 2026"
REASON = (
    "Referral to treatment times have missed trajectory for three consecutive months.\n\n"
    "Cancer 62-day performance has deteriorated in the same period."
)

EVIDENCE = {
    "framework": "iqpf",
    "unit": "SURG",
    "period": "2026-10",
    "rule": {"id": "failing_deliverables", "title": "Failure on more than 1 key deliverable"},
    "signals": [
        {
            "signal": "failing_key_deliverables",
            "sentence": "2 key deliverables are red in October 2026 (2 needed)",
            "measures": [
                {
                    "code": "RTT18",
                    "name": "RTT within 18 weeks",
                    "domain": "access_activity",
                    "target": 92.0,
                    "unit_of_measure": "%",
                    "months": [
                        {"period": "2026-09", "actual": 71.4, "trajectory": 80.0},
                        {"period": "2026-10", "actual": 70.2, "trajectory": 82.5},
                    ],
                },
                {
                    "code": "CAN62",
                    "name": "Cancer 62-day pathway",
                    "domain": "quality_safety_experience",
                    "target": 75.0,
                    "months": [{"period": "2026-10", "actual": 58.0, "trajectory": 70.0}],
                },
            ],
        }
    ],
}


@pytest.fixture
def people(create_person):
    return {
        "lead": create_person("directorate_lead", name="Lee Lead"),
        "executive": create_person("executive_director", name="Eve Executive"),
        "budget": create_person("directorate_lead", name="Bea Budget"),
        "ceo": create_person("ceo", name="Carol Chief"),
        "delegate": create_person("executive_director", name="Dana Delegate"),
    }


@pytest.fixture
def make_decision(create_unit, people):
    """``make_decision(framework, track, from_level, to_level, kind=...)`` -> a decided
    Decision on a new unit's case, signed by the CEO and by a delegate on the CEO's behalf."""
    counter = iter(range(1, 1000))

    def factory(
        framework: str = "iqpf",
        track: str = "performance",
        from_level: str = "1",
        to_level: str = "2a",
        *,
        kind: str = "escalate",
        reason: str = REASON,
        evidence: dict | None = None,
        meeting_reference: str = MEETING,
    ) -> Decision:
        n = next(counter)
        unit_kind = "operational_directorate" if framework == "iqpf" else "organisation"
        unit = create_unit(
            code=f"SURG{n}",
            name=f"Surgery Directorate {n}",
            kind=unit_kind,
            framework=framework,
            lead=people["lead"],
            accountable_executive_id=people["executive"].id,
            budget_holder_id=people["budget"].id,
        )
        case = db.session.query(EscalationCase).filter_by(unit_id=unit.id, track=track).first()
        if case is None:  # per-measure tracks have no case until the measure is added
            case = EscalationCase(unit=unit, framework=framework, track=track, level=from_level)
            db.session.add(case)
            db.session.flush()
        decision = Decision(
            case=case,
            kind=kind,
            from_level=from_level,
            to_level=to_level,
            status="approved",
            signature_rule="executive_team",
            reason=reason,
            evidence=json.dumps(EVIDENCE if evidence is None else evidence),
            meeting_reference=meeting_reference,
            decided_at=DELEGATE_SIGNED_AT,
        )
        db.session.add(decision)
        db.session.flush()
        db.session.add_all(
            [
                DecisionSignature(
                    decision_id=decision.id,
                    person_id=people["ceo"].id,
                    role="ceo",
                    meaning="approved on behalf of the Executive Team",
                    signed_at=SIGNED_AT,
                ),
                DecisionSignature(
                    decision_id=decision.id,
                    person_id=people["delegate"].id,
                    role="executive_director",
                    meaning="approved",
                    on_behalf_of_id=people["ceo"].id,
                    signed_at=DELEGATE_SIGNED_AT,
                ),
            ]
        )
        db.session.commit()
        return decision

    return factory
