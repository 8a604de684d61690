"""Deadlines: "my deadlines", one deadline with its reminders, stopping and restarting the clock."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.models.deadlines import Deadline, Reminder
from workflow_app.models.org import Unit
from workflow_app.permissions import can_view_unit, visible_units_filter
from workflow_app.services import deadlines as deadline_service
from workflow_app.services.errors import ServiceError
from workflow_app.services.list_export import Column, export_list, format_from_request
from workflow_app.services.unit_of_work import transaction
from workflow_app.web.forms import CompleteDeadlineForm, PauseDeadlineForm

bp = Blueprint("deadlines", __name__, url_prefix="/deadlines")


def get_visible_deadline_or_404(deadline_id: int) -> Deadline:
    """A deadline of a unit the person may see; 404 otherwise."""
    deadline = db.session.get(Deadline, deadline_id)
    if deadline is None or not can_view_unit(current_user, deadline.unit):
        abort(404)
    return deadline


@bp.route("/")
@login_required
def index():
    """My deadlines; organisation-wide roles can also list every open one."""
    scope = request.args.get("scope", "mine")
    if scope == "all" and current_user.sees_whole_organisation:
        rows = db.session.scalars(
            sa.select(Deadline)
            .join(Unit, Deadline.unit_id == Unit.id)
            .where(Deadline.status.in_(("open", "paused")), visible_units_filter(current_user))
            .order_by(Deadline.due_at)
            .options(so.joinedload(Deadline.unit), so.joinedload(Deadline.owner))
        ).all()
    else:
        scope = "mine"
        rows = deadline_service.deadlines_for_person(current_user)
    if fmt := format_from_request():
        now = utcnow()
        columns = [
            Column("What", lambda d: d.title),
            Column("Unit code", lambda d: d.unit.code),
            Column("Unit", lambda d: d.unit.name),
            Column("Due", lambda d: d.due_at),
            Column("Owner", lambda d: d.owner.name if d.owner else ""),
            Column(
                "Status", lambda d: "overdue" if d.status == "open" and d.due_at < now else d.status
            ),
        ]
        return export_list(f"deadlines-{scope}", columns, rows, fmt).as_response()
    return render_template(
        "deadlines/index.html",
        deadlines=rows,
        scope=scope,
        now=utcnow(),
        can_see_all=current_user.sees_whole_organisation,
    )


@bp.route("/<int:deadline_id>")
@login_required
def show(deadline_id: int):
    """One deadline: due time, owner, pauses, reminders, and what you can do."""
    deadline = get_visible_deadline_or_404(deadline_id)
    reminders = db.session.scalars(
        sa.select(Reminder).where(Reminder.deadline_id == deadline.id).order_by(Reminder.send_at)
    ).all()
    return render_template(
        "deadlines/show.html",
        deadline=deadline,
        reminders=reminders,
        now=utcnow(),
        pause_form=PauseDeadlineForm(),
        complete_form=CompleteDeadlineForm(),
        can_manage=deadline_service.can_manage_deadline(current_user, deadline),
        can_complete=deadline_service.can_complete_deadline(current_user, deadline),
    )


def _act(deadline_id: int, form_class, action, success: str):
    deadline = get_visible_deadline_or_404(deadline_id)
    form = form_class()
    if not form.validate_on_submit():
        for errors in form.errors.values():
            for message in errors:
                flash(message, "error")
        return redirect(url_for("deadlines.show", deadline_id=deadline.id))
    try:
        with transaction():
            result = action(deadline, form)
    except ServiceError as problem:
        flash(str(problem), "error")
    else:
        flash(success.format(result=result), "success")
    return redirect(url_for("deadlines.show", deadline_id=deadline.id))


@bp.route("/<int:deadline_id>/pause", methods=["POST"])
@login_required
def pause(deadline_id: int):
    """Stop the clock, with a reason."""
    return _act(
        deadline_id,
        PauseDeadlineForm,
        lambda d, f: deadline_service.pause_deadline(current_user, d, f.reason.data),
        "The clock is stopped. Reminders will not go out until it restarts.",
    )


@bp.route("/<int:deadline_id>/resume", methods=["POST"])
@login_required
def resume(deadline_id: int):
    """Restart the clock; the due date moves by the paused working days."""
    return _act(
        deadline_id,
        CompleteDeadlineForm,
        lambda d, f: deadline_service.resume_deadline(current_user, d),
        "The clock has restarted; the due date moved by {result} working day(s).",
    )


@bp.route("/<int:deadline_id>/complete", methods=["POST"])
@login_required
def complete(deadline_id: int):
    """Mark the obligation as done; reminders stop."""
    return _act(
        deadline_id,
        CompleteDeadlineForm,
        lambda d, f: deadline_service.complete_deadline(current_user, d, note=f.note.data or ""),
        "Marked as done. No more reminders will be sent.",
    )
