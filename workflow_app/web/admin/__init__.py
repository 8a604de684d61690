"""Administration: units, measures, people, role grants, the mail outbox, the audit trail."""

from __future__ import annotations

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required

from state_machines import available_frameworks, get_framework
from workflow_app.extensions import db
from workflow_app.models.audit import AuditEvent
from workflow_app.models.measures import Measure
from workflow_app.models.org import Domain, Person, Unit
from workflow_app.models.outbox import OUTBOX_STATUSES, OutboxMessage
from workflow_app.models.roles import ROLE_TITLES
from workflow_app.notifications.sender import retry_failed_message
from workflow_app.permissions import (
    can_manage_people,
    can_manage_units,
    can_read_audit,
    can_read_outbox,
)
from workflow_app.services import accounts, org
from workflow_app.services.errors import ServiceError
from workflow_app.services.list_export import Column, export_list, format_from_request
from workflow_app.services.unit_of_work import transaction
from workflow_app.web.forms import (
    ConfirmForm,
    EditPersonForm,
    GrantRoleForm,
    MeasureForm,
    PersonForm,
    UnitForm,
)

bp = Blueprint("admin", __name__, url_prefix="/admin")
PAGE_SIZE = 50


def _require(allowed: bool) -> None:
    if not allowed:
        abort(403, "Only the performance team or a system administrator can do this.")


def framework_roles() -> dict[str, str]:
    """Decider roles declared by the bundled frameworks (e.g. NHS Wales' Minister)."""
    roles: dict[str, str] = {}
    for name in available_frameworks():
        roles.update(get_framework(name).roles)
    return roles


def _people_choices(blank: str = "None") -> list[tuple[object, str]]:
    people = db.session.scalars(sa.select(Person).order_by(Person.name))
    return [("", blank)] + [(p.id, f"{p.name} ({p.email})") for p in people]


@bp.route("/")
@login_required
def index():
    """Links to each administration page the person may use."""
    _require(can_manage_units(current_user) or can_manage_people(current_user))
    return render_template(
        "admin/index.html",
        can_units=can_manage_units(current_user),
        can_people=can_manage_people(current_user),
        can_outbox=can_read_outbox(current_user),
        can_audit=can_read_audit(current_user),
    )


# --- units -------------------------------------------------------------------------------


def _unit_form(unit: Unit | None = None) -> UnitForm:
    form = UnitForm(obj=unit)
    others = db.session.scalars(sa.select(Unit).order_by(Unit.code))
    form.parent_id.choices = [("", "None")] + [
        (u.id, f"{u.code} {u.name}") for u in others if unit is None or u.id != unit.id
    ]
    form.accountable_executive_id.choices = _people_choices()
    form.lead_id.choices = _people_choices()
    form.budget_holder_id.choices = _people_choices()
    form.framework.choices = [(n, get_framework(n).title) for n in available_frameworks()]
    return form


def _unit_values(form: UnitForm) -> dict:
    return {
        "code": form.code.data.strip(),
        "name": form.name.data.strip(),
        "kind": form.kind.data,
        "parent_id": form.parent_id.data,
        "accountable_executive_id": form.accountable_executive_id.data,
        "lead_id": form.lead_id.data,
        "budget_holder_id": form.budget_holder_id.data,
        "framework": form.framework.data,
        "is_active": form.is_active.data,
    }


@bp.route("/units")
@login_required
def units():
    """All units, active or not."""
    _require(can_manage_units(current_user))
    rows = db.session.scalars(sa.select(Unit).order_by(Unit.code)).all()
    return render_template("admin/units.html", units=rows)


@bp.route("/units/new", methods=["GET", "POST"])
@login_required
def new_unit():
    """Add a unit."""
    _require(can_manage_units(current_user))
    form = _unit_form()
    if request.method == "GET":
        form.framework.data = get_framework_default()
    if form.validate_on_submit():
        try:
            with transaction():
                unit = org.create_unit(current_user, **_unit_values(form))
        except ServiceError as problem:
            form.code.errors.append(str(problem))
        else:
            flash(f"Unit {unit.code} added.", "success")
            return redirect(url_for("units.show", unit_id=unit.id))
    return render_template("admin/unit_form.html", form=form, unit=None)


def get_framework_default() -> str:
    from flask import current_app

    return current_app.config["ESCALATE_FRAMEWORK"]


@bp.route("/units/<int:unit_id>/edit", methods=["GET", "POST"])
@login_required
def edit_unit(unit_id: int):
    """Change a unit's details."""
    _require(can_manage_units(current_user))
    unit = db.get_or_404(Unit, unit_id)
    form = _unit_form(unit)
    if form.validate_on_submit():
        try:
            with transaction():
                org.update_unit(current_user, unit, **_unit_values(form))
        except ServiceError as problem:
            form.code.errors.append(str(problem))
        else:
            flash(f"Unit {unit.code} saved.", "success")
            return redirect(url_for("units.show", unit_id=unit.id))
    return render_template("admin/unit_form.html", form=form, unit=unit)


# --- measures ----------------------------------------------------------------------------


def _measure_form(measure: Measure | None = None) -> MeasureForm:
    form = MeasureForm(obj=measure)
    form.domain_id.choices = [
        (d.id, d.name) for d in db.session.scalars(sa.select(Domain).order_by(Domain.name))
    ]
    form.owner_id.choices = _people_choices()
    return form


def _measure_values(form: MeasureForm) -> dict:
    return {
        "code": form.code.data.strip(),
        "name": form.name.data.strip(),
        "domain_id": form.domain_id.data,
        "kind": form.kind.data,
        "target": form.target.data,
        "direction": form.direction.data,
        "tolerance": form.tolerance.data,
        "unit_of_measure": form.unit_of_measure.data,
        "owner_id": form.owner_id.data,
        "is_active": form.is_active.data,
    }


@bp.route("/units/<int:unit_id>/measures/new", methods=["GET", "POST"])
@login_required
def new_measure(unit_id: int):
    """Add a measure and its target to a unit."""
    _require(can_manage_units(current_user))
    unit = db.get_or_404(Unit, unit_id)
    form = _measure_form()
    if form.validate_on_submit():
        try:
            with transaction():
                measure = org.create_measure(current_user, unit, **_measure_values(form))
        except ServiceError as problem:
            form.code.errors.append(str(problem))
        else:
            flash(f"Measure {measure.code} added to {unit.code}.", "success")
            return redirect(url_for("units.show", unit_id=unit.id))
    return render_template("admin/measure_form.html", form=form, unit=unit, measure=None)


@bp.route("/measures/<int:measure_id>/edit", methods=["GET", "POST"])
@login_required
def edit_measure(measure_id: int):
    """Change a measure's definition or target."""
    _require(can_manage_units(current_user))
    measure = db.get_or_404(Measure, measure_id)
    form = _measure_form(measure)
    if form.validate_on_submit():
        try:
            with transaction():
                org.update_measure(current_user, measure, **_measure_values(form))
        except ServiceError as problem:
            form.code.errors.append(str(problem))
        else:
            flash(f"Measure {measure.code} saved.", "success")
            return redirect(url_for("units.show", unit_id=measure.unit_id))
    return render_template("admin/measure_form.html", form=form, unit=measure.unit, measure=measure)


# --- people ------------------------------------------------------------------------------


@bp.route("/people")
@login_required
def people():
    """Everyone, with their roles and account state."""
    _require(can_manage_people(current_user))
    rows = db.session.scalars(sa.select(Person).order_by(Person.name)).all()
    return render_template("admin/people.html", people=rows)


@bp.route("/people/new", methods=["GET", "POST"])
@login_required
def new_person():
    """Add a person; they set a password through a one-time link."""
    _require(can_manage_people(current_user))
    form = PersonForm()
    if form.validate_on_submit():
        try:
            with transaction():
                person = accounts.create_person(
                    current_user,
                    name=form.name.data,
                    email=form.email.data,
                    job_title=form.job_title.data or "",
                )
                accounts.issue_password_reset(current_user, person)
        except ServiceError as problem:
            form.email.errors.append(str(problem))
        else:
            flash(
                f"{person.name} added. A link to set their password is in the mail outbox.",
                "success",
            )
            return redirect(url_for("admin.person", person_id=person.id))
    return render_template("admin/person_new.html", form=form)


@bp.route("/people/<int:person_id>", methods=["GET", "POST"])
@login_required
def person(person_id: int):
    """One person: details, roles, account actions."""
    _require(can_manage_people(current_user))
    person = db.get_or_404(Person, person_id)
    form = EditPersonForm(obj=person)
    grant_form = GrantRoleForm(prefix="grant")
    all_roles = {**ROLE_TITLES, **framework_roles()}
    grant_form.role.choices = [(k, v) for k, v in all_roles.items() if k not in person.roles]
    if form.validate_on_submit():
        with transaction():
            accounts.update_person(
                current_user, person, name=form.name.data, job_title=form.job_title.data or ""
            )
        flash("Saved.", "success")
        return redirect(url_for("admin.person", person_id=person.id))
    return render_template(
        "admin/person.html",
        person=person,
        form=form,
        grant_form=grant_form,
        confirm=ConfirmForm(),
        all_roles=all_roles,
    )


def _person_action(person_id: int, action, message: str):
    _require(can_manage_people(current_user))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    person = db.get_or_404(Person, person_id)
    try:
        with transaction():
            action(person)
    except ServiceError as problem:
        flash(str(problem), "error")
    else:
        flash(message.format(name=person.name), "success")
    return redirect(url_for("admin.person", person_id=person_id))


@bp.route("/people/<int:person_id>/roles", methods=["POST"])
@login_required
def grant(person_id: int):
    """Grant a role."""
    _require(can_manage_people(current_user))
    person = db.get_or_404(Person, person_id)
    form = GrantRoleForm(prefix="grant")
    form.role.choices = list({**ROLE_TITLES, **framework_roles()}.items())
    if not form.validate_on_submit():
        flash("Choose a role from the list.", "error")
        return redirect(url_for("admin.person", person_id=person_id))
    try:
        with transaction():
            accounts.grant_role(
                current_user, person, form.role.data, allowed_roles=set(framework_roles())
            )
    except ServiceError as problem:
        flash(str(problem), "error")
    else:
        flash(f"{person.name} now holds the role {form.role.data}.", "success")
    return redirect(url_for("admin.person", person_id=person_id))


@bp.route("/people/<int:person_id>/roles/<role>/revoke", methods=["POST"])
@login_required
def revoke(person_id: int, role: str):
    """Revoke a role."""
    return _person_action(
        person_id,
        lambda p: accounts.revoke_role(current_user, p, role),
        f"Role {role} revoked from {{name}}.",
    )


@bp.route("/people/<int:person_id>/disable", methods=["POST"])
@login_required
def disable(person_id: int):
    """Disable an account (ends its sessions)."""
    return _person_action(
        person_id, lambda p: accounts.set_enabled(current_user, p, False), "{name} disabled."
    )


@bp.route("/people/<int:person_id>/enable", methods=["POST"])
@login_required
def enable(person_id: int):
    """Re-enable an account."""
    return _person_action(
        person_id, lambda p: accounts.set_enabled(current_user, p, True), "{name} enabled."
    )


@bp.route("/people/<int:person_id>/reset", methods=["POST"])
@login_required
def reset(person_id: int):
    """Send a one-time password reset link."""
    return _person_action(
        person_id,
        lambda p: accounts.issue_password_reset(current_user, p),
        "A password reset link for {name} is in the mail outbox.",
    )


# --- outbox and audit --------------------------------------------------------------------


@bp.route("/outbox")
@login_required
def outbox():
    """The local mail outbox: every e-mail the engine has written, newest first."""
    _require(can_read_outbox(current_user))
    page = max(request.args.get("page", 1, type=int), 1)
    status = request.args.get("status", "")
    query = sa.select(OutboxMessage).order_by(OutboxMessage.id.desc())
    if status in OUTBOX_STATUSES:
        query = query.where(OutboxMessage.status == status)
    else:
        status = ""
    messages = db.paginate(query, page=page, per_page=PAGE_SIZE, error_out=False)
    failed = db.session.scalar(
        sa.select(sa.func.count(OutboxMessage.id)).where(OutboxMessage.status == "failed")
    )
    return render_template(
        "admin/outbox.html",
        messages=messages,
        status=status,
        failed=failed,
        statuses=OUTBOX_STATUSES,
        confirm=ConfirmForm(),
    )


@bp.route("/outbox/<int:message_id>/retry", methods=["POST"])
@login_required
def retry_message(message_id: int):
    """Send a failed e-mail again (after the mail server or address has been fixed)."""
    _require(can_read_outbox(current_user))
    if not ConfirmForm().validate_on_submit():
        abort(400)
    message = db.get_or_404(OutboxMessage, message_id)
    try:
        with transaction():
            retry_failed_message(current_user, message)
    except ServiceError as problem:
        flash(str(problem), "error")
    else:
        flash(f"The e-mail to {message.to_address} will be sent again.", "success")
    return redirect(url_for("admin.outbox_message", message_id=message.id))


@bp.route("/outbox/<int:message_id>")
@login_required
def outbox_message(message_id: int):
    """One e-mail as it was written."""
    _require(can_read_outbox(current_user))
    message = db.get_or_404(OutboxMessage, message_id)
    return render_template("admin/outbox_message.html", message=message, confirm=ConfirmForm())


@bp.route("/audit")
@login_required
def audit():
    """The audit trail, newest first."""
    _require(can_read_audit(current_user))
    if fmt := format_from_request():
        events = db.session.scalars(
            sa.select(AuditEvent)
            .order_by(AuditEvent.id.desc())
            .options(so.joinedload(AuditEvent.actor))
        )
        return export_list("audit-trail", AUDIT_COLUMNS, events, fmt).as_response()
    page = max(request.args.get("page", 1, type=int), 1)
    events = db.paginate(
        sa.select(AuditEvent).order_by(AuditEvent.id.desc()),
        page=page,
        per_page=PAGE_SIZE,
        error_out=False,
    )
    return render_template("admin/audit.html", events=events)


#: The whole audit trail as a download (every page), newest first.
AUDIT_COLUMNS = [
    Column("When", lambda e: e.occurred_at),
    Column("Who", lambda e: e.actor.name if e.actor else "Escalate"),
    Column("What", lambda e: e.summary),
    Column("Action", lambda e: e.action),
    Column("Object", lambda e: f"{e.object_type} {e.object_id}"),
    Column("Hash", lambda e: e.hash),
]
