"""One escalation case: its level, history, decisions and lifecycle diagram."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from state_machines import (
    DiagramUnavailable,
    allowed_transitions,
    get_framework,
    mermaid_diagram,
    svg_diagram,
)
from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.cases import Decision, EscalationCase
from workflow_app.models.deadlines import Deadline
from workflow_app.models.letters import Letter
from workflow_app.permissions import can_view_unit
from workflow_app.services.decisions import (
    can_raise_escalation,
    formal_notification_capacity,
    formal_notification_kinds,
)
from workflow_app.services.timeline import case_timeline

bp = Blueprint("cases", __name__, url_prefix="/cases")


@bp.route("/<int:case_id>")
@login_required
def show(case_id: int):
    """The case page; a person who may not see the unit gets 404."""
    case = db.session.get(EscalationCase, case_id)
    if case is None or not can_view_unit(current_user, case.unit):
        abort(404)
    framework = get_framework(case.framework)
    track = framework.track_for(case.track)
    decisions = db.session.scalars(
        sa.select(Decision).where(Decision.case_id == case.id).order_by(Decision.proposed_at)
    ).all()
    deadlines = db.session.scalars(
        sa.select(Deadline)
        .where(Deadline.case_id == case.id, Deadline.status.in_(("open", "paused")))
        .order_by(Deadline.due_at)
    ).all()
    letters = db.session.scalars(
        sa.select(Letter).where(Letter.case_id == case.id).order_by(Letter.issued_at)
    ).all()
    current = {track.name: case.level}
    try:
        diagram_svg, diagram_text = svg_diagram(framework, track.name, current=current), None
    except DiagramUnavailable:
        diagram_svg, diagram_text = None, mermaid_diagram(framework, track.name, current=current)
    return render_template(
        "cases/show.html",
        case=case,
        framework=framework,
        track=track,
        decisions=decisions,
        deadlines=deadlines,
        letters=letters,
        can_raise=can_raise_escalation(current_user),
        can_notify=bool(formal_notification_kinds(case))
        and formal_notification_capacity(current_user, case) is not None,
        now=utcnow(),
        allowed=allowed_transitions(framework, case.track, case.level),
        diagram_svg=diagram_svg,
        diagram_text=diagram_text,
        timeline=case_timeline(case),
    )
