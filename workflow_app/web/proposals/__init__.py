"""Proposals: what the monthly review proposes, with its evidence; running the review."""

from __future__ import annotations

import json
from datetime import date

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_login import current_user, login_required

from state_machines import get_framework
from workflow_app.extensions import db
from workflow_app.models.cases import Decision, EscalationCase
from workflow_app.models.org import Unit
from workflow_app.permissions import can_manage_units, can_view_unit, visible_units_filter
from workflow_app.services.list_export import Column, export_list, format_from_request
from workflow_app.services.review import run_review
from workflow_app.services.search import track_title
from workflow_app.services.unit_of_work import transaction
from workflow_app.web.forms import RunReviewForm

bp = Blueprint("proposals", __name__, url_prefix="/proposals")


@bp.route("/")
@login_required
def index():
    """Proposals awaiting decision, newest month first, for the units the person may see."""
    pending = db.session.scalars(
        sa.select(Decision)
        .join(EscalationCase, EscalationCase.id == Decision.case_id)
        .join(Unit, Unit.id == EscalationCase.unit_id)
        .where(Decision.status == "pending", visible_units_filter(current_user))
        .order_by(Decision.period.desc().nulls_last(), Unit.code, Decision.id)
        .options(so.joinedload(Decision.case).joinedload(EscalationCase.unit))
    ).all()
    if fmt := format_from_request():
        return export_list("proposals", PROPOSAL_COLUMNS, pending, fmt).as_response()
    form = RunReviewForm() if can_manage_units(current_user) else None
    return render_template(
        "proposals/index.html", proposals=pending, form=form, frameworks=_frameworks(pending)
    )


def _level(decision, level: str) -> str:
    return get_framework(decision.case.framework).level_title(level)


#: The pending proposals as a download.
PROPOSAL_COLUMNS = [
    Column("Month", lambda d: d.period),
    Column("Unit code", lambda d: d.case.unit.code),
    Column("Unit", lambda d: d.case.unit.name),
    Column("Track", lambda d: track_title(d.case.framework, d.case.track)),
    Column("From level", lambda d: _level(d, d.from_level)),
    Column("To level", lambda d: _level(d, d.to_level)),
    Column("Why", lambda d: d.reason),
    Column("Proposed", lambda d: d.proposed_at),
]


def _frameworks(decisions):
    return {d.case.framework: get_framework(d.case.framework) for d in decisions}


@bp.route("/<int:decision_id>")
@login_required
def show(decision_id: int):
    """One proposal (or decision) with its evidence."""
    decision = db.session.get(Decision, decision_id)
    if decision is None or not can_view_unit(current_user, decision.case.unit):
        abort(404)
    evidence = json.loads(decision.evidence) if decision.evidence else {}
    return render_template(
        "proposals/show.html",
        decision=decision,
        framework=get_framework(decision.case.framework),
        evidence=evidence,
    )


@bp.route("/run", methods=["POST"])
@login_required
def run():
    """Run (or re-run) the escalation review for a month; safe to repeat."""
    if not can_manage_units(current_user):
        abort(403, "Only the performance team can run the review.")
    form = RunReviewForm()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        return redirect(url_for("proposals.index"))
    year, month = (int(part) for part in form.month.data.split("-"))
    with transaction():
        outcome = run_review(date(year, month, 1), actor=current_user)
    flash(
        f"Review of {date(year, month, 1):%B %Y} done: {outcome.units} units, "
        f"{len(outcome.created)} new proposals, {len(outcome.superseded)} superseded, "
        f"{outcome.unchanged} unchanged.",
        "success",
    )
    return redirect(url_for("proposals.index"))
