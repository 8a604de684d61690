"""The demo data, replayed month by month, tells a believable story (issue: evaluation)."""

from __future__ import annotations

from datetime import date

import sqlalchemy as sa

from workflow_app.demo import load_demo
from workflow_app.extensions import db
from workflow_app.models.org import Unit
from workflow_app.services.replay import replay


def test_the_demo_replayed_month_by_month_escalates_and_de_escalates(app):
    load_demo(today=date(2026, 11, 23))
    db.session.commit()
    units = db.session.scalars(sa.select(Unit).order_by(Unit.code)).all()
    # 18 months May 2025 - Oct 2026; the first 6 are the baseline SPC and month counts need.
    story = replay(units, date(2025, 11, 1), date(2026, 10, 1))
    assert len(story.reached("2a")) >= 3, story.steps
    assert story.reached("2b") == {"UNSCH", "WACH"}
    assert len(story.reached("3")) >= 1
    assert story.de_escalations, "some unit recovers and is proposed for de-escalation"
    for step in story.steps:  # one level down at a time, and only declared moves
        assert step.proposal.from_level != step.proposal.to_level
    steady = {"FIN", "EST", "WOD"}
    assert not steady & {s.unit_code for s in story.steps}
