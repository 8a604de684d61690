"""Writing a plan, saving drafts, submitting, reviewing, returning and approving it.

No work is lost (docs/decisions/0015-plan-forms-keep-your-work.md): the edit and review forms
are exempt from the global CSRF check and check the token themselves, so a stale or missing
token brings the page back with everything typed and a fresh token, and nothing is stored; a
POST from an expired session gets the typed text back with a sign-in link instead of a
redirect that would drop it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

import sqlalchemy as sa
from flask import abort, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from flask_wtf.csrf import validate_csrf
from werkzeug.datastructures import MultiDict
from wtforms import FieldList, Form, FormField, HiddenField, SelectField, StringField, TextAreaField
from wtforms.validators import ValidationError

from state_machines import get_framework
from state_machines.plan_review import STATUS_TITLES, allowed_events
from workflow_app.clock import to_london, utcnow
from workflow_app.extensions import csrf, db, login_manager
from workflow_app.models.cases import EscalationCase
from workflow_app.models.deadlines import Deadline
from workflow_app.models.measures import Measure
from workflow_app.models.org import Domain, Person, Unit
from workflow_app.models.plans import PLAN_KINDS, RISK_LEVELS, PlanVersion, RecoveryPlan
from workflow_app.permissions import can_view_unit
from workflow_app.services.errors import Conflict, PermissionDenied, ServiceError
from workflow_app.services.plans import (
    ACTION_FIELDS,
    EDITABLE_STATUSES,
    PLAN_DUE_KINDS,
    PLAN_FIELDS,
    REVIEWER_ROLES,
    PlanNotSmart,
    approve,
    can_review_plan,
    can_withdraw_plan,
    can_write_plan,
    check_smart,
    financial_year_months,
    live_plan_due_deadline,
    open_plan_for_case,
    plan_diff,
    plan_snapshot,
    return_for_changes,
    review_refusal,
    save_draft,
    smart_words,
    start_plan,
    start_review,
    submit,
    version_content,
    version_intact,
    withdraw,
)
from workflow_app.services.unit_of_work import transaction
from workflow_app.web.forms import optional_int
from workflow_app.web.fragments import cached
from workflow_app.web.plans import bp

#: Action rows the form shows at least; "Add another action" adds one more each time.
MIN_ACTION_ROWS = 3
MAX_ACTION_ROWS = 40

STALE_MESSAGE = (
    "The form was out of date (it was open a long time, or you signed in again since), so "
    "nothing was saved. Everything you typed is below: check it and press {button} again."
)
EXPIRED_MESSAGE = (
    "Your session has expired, so nothing was saved. Everything you typed is below. Sign in "
    "again in a new tab, then come back to this tab and press {button}: the form will come "
    "back with your text for you to check and save."
)


# --- forms -----------------------------------------------------------------------------------


class ActionForm(Form):
    """One action row (no CSRF of its own: the plan form carries it)."""

    id = HiddenField()
    description = TextAreaField("What will be done")
    measure_id = SelectField("Measure it moves", coerce=optional_int, validate_choice=False)
    expected_effect = StringField(
        "By how much", description="For example: from 72% to 85% of patients by March 2027."
    )
    owner_id = SelectField("Owner", coerce=optional_int, validate_choice=False)
    resources = TextAreaField(
        "Resources", description="People, money and time it needs, and where they come from."
    )
    domain_id = SelectField("Domain it serves", coerce=optional_int, validate_choice=False)
    deliverable = StringField("Key deliverable (optional)")
    due_on = StringField(
        "Due date", render_kw={"type": "date"}, description="For example 31/03/2027."
    )
    milestones = TextAreaField(
        "Milestones (optional)", description="One per line, for example: 31/01/2027 new rota live."
    )


class PlanForm(FlaskForm):
    lock_version = HiddenField()
    summary = TextAreaField(
        "Summary",
        description="What has gone wrong, what the plan will put right, and by when.",
    )
    risk_assessment = TextAreaField(
        "Risk assessment",
        description="The risks to quality and safety while the plan is delivered, and how "
        "they are managed.",
    )
    risk_level = SelectField(
        "Risk to quality and safety",
        choices=[("", "Choose a level")] + [(r, r.capitalize()) for r in RISK_LEVELS],
        validate_choice=False,
    )
    support_requested = TextAreaField(
        "Support requested (optional)",
        description="Help you need from the executive team or other services.",
    )
    headlines = TextAreaField("Headlines (optional)")
    narrative = TextAreaField("Narrative (optional)")
    queries = TextAreaField("Queries and escalations (optional)")
    actions = FieldList(FormField(ActionForm))


# --- what the form holds, as typed -----------------------------------------------------------

_ACTION_KEY = re.compile(r"^actions-(\d+)-([a-z_]+)$")
_POINT_KEY = re.compile(r"^trajectory-(\d+)-(\d{4}-\d{2})$")
_ROW_KEYS = ("id", *ACTION_FIELDS)


@dataclass
class Typed:
    """Everything the plan form holds, as the strings the person typed."""

    fields: dict[str, str] = field(default_factory=dict)
    actions: list[dict[str, str]] = field(default_factory=list)
    trajectory: dict[str, str] = field(default_factory=dict)  # "<measure id>-<YYYY-MM>"

    @classmethod
    def from_form(cls, formdata) -> Typed:
        typed = cls(
            fields={name: formdata.get(name, "") for name in (*PLAN_FIELDS, "lock_version")}
        )
        rows: dict[int, dict[str, str]] = {}
        for key in formdata:
            match = _ACTION_KEY.match(key)
            if match and match.group(2) in _ROW_KEYS:
                index = int(match.group(1))
                if index < MAX_ACTION_ROWS:
                    rows.setdefault(index, {})[match.group(2)] = formdata.get(key, "")
                continue
            match = _POINT_KEY.match(key)
            if match:
                typed.trajectory[f"{match.group(1)}-{match.group(2)}"] = formdata.get(key, "")
        typed.actions = [{name: rows[i].get(name, "") for name in _ROW_KEYS} for i in sorted(rows)]
        return typed

    @classmethod
    def from_plan(cls, plan: RecoveryPlan) -> Typed:
        typed = cls(
            fields={name: getattr(plan, name) or "" for name in PLAN_FIELDS},
        )
        typed.fields["lock_version"] = str(plan.lock_version)
        for action in plan.actions:
            row = {"id": str(action.id)}
            for name in ACTION_FIELDS:
                value = getattr(action, name)
                if name == "due_on":
                    row[name] = value.isoformat() if value else ""
                else:
                    row[name] = "" if value is None else str(value)
            typed.actions.append(row)
        for point in plan.trajectory:
            typed.trajectory[f"{point.measure_id}-{point.period:%Y-%m}"] = _number_text(
                point.planned_value
            )
        return typed

    def formdata(self) -> MultiDict:
        data = MultiDict(self.fields)
        for index, row in enumerate(self.actions):
            for name, value in row.items():
                data[f"actions-{index}-{name}"] = value
        return data

    def compact(self) -> Typed:
        """Drop the rows with nothing typed in them (an emptied row removes its action)."""
        self.actions = [row for row in self.actions if not _blank(row)]
        return self

    def padded(self) -> Typed:
        while len(self.actions) < MIN_ACTION_ROWS:
            self.actions.append(_blank_row())
        return self


def _blank_row() -> dict[str, str]:
    return dict.fromkeys(_ROW_KEYS, "")


def _blank(row: dict[str, str]) -> bool:
    return not any((row.get(name) or "").strip() for name in ACTION_FIELDS)


def _number_text(value) -> str:
    text = format(Decimal(value).normalize(), "f")
    return "0" if text in ("-0", "") else text


_DATE_FORMATS = ("%Y-%m-%d", "%d/%m/%Y", "%d-%m-%Y", "%d %m %Y", "%d %B %Y", "%d %b %Y")


def _parse_date(text: str) -> date | None:
    text = " ".join(text.split())
    for fmt in _DATE_FORMATS:
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(text)


def _parse(typed: Typed, choices: dict[str, set[int]]) -> tuple[dict[str, Any], dict[str, str]]:
    """The service's data from what was typed, and the typing problems, keyed like the form."""
    errors: dict[str, str] = {}
    data: dict[str, Any] = {name: typed.fields.get(name, "") for name in PLAN_FIELDS}
    if data["risk_level"] not in ("", *RISK_LEVELS):
        errors["risk_level"] = "Choose the risk level from the list"
    data["risk_level"] = data["risk_level"] or None
    actions = []
    for index, row in enumerate(typed.actions):
        n = index + 1
        action: dict[str, Any] = {"id": row.get("id") or None}
        if action["id"] is not None and not str(action["id"]).isdigit():
            action["id"] = None
        for name in ("description", "expected_effect", "resources", "deliverable", "milestones"):
            action[name] = row.get(name, "")
        for name, what in (
            ("measure_id", "measure"),
            ("owner_id", "owner"),
            ("domain_id", "domain"),
        ):
            value = (row.get(name) or "").strip()
            if not value:
                action[name] = None
            elif value.isdigit() and int(value) in choices[name]:
                action[name] = int(value)
            else:
                action[name] = None
                errors[f"actions-{index}-{name}"] = f"Action {n}: choose the {what} from the list"
        due = (row.get("due_on") or "").strip()
        action["due_on"] = None
        if due:
            try:
                action["due_on"] = _parse_date(due)
            except ValueError:
                errors[f"actions-{index}-due_on"] = (
                    f"Action {n}: enter the due date as a real date, for example 31/03/2027"
                )
        actions.append(action)
    data["actions"] = actions
    points = []
    for key, text in typed.trajectory.items():
        text = (text or "").strip().replace(",", "").removeprefix("£").removesuffix("%")
        if not text:
            continue
        measure_id, period = key.split("-", 1)
        month = date(int(period[:4]), int(period[5:7]), 1)
        try:
            value = Decimal(text)
            if not value.is_finite():
                raise InvalidOperation
        except InvalidOperation:
            measure = db.session.get(Measure, int(measure_id))
            errors[f"trajectory-{key}"] = (
                f"Enter the planned value for {measure.code if measure else 'the measure'} in "
                f"{month:%b %Y} as a number, for example 92.5"
            )
            continue
        points.append({"measure_id": int(measure_id), "period": month, "planned_value": value})
    data["trajectory"] = points
    return data, errors


# --- helpers ---------------------------------------------------------------------------------


def _me() -> Person:
    return current_user._get_current_object()


def _visible_plan_or_404(plan_id: int) -> RecoveryPlan:
    plan = db.session.get(RecoveryPlan, plan_id)
    if plan is None or not can_view_unit(current_user, plan.unit):
        abort(404)
    return plan


def _framework(plan: RecoveryPlan):
    return get_framework(plan.case.framework)


def _months(plan: RecoveryPlan) -> list[date]:
    return financial_year_months(to_london(plan.created_at).date())


def _measures(plan: RecoveryPlan) -> list[Measure]:
    in_plan = {p.measure_id for p in plan.trajectory} | {
        a.measure_id for a in plan.actions if a.measure_id
    }
    return list(
        db.session.scalars(
            sa.select(Measure)
            .where(
                Measure.unit_id == plan.unit_id,
                sa.or_(Measure.is_active.is_(True), Measure.id.in_(in_plan or {0})),
            )
            .order_by(Measure.code)
        )
    )


def _choices(plan: RecoveryPlan) -> dict[str, list[tuple[str, str]]]:
    measures = _measures(plan)
    people = db.session.scalars(
        sa.select(Person).where(Person.is_enabled.is_(True)).order_by(Person.name)
    ).all()
    domains = db.session.scalars(sa.select(Domain).order_by(Domain.name)).all()
    return {
        "measure_id": [("", "Choose a measure")]
        + [(str(m.id), f"{m.code}: {m.name}") for m in measures],
        "owner_id": [("", "Choose a person")]
        + [(str(p.id), p.name + (f", {p.job_title}" if p.job_title else "")) for p in people],
        "domain_id": [("", "Choose a domain")] + [(str(d.id), d.name) for d in domains],
    }


def _choice_ids(choices) -> dict[str, set[int]]:
    return {name: {int(v) for v, _ in options if v} for name, options in choices.items()}


def _last_returned(plan: RecoveryPlan) -> PlanVersion | None:
    for version in reversed(plan.versions):
        if version.outcome == "returned":
            return version
    return None


def _comments_by_action(version: PlanVersion | None) -> dict[int, list]:
    """Comments of a version keyed by the action id they are on."""
    out: dict[int, list] = {}
    if version is None:
        return out
    for comment in version.comments:
        match = re.fullmatch(r"action:(\d+)", comment.field or "")
        action_id = comment.action_id or (int(match.group(1)) if match else None)
        if action_id is not None:
            out.setdefault(action_id, []).append(comment)
    return out


def _deadline_of(plan: RecoveryPlan, what: str) -> Deadline | None:
    return db.session.scalar(
        sa.select(Deadline).where(
            Deadline.dedupe_key == f"plan:{plan.id}:v{plan.current_version}:{what}"
        )
    )


def _london_day(value: datetime | None) -> str:
    local = to_london(value)
    return f"{local.day} {local:%B %Y}" if local else ""


def _when(value: datetime | None) -> str:
    local = to_london(value)
    return f"{local:%H:%M} on {local.day} {local:%B %Y}" if local else ""


# --- rendering the edit form -----------------------------------------------------------------


def _render_edit(
    plan: RecoveryPlan,
    typed: Typed,
    *,
    errors: dict[str, str] | None = None,
    notice: str | None = None,
    saved_anyway: bool = False,
    status: int = 200,
):
    framework = _framework(plan)
    smart = smart_words(framework)
    choices = _choices(plan)
    form = PlanForm(formdata=typed.formdata())
    for entry in form.actions:
        for name, options in choices.items():
            entry.form[name].choices = options
    errors = dict(errors or {})
    months = _months(plan)
    month_keys = [f"{m:%Y-%m}" for m in months]
    targeted: dict[int, list[int]] = {}
    for index, row in enumerate(typed.actions):
        value = (row.get("measure_id") or "").strip()
        if value.isdigit():
            targeted.setdefault(int(value), []).append(index + 1)
    grid = []
    for measure in _measures(plan):
        key = f"trajectory-{measure.id}"
        grid.append(
            {
                "measure": measure,
                "moved_by": targeted.get(measure.id, []),
                "error": errors.get(key),
                "cells": [
                    {
                        "name": f"trajectory-{measure.id}-{month}",
                        "value": typed.trajectory.get(f"{measure.id}-{month}", ""),
                        "month": m,
                        "error": errors.get(f"trajectory-{measure.id}-{month}"),
                    }
                    for m, month in zip(months, month_keys, strict=True)
                ],
            }
        )
    shown = {f"{g['measure'].id}-{c}" for g in grid for c in month_keys}
    hidden_points = {k: v for k, v in typed.trajectory.items() if k not in shown and v}

    summary: list[tuple[str, str]] = []
    actions_error = errors.get("actions")
    for key, message in errors.items():
        anchor = key
        if key == "actions":
            anchor = "actions-0-description"
        elif re.fullmatch(r"trajectory-\d+", key):
            anchor = f"{key}-{month_keys[0]}"
        summary.append((anchor, message))
        if key in PLAN_FIELDS:
            form[key].errors = [message]
            continue
        match = re.fullmatch(r"actions-(\d+)-([a-z_]+)", key)
        if match and int(match.group(1)) < len(form.actions):
            subfield = form.actions[int(match.group(1))].form[match.group(2)]
            subfield.errors = [*subfield.errors, message] if subfield.errors else [message]
    returned = _last_returned(plan) if plan.status == "returned" else None
    return (
        render_template(
            "plans/edit.html",
            plan=plan,
            case=plan.case,
            framework=framework,
            smart=smart,
            form=form,
            grid=grid,
            months=months,
            hidden_points=hidden_points,
            error_list=summary,
            actions_error=actions_error,
            notice=notice,
            saved_anyway=saved_anyway,
            returned=returned,
            comments=_comments_by_action(returned),
            due=plan.due_deadline if plan.current_version == 0 else _resubmit_deadline(plan),
            max_rows=MAX_ACTION_ROWS,
        ),
        status,
    )


def _resubmit_deadline(plan: RecoveryPlan) -> Deadline | None:
    return _deadline_of(plan, "resubmit")


def _reload(plan_id: int) -> RecoveryPlan:
    db.session.rollback()
    plan = db.session.get(RecoveryPlan, plan_id)
    if plan is None:
        abort(404)
    return plan


def _rescue(entries: list[dict[str, str]], *, heading: str, button: str, action: str):
    """The typed text back to someone whose session expired; nothing about the plan shown."""
    return (
        render_template(
            "plans/rescue.html",
            entries=entries,
            heading=heading,
            message=EXPIRED_MESSAGE.format(button=button),
            button=button,
            action=action,
            login_url=url_for("auth.login", next=action),
        ),
        401,
    )


def _rescue_plan(plan_id: int):
    typed = Typed.from_form(request.form)
    labels, action_labels = PLAN_FIELDS, ACTION_FIELDS
    entries = [
        {"name": "lock_version", "value": typed.fields.get("lock_version", ""), "kind": "hidden"}
    ]
    for name in PLAN_FIELDS:
        value = typed.fields.get(name, "")
        kind = "hidden" if name == "risk_level" or not value else "text"
        entries.append({"name": name, "label": labels[name], "value": value, "kind": kind})
    for index, row in enumerate(typed.actions):
        for name in _ROW_KEYS:
            value = row.get(name, "")
            text_field = name in (
                "description",
                "expected_effect",
                "resources",
                "deliverable",
                "milestones",
                "due_on",
            )
            entries.append(
                {
                    "name": f"actions-{index}-{name}",
                    "label": f"Action {index + 1}: {action_labels.get(name, name)}",
                    "value": value,
                    "kind": "text" if text_field and value else "hidden",
                }
            )
    for key, value in typed.trajectory.items():
        entries.append({"name": f"trajectory-{key}", "value": value, "kind": "hidden"})
    entries.append({"name": "do", "value": "save", "kind": "hidden"})
    return _rescue(
        entries,
        heading="Your plan has not been saved",
        button="Save draft",
        action=url_for("plans.edit", plan_id=plan_id),
    )


# --- pages: starting and editing -------------------------------------------------------------


@bp.route("/start/<int:case_id>", methods=["POST"])
@login_required
def start(case_id: int):
    """Start (or reopen) the plan a case's "plan due" deadline asks for."""
    case = db.session.get(EscalationCase, case_id)
    if case is None or not can_view_unit(current_user, case.unit):
        abort(404)
    if not can_write_plan(current_user, case.unit):
        abort(
            403,
            f"Only {case.unit.name}'s lead or budget holder, or the performance team, "
            "can write its plan.",
        )
    try:
        with transaction():
            plan = start_plan(_me(), case)
            plan_id = plan.id
    except PermissionDenied:
        raise
    except ServiceError as problem:
        flash(str(problem), "error")
        return redirect(url_for("cases.show", case_id=case_id))
    return redirect(url_for("plans.edit", plan_id=plan_id))


@bp.route("/<int:plan_id>/edit", methods=["GET", "POST"])
def edit(plan_id: int):
    """The plan form: save a draft at any time; submit when it passes the SMART check."""
    if not current_user.is_authenticated:
        if request.method == "POST":
            return _rescue_plan(plan_id)
        return login_manager.unauthorized()
    plan = _visible_plan_or_404(plan_id)
    if not can_write_plan(current_user, plan):
        abort(
            403,
            f"Only {plan.unit.name}'s lead or budget holder, or the performance team, can "
            "write this plan. You can read it.",
        )
    if request.method == "GET":
        if plan.status not in EDITABLE_STATUSES:
            flash(
                f"The plan is {STATUS_TITLES[plan.status].lower()}, so it cannot be changed now. "
                "It can be changed while it is a draft or has been returned with comments.",
                "info",
            )
            return redirect(url_for("plans.show", plan_id=plan.id))
        return _render_edit(plan, Typed.from_plan(plan).padded())

    typed = Typed.from_form(request.form)
    do = request.form.get("do", "save")
    button = "Submit for review" if do == "submit" else "Save draft"
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        return _render_edit(
            plan, typed.padded(), notice=STALE_MESSAGE.format(button=button), status=400
        )
    if plan.status not in EDITABLE_STATUSES:
        return _render_edit(
            plan,
            typed.padded(),
            notice=f"The plan is now {STATUS_TITLES[plan.status].lower()}, so it cannot be "
            "changed and nothing you sent was saved. Your text is below if you need to copy it.",
            status=409,
        )

    # Buttons that only change the rows on the page: nothing is stored.
    if do == "add":
        if len(typed.actions) < MAX_ACTION_ROWS:
            typed.actions.append(_blank_row())
        return _render_edit(plan, typed)
    row_move = re.fullmatch(r"(remove|up|down)-(\d+)", do)
    if row_move:
        index = int(row_move.group(2))
        rows = typed.actions
        if 0 <= index < len(rows):
            if row_move.group(1) == "remove":
                rows.pop(index)
            elif row_move.group(1) == "up" and index > 0:
                rows[index - 1], rows[index] = rows[index], rows[index - 1]
            elif row_move.group(1) == "down" and index < len(rows) - 1:
                rows[index + 1], rows[index] = rows[index], rows[index + 1]
        return _render_edit(plan, typed.padded())
    if do not in ("save", "submit"):
        abort(400)

    typed.compact()
    choices = _choices(plan)
    data, typing_errors = _parse(typed, _choice_ids(choices))
    if typing_errors:
        return _render_edit(plan, typed.padded(), errors=typing_errors, status=400)
    lock_text = typed.fields.get("lock_version", "")
    lock = int(lock_text) if lock_text.isdigit() else 0

    def conflict(message: str):
        fresh = _reload(plan_id)
        typed.fields["lock_version"] = str(fresh.lock_version)
        return _render_edit(
            fresh,
            typed.padded(),
            notice=f"{message} Everything you typed is below. Open the plan in a new tab to see "
            f"their changes; press {button} again to replace them with yours.",
            status=409,
        )

    me = _me()
    framework = _framework(plan)
    smart_errors = check_smart(data, framework, unit=plan.unit) if do == "submit" else {}
    try:
        with transaction():
            save_draft(me, plan, data, lock)
            if do == "submit" and not smart_errors:
                version = submit(me, plan)
                number = version.number
                review_due = _deadline_of(plan, "review")
                review_due_text = _when(review_due.due_at) if review_due else ""
    except PermissionDenied:
        raise
    except Conflict as problem:
        return conflict(str(problem))
    except PlanNotSmart as problem:
        # The working copy passed just before; only a race with the clock gets here.
        fresh = _reload(plan_id)
        return _render_edit(fresh, typed.padded(), errors=problem.errors, status=400)
    except ServiceError as problem:
        return _render_edit(_reload(plan_id), typed.padded(), notice=str(problem), status=400)

    if do == "submit" and smart_errors:
        fresh = _reload(plan_id)
        return _render_edit(
            fresh,
            Typed.from_plan(fresh).padded(),
            errors=smart_errors,
            saved_anyway=True,
            status=400,
        )
    if do == "submit":
        flash(
            f"Version {number} of the plan has been submitted for review. The reviewers have "
            f"been told by e-mail; the review is due by {review_due_text}.",
            "success",
        )
        return redirect(url_for("plans.show", plan_id=plan_id))
    flash(
        f"Draft saved at {to_london(utcnow()):%H:%M}. It has not been sent to anyone: press "
        "Submit for review when it is ready.",
        "success",
    )
    return redirect(url_for("plans.edit", plan_id=plan_id))


csrf.exempt(edit)


# --- pages: reading a plan -------------------------------------------------------------------


def _next_steps(plan: RecoveryPlan) -> list[str]:
    """What happens next, in words, for the person reading the plan."""
    me = current_user
    status = plan.status
    steps: list[str] = []
    writer = can_write_plan(me, plan)
    reviewer = can_review_plan(me, plan)
    if status == "draft":
        due = plan.due_deadline
        when = f" by {_when(due.due_at)}" if due is not None and due.is_live else ""
        steps.append(
            f"{plan.unit.name}'s lead writes the plan and submits it for review{when}."
            if not writer
            else f"Write the plan and submit it for review{when}. You can save a draft at "
            "any time; it is checked against SMART when you submit it."
        )
    elif status == "submitted":
        due = _deadline_of(plan, "review")
        when = f" by {_when(due.due_at)}" if due is not None and due.is_live else ""
        steps.append(
            f"Waiting for review{when}: the performance team, the accountable executive, the "
            "Chief Executive or an executive director reviews it."
        )
    elif status == "in_review":
        steps.append("Being reviewed. The reviewer returns it with comments or approves it.")
    elif status == "returned":
        due = _deadline_of(plan, "resubmit")
        when = f" by {_when(due.due_at)}" if due is not None and due.is_live else ""
        steps.append(
            f"Returned with comments. The lead changes the plan and submits it again{when}."
        )
    elif status in ("approved", "in_delivery"):
        steps.append(
            f"Approved by {plan.approved_by.name if plan.approved_by else 'the reviewer'} on "
            f"{_london_day(plan.approved_at)}. In delivery: progress on each action is reported "
            "monthly and the actuals are compared with the trajectory."
        )
    elif status in ("failing", "review_period"):
        steps.append(
            "The plan is failing its trajectory. A review period follows; if it is still "
            "failing then, the engine proposes an escalation."
        )
    elif status == "completed":
        steps.append("The plan is completed.")
    elif status == "withdrawn":
        steps.append("The plan was withdrawn.")
    if reviewer and status in ("submitted", "in_review"):
        steps.append("You can review it.")
    return steps


@bp.route("/<int:plan_id>")
@login_required
def show(plan_id: int):
    """The plan: status, what is next, its actions with comments, versions and history."""
    plan = _visible_plan_or_404(plan_id)
    framework = _framework(plan)
    snapshot = plan_snapshot(plan)
    returned = _last_returned(plan)
    refusal = review_refusal(current_user, plan)
    return render_template(
        "plans/show.html",
        plan=plan,
        case=plan.case,
        framework=framework,
        smart=smart_words(framework),
        content=snapshot,
        months=_months(plan),
        status_title=STATUS_TITLES[plan.status],
        next_steps=_next_steps(plan),
        can_edit=can_write_plan(current_user, plan) and plan.status in EDITABLE_STATUSES,
        can_review=refusal is None and plan.status in ("submitted", "in_review"),
        review_refusal=refusal if plan.status in ("submitted", "in_review") else None,
        can_withdraw=can_withdraw_plan(current_user, plan)
        and "withdraw" in allowed_events(plan.status),
        returned=returned if plan.status == "returned" else None,
        comments=_comments_by_action(returned) if plan.status == "returned" else {},
        due=plan.due_deadline,
        review_deadline=_deadline_of(plan, "review"),
        resubmit_deadline=_deadline_of(plan, "resubmit"),
        now=utcnow(),
    )


@bp.route("/<int:plan_id>/versions/<int:number>")
@login_required
def version(plan_id: int, number: int):
    """One submitted version as it was frozen, with what changed since the one before."""
    plan = _visible_plan_or_404(plan_id)
    chosen = next((v for v in plan.versions if v.number == number), None)
    if chosen is None:
        abort(404)
    previous = next((v for v in plan.versions if v.number == number - 1), None)
    framework = _framework(plan)
    return render_template(
        "plans/version.html",
        plan=plan,
        case=plan.case,
        framework=framework,
        smart=smart_words(framework),
        version=chosen,
        content=version_content(chosen),
        intact=version_intact(chosen),
        diff=plan_diff(previous, chosen) if previous else None,
        comments=_comments_by_action(chosen),
    )


# --- pages: reviewing ------------------------------------------------------------------------


def _typed_review(formdata) -> dict[str, Any]:
    comments = {}
    for key in formdata:
        match = re.fullmatch(r"comment-(\d+)", key)
        if match:
            comments[int(match.group(1))] = formdata.get(key, "")
    return {"overall_note": formdata.get("overall_note", ""), "comments": comments}


def _render_review(
    plan: RecoveryPlan,
    typed: dict[str, Any] | None = None,
    *,
    notice: str | None = None,
    problem: str | None = None,
    status: int = 200,
):
    framework = _framework(plan)
    latest = plan.versions[-1] if plan.versions else None
    previous = plan.versions[-2] if len(plan.versions) > 1 else None
    refusal = review_refusal(current_user, plan)
    return (
        render_template(
            "plans/review.html",
            plan=plan,
            case=plan.case,
            framework=framework,
            smart=smart_words(framework),
            version=latest,
            content=version_content(latest) if latest else None,
            diff=plan_diff(previous, latest) if previous and latest else None,
            previous=previous,
            previous_comments=_comments_by_action(previous),
            typed=typed or {"overall_note": "", "comments": {}},
            refusal=refusal,
            can_start=refusal is None and plan.status == "submitted",
            can_decide=refusal is None and plan.status == "in_review",
            review_deadline=_deadline_of(plan, "review"),
            notice=notice,
            problem=problem,
            status_title=STATUS_TITLES[plan.status],
        ),
        status,
    )


@bp.route("/<int:plan_id>/start-review", methods=["POST"])
@login_required
def begin_review(plan_id: int):
    """A reviewer opens the submitted version (submitted -> in review)."""
    plan = _visible_plan_or_404(plan_id)
    try:
        with transaction():
            start_review(_me(), plan)
    except PermissionDenied:
        raise
    except ServiceError as problem:
        flash(str(problem), "error")
        return redirect(url_for("plans.show", plan_id=plan_id))
    return redirect(url_for("plans.review", plan_id=plan_id))


def _rescue_review(plan_id: int):
    typed = _typed_review(request.form)
    entries = [
        {
            "name": "overall_note",
            "label": "Your overall comment",
            "value": typed["overall_note"],
            "kind": "text",
        }
    ]
    for action_id, text in typed["comments"].items():
        entries.append(
            {
                "name": f"comment-{action_id}",
                "label": "Your comment on an action",
                "value": text,
                "kind": "text" if text.strip() else "hidden",
            }
        )
    outcome = request.form.get("outcome", "")
    if outcome in ("return", "approve"):
        entries.append({"name": "outcome", "value": outcome, "kind": "hidden"})
    return _rescue(
        entries,
        heading="Your review has not been sent",
        button="Send the review",
        action=url_for("plans.review", plan_id=plan_id),
    )


@bp.route("/<int:plan_id>/review", methods=["GET", "POST"])
def review(plan_id: int):
    """The version under review, what changed since the last one, and the reviewer's form."""
    if not current_user.is_authenticated:
        if request.method == "POST":
            return _rescue_review(plan_id)
        return login_manager.unauthorized()
    plan = _visible_plan_or_404(plan_id)
    if not plan.versions:
        flash("This plan has not been submitted yet, so there is nothing to review.", "info")
        return redirect(url_for("plans.show", plan_id=plan.id))
    if request.method == "GET":
        return _render_review(plan)
    typed = _typed_review(request.form)
    outcome = request.form.get("outcome", "")
    if outcome not in ("return", "approve"):
        # A rescued form (expired session) comes back here without a chosen outcome.
        return _render_review(
            plan, typed, problem="Choose to return the plan or approve it.", status=400
        )
    try:
        validate_csrf(request.form.get("csrf_token"))
    except ValidationError:
        button = "Return with comments" if outcome == "return" else "Approve the plan"
        return _render_review(plan, typed, notice=STALE_MESSAGE.format(button=button), status=400)
    refusal = review_refusal(current_user, plan)
    if refusal:
        abort(403, refusal)
    me = _me()
    try:
        with transaction():
            if outcome == "return":
                return_for_changes(me, plan, typed["overall_note"], typed["comments"])
            else:
                approve(me, plan, typed["overall_note"])
    except PermissionDenied:
        raise
    except Conflict as problem:
        plan = _reload(plan_id)
        return _render_review(plan, typed, notice=str(problem), status=409)
    except ServiceError as problem:
        plan = _reload(plan_id)
        return _render_review(plan, typed, problem=str(problem), status=400)
    if outcome == "return":
        flash(
            "The plan has been returned with your comments. The lead has been told by e-mail "
            "and has a deadline to resubmit it.",
            "success",
        )
    else:
        flash(
            "The plan is approved and now in delivery. The lead has been told by e-mail.", "success"
        )
    return redirect(url_for("plans.show", plan_id=plan_id))


csrf.exempt(review)


@bp.route("/<int:plan_id>/withdraw", methods=["POST"])
@login_required
def withdraw_plan(plan_id: int):
    """Withdraw an open plan, with a reason."""
    plan = _visible_plan_or_404(plan_id)
    if not can_withdraw_plan(current_user, plan):
        abort(403, "You cannot withdraw this plan.")
    try:
        with transaction():
            withdraw(_me(), plan, request.form.get("reason", ""))
    except PermissionDenied:
        raise
    except ServiceError as problem:
        flash(str(problem), "error")
        return redirect(url_for("plans.show", plan_id=plan_id))
    flash("The plan has been withdrawn.", "success")
    return redirect(url_for("plans.show", plan_id=plan_id))


# --- panels on other pages (case page, home page) --------------------------------------------


@bp.app_template_global()
def case_plan_panel(case: EscalationCase) -> dict[str, Any]:
    """What the case page's plan section shows: the open plan, or the plan due, and past ones."""
    plans = db.session.scalars(
        sa.select(RecoveryPlan).where(RecoveryPlan.case_id == case.id).order_by(RecoveryPlan.id)
    ).all()
    current = open_plan_for_case(case)
    due = live_plan_due_deadline(case)
    kind = current.kind if current else (PLAN_DUE_KINDS.get(due.kind) if due else None)
    return {
        "plan": current,
        "due": due,
        "past": [p for p in plans if p is not current],
        "kind_title": PLAN_KINDS.get(kind or "", "Recovery plan"),
        "can_write": can_write_plan(current_user, case.unit),
        "status_titles": STATUS_TITLES,
    }


@bp.app_template_global()
def plan_tasks(person) -> dict[str, Any]:
    """The home page's plan items: plans due or returned for units the person leads or holds
    the budget of, and plans waiting for the person's review.

    Which items there are is cached per person with the page's other parts (decision 0037:
    every plan and deadline change is audited, so the data version moves with them); only
    the items themselves are loaded on each request, and none when there are none.
    """
    if not getattr(person, "is_authenticated", False):
        return {"due": [], "to_change": [], "to_review": []}
    due_ids, returned_ids, review_ids = cached(
        person, utcnow(), "home.plan_tasks", lambda: _plan_task_ids(person), own=True
    )
    due = []
    for deadline in _by_ids(Deadline, due_ids):
        plan = open_plan_for_case(deadline.case)
        due.append(
            {
                "deadline": deadline,
                "plan": plan,
                "kind_title": PLAN_KINDS[PLAN_DUE_KINDS[deadline.kind]],
                "overdue": deadline.due_at < utcnow(),
            }
        )
    to_change = [
        {"plan": p, "deadline": _deadline_of(p, "resubmit")}
        for p in _by_ids(RecoveryPlan, returned_ids)
    ]
    to_review = [
        {"plan": p, "deadline": _deadline_of(p, "review"), "version": p.versions[-1]}
        for p in _by_ids(RecoveryPlan, review_ids)
    ]
    return {"due": due, "to_change": to_change, "to_review": to_review}


def _plan_task_ids(person) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
    """Ids of the person's plan items, each list in the order the home page shows it."""
    own_units = sa.or_(Unit.lead_id == person.id, Unit.budget_holder_id == person.id)
    deadlines = db.session.scalars(
        sa.select(Deadline)
        .join(Unit, Unit.id == Deadline.unit_id)
        .where(
            own_units,
            Deadline.kind.in_(tuple(PLAN_DUE_KINDS)),
            Deadline.status.in_(("open", "paused")),
            Deadline.case_id.is_not(None),
        )
        .order_by(Deadline.due_at)
    ).all()
    due = []
    for deadline in deadlines:
        plan = open_plan_for_case(deadline.case)
        if plan is None or plan.status in EDITABLE_STATUSES:
            due.append(deadline.id)
    returned = db.session.scalars(
        sa.select(RecoveryPlan.id)
        .join(Unit, Unit.id == RecoveryPlan.unit_id)
        .where(own_units, RecoveryPlan.status == "returned")
        .order_by(RecoveryPlan.updated_at)
    ).all()
    waiting = sa.select(RecoveryPlan).where(RecoveryPlan.status.in_(("submitted", "in_review")))
    if not person.has_role(*REVIEWER_ROLES):
        # Only a unit's own accountable executive reviews without a reviewing role.
        waiting = waiting.join(Unit, Unit.id == RecoveryPlan.unit_id).where(
            Unit.accountable_executive_id == person.id
        )
    to_review = [
        p.id
        for p in db.session.scalars(waiting.order_by(RecoveryPlan.submitted_at))
        if can_view_unit(person, p.unit) and can_review_plan(person, p)
    ]
    return tuple(due), tuple(returned), tuple(to_review)


def _by_ids(model, ids: tuple[int, ...]) -> list:
    """Rows of ``model`` with ``ids``, in that order (those deleted since are left out)."""
    if not ids:
        return []
    found = {row.id: row for row in db.session.scalars(sa.select(model).where(model.id.in_(ids)))}
    return [found[i] for i in ids if i in found]


# --- template helpers ------------------------------------------------------------------------


@bp.app_template_filter("plan_date")
def _plan_date(value: str | date | None) -> str:
    """An ISO date (as in a version's JSON) as "31 Mar 2027"."""
    if not value:
        return ""
    day = date.fromisoformat(value) if isinstance(value, str) else value
    return f"{day.day} {day:%b %Y}"


@bp.app_template_filter("plan_month")
def _plan_month(value: str) -> str:
    """ "2027-01" as "Jan 2027"."""
    return date(int(value[:4]), int(value[5:7]), 1).strftime("%b %Y")


@bp.app_template_filter("plan_number")
def _plan_number(value) -> str:
    return "" if value is None else _number_text(value)


@bp.app_template_global()
def plan_trajectory_table(content: dict[str, Any]) -> dict[str, Any]:
    """A snapshot's trajectory as a table: measures down, months across (only months used)."""
    periods = sorted({p["period"] for p in content.get("trajectory", [])})
    values: dict[str, dict[str, str]] = {}
    for point in content.get("trajectory", []):
        values.setdefault(point["measure_code"], {})[point["period"]] = point["planned_value"]
    return {
        "columns": [_plan_month(p) for p in periods],
        "rows": [
            {"measure": code, "cells": [by_month.get(p, "") for p in periods]}
            for code, by_month in sorted(values.items())
        ],
    }
