"""Cadence meetings: the occurrences of a unit's cadence that are meetings, requested.

Two sources (docs/decisions/0019):

* **The level's cadence** (``services/cadence.py`` plans each occurrence as a deadline of kind
  ``cadence:<name>``). The names in :data:`CADENCE_MEETINGS` are meetings: framework A's
  weekly or fortnightly progress meetings with the CEO, when the CEO chose that Level 3
  support option (seed 000, 7.8 and 7.10; DOMAIN.md decision 7); framework B's CEO /
  Executive review every 6, 6, 3, 2 or 1 months by level (seed 004, 6.3); framework E's
  divisional performance meetings wherever a framework declares that cadence (none of the
  bundled files does). Each occurrence's deadline gets a requested meeting to be held by its
  due date, linked to it, so holding the meeting discharges the obligation. A unit has one
  series per kind of meeting: when several of its cases (NHS Wales pillars, framework A
  tracks) have the same cadence, the case at the highest level drives it.
* **The base cadence** (framework A, 5.4 and 5.5.3): every operational directorate, clinical
  service area and corporate department has an Integrated Quality and Performance Group
  review each quarter of the financial year (April to March); "the quarter 2 and quarter 4
  meetings serve as six-monthly performance reviews", chaired by the CEO with the full
  Executive Team, ending with agreed action notes and the chair's formal letter. The base
  cadence is the organisation's standing arrangement and runs at every level; escalation adds
  the level's own cadence on top (5.4: the base table "is modified by the escalation level").

Earned autonomy (``services/autonomy.py``) makes the lowest level's meeting series half as
frequent: framework A's quarterly reviews stop and only the six-monthly reviews remain (5.5.3,
"Six Monthly only"); framework B's Level 1 six-monthly review becomes annual.

A level change, or autonomy granted or ended, cancels the *requested* meetings the new cadence
no longer asks for (a meeting already in the diary is left to its chair) and requests the new
cadence's. Everything is idempotent on dedupe keys derived from the deadline (or, for the base
cadence, the unit and the quarter), so running it again creates nothing twice.

Services only flush; the caller commits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import sqlalchemy as sa

from state_machines import get_framework, parse_duration
from workflow_app.clock import as_utc, utcnow
from workflow_app.extensions import db
from workflow_app.models.cases import EscalationCase
from workflow_app.models.deadlines import Deadline
from workflow_app.models.meetings import Meeting
from workflow_app.models.org import Person, Unit
from workflow_app.models.roles import CEO, EXECUTIVE_DIRECTOR
from workflow_app.services.audit import record_event
from workflow_app.services.deadlines import calendar_for, cancel_deadline
from workflow_app.services.org import people_with_role

__all__ = [
    "BASE_REVIEW_SERIES",
    "CADENCE_MEETINGS",
    "CadenceMeeting",
    "MeetingPlan",
    "base_review_occurrences",
    "base_series",
    "plan_all_cadence_meetings",
    "plan_base_meetings",
    "plan_cadence_meetings",
]

CADENCE_PREFIX = "cadence:"
#: Dedupe keys of the meetings this module requests start with these.
LEVEL_KEY_PREFIX = "meeting:cadence:"
BASE_KEY_PREFIX = "base:"
#: Reasons this module gives when it cancels a requested meeting; a meeting cancelled for one
#: of them may be requested again (under a new key) when the cadence asks for it again. A
#: meeting cancelled by a person stays cancelled.
AUTOMATIC_REASONS = ("Cadence changed:", "Earned autonomy:")


@dataclass(frozen=True)
class CadenceMeeting:
    """What a meeting cadence asks for: the kind of meeting, who chairs it (the first of
    ``chair`` that names someone: a role, or ``accountable_executive``) and who is invited
    (``accountable_executive``, ``unit_lead``, ``budget_holder``, ``all_executive_directors``)."""

    kind: str
    chair: tuple[str, ...]
    invite: tuple[str, ...]


UNIT_CONTACTS = ("accountable_executive", "unit_lead", "budget_holder")

#: Level cadence names (``levels.<id>.cadence`` in a framework file, plus the chosen Level 3
#: option) that are meetings. Anything else (monthly updates, reports, the system-wide oversight
#: touchpoint) stays an obligation without a meeting.
CADENCE_MEETINGS: dict[str, CadenceMeeting] = {
    # seed 000 7.8 (Level 3): "weekly/fortnightly meetings with the CEO and/or executives".
    "ceo_progress_meeting": CadenceMeeting("ceo_progress", (CEO,), UNIT_CONTACTS),
    # seed 004 6.3: "CEO/Executive review with NHS Wales CEO" (the Director General role).
    "ceo_executive_review": CadenceMeeting(
        "executive_review", ("director_general", CEO), UNIT_CONTACTS
    ),
    # seed 003 6.1: monthly divisional performance meetings with minutes and an action log.
    # No bundled framework declares this cadence; a framework that does gets the meetings.
    "divisional_performance_meeting": CadenceMeeting(
        "divisional_performance", ("accountable_executive", EXECUTIVE_DIRECTOR), UNIT_CONTACTS
    ),
}

#: Framework A base cadence (seed 000, 5.4): the review series of each kind of unit, by its
#: ``base_cadence`` name. Commissioned providers are reviewed in contract meetings (CQPRMs,
#: section 8), not in this series.
BASE_REVIEW_SERIES = {
    "operational_directorate": "operational_directorate_review",
    "clinical_service_area": "operational_directorate_review",
    "corporate_department": "corporate_team_review",
}
SIX_MONTHLY_SERIES = "six_monthly_review"
#: The quarterly review (5.5.3): chaired by the Clinical Director; here the unit's accountable
#: executive, with the unit's lead and budget holder.
QUARTERLY_REVIEW = CadenceMeeting(
    "directorate_review", ("accountable_executive",), ("unit_lead", "budget_holder")
)
#: The six-monthly review (5.5.3): "Full Executive Team present. CEO to Chair."
SIX_MONTHLY_REVIEW = CadenceMeeting(
    "six_monthly_review", (CEO,), ("all_executive_directors", "unit_lead", "budget_holder")
)
#: The NHS financial year starts on 1 April; its quarters end in June, September, December
#: and March.
FINANCIAL_YEAR_START_MONTH = 4
#: How many base reviews ahead are requested (as the level cadence keeps two occurrences).
BASE_HORIZON = 2
#: A base review is first requested at least this many working days before its quarter ends,
#: so the chair has time to find a slot (a new unit late in a quarter starts with the next).
BASE_MIN_NOTICE_WORKING_DAYS = 10


@dataclass
class MeetingPlan:
    """What planning a unit's cadence meetings did."""

    requested: list[Meeting] = field(default_factory=list)
    cancelled: list[Meeting] = field(default_factory=list)


# --- people -----------------------------------------------------------------------------


def _chair(unit: Unit, tokens: tuple[str, ...]) -> Person | None:
    for word in tokens:
        if word == "accountable_executive":
            if unit.accountable_executive is not None:
                return unit.accountable_executive
            continue
        holders = people_with_role(word)
        if holders:
            return holders[0]
    return None


def _invitees(unit: Unit, tokens: tuple[str, ...]) -> list[tuple[Person, str]]:
    people: list[tuple[Person, str]] = []
    for word in tokens:
        if word == "accountable_executive" and unit.accountable_executive is not None:
            people.append((unit.accountable_executive, "executive_director"))
        elif word == "unit_lead" and unit.lead is not None:
            people.append((unit.lead, "unit_lead"))
        elif word == "budget_holder" and unit.budget_holder is not None:
            people.append((unit.budget_holder, "budget_holder"))
        elif word == "all_executive_directors":
            people += [(p, "executive_director") for p in people_with_role(EXECUTIVE_DIRECTOR)]
    return people


# --- cases and levels ---------------------------------------------------------------------


def unit_cases(unit: Unit) -> list[EscalationCase]:
    """The unit's cases on its framework, in the framework's track order."""
    framework = get_framework(unit.framework)
    order = {name: i for i, name in enumerate(framework.tracks)}
    cases = db.session.scalars(
        sa.select(EscalationCase).where(
            EscalationCase.unit_id == unit.id, EscalationCase.framework == unit.framework
        )
    ).all()
    return sorted(
        cases, key=lambda c: (order.get(framework.track_for(c.track).name, len(order)), c.id)
    )


def level_rank(case: EscalationCase) -> int:
    """How far up its track the case is (0 = the track's lowest level)."""
    levels = get_framework(case.framework).track_for(case.track).levels
    return levels.index(case.level) if case.level in levels else 0


def at_lowest_level(unit: Unit) -> bool:
    """True when every case of the unit is at its track's lowest level."""
    return all(level_rank(case) == 0 for case in unit_cases(unit))


def anchor_case(unit: Unit) -> EscalationCase | None:
    """The case base-cadence meetings hang on (their letter and action plan need one): the
    unit's case on the framework's first track."""
    cases = unit_cases(unit)
    return cases[0] if cases else None


def has_earned_autonomy(unit: Unit) -> bool:
    """Autonomy applies while it is granted and the unit is at its lowest level."""
    return unit.earned_autonomy_since is not None and at_lowest_level(unit)


# --- requesting and cancelling --------------------------------------------------------------


def _cancelled_automatically(meeting: Meeting) -> bool:
    return meeting.status == "cancelled" and meeting.cancelled_reason.startswith(AUTOMATIC_REASONS)


def _request_once(key: str, plan: MeetingPlan, **values) -> Meeting | None:
    """Request the meeting under ``key`` unless it exists. A meeting this module cancelled
    when the cadence changed is requested afresh under ``key:2``, ``key:3``...; one cancelled
    by a person stays cancelled (nothing new is requested)."""
    from workflow_app.services.meetings import request_meeting

    for n in range(1, 50):
        candidate = key if n == 1 else f"{key}:{n}"
        existing = db.session.scalar(sa.select(Meeting).where(Meeting.dedupe_key == candidate))
        if existing is None:
            meeting = request_meeting(dedupe_key=candidate, **values)
            plan.requested.append(meeting)
            return meeting
        if not _cancelled_automatically(existing):
            return existing
    return None


def _cancel_requested(meeting: Meeting, reason: str, plan: MeetingPlan) -> None:
    """Cancel a meeting nobody has put in the diary yet (no calendar message: there was no
    event). Its obligation, if still live, is left to the cadence that planned it."""
    meeting.status = "cancelled"
    meeting.cancelled_reason = reason[:4000]
    db.session.flush()
    record_event(
        "meeting.cancelled",
        object_type="meeting",
        object_id=meeting.id,
        summary=f"{meeting.title} cancelled: {reason}",
        details={"automatic": True},
    )
    plan.cancelled.append(meeting)


def _requested_with_prefix(unit: Unit, prefix: str) -> list[Meeting]:
    return list(
        db.session.scalars(
            sa.select(Meeting)
            .where(
                Meeting.unit_id == unit.id,
                Meeting.status == "requested",
                Meeting.dedupe_key.like(f"{prefix}%"),
            )
            .order_by(Meeting.id)
        )
    )


# --- the level's cadence ------------------------------------------------------------------


def _occurrence(deadline: Deadline) -> int:
    tail = deadline.dedupe_key.rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def _thin_for_autonomy(unit: Unit, cases: list[EscalationCase]) -> None:
    """Earned autonomy at the lowest level: every second occurrence of a meeting series is no
    longer needed (the level's review is held half as often); its obligation is cancelled."""
    since = as_utc(unit.earned_autonomy_since)
    for case in cases:
        if level_rank(case) != 0:
            continue
        for deadline in db.session.scalars(
            sa.select(Deadline).where(
                Deadline.case_id == case.id,
                Deadline.kind.in_([f"{CADENCE_PREFIX}{name}" for name in CADENCE_MEETINGS]),
                Deadline.status.in_(("open", "paused")),
            )
        ):
            if _occurrence(deadline) % 2 == 1 and as_utc(deadline.due_at) > since:
                cancel_deadline(deadline, "Earned autonomy: this review is held half as often")


def _plan_level_meetings(unit: Unit, plan: MeetingPlan, now: datetime) -> None:
    cases = unit_cases(unit)
    if has_earned_autonomy(unit):
        _thin_for_autonomy(unit, cases)
    framework = get_framework(unit.framework)
    wanted: set[str] = set()
    driver_of: dict[str, EscalationCase] = {}
    # Every live cadence-meeting obligation of the unit in one query, grouped by kind and case.
    by_kind: dict[str, dict[int, list[Deadline]]] = {}
    for deadline in db.session.scalars(
        sa.select(Deadline)
        .where(
            Deadline.unit_id == unit.id,
            Deadline.kind.in_([f"{CADENCE_PREFIX}{name}" for name in CADENCE_MEETINGS]),
            Deadline.status.in_(("open", "paused")),
            Deadline.case_id.is_not(None),
        )
        .order_by(Deadline.due_at, Deadline.id)
    ):
        by_kind.setdefault(deadline.kind, {}).setdefault(deadline.case_id, []).append(deadline)
    for name, spec in CADENCE_MEETINGS.items():
        by_case = by_kind.get(f"{CADENCE_PREFIX}{name}", {})
        candidates = [c for c in cases if c.id in by_case]
        if not candidates:
            continue
        # One series per unit: the case at the highest level drives it (ties: track order).
        driver = max(candidates, key=lambda c: (level_rank(c), -cases.index(c)))
        driver_of[spec.kind] = driver
        calendar = calendar_for(unit.framework)
        for deadline in by_case[driver.id]:
            key = f"meeting:{deadline.dedupe_key}"
            track = framework.track_for(driver.track).title
            meeting = _request_once(
                key,
                plan,
                kind=spec.kind,
                unit=unit,
                case=driver,
                chair=_chair(unit, spec.chair),
                hold_by=calendar.local_date(deadline.due_at),
                invitees=_invitees(unit, spec.invite),
                deadline=deadline,
                title=f"{deadline.title}: {unit.name} ({track}, "
                f"{framework.level_title(driver.level)})",
                now=now,
            )
            if meeting is not None:
                wanted.add(meeting.dedupe_key)
    for meeting in _requested_with_prefix(unit, LEVEL_KEY_PREFIX):
        if meeting.dedupe_key in wanted:
            continue
        deadline = meeting.deadline
        if deadline is not None and deadline.status == "cancelled":
            why = deadline.cancelled_reason or "the level changed"
            reason = why if why.startswith("Earned autonomy:") else f"Cadence changed: {why}"
        elif deadline is not None and deadline.status == "done":
            reason = "Cadence changed: the obligation was met without this meeting"
        elif meeting.kind in driver_of:
            driver = driver_of[meeting.kind]
            reason = (
                f"Cadence changed: the review now follows "
                f"{framework.track_for(driver.track).title} at "
                f"{framework.level_title(driver.level)}"
            )
        else:
            reason = "Cadence changed: the level no longer asks for this meeting"
        _cancel_requested(meeting, reason, plan)


# --- the base cadence (framework A, 5.4 and 5.5.3) -------------------------------------------


def _months(spec) -> int | None:
    """The first interval of a ``base_cadence`` entry, in whole months (None otherwise)."""
    if not spec:
        return None
    every = spec.get("every")
    first = every[0] if isinstance(every, list | tuple) else every
    duration = parse_duration(str(first))
    if duration.unit == "months":
        return duration.amount
    if duration.unit == "years":
        return 12 * duration.amount
    return None


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def _financial_year_start(day: date) -> date:
    year = day.year if day.month >= FINANCIAL_YEAR_START_MONTH else day.year - 1
    return date(year, FINANCIAL_YEAR_START_MONTH, 1)


@dataclass(frozen=True)
class BaseOccurrence:
    """One base review: the last day of its period, its hold-by date (the last working day of
    the period) and whether it is a six-monthly review."""

    ends_on: date
    hold_by: date
    six_monthly: bool

    @property
    def key(self) -> str:
        return f"{self.ends_on:%Y-%m}"


def base_series(unit: Unit) -> tuple[int, int | None] | None:
    """(review interval, six-monthly interval) in months for the unit, or None."""
    framework = get_framework(unit.framework)
    name = BASE_REVIEW_SERIES.get(unit.kind)
    interval = _months(framework.base_cadence.get(name)) if name else None
    if not interval or 12 % interval:
        return None
    six = _months(framework.base_cadence.get(SIX_MONTHLY_SERIES))
    return interval, six if six and 12 % six == 0 else None


def base_review_occurrences(
    unit: Unit, start: date, count: int, *, autonomy: bool | None = None
) -> list[BaseOccurrence]:
    """The unit's next ``count`` base reviews whose period ends on or after ``start``.

    Periods are counted from 1 April (the financial year): every ``interval`` months from the
    framework's ``base_cadence`` (3 for an operational directorate); the ones ending on a
    six-monthly mark are the six-monthly reviews. With earned autonomy the series is half as
    frequent (every second period: for a quarterly series, the six-monthly reviews only).
    """
    series = base_series(unit)
    if series is None:
        return []
    interval, six = series
    if autonomy is None:
        autonomy = has_earned_autonomy(unit)
    step = interval * 2 if autonomy else interval
    calendar = calendar_for(unit.framework)
    found: list[BaseOccurrence] = []
    year_start = _financial_year_start(start)
    offset = 0
    while len(found) < count and offset < 12 * 50:
        offset += step
        ends_on = _add_months(year_start, offset) - timedelta(days=1)
        if ends_on < start:
            continue
        hold_by = (
            ends_on if calendar.is_working_day(ends_on) else calendar.previous_working_day(ends_on)
        )
        found.append(BaseOccurrence(ends_on, hold_by, bool(six) and offset % six == 0))
    return found


def _base_key(unit: Unit, occurrence: BaseOccurrence) -> str:
    return f"{BASE_KEY_PREFIX}{unit.id}:{BASE_REVIEW_SERIES[unit.kind]}:{occurrence.key}"


def _occurrence_month(meeting: Meeting) -> str:
    """The ``YYYY-MM`` a base review's key names (``base:<unit>:<series>:<YYYY-MM>[:n]``)."""
    parts = (meeting.dedupe_key or "").split(":")
    return parts[3] if len(parts) > 3 else ""


def _plan_base_meetings(unit: Unit, plan: MeetingPlan, now: datetime) -> None:
    calendar = calendar_for(unit.framework)
    today = calendar.local_date(now)
    existing = _requested_with_prefix(unit, f"{BASE_KEY_PREFIX}{unit.id}:")
    if base_series(unit) is None:
        for meeting in existing:
            _cancel_requested(meeting, "Cadence changed: the unit has no base review series", plan)
        return
    autonomy = has_earned_autonomy(unit)
    # Two years of the current arrangement: a requested review outside it is cancelled (e.g.
    # the quarterly reviews once autonomy is granted); one whose period is over is left alone.
    series = {o.key for o in base_review_occurrences(unit, today, 8, autonomy=autonomy)}
    for meeting in existing:
        month = _occurrence_month(meeting)
        if month in series or (meeting.hold_by is not None and meeting.hold_by < today):
            continue
        _cancel_requested(
            meeting,
            "Earned autonomy: the six-monthly reviews continue and this quarterly review is "
            "no longer held"
            if autonomy
            else "Cadence changed: this review is no longer in the unit's cadence",
            plan,
        )
    case = anchor_case(unit)
    first_day = calendar.add_working_days(today, BASE_MIN_NOTICE_WORKING_DAYS)
    ahead = [
        o
        for o in base_review_occurrences(unit, today, BASE_HORIZON + 2, autonomy=autonomy)
        if o.hold_by >= first_day
    ][:BASE_HORIZON]
    for occurrence in ahead:
        spec = SIX_MONTHLY_REVIEW if occurrence.six_monthly else QUARTERLY_REVIEW
        quarter = (occurrence.ends_on.month - FINANCIAL_YEAR_START_MONTH) % 12 // 3 + 1
        year = _financial_year_start(occurrence.ends_on).year
        period = f"Q{quarter} {year}/{(year + 1) % 100:02d}"
        title = (
            f"Six-monthly review chaired by the CEO: {unit.name} ({period})"
            if occurrence.six_monthly
            else f"Quarterly directorate review: {unit.name} ({period})"
        )
        _request_once(
            _base_key(unit, occurrence),
            plan,
            kind=spec.kind,
            unit=unit,
            case=case,
            chair=_chair(unit, spec.chair),
            hold_by=occurrence.hold_by,
            invitees=_invitees(unit, spec.invite),
            title=title,
            now=now,
        )


# --- entry points ---------------------------------------------------------------------------


def plan_cadence_meetings(
    case_or_unit: EscalationCase | Unit, now: datetime | None = None
) -> MeetingPlan:
    """Request the meetings the unit's cadence asks for and cancel the requested ones it no
    longer asks for (see the module docstring); safe to run any number of times.

    Given a case (``cadence.replan_cadence`` after a level change): the unit's level-cadence
    meetings. Given a unit (the daily top-up, earned autonomy granted): those and the base
    cadence, which does not depend on the level and so is left to the daily top-up otherwise.
    """
    now = as_utc(now or utcnow())
    unit = case_or_unit.unit if isinstance(case_or_unit, EscalationCase) else case_or_unit
    plan = MeetingPlan()
    if not unit.is_active:
        return plan
    _plan_level_meetings(unit, plan, now)
    if isinstance(case_or_unit, Unit):
        _plan_base_meetings(unit, plan, now)
    return plan


def plan_base_meetings(unit: Unit, now: datetime | None = None) -> MeetingPlan:
    """Only the base cadence (e.g. restored when an escalation ends earned autonomy)."""
    now = as_utc(now or utcnow())
    plan = MeetingPlan()
    if unit.is_active:
        _plan_base_meetings(unit, plan, now)
    return plan


def plan_all_cadence_meetings(now: datetime | None = None) -> int:
    """Plan every active unit's cadence meetings (the daily top-up); how many were requested."""
    now = as_utc(now or utcnow())
    requested = 0
    for unit in db.session.scalars(
        sa.select(Unit).where(Unit.is_active.is_(True)).order_by(Unit.id)
    ).all():
        requested += len(plan_cadence_meetings(unit, now=now).requested)
    return requested
