"""Plans in delivery: monthly updates, the plan on a page, PDF and XLSX exports.

Who sees what: a plan is visible to whoever may see its unit and to the owners of its actions;
anyone else gets 404, as for units and cases (docs/decisions/0006). Monthly updates are for the
unit's lead, its budget holder and the actions' owners (403 for other people who can see the
plan). Completing a plan is for the performance team and executives.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date, datetime

from flask import (
    abort,
    current_app,
    flash,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from flask_login import current_user, login_required
from flask_wtf.csrf import generate_csrf, validate_csrf
from werkzeug.routing import BuildError
from wtforms.validators import ValidationError

from state_machines.plan_review import STATUS_TITLES
from workflow_app.extensions import csrf, db
from workflow_app.models.plans import UPDATE_STATUSES, PlanAction, PlanActionUpdate, RecoveryPlan
from workflow_app.services.errors import Conflict, NotFound, PermissionDenied, ServiceError
from workflow_app.services.plan_delivery import (
    UPDATABLE_STATUSES,
    ActionEntry,
    UpdateProblems,
    can_complete_plan,
    can_record_updates,
    can_view_plan,
    complete_plan,
    open_update_months,
    plan_trajectory,
    record_updates,
    updatable_actions,
)
from workflow_app.services.plan_exports import (
    XLSX_MIME,
    action_rows,
    default_year,
    download_name,
    fmt,
    fy_label,
    plan_page,
    plan_pdf,
    plan_xlsx,
)
from workflow_app.services.unit_of_work import transaction
from workflow_app.web.plans import bp

CSRF_EXPIRED = (
    "This form had expired, so nothing was saved. Your answers are below: check them and "
    "send the update again."
)


def _plan_or_404(plan_id: int) -> RecoveryPlan:
    plan = db.session.get(RecoveryPlan, plan_id)
    if plan is None or not can_view_plan(current_user, plan):
        abort(404)
    return plan


def plan_url(plan: RecoveryPlan) -> str:
    """The plan's own page (authoring), or its plan on a page when there is none."""
    try:
        return url_for("plans.show", plan_id=plan.id)
    except BuildError:
        return url_for("plans.on_a_page", plan_id=plan.id)


def _year(value: str | None) -> date | None:
    if value and value.isdigit() and 2000 <= int(value) <= 2100:
        return date(int(value), 4, 1)
    return None


# --------------------------------------------------------------------------------------------
# The partial on the plan page
# --------------------------------------------------------------------------------------------


@dataclass
class DeliverySummary:
    """What ``templates/plans/_delivery.html`` shows about a plan."""

    plan: RecoveryPlan
    status_title: str
    trajectory: str = ""
    actions: list = field(default_factory=list)
    can_update: bool = False
    can_complete: bool = False
    undelivered: int = 0
    open_months: list[date] = field(default_factory=list)


@bp.app_template_global("plan_delivery")
def plan_delivery(plan: RecoveryPlan) -> DeliverySummary:
    """The delivery summary of ``plan`` for the signed-in person (a template helper)."""
    summary = DeliverySummary(plan, STATUS_TITLES.get(plan.status, plan.status))
    summary.actions = action_rows(plan)
    summary.undelivered = sum(1 for a in plan.actions if a.delivered_on is None)
    if plan.approved_at is not None:
        summary.trajectory = plan_trajectory(plan, months=()).summary
    if plan.status in UPDATABLE_STATUSES and can_record_updates(current_user, plan):
        summary.open_months = open_update_months(plan)
        summary.can_update = bool(summary.open_months)
    summary.can_complete = plan.status == "in_delivery" and can_complete_plan(current_user)
    return summary


# --------------------------------------------------------------------------------------------
# Monthly updates
# --------------------------------------------------------------------------------------------


def _parse_month(value: str | None) -> date | None:
    try:
        return datetime.strptime(value or "", "%Y-%m").date()
    except ValueError:
        return None


@dataclass
class ActionForm:
    """One action's part of the monthly update form."""

    action: PlanAction
    number: int
    status: str = ""
    narrative: str = ""
    delivered: bool = False
    error: str = ""
    previous: PlanActionUpdate | None = None


def _action_forms(plan: RecoveryPlan, period: date | None) -> list[ActionForm]:
    numbers = {a.id: n for n, a in enumerate(plan.actions, start=1)}
    forms = []
    for action in updatable_actions(current_user, plan):
        existing = next((u for u in action.updates if u.period == period), None)
        earlier = [u for u in action.updates if period is None or u.period < period]
        forms.append(
            ActionForm(
                action=action,
                number=numbers[action.id],
                status=existing.status if existing else "",
                narrative=existing.narrative if existing else "",
                delivered=action.delivered_on is not None,
                previous=earlier[-1] if earlier else None,
            )
        )
    return forms


def _render_updates(plan, period, months, forms, *, problem: str = "", status: int = 200):
    return (
        render_template(
            "plans/updates.html",
            plan=plan,
            period=period,
            months=months,
            forms=forms,
            problem=problem,
            statuses=UPDATE_STATUSES,
            plan_url=plan_url(plan),
            csrf_value=generate_csrf(),
        ),
        status,
    )


@bp.route("/<int:plan_id>/updates", methods=["GET", "POST"])
@login_required
def monthly_updates(plan_id: int):
    """The monthly progress update: per action on track / at risk / off track, and why."""
    plan = _plan_or_404(plan_id)
    if not can_record_updates(current_user, plan):
        abort(
            403,
            "Only the unit's lead, its budget holder or an action's owner can report on this plan.",
        )
    months = open_update_months(plan)
    if request.method == "GET":
        period = _parse_month(request.args.get("month"))
        if period not in months:
            period = months[0] if months else None
        return _render_updates(plan, period, months, _action_forms(plan, period))

    period = _parse_month(request.form.get("month"))
    forms = _action_forms(plan, period)
    entries = {}
    for form in forms:
        key = form.action.id
        form.status = request.form.get(f"status-{key}", "")
        form.narrative = request.form.get(f"narrative-{key}", "")
        form.delivered = request.form.get(f"delivered-{key}") == "yes"
        entries[key] = ActionEntry(form.status, form.narrative, form.delivered)
    try:
        if current_app.config.get("WTF_CSRF_ENABLED", True):
            validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        # Nothing is stored; the person's text comes back with a fresh token.
        return _render_updates(plan, period, months, forms, problem=CSRF_EXPIRED, status=400)
    if period is None:
        period = months[0] if months else None
        return _render_updates(
            plan,
            period,
            months,
            _action_forms(plan, period),
            problem="Choose the month to report on.",
        )
    if not entries:
        return _render_updates(plan, period, months, forms, problem="There is nothing to report.")
    try:
        with transaction():
            record_updates(current_user, plan, period, entries)
    except UpdateProblems as problems:
        for form in forms:
            form.error = problems.problems.get(form.action.id, "")
        return _render_updates(plan, period, months, forms)
    except ServiceError as refused:
        if isinstance(refused, PermissionDenied | NotFound | Conflict):
            raise
        return _render_updates(plan, period, months, forms, problem=str(refused))
    count = len(entries)
    flash(
        f"Monthly update for {period:%B %Y} saved ({count} action{'s' if count != 1 else ''}).",
        "success",
    )
    return redirect(plan_url(plan))


# The form carries its own CSRF check above, so a stale token gives the text back instead of
# the error page.
csrf.exempt(monthly_updates)


# --------------------------------------------------------------------------------------------
# Completing a plan
# --------------------------------------------------------------------------------------------


@bp.route("/<int:plan_id>/complete", methods=["POST"], endpoint="complete_delivery")
@login_required
def complete_delivery(plan_id: int):
    """Complete a plan in delivery whose actions are all delivered (a person's judgement)."""
    plan = _plan_or_404(plan_id)
    try:
        with transaction():
            complete_plan(current_user, plan, note=request.form.get("note", "")[:500])
    except ServiceError as refused:
        if isinstance(refused, PermissionDenied | NotFound | Conflict):
            raise
        flash(str(refused), "error")
    else:
        flash("The plan is completed.", "success")
    return redirect(plan_url(plan))


# --------------------------------------------------------------------------------------------
# Plan on a page and exports
# --------------------------------------------------------------------------------------------


@bp.route("/<int:plan_id>/on-a-page")
@login_required
def on_a_page(plan_id: int):
    """April-March: plan against actual per measure, headlines, targets, narrative, actions."""
    plan = _plan_or_404(plan_id)
    page = plan_page(plan, _year(request.args.get("year")))
    return render_template(
        "plans/on_a_page.html",
        page=page,
        plan=plan,
        fmt=fmt,
        fy_label=fy_label,
        plan_url=plan_url(plan),
    )


def _download(data: bytes, mimetype: str, name: str):
    return send_file(io.BytesIO(data), mimetype=mimetype, as_attachment=True, download_name=name)


@bp.route("/<int:plan_id>/on-a-page.pdf")
@login_required
def on_a_page_pdf(plan_id: int):
    """The plan on a page (one financial year) as PDF, for board papers."""
    plan = _plan_or_404(plan_id)
    page_year = _year(request.args.get("year")) or default_year(plan)
    pdf = plan_pdf(plan, page_year, whole_plan=False)
    return _download(
        pdf, "application/pdf", download_name(plan, f"on a page {fy_label(page_year)}", "pdf")
    )


@bp.route("/<int:plan_id>/on-a-page.xlsx")
@login_required
def on_a_page_xlsx(plan_id: int):
    """The plan on a page (one financial year) as a workbook."""
    plan = _plan_or_404(plan_id)
    page_year = _year(request.args.get("year")) or default_year(plan)
    data = plan_xlsx(plan, page_year, whole_plan=False)
    return _download(
        data, XLSX_MIME, download_name(plan, f"on a page {fy_label(page_year)}", "xlsx")
    )


@bp.route("/<int:plan_id>/export.pdf")
@login_required
def export_pdf(plan_id: int):
    """The whole plan as PDF: summary, risks, SMART actions, trajectory, updates."""
    plan = _plan_or_404(plan_id)
    return _download(
        plan_pdf(plan, whole_plan=True), "application/pdf", download_name(plan, "plan", "pdf")
    )


@bp.route("/<int:plan_id>/export.xlsx")
@login_required
def export_xlsx(plan_id: int):
    """The whole plan as a workbook: Plan, Actions, Trajectory, Updates."""
    plan = _plan_or_404(plan_id)
    return _download(
        plan_xlsx(plan, whole_plan=True), XLSX_MIME, download_name(plan, "plan", "xlsx")
    )
