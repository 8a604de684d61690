"""Units: the list a person may see, and one unit's page."""

from __future__ import annotations

from functools import cache

import sqlalchemy as sa
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from state_machines import get_framework
from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.cases import Concern, EscalationCase
from workflow_app.models.measures import Measure
from workflow_app.models.org import Domain, Unit
from workflow_app.permissions import can_manage_units, can_view_unit
from workflow_app.services.concerns import can_record_concern, record_concern
from workflow_app.services.errors import ServiceError
from workflow_app.services.list_export import Column, export_list, format_from_request
from workflow_app.services.register import (
    REGISTER_PAGE_SIZE,
    Page,
    open_escalations_page,
    register_for,
    register_rows_page,
    register_summary,
    time_at_level,
    tracks_in,
)
from workflow_app.services.unit_of_work import transaction
from workflow_app.web.forms import ConcernForm
from workflow_app.web.fragments import cached, render_fragment

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
    """Every unit the person may see, with its level on each track; with
    ``?view=escalations``, the open escalations instead (the rest of the home page's table)."""
    if request.args.get("view") == "escalations":
        return _escalations()
    if fmt := format_from_request():
        # Downloads hold every row, so they still build the whole register.
        rows = register_for(current_user)
        return export_list("units", _register_columns(tracks_in(rows)), rows, fmt).as_response()
    person = current_user._get_current_object()
    now = utcnow()
    summary = cache(lambda: register_summary(person))
    # Which page a number lands on depends on the unit count: cache that first (0037).
    pages = cached(person, now, "units.pages", lambda: _pages(summary().total))
    number = min(max(request.args.get("page", 1, type=int), 1), pages)
    page, table = cached(
        person, now, "units.register", lambda: _register_page(person, summary(), number), number
    )
    return render_template("units/index.html", page=page, register_table=table)


def _pages(total: int) -> int:
    return Page.of(range(total), 1, REGISTER_PAGE_SIZE).pages


def _register_page(person, summary, number: int) -> tuple[Page, str]:
    page = register_rows_page(person, summary, number)
    caption = "Units and their current levels" + (
        f" (page {page.number} of {page.pages})" if page.pages > 1 else ""
    )
    table = render_fragment(
        "home/_register.html", rows=page.items, tracks=summary.tracks(), caption=caption
    )
    # The page's numbers without its rows (the rows are drawn in ``table``).
    return Page([], page.number, page.pages, page.total), table


def _escalations():
    """Every open escalation the person may see (cases above their track's normal level),
    50 a page; the home page shows the first page."""
    person = current_user._get_current_object()
    page = open_escalations_page(register_summary(person), request.args.get("page", 1, type=int))
    return render_template(
        "units/escalations.html", page=page, now=utcnow(), time_at_level=time_at_level
    )


def _register_columns(tracks: list[tuple[str, str]]) -> list[Column]:
    """The units list as a download: the unit, then each track's level and since when."""
    columns = [
        Column("Code", lambda row: row.unit.code),
        Column("Unit", lambda row: row.unit.name),
        Column("Kind", lambda row: row.unit.kind_title),
        Column("Framework", lambda row: row.framework.title),
    ]
    for key, title in tracks:

        def level(row, key=key):
            case = row.cases.get(key)
            return row.framework.level_title(case.level) if case else "not applicable"

        def since(row, key=key):
            # What the page shows: when the case reached its level (the register's "since").
            case = row.cases.get(key)
            return getattr(row, "since", {}).get(key, case.level_since) if case else None

        columns += [Column(f"{title}: level", level), Column(f"{title}: since", since)]
    return columns


@bp.route("/scorecard")
@login_required
def scorecard():
    """Measures scorecard: units x domains, RAG in the latest month and the trend."""
    from workflow_app.services.register import visible_units
    from workflow_app.services.scorecard import scorecard as build_scorecard

    period, domains, rows = build_scorecard(visible_units(current_user))
    return render_template("units/scorecard.html", period=period, domains=domains, rows=rows)


@bp.route("/<int:unit_id>/measures")
@login_required
def measures(unit_id: int):
    """Each measure's chart: actual vs target vs trajectory, SPC limits, RAG by month."""
    from workflow_app.services.scorecard import corrections, measure_views

    unit = get_visible_unit_or_404(unit_id)
    period, views = measure_views(unit)
    return render_template(
        "units/measures.html",
        unit=unit,
        period=period,
        views=views,
        corrections=corrections(unit),
    )


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
        can_record_concern=can_record_concern(current_user),
    )


@bp.route("/<int:unit_id>/concerns/new", methods=["GET", "POST"])
@login_required
def new_concern(unit_id: int):
    """Record a concern (inspection, never event, external review ...) against the unit."""
    unit = get_visible_unit_or_404(unit_id)
    if not can_record_concern(current_user):
        abort(403, "Only the performance team or an executive can record a concern.")
    form = ConcernForm()
    form.domain_id.choices = [
        (d.id, d.name) for d in db.session.scalars(sa.select(Domain).order_by(Domain.name))
    ]
    if form.validate_on_submit():
        try:
            with transaction():
                record_concern(
                    current_user,
                    unit,
                    domain=db.session.get(Domain, form.domain_id.data),
                    kind=form.kind.data,
                    severity=form.severity.data,
                    summary=form.summary.data,
                    evidence=form.evidence.data or "",
                    occurred_on=form.occurred_on.data,
                )
        except ServiceError as problem:
            form.summary.errors.append(str(problem))
        else:
            flash("Concern recorded. The next review will take it into account.", "success")
            return redirect(url_for("units.show", unit_id=unit.id))
    return render_template("units/concern_form.html", form=form, unit=unit)
