"""The demo data, replayed month by month, tells a believable story (issue: evaluation), and
the demo's stored history is that replay, lived through the real services (decision 0014)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from workflow_app.demo import BASELINE_MONTHS, JUDGEMENT_HOLDS, load_demo
from workflow_app.extensions import db
from workflow_app.models.cases import Decision
from workflow_app.models.org import Unit
from workflow_app.services.replay import replay

FIRST_REVIEWED = date(2025, 11, 1)  # May 2025 + the six-month baseline
LATEST = date(2026, 10, 1)


def test_the_demo_replayed_month_by_month_escalates_and_de_escalates(app):
    load_demo(today=date(2026, 11, 23))
    db.session.commit()
    units = db.session.scalars(sa.select(Unit).order_by(Unit.code)).all()
    assert BASELINE_MONTHS == 6
    # 18 months May 2025 - Oct 2026; the first 6 are the baseline SPC and month counts need.
    story = replay(units, FIRST_REVIEWED, LATEST)
    assert len(story.reached("2a")) >= 3, story.steps
    assert story.reached("2b") == {"UNSCH", "WACH"}
    assert len(story.reached("3")) >= 1
    assert story.de_escalations, "some unit recovers and is proposed for de-escalation"
    for step in story.steps:  # one level down at a time, and only declared moves
        assert step.proposal.from_level != step.proposal.to_level
    steady = {"FIN", "EST", "WOD"}
    assert not steady & {s.unit_code for s in story.steps}

    # The stored history is the replay of the months before the latest, as decided: every
    # proposal the replay takes as approved was proposed by the stored review of the same
    # month and approved, except where the Executive Team used judgement (declined while
    # within tolerance; stepped down a month before the engine). The replay assumes plans
    # (services.replay.AssumedPlans); the stored reviews judged the units' real plans, written
    # and approved in the history, so the evidence of a failing recovery names the real plan
    # and its measures, but the story is the same (decision 0014).
    stored = db.session.scalars(
        sa.select(Decision).where(Decision.origin == "engine", Decision.kind != "earned_autonomy")
    ).all()
    proposed = {
        (d.period, d.case.unit.code, d.case.track, d.from_level, d.to_level): d for d in stored
    }
    historic = [s for s in story.steps if s.period < LATEST]
    assert historic
    held_back = []
    for step in historic:
        p = step.proposal
        key = (step.period, step.unit_code, p.track, p.from_level, p.to_level)
        if step.unit_code in JUDGEMENT_HOLDS:
            held_back.append(step)
            continue
        assert key in proposed, key
        decision = proposed.pop(key)
        assert decision.status == "approved"
        assert decision.rule_id == p.rule_id
        if p.rule_id == "recovery_failing":  # judged on the real plan, approved the month before
            assert "The recovery plan approved in" in decision.reason + decision.evidence
    # Medicine, held at Level 1, was proposed again the next month and declined again.
    assert [(s.unit_code, s.period) for s in held_back] == [("MED", date(2026, 8, 1))]
    assert sorted((d.period, d.case.unit.code, d.status) for d in proposed.values()) == [
        (date(2026, 8, 1), "MED", "rejected"),
        (date(2026, 9, 1), "MED", "rejected"),
    ]
    # Women & Children's step down, which the replay proposes in the latest month, was taken
    # by hand at the last replayed meeting.
    (wach,) = [s for s in story.de_escalations if s.unit_code == "WACH"]
    assert wach.period == LATEST
    manual = db.session.scalars(sa.select(Decision).where(Decision.origin == "manual")).all()
    assert [(d.case.unit.code, d.kind, d.to_level, d.status) for d in manual] == [
        ("WACH", "de_escalate", "1", "approved")
    ]
