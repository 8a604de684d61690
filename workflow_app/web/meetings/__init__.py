"""Meetings: the calendar of upcoming meetings, one meeting (schedule, reschedule, cancel,
supporting members, attendance, minutes), its data pack (page and PDF) and its .ics.

Who sees a meeting: whoever may see its unit, and its invitees (others get 404, decision
0006). Who schedules, moves, cancels and records the outcome: the chair, the Chief Executive
and the performance team (others get 403). The budget holder adds supporting members.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import sqlalchemy as sa
import sqlalchemy.orm as so
from flask import (
    Blueprint,
    abort,
    flash,
    make_response,
    redirect,
    render_template,
    request,
    url_for,
)
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from wtforms import DateField, EmailField, RadioField, SelectField, StringField, TextAreaField
from wtforms.validators import DataRequired, Length, Optional

from workflow_app.clock import LONDON, as_utc, to_london, utcnow
from workflow_app.extensions import db
from workflow_app.models.meetings import (
    ATTENDANCE,
    INVITEE_ROLES,
    MEETING_KINDS,
    Meeting,
    MeetingInvitee,
)
from workflow_app.models.org import Person, Unit
from workflow_app.permissions import can_view_unit, visible_units_filter
from workflow_app.services.errors import PermissionDenied, ServiceError
from workflow_app.services.list_export import Column, export_list, format_from_request
from workflow_app.services.meetings import (
    ACTION_PLAN_KINDS,
    CHAIR_LETTER_KINDS,
    add_invitee,
    can_add_supporting_member,
    can_manage_meeting,
    can_view_meeting,
    cancel_meeting,
    data_pack,
    data_pack_pdf,
    invitation_ics,
    propose_slots,
    record_attendance,
    record_outcome,
    reschedule_meeting,
    schedule_meeting,
    supporting_member_limit,
)
from workflow_app.services.unit_of_work import transaction

bp = Blueprint("meetings", __name__, url_prefix="/meetings")

#: The data pack is its own document with its own print styles; nothing else may load.
PACK_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
OTHER_TIME = "other"
DURATIONS = [
    ("60", "1 hour"),
    ("90", "1 hour 30 minutes"),
    ("120", "2 hours"),
    ("30", "30 minutes"),
]


# --- forms ---------------------------------------------------------------------------------


class ScheduleForm(FlaskForm):
    slot = RadioField("When", choices=[], validate_choice=False)
    day = DateField("Date", validators=[Optional()])
    start_time = StringField(
        "Start time",
        validators=[Optional(), Length(max=5)],
        description="UK time, for example 14:30.",
    )
    duration = SelectField("Length", choices=DURATIONS, default="60")
    location = StringField(
        "Where",
        validators=[Length(max=300)],
        description="A room, or the video call link. Sent in the invitation.",
    )
    reason = TextAreaField("Why it is moving", validators=[Optional(), Length(max=2000)])


class CancelForm(FlaskForm):
    reason = TextAreaField(
        "Why it is cancelled",
        validators=[DataRequired("Give the reason for cancelling the meeting"), Length(max=4000)],
        description="Sent to everyone invited.",
    )


class SupportingMemberForm(FlaskForm):
    email = EmailField(
        "E-mail address of the team member",
        validators=[DataRequired("Enter the team member's e-mail address"), Length(max=254)],
    )


class OutcomeForm(FlaskForm):
    minutes = TextAreaField(
        "Minutes",
        validators=[DataRequired("Enter the minutes of the meeting"), Length(max=50_000)],
        description="A blank line starts a new paragraph.",
    )
    decisions_text = TextAreaField(
        "Decisions and agreed actions",
        validators=[
            DataRequired("Enter the decisions and agreed actions"),
            Length(max=20_000),
        ],
        description="One per line. They go into the chair's formal letter; the unit then "
        "writes the agreed action plan with an owner and due date for each action.",
    )


class PlainForm(FlaskForm):
    """CSRF only (attendance and apologies read their own fields)."""


# --- helpers -------------------------------------------------------------------------------


def _me() -> Person:
    return current_user._get_current_object()


def _visible_meeting_or_404(meeting_id: int) -> Meeting:
    meeting = db.session.get(Meeting, meeting_id)
    if meeting is None or not can_view_meeting(current_user, meeting):
        abort(404)
    return meeting


def _slot_label(moment: datetime, minutes: int = 60) -> str:
    start = to_london(moment)
    end = start + timedelta(minutes=minutes)
    return f"{start:%A} {start.day} {start:%B %Y}, {start:%H:%M} to {end:%H:%M}"


def _schedule_form(meeting: Meeting, slots: list[datetime]) -> ScheduleForm:
    form = ScheduleForm()
    minutes = int(form.duration.data or 60) if form.duration.data in dict(DURATIONS) else 60
    form.slot.choices = [
        (as_utc(s).strftime("%Y-%m-%dT%H:%MZ"), _slot_label(s, minutes)) for s in slots
    ]
    form.slot.choices.append((OTHER_TIME, "Another date and time"))
    return form


def _chosen_time(form: ScheduleForm) -> tuple[datetime, datetime] | None:
    """The start and end the form asks for, or None with the form's errors set."""
    minutes = int(form.duration.data) if form.duration.data in dict(DURATIONS) else 60
    choice = form.slot.data
    if choice and choice != OTHER_TIME:
        try:
            start = datetime.strptime(choice, "%Y-%m-%dT%H:%MZ").replace(tzinfo=UTC)
        except ValueError:
            form.slot.errors = [*form.slot.errors, "Choose one of the times shown"]
            return None
        return start, start + timedelta(minutes=minutes)
    if not choice:
        form.slot.errors = [*form.slot.errors, "Choose a time, or another date and time"]
        return None
    ok = True
    if form.day.data is None:
        form.day.errors = [*form.day.errors, "Enter the date of the meeting"]
        ok = False
    text = (form.start_time.data or "").strip()
    try:
        clock = datetime.strptime(text, "%H:%M").time()
    except ValueError:
        form.start_time.errors = [
            *form.start_time.errors,
            "Enter the start time as hours and minutes, for example 14:30",
        ]
        ok = False
    if not ok:
        return None
    start = datetime.combine(form.day.data, clock, tzinfo=LONDON).astimezone(UTC)
    return start, start + timedelta(minutes=minutes)


def _render_show(meeting: Meeting, *, forms: dict | None = None, problem=None, status=200):
    forms = forms or {}
    now = utcnow()
    manage = can_manage_meeting(current_user, meeting)
    slots = []
    if manage and meeting.status in ("requested", "scheduled"):
        slots = propose_slots(meeting, now=now)
    schedule_form = forms.get("schedule") or (_schedule_form(meeting, slots) if manage else None)
    limit = supporting_member_limit(meeting)
    supporting = [i for i in meeting.invitees if i.role == "supporting_member"]
    started = meeting.starts_at is not None and as_utc(meeting.starts_at) <= now
    mine = next((i for i in meeting.invitees if i.person_id == current_user.id), None)
    late = bool(meeting.hold_by and meeting.hold_by < to_london(now).date())
    return (
        render_template(
            "meetings/show.html",
            meeting=meeting,
            kind_title=MEETING_KINDS.get(meeting.kind, meeting.kind),
            invitee_roles=INVITEE_ROLES,
            attendance_titles=ATTENDANCE,
            manage=manage,
            slots=slots,
            schedule_form=schedule_form,
            cancel_form=forms.get("cancel") or (CancelForm() if manage else None),
            member_form=forms.get("member")
            or (
                SupportingMemberForm() if can_add_supporting_member(current_user, meeting) else None
            ),
            outcome_form=forms.get("outcome") or (OutcomeForm() if manage else None),
            plain_form=PlainForm(),
            limit=limit,
            supporting=supporting,
            started=started,
            mine=mine,
            late=late,
            outcome_effects=_outcome_effects(meeting, done=False),
            can_see_unit=can_view_unit(current_user, meeting.unit),
            problem=problem,
            now=now,
        ),
        status,
    )


def _act(meeting: Meeting, action, success: str, *, forms: dict | None = None):
    """Run a service in one transaction; a refusal re-renders the page with the reason."""
    try:
        with transaction():
            action()
    except PermissionDenied:
        raise
    except ServiceError as problem:
        meeting = _visible_meeting_or_404(meeting.id)
        return _render_show(meeting, forms=forms, problem=str(problem), status=400)
    flash(success, "success")
    return redirect(url_for("meetings.show", meeting_id=meeting.id))


def _require_manage(meeting: Meeting, what: str) -> None:
    if not can_manage_meeting(current_user, meeting):
        abort(403, f"Only the chair, the Chief Executive or the performance team can {what}.")


# --- the calendar --------------------------------------------------------------------------


def _visible_meetings_query(person: Person):
    invited = sa.select(MeetingInvitee.meeting_id).where(MeetingInvitee.person_id == person.id)
    return (
        sa.select(Meeting)
        .join(Unit, Unit.id == Meeting.unit_id)
        .where(sa.or_(visible_units_filter(person), Meeting.id.in_(invited)))
    )


@bp.route("/")
@login_required
def index():
    """Upcoming meetings by week, those waiting to be scheduled, filtered by unit or person."""
    me = _me()
    now = utcnow()
    query = _visible_meetings_query(me)
    unit_id = request.args.get("unit", type=int)
    person_id = request.args.get("person", type=int)
    mine = request.args.get("mine") == "1"
    if mine:
        person_id = me.id
    if unit_id:
        query = query.where(Meeting.unit_id == unit_id)
    if person_id:
        query = query.where(
            Meeting.id.in_(
                sa.select(MeetingInvitee.meeting_id).where(MeetingInvitee.person_id == person_id)
            )
        )
    options = (so.selectinload(Meeting.invitees), so.joinedload(Meeting.unit))
    today_start = datetime.combine(to_london(now).date(), datetime.min.time(), tzinfo=LONDON)
    upcoming = db.session.scalars(
        query.where(Meeting.status == "scheduled", Meeting.starts_at >= as_utc(today_start))
        .order_by(Meeting.starts_at)
        .options(*options)
    ).all()
    waiting = db.session.scalars(
        query.where(Meeting.status == "requested")
        .order_by(Meeting.hold_by.nulls_last(), Meeting.id)
        .options(*options)
    ).all()
    if fmt := format_from_request():
        return export_list("meetings", MEETING_COLUMNS, [*waiting, *upcoming], fmt).as_response()
    weeks: list[tuple[date, list[Meeting]]] = []
    for meeting in upcoming:
        day = to_london(meeting.starts_at).date()
        monday = day - timedelta(days=day.weekday())
        if not weeks or weeks[-1][0] != monday:
            weeks.append((monday, []))
        weeks[-1][1].append(meeting)
    units = db.session.scalars(
        sa.select(Unit).where(visible_units_filter(me)).order_by(Unit.name)
    ).all()
    people = db.session.scalars(
        sa.select(Person)
        .where(
            Person.id.in_(
                sa.select(MeetingInvitee.person_id).where(
                    MeetingInvitee.meeting_id.in_(
                        _visible_meetings_query(me).with_only_columns(Meeting.id)
                    )
                )
            )
        )
        .order_by(Person.name)
    ).all()
    return render_template(
        "meetings/index.html",
        weeks=weeks,
        waiting=waiting,
        units=units,
        people=people,
        unit_id=unit_id,
        person_id=person_id,
        mine=mine,
        kinds=MEETING_KINDS,
    )


#: The meetings page (waiting, then upcoming, with its filters) as a download.
MEETING_COLUMNS = [
    Column("Status", lambda m: "to be scheduled" if m.status == "requested" else m.status),
    Column("Meeting", lambda m: m.title),
    Column("Kind", lambda m: MEETING_KINDS.get(m.kind, m.kind)),
    Column("Unit code", lambda m: m.unit.code),
    Column("Unit", lambda m: m.unit.name),
    Column("Starts", lambda m: m.starts_at),
    Column("Ends", lambda m: m.ends_at),
    Column("To be held by", lambda m: m.hold_by),
    Column("Where", lambda m: m.location),
    Column("Invited", lambda m: len(m.invitees)),
]


# --- one meeting ---------------------------------------------------------------------------


@bp.route("/<int:meeting_id>")
@login_required
def show(meeting_id: int):
    return _render_show(_visible_meeting_or_404(meeting_id))


@bp.route("/<int:meeting_id>/schedule", methods=["POST"])
@login_required
def schedule(meeting_id: int):
    """Schedule (or, for a meeting in the diary, move) the meeting and send the invitations."""
    meeting = _visible_meeting_or_404(meeting_id)
    _require_manage(meeting, "schedule this meeting")
    form = _schedule_form(meeting, propose_slots(meeting))
    if not form.validate_on_submit():
        return _render_show(meeting, forms={"schedule": form}, status=400)
    chosen = _chosen_time(form)
    if chosen is None:
        return _render_show(meeting, forms={"schedule": form}, status=400)
    start, end = chosen
    me = _me()
    location = form.location.data or ""
    if meeting.status == "scheduled":
        return _act(
            meeting,
            lambda: reschedule_meeting(
                me,
                meeting,
                start,
                end,
                location=location or meeting.location,
                reason=form.reason.data or "",
            ),
            f"Moved to {_slot_label(start, int((end - start).total_seconds() // 60))}. "
            "Updated invitations have been sent to everyone invited.",
            forms={"schedule": form},
        )
    return _act(
        meeting,
        lambda: schedule_meeting(me, meeting, start, end, location=location),
        f"Scheduled for {_slot_label(start, int((end - start).total_seconds() // 60))}. "
        f"Invitations have been sent to {len(meeting.invitees)} people.",
        forms={"schedule": form},
    )


@bp.route("/<int:meeting_id>/cancel", methods=["POST"])
@login_required
def cancel(meeting_id: int):
    meeting = _visible_meeting_or_404(meeting_id)
    _require_manage(meeting, "cancel this meeting")
    form = CancelForm()
    if not form.validate_on_submit():
        return _render_show(meeting, forms={"cancel": form}, status=400)
    was_scheduled = meeting.status == "scheduled"
    me = _me()
    return _act(
        meeting,
        lambda: cancel_meeting(me, meeting, form.reason.data),
        "Cancelled."
        + (" Everyone invited has been sent the cancellation." if was_scheduled else ""),
        forms={"cancel": form},
    )


@bp.route("/<int:meeting_id>/invitees", methods=["POST"])
@login_required
def add_member(meeting_id: int):
    """The budget holder adds a supporting team member."""
    meeting = _visible_meeting_or_404(meeting_id)
    if not can_add_supporting_member(current_user, meeting):
        abort(
            403,
            "Only the unit's budget holder, the chair or the performance team can add "
            "supporting team members.",
        )
    form = SupportingMemberForm()
    if not form.validate_on_submit():
        return _render_show(meeting, forms={"member": form}, status=400)
    person = db.session.scalar(
        sa.select(Person).where(sa.func.lower(Person.email) == form.email.data.strip().lower())
    )
    if person is None or not person.is_enabled:
        form.email.errors = [
            "Nobody with that e-mail address can use Escalate; ask the system administrator "
            "to add them first"
        ]
        return _render_show(meeting, forms={"member": form}, status=400)
    me = _me()
    return _act(
        meeting,
        lambda: add_invitee(me, meeting, person, "supporting_member"),
        f"{person.name} has been invited as a supporting team member"
        + (" and sent the invitation." if meeting.status == "scheduled" else "."),
        forms={"member": form},
    )


@bp.route("/<int:meeting_id>/attendance", methods=["POST"])
@login_required
def attendance(meeting_id: int):
    """Attendance of every invitee (the chair's side), or one's own apologies."""
    meeting = _visible_meeting_or_404(meeting_id)
    form = PlainForm()
    if not form.validate_on_submit():
        abort(400)
    me = _me()
    manage = can_manage_meeting(me, meeting)
    changes = []
    for invitee in meeting.invitees:
        value = request.form.get(f"attendance-{invitee.id}")
        note = request.form.get(f"note-{invitee.id}", "")
        if value and (value != invitee.attendance or note.strip() != invitee.attendance_note):
            changes.append((invitee.person, value, note))
    if request.form.get("apologies") == "1":
        changes = [(me, "apologies", request.form.get("note", ""))]
    if not manage and any(p.id != me.id for p, _, _ in changes):
        abort(403, "Only the chair or the performance team can record attendance.")

    def run():
        for person, value, note in changes:
            record_attendance(me, meeting, person, value, note)

    return _act(meeting, run, "Attendance saved." if changes else "Nothing changed.")


@bp.route("/<int:meeting_id>/outcome", methods=["POST"])
@login_required
def outcome(meeting_id: int):
    """Minutes and decisions: the meeting is held; action plan and chair's letter follow."""
    meeting = _visible_meeting_or_404(meeting_id)
    _require_manage(meeting, "record the outcome of this meeting")
    form = OutcomeForm()
    if not form.validate_on_submit():
        return _render_show(meeting, forms={"outcome": form}, status=400)
    me = _me()
    return _act(
        meeting,
        lambda: record_outcome(me, meeting, form.minutes.data, form.decisions_text.data),
        "The minutes and decisions are recorded." + _outcome_effects(meeting),
        forms={"outcome": form},
    )


def _outcome_effects(meeting: Meeting, *, done: bool = True) -> str:
    """What recording the outcome of this meeting also does, in words."""
    effects = []
    if meeting.case_id is not None and meeting.kind in ACTION_PLAN_KINDS:
        effects.append(
            "the agreed action plan is ready for the unit to write"
            if done
            else "it creates the agreed action plan, which the unit writes with an owner "
            "and a due date for each action"
        )
    if meeting.case_id is not None and meeting.kind in CHAIR_LETTER_KINDS:
        effects.append(
            "the chair's formal letter has been issued"
            if done
            else "it issues the chair's formal letter"
        )
    return (" " + " and ".join(effects).capitalize() + ".") if effects else ""


@bp.route("/<int:meeting_id>/pack")
@login_required
def pack(meeting_id: int):
    """The data pack as a page: made and frozen on the meeting the first time it is asked
    for, then the same for everyone."""
    meeting = _visible_meeting_or_404(meeting_id)
    with transaction():
        html = data_pack(meeting, actor=_me())
    response = make_response(html)
    response.headers["Content-Type"] = "text/html; charset=utf-8"
    response.headers["Content-Security-Policy"] = PACK_CSP
    response.headers["X-Data-Pack-SHA256"] = meeting.data_pack_sha256 or ""
    return response


@bp.route("/<int:meeting_id>/pack.pdf")
@login_required
def pack_pdf(meeting_id: int):
    """The PDF of the frozen data pack."""
    meeting = _visible_meeting_or_404(meeting_id)
    with transaction():
        pdf = data_pack_pdf(meeting, actor=_me())
    response = make_response(pdf)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = (
        f'attachment; filename="data-pack-meeting-{meeting.id}.pdf"'
    )
    response.headers["X-Data-Pack-SHA256"] = meeting.data_pack_sha256 or ""
    return response


@bp.route("/<int:meeting_id>/invite.ics")
@login_required
def ics(meeting_id: int):
    """The meeting's calendar event as it stands (a cancelled one as METHOD:CANCEL)."""
    meeting = _visible_meeting_or_404(meeting_id)
    if meeting.starts_at is None:
        abort(404, "This meeting has no date yet, so there is no calendar event.")
    body = invitation_ics(meeting, cancelled=meeting.status == "cancelled")
    response = make_response(body)
    method = "CANCEL" if meeting.status == "cancelled" else "REQUEST"
    response.headers["Content-Type"] = f"text/calendar; charset=utf-8; method={method}"
    response.headers["Content-Disposition"] = f'attachment; filename="meeting-{meeting.id}.ics"'
    return response


# --- the case page's include ---------------------------------------------------------------


@bp.app_template_global("case_meetings")
def case_meetings(case) -> list[Meeting]:
    """The meetings of a case, newest first (for ``meetings/_case_meetings.html``)."""
    return list(
        db.session.scalars(
            sa.select(Meeting)
            .where(Meeting.case_id == case.id)
            .order_by(Meeting.requested_at.desc(), Meeting.id.desc())
        )
    )
