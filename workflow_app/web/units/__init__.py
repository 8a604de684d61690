"""Units: the list a person may see, and one unit's page."""

from __future__ import annotations

import sqlalchemy as sa
from flask import Blueprint, abort, render_template
from flask_login import current_user, login_required

from state_machines import get_framework
from workflow_app.extensions import db
from workflow_app.models.cases import Concern, EscalationCase
from workflow_app.models.measures import Measure
from workflow_app.models.org import Unit
from workflow_app.permissions import can_manage_units, can_view_unit
from workflow_app.services.register import register_for, tracks_in

bp = Blueprint("units", __name__, url_prefix="/units")


def get_visible_unit_or_404(unit_id: int) -> Unit:
    """Load a unit the current person may see; 404 otherwise (ids reveal nothing)."""
    unit = db.session.get(Unit, unit_id)
    if unit is None or not can_view_unit(current_user, unit):
        abort(404)
    return unit


@bp.route("/")
@login_required
def index():
    """Every unit the person may see, with its level on each track."""
    rows = register_for(current_user)
    return render_template("units/index.html", rows=rows, tracks=tracks_in(rows))


@bp.route("/<int:unit_id>")
@login_required
def show(unit_id: int):
    """One unit: its people, cases, measures and concerns."""
    unit = get_visible_unit_or_404(unit_id)
    framework = get_framework(unit.framework)
    cases = db.session.scalars(
        sa.select(EscalationCase)
        .where(EscalationCase.unit_id == unit.id)
        .order_by(EscalationCase.track)
    ).all()
    measures = db.session.scalars(
        sa.select(Measure).where(Measure.unit_id == unit.id).order_by(Measure.code)
    ).all()
    concerns = db.session.scalars(
        sa.select(Concern).where(Concern.unit_id == unit.id).order_by(Concern.recorded_at.desc())
    ).all()
    return render_template(
        "units/show.html",
        unit=unit,
        framework=framework,
        cases=cases,
        measures=measures,
        concerns=concerns,
        can_edit=can_manage_units(current_user),
    )
