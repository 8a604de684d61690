"""Decisions: what awaits my signature, one decision with its evidence and history, signing it
(re-authenticated), a preview of its letter, and raising an escalation by hand."""

from __future__ import annotations

import json

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import Blueprint, abort, flash, make_response, redirect, render_template, url_for
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import (
    PasswordField,
    RadioField,
    SelectField,
    SelectMultipleField,
    StringField,
    TextAreaField,
)
from wtforms.validators import DataRequired, InputRequired, Length, Optional

from state_machines import (
    DiagramUnavailable,
    allowed_transitions,
    get_framework,
    mermaid_diagram,
    svg_diagram,
)
from workflow_app.clock import utcnow
from workflow_app.extensions import db
from workflow_app.letters.render import LetterError, letter_context, render_letter
from workflow_app.models.cases import Decision, EscalationCase
from workflow_app.models.letters import Letter
from workflow_app.models.org import Unit
from workflow_app.models.roles import CEO
from workflow_app.permissions import can_view_unit, visible_units_filter
from workflow_app.services import accounts
from workflow_app.services.decisions import (
    can_raise_escalation,
    decide_proposal,
    formal_notification_capacity,
    formal_notification_kinds,
    formal_notification_refusal,
    issue_formal_notification,
    raise_escalation,
    signing_capacity,
)
from workflow_app.services.errors import Conflict, PermissionDenied, ServiceError
from workflow_app.services.list_export import Column, export_list, format_from_request
from workflow_app.services.unit_of_work import transaction

bp = Blueprint("decisions", __name__, url_prefix="/decisions")

#: The letter preview is its own document with the letter's inline <style>; nothing else.
LETTER_PREVIEW_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"

OUTCOME_CHOICES = {
    "approve": "Approve",
    "approve_other": "Approve at a different level",
    "reject": "Reject",
}


# --- forms ---------------------------------------------------------------------------------


class SignDecisionForm(FlaskForm):
    outcome = RadioField(
        "Your decision",
        choices=list(OUTCOME_CHOICES.items()),
        validators=[InputRequired("Choose to approve, approve at a different level, or reject")],
    )
    to_level = SelectField(
        "Approve at this level instead",
        choices=[],
        validators=[Optional()],
        validate_choice=False,
        description="Only when you approve at a different level. The framework allows these "
        "moves from the current level.",
    )
    reason = TextAreaField(
        "Reason for your decision",
        validators=[DataRequired("Give the reason for your decision"), Length(max=4000)],
        description="This is recorded with your signature in the audit trail.",
    )
    meeting_reference = StringField(
        "Meeting where this was agreed",
        validators=[Length(max=200)],
        description="For example: Executive Team, 14 October 2026, item 5.",
    )
    support_options = SelectMultipleField(
        "Support options", choices=[], validators=[Optional()], validate_choice=False
    )
    progress_every = RadioField(
        "How often are the progress meetings with the Chief Executive?",
        choices=[],
        validators=[Optional()],
        validate_choice=False,
    )
    password = PasswordField(
        "Your password",
        validators=[DataRequired("Enter your password to sign")],
        description="You sign by entering your password again.",
    )


class RaiseEscalationForm(FlaskForm):
    to_level = SelectField(
        "Propose a move to",
        choices=[],
        validators=[DataRequired("Choose the level to propose")],
        # A level not offered is refused by raise_escalation, which says why (the framework
        # does not allow that move), rather than WTForms' bare "Not a valid choice".
        validate_choice=False,
    )
    reason = TextAreaField(
        "Why this should change",
        validators=[DataRequired("Give the reason for raising this"), Length(max=4000)],
    )
    evidence_note = TextAreaField(
        "The evidence",
        validators=[DataRequired("Describe the evidence"), Length(max=8000)],
        description="What you have seen: figures, reports, inspection findings, meetings. "
        "The person deciding reads this beside your reason.",
    )


class FormalNotificationForm(FlaskForm):
    kind = RadioField(
        "Which formal notification",
        choices=[],
        validators=[InputRequired("Choose the notification to issue")],
        # A kind not offered is refused by issue_formal_notification, which says why.
        validate_choice=False,
    )
    reason = TextAreaField(
        "Reason for the notification",
        validators=[DataRequired("Give the reason for the notification"), Length(max=4000)],
        description="The concern and what the organisation must do. It is quoted in the letter "
        "and recorded with your signature.",
    )
    evidence_note = TextAreaField(
        "The evidence",
        validators=[DataRequired("Describe the evidence"), Length(max=8000)],
        description="What you have seen: figures, reports, inspection findings, meetings.",
    )
    password = PasswordField(
        "Your password",
        validators=[DataRequired("Enter your password to sign")],
        description="You sign the notification by entering your password again.",
    )


# --- helpers -------------------------------------------------------------------------------


def _visible_decision_or_404(decision_id: int) -> Decision:
    decision = db.session.get(Decision, decision_id)
    if decision is None or not can_view_unit(current_user, decision.case.unit):
        abort(404)
    return decision


def _me():
    return current_user._get_current_object()


def _role_title(framework, role: str) -> str:
    return framework.decider_roles.get(role, role.replace("_", " ").capitalize())


def _needed(framework, rule) -> str:
    roles = rule.sequence or rule.any_of
    joiner = " then " if rule.sequence else " or "
    return joiner.join(_role_title(framework, r) for r in roles)


def _progress(decision: Decision, framework) -> tuple[int, int]:
    """(the signature awaited next, the signatures the rule needs)."""
    rule = framework.signatures[decision.signature_rule]
    needed = len(rule.sequence) if rule.sequence else rule.count
    return min(len(decision.signatures) + 1, needed), needed


def _refusal(decision: Decision, framework) -> str:
    rule = framework.signatures[decision.signature_rule]
    if any(s.person_id == current_user.id for s in decision.signatures):
        return "You have already signed this decision; it is waiting for another signature."
    done = len(decision.signatures)
    if rule.sequence and done < len(rule.sequence):
        # A later signer of a sequence (e.g. the Minister before the Director General) may
        # sign, only not yet: say so rather than that their roles do not allow it.
        later = [r for r in rule.sequence[done + 1 :] if r in current_user.roles]
        if later:
            return (
                f"This decision needs {_role_title(framework, rule.sequence[done])} to sign it "
                f"first (signature {done + 1} of {len(rule.sequence)}). You can sign it as "
                f"{_role_title(framework, later[0])} after that; nothing was signed."
            )
    return (
        f"This decision needs {_needed(framework, rule)} to sign it. Your roles do not allow "
        "you to sign it, so nothing was signed."
    )


def _track_title(framework, case: EscalationCase) -> str:
    title = framework.track_for(case.track).title
    if ":" in case.track:
        title += f" ({case.track.partition(':')[2]})"
    return title


def _letter_kind(framework, case: EscalationCase, from_level: str, to_level: str) -> str | None:
    transition = framework.transition(case.track, from_level, to_level)
    if transition is None:
        return None
    return (framework.consequences_for(transition) or {}).get("letter")


def _support_spec(framework, levels) -> dict:
    """The support options (name -> spec) of any of ``levels`` the person may choose."""
    options: dict = {}
    for level_id in levels:
        spec = framework.levels[level_id].support_options if level_id in framework.levels else None
        if spec and (spec.get("chosen_by") or CEO) in current_user.roles:
            options.update(spec.get("options") or {})
    return options


def _level_support(framework, level_id: str) -> dict:
    spec = framework.levels[level_id].support_options if level_id in framework.levels else None
    if spec and (spec.get("chosen_by") or CEO) in current_user.roles:
        return dict(spec.get("options") or {})
    return {}


def _sign_form(decision: Decision, framework) -> SignDecisionForm:
    """The sign form with this decision's choices."""
    case = decision.case
    form = SignDecisionForm()
    others = [
        t
        for t in allowed_transitions(framework, case.track, case.level)
        if t.to_level != decision.to_level and decision.kind != "earned_autonomy"
    ]
    form.to_level.choices = [("", "Choose a level")] + [
        (t.to_level, framework.level_title(t.to_level)) for t in others
    ]
    outcomes = dict(OUTCOME_CHOICES)
    outcomes["approve"] = f"Approve: move to {framework.level_title(decision.to_level)}"
    if decision.kind == "earned_autonomy":  # no level change (docs/decisions/0019)
        outcomes["approve"] = "Approve: earned autonomy, lighter monitoring at this level"
    if not others:
        outcomes.pop("approve_other")
    form.outcome.choices = list(outcomes.items())
    options = _support_spec(framework, [decision.to_level, *(t.to_level for t in others)])
    form.support_options.choices = [(name, name.replace("_", " ").capitalize()) for name in options]
    every = (options.get("ceo_progress_meetings") or {}).get("every") or []
    if isinstance(every, str):
        every = [every]
    form.progress_every.choices = [(e, f"Every {e}") for e in every]
    form.others = others
    return form


def _validate_sign_form(form: SignDecisionForm, decision: Decision, framework) -> bool:
    ok = form.validate_on_submit()
    outcome = form.outcome.data
    target = decision.to_level
    if outcome == "approve_other":
        allowed = {t.to_level for t in form.others}
        if not form.to_level.data:
            form.to_level.errors = [*form.to_level.errors, "Choose the level to approve instead"]
            ok = False
        elif form.to_level.data not in allowed:
            form.to_level.errors = [
                *form.to_level.errors,
                "The framework does not allow a move to that level from here",
            ]
            ok = False
        else:
            target = form.to_level.data
    if outcome in ("approve", "approve_other"):
        transition = framework.transition(decision.case.track, decision.case.level, target)
        rule_name = transition.signed_by if transition else decision.signature_rule
        rule = framework.signatures[rule_name]
        if rule.record_meeting and not (form.meeting_reference.data or "").strip():
            form.meeting_reference.errors = [
                *form.meeting_reference.errors,
                "Name the meeting where this was agreed",
            ]
            ok = False
        chosen = form.support_options.data or []
        if "ceo_progress_meetings" in chosen and form.progress_every.choices:
            valid = {value for value, _ in form.progress_every.choices}
            if form.progress_every.data not in valid:
                form.progress_every.errors = [
                    *form.progress_every.errors,
                    "Choose how often the progress meetings with the Chief Executive are",
                ]
                ok = False
    return ok


def _chosen_support(form: SignDecisionForm, framework, target: str) -> dict | None:
    allowed = _level_support(framework, target)
    chosen = {}
    for name in form.support_options.data or []:
        if name not in allowed:
            continue
        chosen[name] = {}
        if name == "ceo_progress_meetings" and form.progress_every.data:
            chosen[name] = {"every": form.progress_every.data}
    return chosen or None


def _history(case: EscalationCase, exclude_id: int | None = None):
    decisions = db.session.scalars(
        sa.select(Decision)
        .where(Decision.case_id == case.id, Decision.status != "pending")
        .order_by(Decision.decided_at.desc(), Decision.id.desc())
        .options(so.selectinload(Decision.signatures))
    ).all()
    letters = db.session.scalars(
        sa.select(Letter).where(Letter.case_id == case.id).order_by(Letter.issued_at)
    ).all()
    return [d for d in decisions if d.id != exclude_id], letters


def _diagram(framework, case: EscalationCase, proposed: str | None):
    track = framework.track_for(case.track)
    current = {track.name: case.level}
    marked = {track.name: proposed} if proposed else None
    try:
        return svg_diagram(framework, track.name, current=current, proposed=marked), None
    except DiagramUnavailable:
        return None, mermaid_diagram(framework, track.name, current=current, proposed=marked)


def _render_show(decision: Decision, form=None, *, problem: str | None = None, status=200):
    case = decision.case
    framework = get_framework(case.framework)
    now = utcnow()
    capacity = None
    if decision.status == "pending":
        capacity = signing_capacity(current_user, decision, now)
    if capacity is not None and form is None:
        form = _sign_form(decision, framework)
    rule = framework.signatures.get(decision.signature_rule)
    proposed = decision.to_level if decision.status == "pending" else None
    diagram_svg, diagram_text = _diagram(framework, case, proposed)
    past, letters = _history(case, exclude_id=decision.id)
    letter_kind = (
        _letter_kind(framework, case, decision.from_level, decision.to_level)
        if decision.status == "pending"
        else None
    )
    evidence = json.loads(decision.evidence) if decision.evidence else {}
    signed, needed = _progress(decision, framework)
    return (
        render_template(
            "decisions/show.html",
            decision=decision,
            case=case,
            framework=framework,
            track_title=_track_title(framework, case),
            evidence=evidence if isinstance(evidence, dict) else {"record": evidence},
            rule=rule,
            needed_text=_needed(framework, rule) if rule else decision.signature_rule,
            signature_number=signed,
            signatures_needed=needed,
            capacity=capacity,
            capacity_title=_role_title(framework, capacity.role) if capacity else "",
            form=form if capacity is not None else None,
            problem=problem,
            refusal=_refusal(decision, framework)
            if decision.status == "pending" and capacity is None
            else None,
            past_decisions=past,
            letters=letters,
            letter_kind=letter_kind,
            diagram_svg=diagram_svg,
            diagram_text=diagram_text,
            can_raise=can_raise_escalation(current_user),
            role_title=lambda role: _role_title(framework, role),
        ),
        status,
    )


def _success_message(decision: Decision, framework, old_level: str) -> str:
    case = decision.case
    where = f"{case.unit.name}'s {_track_title(framework, case)} track"
    if decision.status == "rejected":
        return f"Rejected: {where} stays at {framework.level_title(case.level)}."
    if decision.status == "pending":
        signed, needed = _progress(decision, framework)
        rule = framework.signatures[decision.signature_rule]
        nxt = rule.sequence[signed - 1] if rule.sequence else None
        waiting = f" from {_role_title(framework, nxt)}" if nxt else ""
        return (
            f"Signed. The decision now awaits signature {signed} of {needed}{waiting}; "
            "it takes effect when that is signed."
        )
    if decision.kind == "earned_autonomy":
        return f"Approved: {case.unit.name} has earned autonomy; its monitoring is lighter."
    transition = framework.transition(case.track, old_level, case.level)
    spec = framework.consequences_for(transition) if transition else {}
    made = []
    if spec.get("letter"):
        made.append("letter")
    if spec.get("deadlines"):
        made.append("deadlines")
    text = f"Approved: {where} is now at {framework.level_title(case.level)}."
    if made == ["letter", "deadlines"]:
        text += " The letter and deadlines have been created."
    elif made:
        text += f" The {made[0]} {'has' if made[0] == 'letter' else 'have'} been created."
    return text


# --- pages ---------------------------------------------------------------------------------


@bp.route("/")
@login_required
def index():
    """Decisions awaiting my signature, then those awaiting someone else's."""
    pending = db.session.scalars(
        sa.select(Decision)
        .join(EscalationCase, EscalationCase.id == Decision.case_id)
        .join(Unit, Unit.id == EscalationCase.unit_id)
        .where(Decision.status == "pending", visible_units_filter(current_user))
        .order_by(Decision.period.desc().nulls_last(), Unit.code, Decision.id)
        .options(
            so.joinedload(Decision.case).joinedload(EscalationCase.unit),
            so.selectinload(Decision.signatures),
        )
    ).all()
    now = utcnow()
    mine, others = [], []
    for decision in pending:
        framework = get_framework(decision.case.framework)
        capacity = signing_capacity(current_user, decision, now)
        signed, needed = _progress(decision, framework)
        rule = framework.signatures.get(decision.signature_rule)
        row = {
            "decision": decision,
            "framework": framework,
            "track_title": _track_title(framework, decision.case),
            "signature_number": signed,
            "signatures_needed": needed,
            "needed_text": _needed(framework, rule) if rule else decision.signature_rule,
            "capacity": capacity,
            "capacity_title": _role_title(framework, capacity.role) if capacity else "",
        }
        (mine if capacity is not None else others).append(row)
    if fmt := format_from_request():
        return export_list("decisions", DECISION_COLUMNS, mine + others, fmt).as_response()
    return render_template("decisions/index.html", mine=mine, others=others)


#: Both lists of the decisions page as one download, "Awaiting" saying whose signature.
DECISION_COLUMNS = [
    Column("Unit code", lambda row: row["decision"].case.unit.code),
    Column("Unit", lambda row: row["decision"].case.unit.name),
    Column("Track", lambda row: row["track_title"]),
    Column("From level", lambda row: row["framework"].level_title(row["decision"].from_level)),
    Column("To level", lambda row: row["framework"].level_title(row["decision"].to_level)),
    Column("Month", lambda row: row["decision"].period),
    Column("Why", lambda row: row["decision"].reason),
    Column(
        "Awaiting",
        lambda row: (
            f"your signature as {row['capacity_title']}"
            if row["capacity"] is not None
            else row["needed_text"]
        ),
    ),
    Column(
        "Signature awaited", lambda row: f"{row['signature_number']} of {row['signatures_needed']}"
    ),
]


@bp.route("/<int:decision_id>")
@login_required
def show(decision_id: int):
    """One decision: evidence, history, lifecycle and, for a signer, the sign form."""
    decision = _visible_decision_or_404(decision_id)
    return _render_show(decision)


@bp.route("/<int:decision_id>/sign", methods=["POST"])
@login_required
def sign(decision_id: int):
    """Sign: approve, approve at another allowed level, or reject; re-authenticated."""
    decision = _visible_decision_or_404(decision_id)
    framework = get_framework(decision.case.framework)
    if decision.status == "pending" and signing_capacity(current_user, decision, utcnow()) is None:
        # The status was read before the signatures: a concurrent signing that completed in
        # between is "already decided" (409), not "you may not sign" (check 10).
        db.session.refresh(decision)
        if decision.status == "pending":
            abort(403, _refusal(decision, framework))
    form = _sign_form(decision, framework)
    if not _validate_sign_form(form, decision, framework):
        form.password.data = ""
        return _render_show(decision, form, status=400)
    outcome = "reject" if form.outcome.data == "reject" else "approve"
    to_level = form.to_level.data if form.outcome.data == "approve_other" else None
    target = to_level or decision.to_level
    old_level = decision.case.level
    try:
        with transaction():
            decide_proposal(
                _me(),
                decision,
                outcome=outcome,
                reason=form.reason.data or "",
                password=form.password.data or "",
                to_level=to_level,
                meeting_reference=form.meeting_reference.data or "",
                support_options=_chosen_support(form, framework, target)
                if outcome == "approve"
                else None,
            )
    except (Conflict, PermissionDenied):
        raise  # the app's handlers show 409 / 403 with the service's explanation
    except ServiceError as problem:
        message = str(problem)
        if "password" in message.lower():
            form.password.errors = [message]
            with transaction():  # audited and counted towards the lock (decision 0030)
                accounts.record_failed_signature(
                    _me(), object_type="decision", object_id=decision_id
                )
        form.password.data = ""
        decision = _visible_decision_or_404(decision_id)
        return _render_show(decision, form, problem=message, status=400)
    flash(_success_message(decision, framework, old_level), "success")
    return redirect(url_for("decisions.show", decision_id=decision.id))


@bp.route("/<int:decision_id>/letter-preview")
@login_required
def letter_preview(decision_id: int):
    """The letter this decision would issue, as its own document (not stored, not issued)."""
    decision = _visible_decision_or_404(decision_id)
    case = decision.case
    framework = get_framework(case.framework)
    kind = _letter_kind(framework, case, decision.from_level, decision.to_level)
    if kind is None:
        abort(404, "This move does not create a letter, so there is nothing to preview.")
    try:
        context = letter_context(
            decision, issued_by=_me(), reference="PREVIEW – not issued", issued_at=utcnow()
        )
        html = render_letter(kind, context)
    except LetterError as error:
        abort(404, f"The letter cannot be previewed: {error}")
    response = make_response(html)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    # Set here so the app's default CSP (applied with setdefault) does not replace it.
    response.headers["Content-Security-Policy"] = LETTER_PREVIEW_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.route("/raise/<int:case_id>", methods=["GET", "POST"])
@login_required
def raise_case(case_id: int):
    """Raise an escalation (or de-escalation) by hand, with a reason and the evidence."""
    case = db.session.get(EscalationCase, case_id)
    if case is None or not can_view_unit(current_user, case.unit):
        abort(404)
    if not can_raise_escalation(current_user):
        abort(
            403,
            "Only an executive director, the Chief Executive or the performance team can "
            "raise an escalation by hand. Speak to them if you think this case should move.",
        )
    framework = get_framework(case.framework)
    allowed = allowed_transitions(framework, case.track, case.level)
    form = RaiseEscalationForm()
    form.to_level.choices = [("", "Choose a level")] + [
        (
            t.to_level,
            f"{'Escalate' if t.direction == 'up' else 'De-escalate'} to "
            f"{framework.level_title(t.to_level)}",
        )
        for t in allowed
    ]
    problem = None
    status = 200
    if form.is_submitted():
        if form.validate():
            try:
                with transaction():
                    decision = raise_escalation(
                        _me(),
                        case,
                        to_level=form.to_level.data,
                        reason=form.reason.data,
                        evidence_note=form.evidence_note.data,
                    )
                    decision_id = decision.id
            except PermissionDenied:
                raise
            except ServiceError as error:
                problem = str(error)
            else:
                flash(
                    "Proposal raised. It now waits for a decision by the people the framework "
                    "names.",
                    "success",
                )
                return redirect(url_for("decisions.show", decision_id=decision_id))
        status = 400
    return (
        render_template(
            "decisions/raise.html",
            case=case,
            framework=framework,
            track_title=_track_title(framework, case),
            allowed=allowed,
            form=form,
            problem=problem,
        ),
        status,
    )


@bp.route("/notify/<int:case_id>", methods=["GET", "POST"])
@login_required
def notify_case(case_id: int):
    """Issue a formal notification (letter of concern, performance notice) without a level
    change, where the framework allows it (framework B, 7.2: levels 1 and 2)."""
    case = db.session.get(EscalationCase, case_id)
    if case is None or not can_view_unit(current_user, case.unit):
        abort(404)
    framework = get_framework(case.framework)
    rules = framework.formal_notifications or {}
    if not rules:
        abort(403, f"The {framework.title} has no formal notifications, so nothing was issued.")
    capacity = formal_notification_capacity(current_user, case, utcnow())
    if capacity is None:
        rule = framework.signatures[rules["signed_by"]]
        abort(
            403,
            f"A formal notification is issued by {_needed(framework, rule)}. Your roles do not "
            "allow you to issue one, so nothing was issued.",
        )
    kinds = formal_notification_kinds(case)
    refusal = formal_notification_refusal(case)
    form = FormalNotificationForm()
    form.kind.choices = [(k, k.replace("_", " ").capitalize()) for k in kinds]
    problem = None
    status = 200
    if form.is_submitted():
        status = 400
        if refusal:
            problem = f"{refusal}, so nothing was issued."
        elif form.validate():
            try:
                with transaction():
                    issue_formal_notification(
                        _me(),
                        case,
                        kind=form.kind.data,
                        reason=form.reason.data,
                        evidence_note=form.evidence_note.data,
                        password=form.password.data,
                    )
            except PermissionDenied:
                raise
            except ServiceError as error:
                problem = str(error)
                if "password" in problem.lower():
                    form.password.errors = [problem]
                    with transaction():  # audited and counted towards the lock (decision 0030)
                        accounts.record_failed_signature(
                            _me(), object_type="case", object_id=case_id
                        )
            else:
                title = form.kind.data.replace("_", " ")
                flash(
                    f"{title[0].upper()}{title[1:]} issued to {case.unit.name}. The letter is "
                    f"on the case; the level stays at {framework.level_title(case.level)}.",
                    "success",
                )
                return redirect(url_for("cases.show", case_id=case_id))
        form.password.data = ""
    return (
        render_template(
            "decisions/notify.html",
            case=case,
            framework=framework,
            track_title=_track_title(framework, case),
            capacity_title=_role_title(framework, capacity.role),
            capacity=capacity,
            refusal=refusal,
            form=form,
            problem=problem,
        ),
        status,
    )
